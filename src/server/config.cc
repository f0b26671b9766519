// SPDX-License-Identifier: Apache-2.0
// tundrad command-line flags: one table, values validated with clear messages, never a throw.
#include "server/config.h"

#include <charconv>
#include <cmath>
#include <functional>
#include <string_view>

#include <fmt/format.h>

#include "common/logging.h"
#include "server/config_file.h"

namespace tundra::server {

namespace {

// Parses a whole decimal integer in [lo, hi].
bool parseInt(std::string_view text, std::int64_t lo, std::int64_t hi, std::int64_t& out) {
    std::int64_t v = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || ptr != text.data() + text.size() || v < lo || v > hi) {
        return false;
    }
    out = v;
    return true;
}

// Parses seconds (decimals allowed, e.g. "0.5") in [lo, hi] into milliseconds.
bool parseSeconds(std::string_view text, double lo, double hi, std::int64_t& out_ms) {
    double v = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || ptr != text.data() + text.size() || !std::isfinite(v) || v < lo ||
        v > hi) {
        return false;
    }
    out_ms = static_cast<std::int64_t>(std::llround(v * 1000.0));
    return true;
}

struct Flag {
    std::string_view name;
    std::string_view arg;  // empty: takes no value
    std::string_view help;
    // Applies the value; returns an error message or "" on success.
    std::function<std::string(Config&, std::string_view)> apply;
};

std::string rangeError(std::string_view flag, std::string_view value, std::string_view what) {
    return fmt::format("{}: '{}' is not {}", flag, value, what);
}

