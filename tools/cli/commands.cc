// SPDX-License-Identifier: Apache-2.0
// tundra-cli one-shot subcommands and pipe mode.
#include "cli/commands.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <string>

#include "cli/common.h"
#include "cli/image_saver.h"
#include "cli/output.h"
#include "cli/rtt_stats.h"

namespace tundra::cli {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

void printStatus(const CliConfig& cfg, const std::string& text) {
    if (!cfg.global.quiet) {
        std::fprintf(stderr, "tundra-cli: %s\n", text.c_str());
    }
}

std::string targetName(const std::string& to) { return to.empty() ? "everyone" : to; }

// Prints events for listen and pipe: deliveries on stdout; the rest on stderr for people, or
// on stdout with --events. Remembers the exit code the events imply. With a saver
// (--save-images) each image is written to a file first, and its line names the file.
struct EventPrinter {
    const CliConfig& cfg;
    ImageSaver* saver = nullptr;
    int rc = kExitOk;
    bool save_failed = false;  ///< an image could not be written

    // Returns true for a delivery.
    bool print(const client::Event& e) {
        const bool delivery = isDelivery(e);
        const bool error = std::holds_alternative<client::ErrorEvent>(e);
        if (error && rc == kExitOk) {
            rc = kExitFailed;
        }
        if (const auto* c = std::get_if<client::ConnectionEvent>(&e);
            c != nullptr && c->kind == client::ConnectionEvent::Kind::Closed) {
            rc = kExitUnreachable;
        }
        std::optional<SavedImage> saved;
        if (const auto* d = std::get_if<client::Delivery>(&e);
            saver != nullptr && d != nullptr && d->type == MsgType::Image) {
            saved = saveImage(*saver, *d);
            if (!saved->error.empty()) {
                printError(saveFailureText(*d, saved->error));
                save_failed = true;
            }
        }
        const SavedImage* s = saved ? &*saved : nullptr;
        if (delivery || cfg.events) {
            printLine(cfg.global.json ? formatJson(e, s) : formatHuman(e, s));
        } else if (!cfg.global.quiet || error) {
            std::fprintf(stderr, "%s\n", formatHuman(e).c_str());
        }
        return delivery;
    }
};

bool closedForGood(const client::Client& c) {
    return c.state() == client::ConnectionState::Closed ||
           c.state() == client::ConnectionState::Disconnected;
}

// Logs out on every way out of a command, so a failed one-shot command does not leave a
// detached session holding the name until it expires.
class LogoutGuard {
public:
    explicit LogoutGuard(client::Client& c) : c_(c) {}
    ~LogoutGuard() {
        if (c_.state() == client::ConnectionState::Registered) {
            (void)c_.logout();
        }
    }
    LogoutGuard(const LogoutGuard&) = delete;
    LogoutGuard& operator=(const LogoutGuard&) = delete;

private:
    client::Client& c_;
};

std::string readAll(int fd) {
    std::string out;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return out;
        }
        out.append(buf, static_cast<std::size_t>(n));
    }
}

// ---- send / agent / image ----------------------------------------------------------------------

int finishAck(const CliConfig& cfg, client::Client& c, const client::Result<client::Ack>& ack,
              const char* what) {
    if (!ack) {
        printError(what, ack.error());
        return exitCodeFor(ack.error());
    }
    printLine(cfg.global.json ? formatAckJson(*ack) : formatAckHuman(*ack, cfg.to));
    (void)c.logout();
    return kExitOk;
}

int runSend(const CliConfig& cfg) {
    std::string text;
    if (cfg.args.empty() || (cfg.args.size() == 1 && cfg.args[0] == "-")) {
        if (cfg.args.empty() && ::isatty(STDIN_FILENO) == 1) {
            printError("send: no TEXT given (use - to read it from standard input)");
            return kExitUsage;
        }
        text = readAll(STDIN_FILENO);
        if (text.ends_with('\n')) {
            text.pop_back();
            if (text.ends_with('\r')) {
                text.pop_back();
            }
        }
    } else {
        for (const auto& a : cfg.args) {
            if (!text.empty()) {
                text += ' ';
            }
            text += a;
        }
    }
    if (text.empty()) {
        printError("send: the message is empty");
        return kExitUsage;
    }
    client::Client c(clientOptions(cfg.global));
    if (auto rc = registerClient(c, cfg, sessionName(cfg.global))) {
        return *rc;
    }
    LogoutGuard logout_guard(c);
    if (cfg.no_ack) {
        auto posted = c.postMessage(cfg.to, text);
        if (!posted) {
            printError("send", posted.error());
            return exitCodeFor(posted.error());
        }
        (void)c.logout();
        return kExitOk;
    }
    return finishAck(cfg, c, c.sendMessage(cfg.to, text), "send");
}

