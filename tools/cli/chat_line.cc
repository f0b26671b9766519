// SPDX-License-Identifier: Apache-2.0
// Interactive prompt line parsing.
#include "cli/chat_line.h"

#include "cli/args.h"
#include "tundra/codec.h"

namespace tundra::cli {

namespace {

bool isSpace(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
    while (!s.empty() && (isSpace(s.front()) || s.front() == '\r' || s.front() == '\n')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (isSpace(s.back()) || s.back() == '\r' || s.back() == '\n')) {
        s.remove_suffix(1);
    }
    return s;
}

// Splits off the first word; `rest` keeps its inner spacing.
std::string_view nextWord(std::string_view& rest) {
    while (!rest.empty() && isSpace(rest.front())) {
        rest.remove_prefix(1);
    }
    std::size_t end = 0;
    while (end < rest.size() && !isSpace(rest[end])) {
        ++end;
    }
    std::string_view word = rest.substr(0, end);
    rest.remove_prefix(end);
    while (!rest.empty() && isSpace(rest.front())) {
        rest.remove_prefix(1);
    }
    return word;
}

ChatLine invalid(std::string message) {
    ChatLine c;
    c.kind = ChatLine::Kind::Invalid;
    c.error = std::move(message);
    return c;
}

}  // namespace

ChatLine parseChatLine(std::string_view raw) {
    std::string_view line = raw;
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) {
        line.remove_suffix(1);
    }
    ChatLine c;
    if (trim(line).empty()) {
        return c;
    }
    if (line.front() != '/') {
        c.kind = ChatLine::Kind::Broadcast;
        c.text = std::string(line);
        return c;
    }
    if (line.starts_with("//")) {
        c.kind = ChatLine::Kind::Broadcast;
        c.text = std::string(line.substr(1));
        return c;
    }
    std::string_view rest = trim(line.substr(1));
    std::string_view cmd = nextWord(rest);

    if (cmd == "msg" || cmd == "m" || cmd == "tell") {
        std::string_view name = nextWord(rest);
        if (name.empty() || rest.empty()) {
            return invalid("usage: /msg NAME TEXT");
        }
        if (!isValidName(name)) {
            return invalid("'" + std::string(name) + "' is not a valid name");
        }
        c.kind = ChatLine::Kind::Direct;
        c.to = std::string(name);
        c.text = std::string(rest);
        return c;
    }
    if (cmd == "agent") {
        std::string_view name = nextWord(rest);
        std::string_view command = nextWord(rest);
        if (name.empty() || command.empty()) {
            return invalid("usage: /agent NAME|* COMMAND [ARGS]");
        }
        if (!parseRecipient(name, c.to)) {
            return invalid("'" + std::string(name) + "' is not a valid name (or * for all agents)");
        }
        c.kind = ChatLine::Kind::Agent;
        c.command = std::string(command);
        c.args = std::string(rest);
        return c;
    }
    if (cmd == "image" || cmd == "img") {
        std::string_view name = nextWord(rest);
        std::string_view file = nextWord(rest);
        std::string_view mime = nextWord(rest);
        if (name.empty() || file.empty() || !rest.empty()) {
            return invalid("usage: /image NAME|* FILE [MIME]");
        }
        if (!parseRecipient(name, c.to)) {
            return invalid("'" + std::string(name) + "' is not a valid name (or * for everyone)");
        }
        c.kind = ChatLine::Kind::Image;
        c.file = std::string(file);
        c.mime = std::string(mime);
        return c;
    }
    if (cmd == "users" || cmd == "who") {
        std::string_view prefix = nextWord(rest);
        if (!rest.empty()) {
            return invalid("usage: /users [PREFIX]");
        }
        c.kind = ChatLine::Kind::Users;
        c.prefix = std::string(prefix);
        return c;
    }
    auto noArgs = [&](ChatLine::Kind kind, const char* usage) {
        if (!rest.empty()) {
            return invalid(std::string("usage: ") + usage);
        }
        ChatLine out;
        out.kind = kind;
        return out;
    };
    if (cmd == "health") {
        return noArgs(ChatLine::Kind::Health, "/health");
    }
    if (cmd == "ping") {
        return noArgs(ChatLine::Kind::Ping, "/ping");
    }
    if (cmd == "help" || cmd == "?") {
        return noArgs(ChatLine::Kind::Help, "/help");
    }
    if (cmd == "quit" || cmd == "exit" || cmd == "q") {
        return noArgs(ChatLine::Kind::Quit, "/quit");
    }
    return invalid("unknown command /" + std::string(cmd) + " (type /help)");
}

const char* chatHelp() {
    return "  TEXT                        send TEXT to everyone\n"
           "  /msg NAME TEXT              direct message\n"
           "  /agent NAME|* CMD [ARGS]    agent command (* = all agents)\n"
           "  /image NAME|* FILE [MIME]   send an image file\n"
           "  /users [PREFIX]             list users\n"
           "  /health                     server health summary\n"
           "  /ping                       round-trip time\n"
           "  /quit                       log out and leave (Ctrl-D too)\n"
           "  //TEXT                      send TEXT that starts with /\n";
}

}  // namespace tundra::cli
