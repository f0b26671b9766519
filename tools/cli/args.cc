// SPDX-License-Identifier: Apache-2.0
// tundra-cli argument parsing and help texts.
#include "cli/args.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "tundra/codec.h"

namespace tundra::cli {

namespace {

struct CommandInfo {
    Command command;
    const char* name;
};

constexpr CommandInfo kCommands[] = {
    {Command::Chat, "chat"},     {Command::Pipe, "pipe"},   {Command::Send, "send"},
    {Command::Agent, "agent"},   {Command::Image, "image"}, {Command::Listen, "listen"},
    {Command::Health, "health"}, {Command::Ping, "ping"},   {Command::Users, "users"},
};

std::optional<Command> commandFromName(std::string_view name) {
    for (const auto& c : kCommands) {
        if (name == c.name) {
            return c.command;
        }
    }
    return std::nullopt;
}

bool parseUnsigned(std::string_view text, std::uint64_t max, std::uint64_t& out) {
    if (text.empty()) {
        return false;
    }
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && end == text.data() + text.size() && out <= max;
}

// Seconds as a decimal number ("1", "0.25") within [min_s, max_s].
bool parseSeconds(const std::string& text, double min_s, double max_s,
                  std::chrono::milliseconds& out) {
    if (text.empty() || text.find_first_not_of("0123456789.") != std::string::npos) {
        return false;
    }
    char* end = nullptr;
    double v = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size() || !std::isfinite(v) || v < min_s || v > max_s) {
        return false;
    }
    out = std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(v * 1000.0)));
    return true;
}

std::string tryHelp(Command c) {
    if (c == Command::Auto) {
        return " (try 'tundra-cli --help')";
    }
    return std::string(" (try 'tundra-cli ") + commandName(c) + " --help')";
}

bool allows(Command c, std::initializer_list<Command> list) {
    for (Command x : list) {
        if (x == c) {
            return true;
        }
    }
    return false;
}

const char* kNameRule = "1-32 characters of A-Z a-z 0-9 _ . -";

}  // namespace

const char* commandName(Command c) {
    for (const auto& info : kCommands) {
        if (info.command == c) {
            return info.name;
        }
    }
    return "";
}