int runAgent(const CliConfig& cfg) {
    const std::string& command = cfg.args[0];
    std::string args;
    for (std::size_t i = 1; i < cfg.args.size(); ++i) {
        if (!args.empty()) {
            args += ' ';
        }
        args += cfg.args[i];
    }
    client::Client c(clientOptions(cfg.global));
    if (auto rc = registerClient(c, cfg, sessionName(cfg.global))) {
        return *rc;
    }
    LogoutGuard logout_guard(c);
    auto ack = c.sendAgentCommand(cfg.to, command, args, cfg.reply_to);
    if (!ack || !cfg.wait_reply) {
        return finishAck(cfg, c, ack, "agent");
    }
    if (!cfg.global.quiet && !cfg.global.json) {
        std::fprintf(stderr, "%s\n", formatAckHuman(*ack, cfg.to).c_str());
    }
    const auto deadline = Clock::now() + cfg.global.timeout;
    installInterruptHandlers();
    while (!g_interrupted) {
        auto now = Clock::now();
        if (now >= deadline) {
            break;
        }
        auto ev = c.nextEvent(std::chrono::duration_cast<milliseconds>(deadline - now));
        if (!ev) {
            if (closedForGood(c)) {
                printError("agent: connection closed while waiting for the reply");
                return kExitUnreachable;
            }
            continue;
        }
        const auto* d = std::get_if<client::Delivery>(&*ev);
        if (d != nullptr && d->type == MsgType::BroadcastAgent && d->reply_to == ack->id) {
            printLine(cfg.global.json ? formatJson(*ev) : formatHuman(*ev));
            (void)c.logout();
            return kExitOk;
        }
    }
    printError("agent: no reply to command " + std::to_string(ack->id) + " within the timeout");
    (void)c.logout();
    return kExitTimeout;
}

int runImage(const CliConfig& cfg) {
    const std::string& path = cfg.args[0];
    std::string mime = cfg.mime.empty() ? guessImageMime(path) : cfg.mime;
    if (mime.empty()) {
        printError("image: cannot tell the type of '" + path + "'; give --mime image/...");
        return kExitUsage;
    }
    std::string error;
    auto data = readFile(path, error);
    if (!data) {
        printError("image: " + error);
        return kExitUsage;
    }
    if (data->empty()) {
        printError("image: '" + path + "' is empty");
        return kExitUsage;
    }
    client::Client c(clientOptions(cfg.global));
    if (auto rc = registerClient(c, cfg, sessionName(cfg.global))) {
        return *rc;
    }
    LogoutGuard logout_guard(c);
    return finishAck(cfg, c, c.sendImage(cfg.to, mime, *data), "image");
}

// ---- listen ------------------------------------------------------------------------------------

int runListen(const CliConfig& cfg) {
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
    LogoutGuard logout_guard(c);
    installInterruptHandlers();
    printStatus(cfg, "listening as " + name + " on " + c.endpoint() +
                         (welcome.pending > 0 ? " (" + std::to_string(welcome.pending) + " pending)"
                                              : std::string()) +
                         (saver ? "; saving images in " + sanitizeForTerminal(cfg.save_images)
                                : std::string()) +
                         "; Ctrl-C to stop");
    EventPrinter printer{cfg, saver ? &*saver : nullptr};
    long received = 0;
    std::optional<Clock::time_point> deadline;
    if (cfg.duration) {
        deadline = Clock::now() + *cfg.duration;
    }
    while (!g_interrupted && (cfg.count == 0 || received < cfg.count)) {
        milliseconds wait{1000};
        if (deadline) {
            auto now = Clock::now();
            if (now >= *deadline) {
                break;
            }
            wait = std::min(
                wait, std::chrono::duration_cast<milliseconds>(*deadline - now) + milliseconds(1));
        }
        auto ev = c.nextEvent(wait);
        if (!ev) {
            if (closedForGood(c)) {
                return printer.rc == kExitOk ? kExitUnreachable : printer.rc;
            }
            continue;
        }
        if (printer.print(*ev)) {
            ++received;
        }
    }
    (void)c.logout();
    if (cfg.count > 0 && received < cfg.count && !g_interrupted) {
        printError("listen: " + std::to_string(received) + " of " + std::to_string(cfg.count) +
                   " deliveries before the time ran out");
        return kExitTimeout;
    }
    if (printer.rc == kExitUnreachable) {
        return kExitUnreachable;
    }
    return printer.save_failed ? kExitFailed : kExitOk;
}

