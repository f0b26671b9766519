// SPDX-License-Identifier: Apache-2.0
// The interactive chat. With readline it uses the callback interface in one thread: poll()
// watches the terminal and the socket; typed bytes go to rl_callback_read_char(), and incoming
// events are printed above the prompt by saving the edited line, clearing it, printing, and
// redisplaying it. Without readline (or with --plain) a line-based fallback does the same
// without line editing.
#include "cli/interactive.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "cli/chat_line.h"
#include "cli/common.h"
#include "cli/image_saver.h"
#include "cli/output.h"

#ifdef TUNDRA_HAVE_READLINE
#include <readline/history.h>
#include <readline/readline.h>
#endif

namespace tundra::cli {

namespace {

using std::chrono::milliseconds;

volatile std::sig_atomic_t g_winch = 0;
extern "C" void onWinch(int /*signo*/) { g_winch = 1; }

// Terminal front ends: how to print a line without garbling the one being typed.
class Frontend {
public:
    virtual ~Frontend() = default;
    /// Prints an event line above the prompt, on `stream` (stdout, or stderr for errors).
    virtual void printAbove(const std::string& line, std::FILE* stream) = 0;
    /// Prints output that answers a typed command (the prompt is redrawn afterwards).
    virtual void printReply(const std::string& text) = 0;
};

class ChatSession {
public:
    /// `saver`: where --save-images writes received images, or null.
    ChatSession(client::Client& c, ImageSaver* saver) : c_(c), saver_(saver) {}

    void setFrontend(Frontend* f) { frontend_ = f; }
    [[nodiscard]] bool quit() const { return quit_; }
    [[nodiscard]] int exitCode() const { return exit_code_; }
    void requestQuit() { quit_ = true; }

    // Runs one typed line.
    void handleLine(const std::string& raw) {
        ChatLine line = parseChatLine(raw);
        switch (line.kind) {
            case ChatLine::Kind::Empty:
                return;
            case ChatLine::Kind::Invalid:
                reply("! " + line.error);
                return;
            case ChatLine::Kind::Help:
                reply(chatHelp());
                return;
            case ChatLine::Kind::Quit:
                quit_ = true;
                return;
            case ChatLine::Kind::Broadcast: {
                auto ack = c_.sendMessage("", line.text);
                if (!ack) {
                    replyError(ack.error());
                }
                return;
            }
            case ChatLine::Kind::Direct: {
                auto ack = c_.sendMessage(line.to, line.text);
                if (!ack) {
                    replyError(ack.error());
                } else if (ack->delivered == 0 && ack->buffered > 0) {
                    reply("(" + line.to + " is offline; the message waits in its buffer)");
                }
                return;
            }
            case ChatLine::Kind::Agent: {
                auto ack = c_.sendAgentCommand(line.to, line.command, line.args);
                if (!ack) {
                    replyError(ack.error());
                } else {
                    reply("(command " + std::to_string(ack->id) + " sent to " +
                          (line.to.empty() ? std::string("all agents") : line.to) + ", " +
                          std::to_string(ack->delivered) + " online)");
                }
                return;
            }
            case ChatLine::Kind::Image: {
                std::string mime = line.mime.empty() ? guessImageMime(line.file) : line.mime;
                if (mime.empty()) {
                    reply("! cannot tell the image type of '" + line.file +
                          "': /image NAME FILE image/TYPE");
                    return;
                }
                std::string error;
                auto data = readFile(line.file, error);
                if (!data) {
                    reply("! " + error);
                    return;
                }
                auto ack = c_.sendImage(line.to, mime, *data);
                if (!ack) {
                    replyError(ack.error());
                } else {
                    reply("(image " + std::to_string(ack->id) + ": " +
                          std::to_string(data->size()) + " bytes of " + mime + ")");
                }
                return;
            }
            case ChatLine::Kind::Users: {
                auto users = c_.listUsers(line.prefix);
                if (!users) {
                    replyError(users.error());
                    return;
                }
                std::string text;
                for (const auto& u : *users) {
                    text += "  " + formatUserHuman(u) + "\n";
                }
                reply(text.empty() ? "(no users)" : text);
                return;
            }
            case ChatLine::Kind::Health: {
                auto json = c_.health();
                if (!json) {
                    replyError(json.error());
                    return;
                }
                auto parsed = parseJson(*json);
                reply(parsed ? formatHealthSummary(*parsed, c_.endpoint()) : *json);
                return;
            }
            case ChatLine::Kind::Ping: {
                auto rtt = c_.ping();
                if (!rtt) {
                    replyError(rtt.error());
                    return;
                }
                char buf[96];
                std::snprintf(buf, sizeof buf, "pong from %s: %.3f ms", c_.endpoint().c_str(),
                              static_cast<double>(rtt->count()) / 1000.0);
                reply(buf);
                return;
            }
        }
    }