ParseOutcome parseArgs(const std::vector<std::string>& args) {
    CliConfig cfg;
    bool have_command = false;
    bool options_done = false;
    bool help = false;
    bool force_pipe = false;

    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (options_done || arg.size() < 2 || arg[0] != '-') {
            if (!have_command) {
                auto c = commandFromName(arg);
                if (!c) {
                    return UsageError{"unknown command '" + arg + "'" + tryHelp(Command::Auto)};
                }
                cfg.command = *c;
                have_command = true;
            } else {
                cfg.args.push_back(arg);
            }
            continue;
        }
        if (arg == "--") {
            options_done = true;
            continue;
        }
        std::string name = arg;
        std::optional<std::string> inline_value;
        if (auto eq = arg.find('='); arg.starts_with("--") && eq != std::string::npos) {
            name = arg.substr(0, eq);
            inline_value = arg.substr(eq + 1);
        }
        auto value = [&]() -> std::optional<std::string> {
            if (inline_value) {
                return inline_value;
            }
            if (i + 1 < args.size()) {
                return args[++i];
            }
            return std::nullopt;
        };
        auto missing = [&] {
            return UsageError{"option '" + name + "' needs a value" + tryHelp(cfg.command)};
        };
        auto flag = [&](bool& target) -> std::optional<UsageError> {
            if (inline_value) {
                return UsageError{"option '" + name + "' takes no value" + tryHelp(cfg.command)};
            }
            target = true;
            return std::nullopt;
        };

        // ---- global options ---------------------------------------------------------------
        if (name == "-h" || name == "--help") {
            help = true;
            continue;
        }
        if (name == "--version") {
            return VersionRequest{};
        }
        if (name == "--host") {
            auto v = value();
            if (!v) {
                return missing();
            }
            if (v->empty()) {
                return UsageError{"--host: empty host name"};
            }
            cfg.global.host = *v;
            continue;
        }
        if (name == "--port" || name == "-p") {
            auto v = value();
            if (!v) {
                return missing();
            }
            std::uint64_t port = 0;
            if (!parseUnsigned(*v, 65535, port) || port == 0) {
                return UsageError{"--port: '" + *v + "' is not a port number (1-65535)"};
            }
            cfg.global.port = static_cast<std::uint16_t>(port);
            continue;
        }
        if (name == "--user" || name == "-u") {
            auto v = value();
            if (!v) {
                return missing();
            }
            if (!isValidName(*v)) {
                return UsageError{"--user: '" + *v + "' is not a valid name (" + kNameRule + ")"};
            }
            cfg.global.user = *v;
            continue;
        }
        if (name == "--token") {
            auto v = value();
            if (!v) {
                return missing();
            }
            cfg.global.token = *v;
            continue;
        }
        if (name == "--timeout") {
            auto v = value();
            if (!v) {
                return missing();
            }
            if (!parseSeconds(*v, 0.001, 86400, cfg.global.timeout)) {
                return UsageError{"--timeout: '" + *v +
                                  "' is not a number of seconds (0.001 to 86400)"};
            }
            continue;
        }
        std::string* path_option = nullptr;
        if (name == "--ca") {
            path_option = &cfg.global.ca_file;
        } else if (name == "--cert") {
            path_option = &cfg.global.cert_file;
        } else if (name == "--key") {
            path_option = &cfg.global.key_file;
        }
        if (path_option != nullptr) {
            auto v = value();
            if (!v) {
                return missing();
            }
            if (v->empty()) {
                return UsageError{name + ": empty file name"};
            }
            *path_option = *v;
            cfg.global.tls = true;  // naming a CA or a certificate means TLS
            continue;
        }
        bool* global_flag = nullptr;
        if (name == "--agent") {
            global_flag = &cfg.global.agent;
        } else if (name == "--json") {
            global_flag = &cfg.global.json;
        } else if (name == "--quiet" || name == "-q") {
            global_flag = &cfg.global.quiet;
        } else if (name == "--no-reconnect") {
            global_flag = &cfg.global.no_reconnect;
        } else if (name == "--plain") {
            global_flag = &cfg.global.plain;
        } else if (name == "--pipe") {
            global_flag = &force_pipe;
        } else if (name == "--tls") {
            global_flag = &cfg.global.tls;
        } else if (name == "--insecure") {
            global_flag = &cfg.global.insecure;
        }
        if (global_flag != nullptr) {
            if (auto e = flag(*global_flag)) {
                return *e;
            }
            continue;
        }

        // ---- subcommand options -----------------------------------------------------------
        const Command c = cfg.command;
        if (name == "--to" && allows(c, {Command::Auto, Command::Send, Command::Agent,
                                         Command::Image, Command::Pipe})) {
            auto v = value();
            if (!v) {
                return missing();
            }
            if (!parseRecipient(*v, cfg.to)) {
                return UsageError{"--to: '" + *v + "' is not a valid name (" + kNameRule +
                                  ", or * for everyone)"};
            }
            continue;
        }
        if (name == "--no-ack" && allows(c, {Command::Auto, Command::Send, Command::Pipe})) {
            if (auto e = flag(cfg.no_ack)) {
                return *e;
            }
            continue;
        }
        if (name == "--reply-to" && c == Command::Agent) {
            auto v = value();
            if (!v) {
                return missing();
            }
            if (!parseUnsigned(*v, UINT64_MAX, cfg.reply_to)) {
                return UsageError{"--reply-to: '" + *v + "' is not a message id"};
            }
            continue;
        }
        if (name == "--wait" && c == Command::Agent) {
            if (auto e = flag(cfg.wait_reply)) {
                return *e;
            }
            continue;
        }
        if (name == "--mime" && c == Command::Image) {
            auto v = value();
            if (!v) {
                return missing();
            }
            if (!v->starts_with("image/") || v->size() == 6) {
                return UsageError{"--mime: '" + *v + "' is not an image type (image/...)"};
            }
            cfg.mime = *v;
            continue;
        }
        if ((name == "--count" || name == "-c") && allows(c, {Command::Listen, Command::Ping})) {
            auto v = value();
            if (!v) {
                return missing();
            }
            std::uint64_t n = 0;
            const std::uint64_t min = c == Command::Ping ? 1 : 0;
            if (!parseUnsigned(*v, 100000000, n) || n < min) {
                return UsageError{"--count: '" + *v + "' is not a count (" + std::to_string(min) +
                                  " or more)"};
            }
            cfg.count = static_cast<long>(n);
            continue;
        }
        if (name == "--duration" && c == Command::Listen) {
            auto v = value();
            if (!v) {
                return missing();
            }
            std::chrono::milliseconds d{};
            if (!parseSeconds(*v, 0.001, 31536000, d)) {
                return UsageError{"--duration: '" + *v + "' is not a number of seconds"};
            }
            cfg.duration = d;
            continue;
        }
        if ((name == "--interval" || name == "-i") && c == Command::Ping) {
            auto v = value();
            if (!v) {
                return missing();
            }
            if (!parseSeconds(*v, 0, 3600, cfg.interval)) {
                return UsageError{"--interval: '" + *v +
                                  "' is not a number of seconds (0 to 3600)"};
            }
            continue;
        }
        if (name == "--events" && allows(c, {Command::Auto, Command::Listen, Command::Pipe})) {
            if (auto e = flag(cfg.events)) {
                return *e;
            }
            continue;
        }
        if (name == "--save-images" && allows(c, {Command::Auto, Command::Chat, Command::Listen})) {
            auto v = value();
            if (!v) {
                return missing();
            }
            if (v->empty()) {
                return UsageError{"--save-images: empty directory name"};
            }
            cfg.save_images = *v;
            continue;
        }
        if (c == Command::Auto) {
            return UsageError{"unknown option '" + name + "'" + tryHelp(c)};
        }
        return UsageError{"unknown option '" + name + "' for '" + commandName(c) + "'" +
                          tryHelp(c)};
    }

    if (help) {
        return HelpRequest{cfg.command};
    }
    if (force_pipe) {
        if (cfg.command != Command::Auto && cfg.command != Command::Pipe) {
            return UsageError{std::string("--pipe cannot be combined with '") +
                              commandName(cfg.command) + "'"};
        }
        cfg.command = Command::Pipe;
    }
    if (cfg.command == Command::Pipe && !cfg.save_images.empty()) {
        return UsageError{"--save-images works in listen and interactive mode, not in pipe mode" +
                          tryHelp(cfg.command)};
    }

    auto unexpected = [&](std::size_t first) {
        return UsageError{"unexpected argument '" + cfg.args[first] + "' for '" +
                          commandName(cfg.command) + "'" + tryHelp(cfg.command)};
    };
    switch (cfg.command) {
        case Command::Agent:
            if (cfg.args.empty()) {
                return UsageError{"agent: missing COMMAND" + tryHelp(cfg.command)};
            }
            break;
        case Command::Image:
            if (cfg.args.empty()) {
                return UsageError{"image: missing FILE" + tryHelp(cfg.command)};
            }
            if (cfg.args.size() > 1) {
                return unexpected(1);
            }
            break;
        case Command::Users:
            if (cfg.args.size() > 1) {
                return unexpected(1);
            }
            break;
        case Command::Send:
            break;
        case Command::Auto:
        case Command::Chat:
        case Command::Pipe:
        case Command::Listen:
        case Command::Health:
        case Command::Ping:
            if (!cfg.args.empty()) {
                return unexpected(0);
            }
            break;
    }
    if (cfg.count < 0) {
        cfg.count = cfg.command == Command::Ping ? 10 : 0;
    }
    return cfg;
}