// ---- pipe --------------------------------------------------------------------------------------

int runPipe(const CliConfig& cfg) {
    client::Client c(clientOptions(cfg.global));
    const std::string name = sessionName(cfg.global);
    if (auto rc = registerClient(c, cfg, name)) {
        return *rc;
    }
    LogoutGuard logout_guard(c);
    installInterruptHandlers();
    printStatus(cfg, "connected as " + name + " to " + c.endpoint() +
                         "; each line of input is a message to " + targetName(cfg.to));
    EventPrinter printer{cfg};
    int rc = kExitOk;
    std::size_t line_no = 0;
    auto drain = [&] {
        for (int i = 0; i < 1000; ++i) {
            auto ev = c.nextEvent(milliseconds(0));
            if (!ev) {
                break;
            }
            printer.print(*ev);
        }
    };
    auto sendLine = [&](std::string line) {
        ++line_no;
        if (line.ends_with('\r')) {
            line.pop_back();
        }
        if (line.empty()) {
            return;
        }
        client::ClientError error;
        bool failed = false;
        if (cfg.no_ack) {
            auto r = c.postMessage(cfg.to, line);
            failed = !r;
            if (failed) {
                error = r.error();
            }
        } else {
            auto r = c.sendMessage(cfg.to, line);
            failed = !r;
            if (failed) {
                error = r.error();
            }
        }
        if (failed) {
            printError("line " + std::to_string(line_no), error);
            if (rc == kExitOk) {
                rc = exitCodeFor(error);
            }
        }
    };

    std::string pending;
    bool eof = false;
    char buf[65536];
    while (!eof && !g_interrupted) {
        if (c.state() == client::ConnectionState::Closed) {
            break;
        }
        pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {c.fd(), POLLIN, 0}};
        nfds_t n = c.fd() >= 0 ? 2 : 1;
        int ready = ::poll(fds, n, c.fd() >= 0 ? 1000 : 100);
        if (ready < 0 && errno != EINTR) {
            break;
        }
        if (ready > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            ssize_t got = ::read(STDIN_FILENO, buf, sizeof buf);
            if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN)) {
                eof = true;
            } else if (got > 0) {
                pending.append(buf, static_cast<std::size_t>(got));
                std::size_t nl;
                while ((nl = pending.find('\n')) != std::string::npos) {
                    sendLine(pending.substr(0, nl));
                    pending.erase(0, nl + 1);
                }
            }
        }
        drain();  // also answers PINGs, keeps the connection alive and reconnects
    }
    if (eof && !pending.empty()) {
        sendLine(pending);
    }
    if (cfg.no_ack && c.state() == client::ConnectionState::Registered) {
        // The server answers in order: once the PONG is back, every refusal of an earlier
        // line has arrived too.
        (void)c.ping();
    }
    drain();
    if (c.state() == client::ConnectionState::Registered) {
        (void)c.logout();
    }
    if (printer.rc == kExitUnreachable) {
        return kExitUnreachable;
    }
    if (rc == kExitOk && printer.rc != kExitOk) {
        return printer.rc;
    }
    return rc;
}

// ---- health / ping / users ---------------------------------------------------------------------

int runHealth(const CliConfig& cfg) {
    client::Options opt = clientOptions(cfg.global);
    opt.auto_reconnect = false;
    client::Client c(opt);
    LogoutGuard logout_guard(c);
    if (!cfg.global.user.empty()) {
        if (auto rc = registerClient(c, cfg, cfg.global.user)) {
            return *rc;
        }
    }
    auto json = c.health();
    if (!json) {
        printError("health", json.error());
        return exitCodeFor(json.error());
    }
    auto parsed = parseJson(*json);
    if (cfg.global.json) {
        printLine(*json);
    }
    if (!parsed || !parsed->is_object()) {
        printError("health: the server's answer is not a JSON object");
        return kExitFailed;
    }
    if (!cfg.global.json) {
        std::fputs(formatHealthSummary(*parsed, c.endpoint()).c_str(), stdout);
        std::fflush(stdout);
    }
    const Json* status = findPath(*parsed, "status");
    if (status == nullptr || !status->is_string() || *status != "ok") {
        if (cfg.global.json) {
            printError("health: status is not ok");
        }
        return kExitFailed;
    }
    return kExitOk;
}