    // Prints every event that is ready (bounded, so typing stays responsive under a flood).
    void drainEvents() {
        for (int i = 0; i < 200; ++i) {
            auto ev = c_.nextEvent(milliseconds(0));
            if (!ev) {
                break;
            }
            std::optional<SavedImage> saved;
            const auto* d = std::get_if<client::Delivery>(&*ev);
            if (saver_ != nullptr && d != nullptr && d->type == MsgType::Image) {
                saved = saveImage(*saver_, *d);
            }
            frontend_->printAbove(formatHuman(*ev, saved ? &*saved : nullptr), stdout);
            if (saved && !saved->error.empty()) {
                // A failed write is reported and the chat goes on.
                frontend_->printAbove("! " + saveFailureText(*d, saved->error), stderr);
            }
            if (const auto* conn = std::get_if<client::ConnectionEvent>(&*ev);
                conn != nullptr && conn->kind == client::ConnectionEvent::Kind::Closed) {
                quit_ = true;
                exit_code_ = kExitUnreachable;
            }
        }
    }

private:
    void reply(const std::string& text) { frontend_->printReply(text); }
    void replyError(const client::ClientError& e) {
        reply("! " + sanitizeForTerminal(e.message()));
        if (e.kind == client::ErrorKind::Closed) {
            quit_ = true;
            exit_code_ = kExitUnreachable;
        }
    }

    client::Client& c_;
    ImageSaver* saver_;
    Frontend* frontend_ = nullptr;
    bool quit_ = false;
    int exit_code_ = kExitOk;
};

void writeOut(const std::string& text, std::FILE* stream = stdout) {
    if (stream != stdout) {
        std::fflush(stdout);  // what is already on the terminal comes first
    }
    std::fputs(text.c_str(), stream);
    if (!text.ends_with('\n')) {
        std::fputc('\n', stream);
    }
    std::fflush(stream);
}

// Waits for the terminal or the socket. The timeout keeps the keepalive and reconnects going
// while nothing happens. Returns the poll() revents of stdin (0 on timeout or EINTR).
short waitForInput(const client::Client& c) {
    pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {c.fd(), POLLIN, 0}};
    nfds_t n = c.fd() >= 0 ? 2 : 1;
    int ready = ::poll(fds, n, c.fd() >= 0 ? 1000 : 100);
    if (ready <= 0) {
        return 0;
    }
    return fds[0].revents;
}

// ---- plain fallback ----------------------------------------------------------------------------

class PlainFrontend : public Frontend {
public:
    explicit PlainFrontend(std::string prompt)
        : prompt_(std::move(prompt)), tty_(::isatty(STDOUT_FILENO) == 1) {}

    void printAbove(const std::string& line, std::FILE* stream) override {
        // Erase the prompt line, print, redraw the prompt. What was typed stays in the
        // terminal's own line buffer (no line editing here to redraw it).
        if (tty_) {
            std::fputs("\r\033[K", stdout);
        }
        writeOut(line, stream);
        showPrompt();
    }
    void printReply(const std::string& text) override { writeOut(text); }
    void showPrompt() {
        std::fputs(prompt_.c_str(), stdout);
        std::fflush(stdout);
    }

private:
    std::string prompt_;
    bool tty_;
};

int runPlain(ChatSession& session, client::Client& c, const std::string& prompt) {
    PlainFrontend frontend(prompt);
    session.setFrontend(&frontend);
    frontend.showPrompt();
    std::string pending;
    char buf[4096];
    while (!session.quit()) {
        if (g_interrupted) {
            std::fputc('\n', stdout);
            break;
        }
        short revents = waitForInput(c);
        if ((revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            ssize_t got = ::read(STDIN_FILENO, buf, sizeof buf);
            if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN)) {
                std::fputc('\n', stdout);
                break;
            }
            if (got > 0) {
                pending.append(buf, static_cast<std::size_t>(got));
                std::size_t nl;
                while (!session.quit() && (nl = pending.find('\n')) != std::string::npos) {
                    std::string line = pending.substr(0, nl);
                    pending.erase(0, nl + 1);
                    session.handleLine(line);
                    if (!session.quit()) {
                        frontend.showPrompt();
                    }
                }
            }
        }
        session.drainEvents();
    }
    return session.exitCode();
}

// ---- readline ----------------------------------------------------------------------------------

#ifdef TUNDRA_HAVE_READLINE

ChatSession* g_session = nullptr;  // readline's line callback is a plain function