bool parseRecipient(std::string_view value, std::string& out) {
    if (value.empty() || value == "*") {
        out.clear();
        return true;
    }
    if (!isValidName(value)) {
        return false;
    }
    out = std::string(value);
    return true;
}

std::string generatedName(std::uint64_t random) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "cli-%06x", static_cast<unsigned>(random & 0xFFFFFFU));
    return buf;
}

// ---- help --------------------------------------------------------------------------------------

namespace {

constexpr const char* kGlobalOptions = R"(Options (before or after the command):
  --host HOST       server address (default 127.0.0.1)
  --port, -p PORT   server port (default 4242)
  --user, -u NAME   register as NAME (default: a generated name, cli-XXXXXX)
  --agent           register as an agent rather than a user
  --token TOKEN     registration token, when the server requires one
  --timeout SECS    connect timeout and wait for each answer (default 5)
  --json            machine output: one JSON object per line on stdout
  --quiet, -q       no status lines on stderr
  --no-reconnect    give up when the connection breaks (default: reconnect and resume)
  --tls             connect with TLS (to tundrad's --tls-port); the server certificate is
                    checked against the system CAs and the --host name
  --ca FILE         CA bundle (PEM) the server certificate must chain to (implies --tls)
  --insecure        accept any server certificate (self-signed test servers only)
  --cert FILE       client certificate (PEM) for servers that require one (implies --tls)
  --key FILE        its private key (default: in the --cert file)
  -h, --help        this help; 'tundra-cli COMMAND --help' for a command
  --version         print the version
)";

constexpr const char* kExitCodes = R"(Exit status:
  0  success
  1  the server refused the request (ERROR reply), health is not ok, pings were lost,
     or a received image could not be written (listen --save-images)
  2  bad arguments, or a --save-images directory that is missing or not writable
  3  cannot connect to the server, or the connection was lost for good
  4  timed out waiting for an answer (or for --count messages within --duration)
)";

}  // namespace

