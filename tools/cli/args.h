// SPDX-License-Identifier: Apache-2.0
// Command-line parsing for tundra-cli: global options, the subcommand and its options, help
// texts and exit codes. Pure: no I/O, so every rule is unit-tested.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace tundra::cli {

/// Exit codes, documented in --help and docs/CLIENT.md.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;       ///< server refused (ERROR), not healthy, lost pings
inline constexpr int kExitUsage = 2;        ///< bad arguments
inline constexpr int kExitUnreachable = 3;  ///< cannot connect, or the connection was lost
inline constexpr int kExitTimeout = 4;      ///< no answer (or not enough messages) in time

enum class Command {
    Auto,  ///< none given: interactive on a terminal, pipe mode otherwise
    Chat,
    Pipe,
    Send,
    Agent,
    Image,
    Listen,
    Health,
    Ping,
    Users,
};

/// Name as typed on the command line ("send"), "" for Auto.
const char* commandName(Command c);

struct GlobalOptions {
    std::string host = "127.0.0.1";
    std::uint16_t port = 4242;
    std::string user;    ///< empty: a generated cli-XXXXXX name where a session is needed
    bool agent = false;  ///< register as an agent instead of a user
    std::string token;
    std::chrono::milliseconds timeout{5000};
    bool json = false;
    bool quiet = false;
    bool no_reconnect = false;
    bool plain = false;     ///< interactive mode without readline
    bool tls = false;       ///< TLS to the server's TLS port
    std::string ca_file;    ///< --ca: CA bundle the server certificate must chain to
    bool insecure = false;  ///< --insecure: accept any server certificate (testing only)
    std::string cert_file;  ///< --cert: client certificate (mTLS)
    std::string key_file;   ///< --key: its private key
};

struct CliConfig {
    GlobalOptions global;
    Command command = Command::Auto;
    std::string to;              ///< send, agent, image, pipe: empty = broadcast
    bool no_ack = false;         ///< send, pipe
    std::uint64_t reply_to = 0;  ///< agent
    bool wait_reply = false;     ///< agent
    std::string mime;            ///< image
    long count = -1;             ///< listen (0 = forever), ping; -1 = the command's default
    std::optional<std::chrono::milliseconds> duration;  ///< listen: stop after this long
    std::chrono::milliseconds interval{200};            ///< ping
    bool events = false;            ///< listen, pipe: also print system/connection events on stdout
    std::string save_images;        ///< listen, chat: write received images here ("" = don't)
    std::vector<std::string> args;  ///< positional arguments after the subcommand
};

/// What parseArgs() decided: run a command, print help (for a command, or general when
/// `command` is Auto), print the version, or a usage error (exit 2).
struct HelpRequest {
    Command command = Command::Auto;
};
struct VersionRequest {};
struct UsageError {
    std::string message;
};
using ParseOutcome = std::variant<CliConfig, HelpRequest, VersionRequest, UsageError>;

/// Parses argv[1..]. Global options may come before or after the subcommand; `--opt=value`
/// and `--opt value` both work; `--` ends option parsing.
ParseOutcome parseArgs(const std::vector<std::string>& args);

/// The help text: general when `c` is Auto, else for that subcommand.
std::string helpText(Command c);

/// A recipient as typed (--to, or NAME|* at the prompt): "*" or "" is everyone (`out` cleared),
/// else it must be a valid name. False if it is not.
bool parseRecipient(std::string_view value, std::string& out);

/// "cli-" and six random lowercase hex digits.
std::string generatedName(std::uint64_t random);

}  // namespace tundra::cli