int runPing(const CliConfig& cfg) {
    client::Options opt = clientOptions(cfg.global);
    opt.auto_reconnect = false;
    client::Client c(opt);
    if (auto r = c.connect(); !r) {
        printError(r.error().message());
        return exitCodeFor(r.error());
    }
    installInterruptHandlers();
    RttStats stats;
    long sent = 0;
    std::optional<client::ClientError> last_error;
    if (!cfg.global.json && !cfg.global.quiet) {
        std::printf("PING %s\n", c.endpoint().c_str());
    }
    for (long i = 1; i <= cfg.count && !g_interrupted; ++i) {
        ++sent;
        auto rtt = c.ping();
        if (rtt) {
            double ms = static_cast<double>(rtt->count()) / 1000.0;
            stats.add(ms);
            if (cfg.global.json) {
                printLine(JsonLine()
                              .field("type", "pong")
                              .field("seq", static_cast<std::uint64_t>(i))
                              .field("rtt_ms", ms)
                              .str());
            } else if (!cfg.global.quiet) {
                char buf[96];
                std::snprintf(buf, sizeof buf, "seq=%ld time=%.3f ms", i, ms);
                printLine(buf);
            }
        } else {
            last_error = rtt.error();
            if (cfg.global.json) {
                printLine(JsonLine()
                              .field("type", "timeout")
                              .field("seq", static_cast<std::uint64_t>(i))
                              .field("error", rtt.error().message())
                              .str());
            } else {
                std::fprintf(stderr, "seq=%ld %s\n", i, rtt.error().message().c_str());
            }
        }
        // Pause between pings, still answering the server (nextEvent reads and PONGs).
        const auto until = Clock::now() + cfg.interval;
        while (i < cfg.count && !g_interrupted && Clock::now() < until) {
            (void)c.nextEvent(std::chrono::duration_cast<milliseconds>(until - Clock::now()));
        }
    }
    const std::size_t received = stats.count();
    const double loss = sent == 0
                            ? 0
                            : 100.0 * static_cast<double>(sent - static_cast<long>(received)) /
                                  static_cast<double>(sent);
    if (cfg.global.json) {
        printLine(JsonLine()
                      .field("type", "ping_summary")
                      .field("sent", static_cast<std::uint64_t>(sent))
                      .field("received", static_cast<std::uint64_t>(received))
                      .field("min_ms", stats.min())
                      .field("avg_ms", stats.average())
                      .field("p99_ms", stats.percentile(99))
                      .field("max_ms", stats.max())
                      .str());
    } else {
        std::printf("--- %s ping statistics ---\n", c.endpoint().c_str());
        std::printf("%ld sent, %zu received, %.0f%% lost\n", sent, received, loss);
        if (received > 0) {
            std::printf("rtt min/avg/p99/max = %.3f/%.3f/%.3f/%.3f ms\n", stats.min(),
                        stats.average(), stats.percentile(99), stats.max());
        }
        std::fflush(stdout);
    }
    if (received == static_cast<std::size_t>(sent)) {
        return kExitOk;
    }
    if (received == 0 && last_error) {
        return exitCodeFor(*last_error) == kExitFailed ? kExitTimeout : exitCodeFor(*last_error);
    }
    return kExitFailed;
}

int runUsers(const CliConfig& cfg) {
    client::Client c(clientOptions(cfg.global));
    if (auto rc = registerClient(c, cfg, sessionName(cfg.global))) {
        return *rc;
    }
    LogoutGuard logout_guard(c);
    auto users = c.listUsers(cfg.args.empty() ? std::string() : cfg.args[0]);
    if (!users) {
        printError("users", users.error());
        return exitCodeFor(users.error());
    }
    std::sort(users->begin(), users->end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
    for (const auto& u : *users) {
        printLine(cfg.global.json ? formatUserJson(u) : formatUserHuman(u));
    }
    (void)c.logout();
    return kExitOk;
}

}  // namespace

int runCommand(const CliConfig& cfg) {
    switch (cfg.command) {
        case Command::Send:
            return runSend(cfg);
        case Command::Agent:
            return runAgent(cfg);
        case Command::Image:
            return runImage(cfg);
        case Command::Listen:
            return runListen(cfg);
        case Command::Pipe:
            return runPipe(cfg);
        case Command::Health:
            return runHealth(cfg);
        case Command::Ping:
            return runPing(cfg);
        case Command::Users:
            return runUsers(cfg);
        case Command::Auto:
        case Command::Chat:
            break;  // main() runs the chat (interactive.h)
    }
    return kExitUsage;
}

}  // namespace tundra::cli