std::string helpText(Command c) {
    std::string text;
    switch (c) {
        case Command::Auto:
            text = R"(Usage: tundra-cli [OPTIONS] [COMMAND] [ARGS...]

Client for the Tundra chat server. Without a command: an interactive chat when standard input
is a terminal, pipe mode (each input line is one message) otherwise.

Commands:
  chat                          interactive chat with line editing and /commands
  send [--to NAME] TEXT...      send a message, wait for the server's ACK
  agent [--to NAME] CMD [ARGS]  send an agent command (--wait for the reply)
  image [--to NAME] FILE        send an image
  listen [--count N]            print what arrives until interrupted
  pipe [--to NAME]              send each line of stdin, print what arrives
  health [--json]               server health summary; exit 1 unless healthy
  ping [--count N]              round-trip times: min/avg/p99/max
  users [PREFIX]                list known users and their state

)";
            text += kGlobalOptions;
            text += "  --plain           interactive mode without line editing\n";
            text += "  --pipe            pipe mode even when stdin is a terminal\n";
            text +=
                "  --save-images DIR write received images to DIR (listen, interactive mode)\n\n";
            text += kExitCodes;
            text += R"(
Examples:
  tundra-cli --user alice                         chat as alice
  tundra-cli health && echo up                    probe for scripts and systemd
  tundra-cli send --to bob "build finished"       one message, exit 1 if refused
  tundra-cli --json --user bob listen | jq .text  follow messages as JSON
  tail -f app.log | tundra-cli --user logbot pipe --to ops
)";
            return text;
        case Command::Chat:
            text = R"(Usage: tundra-cli [OPTIONS] chat [--save-images DIR]

Interactive chat. Typed text goes to everyone; incoming messages, presence and errors are
printed above the prompt. Commands:
  /msg NAME TEXT              direct message
  /agent NAME|* CMD [ARGS]    agent command (* = all agents)
  /image NAME|* FILE [MIME]   send an image file
  /users [PREFIX]             list users
  /health                     server health summary
  /ping                       round-trip time
  /help                       this list
  /quit                       log out and leave (also Ctrl-D)