class ReadlineFrontend : public Frontend {
public:
    void printAbove(const std::string& line, std::FILE* stream) override {
        if (in_handler_) {
            writeOut(line, stream);
            return;
        }
        // Save what is being edited, clear the line, print, then bring the line back.
        const int point = rl_point;
        char* saved = rl_copy_text(0, rl_end);
        rl_save_prompt();
        rl_replace_line("", 0);
        rl_redisplay();
        writeOut(line, stream);
        rl_restore_prompt();
        rl_replace_line(saved, 0);
        rl_point = point;
        rl_redisplay();
        std::free(saved);
    }
    // Called from the line handler: readline has moved to a fresh line and redraws the
    // prompt after the handler returns.
    void printReply(const std::string& text) override { writeOut(text); }

    bool in_handler_ = false;
    bool removed_ = false;  // the line handler is already uninstalled
};

ReadlineFrontend* g_readline_frontend = nullptr;

extern "C" void onReadlineLine(char* line) {
    if (line == nullptr) {  // Ctrl-D on an empty line
        std::fputc('\n', stdout);
        g_session->requestQuit();
        rl_callback_handler_remove();
        g_readline_frontend->removed_ = true;
        return;
    }
    std::string text(line);
    std::free(line);
    if (!text.empty()) {
        add_history(text.c_str());
    }
    g_readline_frontend->in_handler_ = true;
    g_session->handleLine(text);
    g_readline_frontend->in_handler_ = false;
    if (g_session->quit()) {
        // Removing the handler here stops readline from drawing one more prompt.
        rl_callback_handler_remove();
        g_readline_frontend->removed_ = true;
    }
}

std::string historyPath() {
    const char* home = std::getenv("HOME");
    return home != nullptr && *home != '\0' ? std::string(home) + "/.tundra_cli_history"
                                            : std::string();
}

int runReadline(ChatSession& session, client::Client& c, const std::string& prompt) {
    ReadlineFrontend frontend;
    session.setFrontend(&frontend);
    g_session = &session;
    g_readline_frontend = &frontend;

    const std::string history = historyPath();
    stifle_history(1000);
    if (!history.empty()) {
        (void)read_history(history.c_str());
    }
    // We own the signals: readline must not install handlers around our poll loop.
    rl_catch_signals = 0;
    rl_catch_sigwinch = 0;
    struct sigaction sa {};
    sa.sa_handler = onWinch;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGWINCH, &sa, nullptr);

    rl_callback_handler_install(prompt.c_str(), onReadlineLine);
    while (!session.quit()) {
        short revents = waitForInput(c);
        if (g_winch) {
            g_winch = 0;
            rl_resize_terminal();
        }
        if (g_interrupted) {
            // Ctrl-C clears a half-typed line; on an empty line it leaves.
            g_interrupted = 0;
            if (rl_end == 0) {
                std::fputc('\n', stdout);
                break;
            }
            rl_replace_line("", 0);
            rl_crlf();
            rl_on_new_line();
            rl_redisplay();
        }
        if ((revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            rl_callback_read_char();
        }
        if (!session.quit()) {
            session.drainEvents();
        }
    }
    if (!frontend.removed_) {
        rl_callback_handler_remove();
    }
    if (!history.empty()) {
        (void)write_history(history.c_str());
    }
    g_session = nullptr;
    g_readline_frontend = nullptr;
    return session.exitCode();
}

#endif  // TUNDRA_HAVE_READLINE

}  // namespace

int runInteractive(const CliConfig& cfg) {
    std::optional<ImageSaver> saver;
    if (auto rc = openImageSaver(cfg, saver)) {
        return *rc;
    }
    client::Client c(clientOptions(cfg.global));
    const std::string name = sessionName(cfg.global);
    client::Welcome welcome;
    if (auto rc = registerClient(c, cfg, name, &welcome)) {
        return *rc;
    }
    installInterruptHandlers();
    std::printf("Connected to %s as %s%s (%s session", c.endpoint().c_str(), name.c_str(),
                cfg.global.agent ? " (agent)" : "", welcome.resumed ? "resumed" : "new");
    if (welcome.pending > 0) {
        std::printf(", %u pending", welcome.pending);
    }
    std::printf("). Type /help for commands, /quit to leave.\n");
    if (saver) {
        std::printf("Received images are saved in %s\n",
                    sanitizeForTerminal(cfg.save_images).c_str());
    }
    std::fflush(stdout);

    ChatSession session(c, saver ? &*saver : nullptr);
    const std::string prompt = name + "> ";
    int rc = kExitOk;
#ifdef TUNDRA_HAVE_READLINE
    if (!cfg.global.plain && ::isatty(STDIN_FILENO) == 1) {
        rc = runReadline(session, c, prompt);
    } else {
        rc = runPlain(session, c, prompt);
    }
#else
    rc = runPlain(session, c, prompt);
#endif
    if (c.state() == client::ConnectionState::Registered) {
        (void)c.logout();
    }
    return rc;
}

}  // namespace tundra::cli