const std::vector<Flag>& flags() {
    static const std::vector<Flag> kFlags = {
        {"--bind", "ADDR", "address to listen on, IPv4 or IPv6 (default 127.0.0.1)",
         [](Config& c, std::string_view v) -> std::string {
             if (v.empty()) {
                 return "--bind: empty address";
             }
             c.bind = std::string(v);
             return "";
         }},
        {"--port", "N", "TCP port, 0 = let the OS choose (default 4242)",
         [](Config& c, std::string_view v) -> std::string {
             std::int64_t n = 0;
             if (!parseInt(v, 0, 65535, n)) {
                 return rangeError("--port", v, "a port number (0-65535)");
             }
             c.port = static_cast<std::uint16_t>(n);
             return "";
         }},
        {"--max-clients", "N", "most simultaneous connections; more get SERVER_FULL (default 1000)",
         [](Config& c, std::string_view v) -> std::string {
             std::int64_t n = 0;
             if (!parseInt(v, 1, 1'000'000, n)) {
                 return rangeError("--max-clients", v, "a number from 1 to 1000000");
             }
             c.core.max_clients = static_cast<std::size_t>(n);
             return "";
         }},
        {"--max-payload", "N", "largest payload a client may send, bytes (default 65534)",
         [](Config& c, std::string_view v) -> std::string {
             std::int64_t n = 0;
             if (!parseInt(v, 64, 65534, n)) {
                 return rangeError("--max-payload", v, "a number from 64 to 65534");
             }
             c.core.max_payload = static_cast<std::size_t>(n);
             return "";
         }},
        {"--session-timeout", "SECONDS", "how long a detached session can be resumed (default 120)",
         [](Config& c, std::string_view v) -> std::string {
             if (!parseSeconds(v, 0.1, 65535, c.core.session_timeout_ms)) {
                 return rangeError("--session-timeout", v, "a number of seconds from 0.1 to 65535");
             }
             return "";
         }},
        {"--ping-interval", "SECONDS", "silence before a PING; as long again means dead (default 30)",
         [](Config& c, std::string_view v) -> std::string {
             if (!parseSeconds(v, 0.1, 65535, c.core.ping_interval_ms)) {
                 return rangeError("--ping-interval", v, "a number of seconds from 0.1 to 65535");
             }
             return "";
         }},
        {"--max-buffered", "N", "offline messages kept per user (default 50)",
         [](Config& c, std::string_view v) -> std::string {
             std::int64_t n = 0;
             if (!parseInt(v, 1, 100'000, n)) {
                 return rangeError("--max-buffered", v, "a number from 1 to 100000");
             }
             c.core.max_buffered = static_cast<std::size_t>(n);
             return "";
         }},
        {"--output-cap", "BYTES", "queued output per connection before it is cut off (default 8388608)",
         [](Config& c, std::string_view v) -> std::string {
             std::int64_t n = 0;
             if (!parseInt(v, 131072, std::int64_t{1} << 32, n)) {
                 return rangeError("--output-cap", v, "a number of bytes from 131072 to 4294967296");
             }
             c.output_cap_bytes = static_cast<std::size_t>(n);
             return "";
         }},
        {"--max-users", "N", "users remembered with their buffers (default 100000)",
         [](Config& c, std::string_view v) -> std::string {
             std::int64_t n = 0;
             if (!parseInt(v, 1, 100'000'000, n)) {
                 return rangeError("--max-users", v, "a number from 1 to 100000000");
             }
             c.core.max_users = static_cast<std::size_t>(n);
             return "";
         }},
        {"--rate-messages-per-s", "N", "frames per second per connection, 0 = no limit (default 1000)",
         [](Config& c, std::string_view v) -> std::string {
             std::int64_t n = 0;
             if (!parseInt(v, 0, 10'000'000, n)) {
                 return rangeError("--rate-messages-per-s", v, "a number from 0 to 10000000");
             }
             c.core.rate_messages_per_s = static_cast<std::uint64_t>(n);
             return "";
         }},
        {"--rate-messages-burst", "N", "frames a connection may send at once (default 2000)",
         [](Config& c, std::string_view v) -> std::string {
             std::int64_t n = 0;
             if (!parseInt(v, 1, 100'000'000, n)) {
                 return rangeError("--rate-messages-burst", v, "a number from 1 to 100000000");
             }
             c.core.rate_messages_burst = static_cast<std::uint64_t>(n);
             return "";
         }},
        {"--rate-bytes-per-s", "BYTES", "bytes per second per connection, 0 = no limit (default 8388608)",
         [](Config& c, std::string_view v) -> std::string {
             std::int64_t n = 0;
             if (!parseInt(v, 0, std::int64_t{1} << 40, n)) {
                 return rangeError("--rate-bytes-per-s", v, "a number of bytes from 0 to 1099511627776");
             }
             c.core.rate_bytes_per_s = static_cast<std::uint64_t>(n);
             return "";
         }},
        {"--rate-bytes-burst", "BYTES", "bytes a connection may send at once (default 16777216)",
         [](Config& c, std::string_view v) -> std::string {
             std::int64_t n = 0;
             if (!parseInt(v, 65541, std::int64_t{1} << 40, n)) {
                 return rangeError("--rate-bytes-burst", v, "a number of bytes from 65541 to 1099511627776");
             }
             c.core.rate_bytes_burst = static_cast<std::uint64_t>(n);
             return "";
         }},
        {"--max-bad-frames", "N", "malformed frames before a connection is closed, 0 = never (default 16)",
         [](Config& c, std::string_view v) -> std::string {
             std::int64_t n = 0;
             if (!parseInt(v, 0, 1'000'000, n)) {
                 return rangeError("--max-bad-frames", v, "a number from 0 to 1000000");
             }
             c.core.max_bad_frames = static_cast<std::uint32_t>(n);
             return "";
         }},
        {"--no-presence", "", "do not send JOINED/LEFT presence events",
         [](Config& c, std::string_view) -> std::string {
             c.core.presence_events = false;
             return "";
         }},
        {"--log-level", "LEVEL", "trace, debug, info, warn, error, critical or off (default info)",
         [](Config& c, std::string_view v) -> std::string {
             auto level = common::parseLogLevel(v);
             if (!level) {
                 return rangeError("--log-level", v,
                                   "a log level (trace, debug, info, warn, error, critical, off)");
             }
             c.log_level = *level;
             return "";
         }},
        {"--admin", "ADDR:PORT", "admin HTTP listener (/healthz, /readyz, /metrics); off by default",
         [](Config& c, std::string_view v) -> std::string {
             std::string host;
             std::uint16_t port = 0;
             if (!parseHostPort(v, host, port)) {
                 return rangeError("--admin", v, "ADDR:PORT with a numeric IPv4 or [IPv6] address (e.g. 127.0.0.1:9090)");
             }
             c.admin = std::string(v);
             return "";
         }},
    };
    return kFlags;
}

}  // namespace