Start a line with // to send text that begins with /. Replayed messages are marked (replay).

  --save-images DIR   write each received image to DIR as ID-SENDER.EXT, never replacing a
                      file; the line shows the path, a failed write is reported on stderr
                      and the chat goes on. Exit 2 if DIR is not a writable directory

)";
            break;
        case Command::Send:
            text = R"(Usage: tundra-cli [OPTIONS] send [--to NAME] [--no-ack] [TEXT... | -]

Sends one message (to everyone without --to) and waits for the server's ACK, then prints the
message id and how many recipients got it. Without TEXT, or with -, the message is read from
standard input (one trailing newline removed).
  --to NAME    recipient (default: everyone)
  --no-ack     do not wait for the ACK (errors are then not reported)

)";
            break;
        case Command::Agent:
            text =
                R"(Usage: tundra-cli [OPTIONS] agent [--to NAME] [--reply-to ID] [--wait] CMD [ARGS...]

Sends an agent command (to every agent without --to) and waits for the server's ACK.
  --to NAME       the agent (default: all agents)
  --reply-to ID   mark this as the reply to command ID
  --wait          then wait up to --timeout for the reply and print it (exit 4 if none)

)";
            break;
        case Command::Image:
            text = R"(Usage: tundra-cli [OPTIONS] image [--to NAME] [--mime TYPE] FILE

Sends an image file and waits for the server's ACK. The type comes from the file extension
(png, jpg, jpeg, gif, webp, bmp, svg) unless --mime is given.
  --to NAME      recipient (default: everyone)
  --mime TYPE    image/... type

)";
            break;
        case Command::Listen:
            text = R"(Usage: tundra-cli [OPTIONS] listen [--count N] [--duration SECS] [--events]
                                [--save-images DIR]

Registers and prints every delivery (messages, agent commands, images) on stdout until
interrupted (Ctrl-C exits 0). Presence, errors and reconnects go to stderr.
  --count N         stop after N deliveries (0 = never, the default)
  --duration SECS   stop after this long; exit 4 if --count was not reached
  --events          print presence, errors and reconnects on stdout too
  --save-images DIR write each received image to DIR as ID-SENDER.EXT (never replacing a
                    file; the line shows the path). Exit 2 if DIR is not a writable
                    directory; an image that cannot be written is reported on stderr,
                    listening goes on, and the exit status becomes 1

)";
            break;
        case Command::Pipe:
            text = R"(Usage: tundra-cli [OPTIONS] pipe [--to NAME] [--no-ack] [--events]

Each line of standard input is one message (empty lines are skipped); what arrives meanwhile
is printed on stdout. Ends at end of input. Exit 1 if the server refused any line.
  --to NAME    recipient (default: everyone)
  --no-ack     do not wait for each ACK (faster; refusals are still printed)
  --events     print presence, errors and reconnects on stdout too

)";
            break;
        case Command::Health:
            text = R"(Usage: tundra-cli [OPTIONS] health

Asks the server for its health and prints a summary (--json: the server's JSON object, one
line). With --user it registers first, so the answer includes this connection's figures.
Exit 0 when the status is "ok", 1 when it is not, 3 when the server is unreachable, 4 when
it does not answer within --timeout.

)";
            break;
        case Command::Ping:
            text = R"(Usage: tundra-cli [OPTIONS] ping [--count N] [--interval SECS]

Measures PING/PONG round trips (no registration needed) and prints min/avg/p99/max.
  --count N          pings to send (default 10)
  --interval SECS    pause between pings (default 0.2)
Exit 1 if some pings went unanswered, 4 if all did.

)";
            break;
        case Command::Users:
            text = R"(Usage: tundra-cli [OPTIONS] users [PREFIX]

Lists known users whose name starts with PREFIX: name, kind (user/agent) and state
(online, detached, offline).

)";
            break;
    }
    text += kGlobalOptions;
    text += "\n";
    text += kExitCodes;
    return text;
}

}  // namespace tundra::cli