std::string usage() {
    std::string out =
        "Usage: tundrad [OPTIONS]\n"
        "The Tundra chat and agent-messaging server (protocol v1).\n\n"
        "Options:\n";
    auto line = [&](std::string_view name, std::string_view arg, std::string_view help) {
        std::string left = fmt::format("  {} {}", name, arg);
        out += fmt::format("{:<28}{}\n", left, help);
    };
    line("--config", "FILE", "read settings from a TOML file; flags override it");
    line("--check-config", "FILE", "validate FILE and exit (0 valid, 2 invalid)");
    for (const auto& f : flags()) {
        line(f.name, f.arg, f.help);
    }
    line("--help", "", "show this help and exit");
    line("--version", "", "print the version and exit");
    out += "\nOnce ready, tundrad logs 'listening on ADDR:PORT'. SIGTERM/SIGINT drain and exit 0.\n"
           "Exit codes: 0 clean exit, 1 runtime failure (e.g. cannot bind), 2 bad flags or config.\n";
    return out;
}

ParsedArgs parseArgs(const std::vector<std::string>& args, const ConfigFileLoader& load_file) {
    ParsedArgs result;
    auto fail = [&](std::string message) {
        result.action = ParsedArgs::Action::Error;
        result.message = std::move(message);
        return result;
    };

    // Pass 1: the config file, so that flags can override what it sets.
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (args[i] == "--config" || args[i] == "--check-config") {
            if (i + 1 >= args.size()) {
                return fail(fmt::format("{} needs a FILE argument", args[i]));
            }
            result.config.config_file = args[i + 1];
            if (args[i] == "--check-config") {
                result.action = ParsedArgs::Action::CheckConfig;
            }
            ++i;
        }
    }
    if (!result.config.config_file.empty()) {
        if (!load_file) {
            return fail("config files are not supported in this build");
        }
        std::string error;
        if (!load_file(result.config.config_file, result.config, error)) {
            return fail(error);
        }
    }

    // Pass 2: flags, in order.
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string_view arg = args[i];
        if (arg == "--help" || arg == "-h") {
            result.action = ParsedArgs::Action::Help;
            result.message = usage();
            return result;
        }
        if (arg == "--version") {
            result.action = ParsedArgs::Action::Version;
            return result;
        }
        if (arg == "--config" || arg == "--check-config") {
            ++i;
            continue;
        }
        std::string_view name = arg;
        std::optional<std::string_view> inline_value;
        if (auto eq = arg.find('='); eq != std::string_view::npos && arg.starts_with("--")) {
            name = arg.substr(0, eq);
            inline_value = arg.substr(eq + 1);
        }
        const Flag* flag = nullptr;
        for (const auto& f : flags()) {
            if (f.name == name) {
                flag = &f;
            }
        }
        if (flag == nullptr) {
            return fail(fmt::format("unknown option '{}'", arg));
        }
        std::string_view value;
        if (!flag->arg.empty()) {
            if (inline_value) {
                value = *inline_value;
            } else if (i + 1 < args.size()) {
                value = args[++i];
            } else {
                return fail(fmt::format("{} needs a {} argument", name, flag->arg));
            }
        } else if (inline_value) {
            return fail(fmt::format("{} takes no value", name));
        }
        if (auto error = flag->apply(result.config, value); !error.empty()) {
            return fail(error);
        }
    }
    if (result.config.core.ping_interval_ms > 65535'000 ||
        result.config.core.session_timeout_ms > 65535'000) {
        return fail("timeouts must fit 65535 seconds");
    }
    return result;
}

}  // namespace tundra::server
