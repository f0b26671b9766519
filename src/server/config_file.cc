// SPDX-License-Identifier: Apache-2.0
// tundra.conf loading with toml++: one table of known keys, each with its type and range, so
// that every error names the file, the line and the key. toml++ exceptions stay inside this file.
#include "server/config_file.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>

#include "common/logging.h"

namespace tundra::server {

namespace {

// Smallest output cap and buffer budgets: room for two deliveries of the largest size (a
// 65534-byte payload plus header and routing fields), so a maximum-size message can always be
// queued and buffered.
constexpr std::int64_t kMinBufferBytes = 131072;

struct Problem {
    std::uint32_t line;
    std::string message;
};

// A key's value, checked and applied to the Config; returns "" or the message (without the
// "FILE:LINE: key: " prefix).
using Apply = std::function<std::string(const toml::node&, Config&)>;

struct Key {
    std::string_view name;
    Apply apply;
};

const char* typeName(const toml::node& node) {
    switch (node.type()) {
        case toml::node_type::string:
            return "a string";
        case toml::node_type::integer:
            return "an integer";
        case toml::node_type::floating_point:
            return "a floating-point number";
        case toml::node_type::boolean:
            return "a boolean";
        case toml::node_type::table:
            return "a table";
        case toml::node_type::array:
            return "an array";
        case toml::node_type::date:
        case toml::node_type::time:
        case toml::node_type::date_time:
            return "a date/time";
        case toml::node_type::none:
            break;
    }
    return "nothing";
}

std::string wrongType(const toml::node& node, std::string_view expected) {
    return fmt::format("expected {}, got {}", expected, typeName(node));
}

// An integer in [lo, hi], stored into `out` (any integer type wide enough for hi).
template <typename T>
Apply integer(std::int64_t lo, std::int64_t hi, T Config::*member) {
    return [=](const toml::node& node, Config& c) -> std::string {
        const auto* v = node.as_integer();
        if (v == nullptr) {
            return wrongType(node, "an integer");
        }
        const std::int64_t n = v->get();
        if (n < lo || n > hi) {
            return fmt::format("{} is out of range ({} to {})", n, lo, hi);
        }
        c.*member = static_cast<T>(n);
        return "";
    };
}

template <typename T>
Apply coreInteger(std::int64_t lo, std::int64_t hi, T core::CoreConfig::*member) {
    return [=](const toml::node& node, Config& c) -> std::string {
        const auto* v = node.as_integer();
        if (v == nullptr) {
            return wrongType(node, "an integer");
        }
        const std::int64_t n = v->get();
        if (n < lo || n > hi) {
            return fmt::format("{} is out of range ({} to {})", n, lo, hi);
        }
        c.core.*member = static_cast<T>(n);
        return "";
    };
}

// Seconds as an integer or a float (0.5) in [lo, hi], stored as milliseconds.
Apply seconds(double lo, double hi, std::function<std::int64_t&(Config&)> target) {
    return [=](const toml::node& node, Config& c) -> std::string {
        double v = 0;
        if (const auto* i = node.as_integer()) {
            v = static_cast<double>(i->get());
        } else if (const auto* f = node.as_floating_point()) {
            v = f->get();
        } else {
            return wrongType(node, "a number of seconds");
        }
        if (!std::isfinite(v) || v < lo || v > hi) {
            return fmt::format("{} is out of range ({} to {} seconds)", v, lo, hi);
        }
        target(c) = static_cast<std::int64_t>(std::llround(v * 1000.0));
        return "";
    };
}

bool isIpLiteral(const std::string& host) {
    unsigned char buf[sizeof(in6_addr)];
    return ::inet_pton(AF_INET, host.c_str(), buf) == 1 ||
           ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

const std::vector<Key>& keys() {
    using core::CoreConfig;
    static const std::vector<Key> kKeys = {
        {"bind",
         [](const toml::node& node, Config& c) -> std::string {
             const auto* v = node.as_string();
             if (v == nullptr) {
                 return wrongType(node, "a string");
             }
             if (!isIpLiteral(v->get())) {
                 return fmt::format("'{}' is not an IPv4 or IPv6 address", v->get());
             }
             c.bind = v->get();
             return "";
         }},
        {"port", integer<std::uint16_t>(0, 65535, &Config::port)},
        {"max_clients", coreInteger<std::size_t>(1, 1'000'000, &CoreConfig::max_clients)},
        {"max_payload", coreInteger<std::size_t>(64, 65534, &CoreConfig::max_payload)},
        {"session_timeout",
         seconds(0.1, 65535, [](Config& c) -> std::int64_t& { return c.core.session_timeout_ms; })},
        {"ping_interval",
         seconds(0.1, 65535, [](Config& c) -> std::int64_t& { return c.core.ping_interval_ms; })},
        {"max_buffered", coreInteger<std::size_t>(1, 100'000, &CoreConfig::max_buffered)},
        {"presence",
         [](const toml::node& node, Config& c) -> std::string {
             const auto* v = node.as_boolean();
             if (v == nullptr) {
                 return wrongType(node, "true or false");
             }
             c.core.presence_events = v->get();
             return "";
         }},
        {"log_level",
         [](const toml::node& node, Config& c) -> std::string {
             const auto* v = node.as_string();
             if (v == nullptr) {
                 return wrongType(node, "a string");
             }
             auto level = common::parseLogLevel(v->get());
             if (!level) {
                 return fmt::format(
                     "'{}' is not a log level (trace, debug, info, warn, error, critical, off)",
                     v->get());
             }
             c.log_level = *level;
             return "";
         }},
        {"admin",
         [](const toml::node& node, Config& c) -> std::string {
             const auto* v = node.as_string();
             if (v == nullptr) {
                 return wrongType(node, "a string");
             }
             std::string host;
             std::uint16_t port = 0;
             if (!v->get().empty() && !parseHostPort(v->get(), host, port)) {
                 return fmt::format(
                     "'{}' is not ADDR:PORT with a numeric address (e.g. \"127.0.0.1:9090\", "
                     "\"[::1]:9090\"; \"\" = off)",
                     v->get());
             }
             c.admin = v->get();
             return "";
         }},
        {"output_cap_bytes",
         integer<std::size_t>(kMinBufferBytes, std::int64_t{1} << 32, &Config::output_cap_bytes)},
        {"user_buffer_bytes",
         coreInteger<std::size_t>(kMinBufferBytes, std::int64_t{1} << 40, &CoreConfig::user_buffer_bytes)},
        {"total_buffer_bytes",
         coreInteger<std::size_t>(kMinBufferBytes, std::int64_t{1} << 40, &CoreConfig::total_buffer_bytes)},
        {"max_users", coreInteger<std::size_t>(1, 100'000'000, &CoreConfig::max_users)},
        {"rate_messages_per_s", coreInteger<std::uint64_t>(0, 10'000'000, &CoreConfig::rate_messages_per_s)},
        {"rate_messages_burst", coreInteger<std::uint64_t>(1, 100'000'000, &CoreConfig::rate_messages_burst)},
        {"rate_bytes_per_s", coreInteger<std::uint64_t>(0, std::int64_t{1} << 40, &CoreConfig::rate_bytes_per_s)},
        {"rate_bytes_burst", coreInteger<std::uint64_t>(65541, std::int64_t{1} << 40, &CoreConfig::rate_bytes_burst)},
        {"max_bad_frames", coreInteger<std::uint32_t>(0, 1'000'000, &CoreConfig::max_bad_frames)},
        {"shutdown_retry_after", integer<std::uint16_t>(0, 65535, &Config::shutdown_retry_after_s)},
        {"drain_timeout",
         seconds(0, 3600, [](Config& c) -> std::int64_t& { return c.drain_timeout_ms; })},
    };
    return kKeys;
}

// Levenshtein distance, for "did you mean" on a misspelt key.
std::size_t editDistance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) {
        row[j] = j;
    }
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diag = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diag = up;
        }
    }
    return row[b.size()];
}

std::string unknownKey(std::string_view name) {
    std::string_view best;
    std::size_t best_distance = 3;  // suggest only close matches
    for (const auto& k : keys()) {
        if (auto d = editDistance(name, k.name); d < best_distance) {
            best = k.name;
            best_distance = d;
        }
    }
    if (best.empty()) {
        return fmt::format("unknown key '{}'", name);
    }
    return fmt::format("unknown key '{}' (did you mean '{}'?)", name, best);
}

std::uint32_t lineOf(const toml::source_region& region) { return region.begin.line; }

}  // namespace

std::vector<std::string_view> configFileKeys() {
    std::vector<std::string_view> names;
    for (const auto& k : keys()) {
        names.push_back(k.name);
    }
    return names;
}

bool parseHostPort(std::string_view text, std::string& host, std::uint16_t& port) {
    std::string_view addr;
    std::string_view port_text;
    if (text.starts_with('[')) {
        const auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            return false;
        }
        addr = text.substr(1, close - 1);
        port_text = text.substr(close + 2);
        if (addr.find(':') == std::string_view::npos) {
            return false;  // brackets are for IPv6 only
        }
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            return false;
        }
        addr = text.substr(0, colon);
        port_text = text.substr(colon + 1);
        if (addr.find(':') != std::string_view::npos) {
            return false;  // an IPv6 address needs brackets
        }
    }
    unsigned value = 0;
    auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (port_text.empty() || ec != std::errc() || ptr != port_text.data() + port_text.size() ||
        value > 65535) {
        return false;
    }
    std::string candidate(addr);
    if (!isIpLiteral(candidate)) {
        return false;
    }
    host = std::move(candidate);
    port = static_cast<std::uint16_t>(value);
    return true;
}

bool loadConfigString(std::string_view text, const std::string& source_name, Config& config,
                      std::string& error) {
    toml::table table;
    try {
        table = toml::parse(text, source_name);
    } catch (const toml::parse_error& e) {
        error = fmt::format("{}:{}: syntax error: {}", source_name, lineOf(e.source()),
                            e.description());
        return false;
    }

    Config fresh = config;
    std::vector<Problem> problems;
    std::uint32_t user_budget_line = 0;   // where user_buffer_bytes was set, if it was
    std::uint32_t total_budget_line = 0;  // likewise total_buffer_bytes
    for (const auto& [key, node] : table) {
        const std::uint32_t line = lineOf(key.source());
        const auto it = std::find_if(keys().begin(), keys().end(),
                                     [&](const Key& k) { return k.name == key.str(); });
        if (it == keys().end()) {
            const char* hint = node.is_table() ? " (tundra.conf has no sections)" : "";
            problems.push_back({line, unknownKey(key.str()) + hint});
            continue;
        }
        if (auto message = it->apply(node, fresh); !message.empty()) {
            problems.push_back({line, fmt::format("{}: {}", key.str(), message)});
            continue;
        }
        if (key.str() == "user_buffer_bytes") {
            user_budget_line = line;
        } else if (key.str() == "total_buffer_bytes") {
            total_budget_line = line;
        }
    }
    if (problems.empty() && (user_budget_line != 0 || total_budget_line != 0) &&
        fresh.core.user_buffer_bytes > fresh.core.total_buffer_bytes) {
        problems.push_back(
            {user_budget_line != 0 ? user_budget_line : total_budget_line,
             fmt::format("user_buffer_bytes ({}) must not exceed total_buffer_bytes ({})",
                         fresh.core.user_buffer_bytes, fresh.core.total_buffer_bytes)});
    }
    if (!problems.empty()) {
        std::stable_sort(problems.begin(), problems.end(),
                         [](const Problem& a, const Problem& b) { return a.line < b.line; });
        error.clear();
        for (const auto& p : problems) {
            if (!error.empty()) {
                error += '\n';
            }
            error += fmt::format("{}:{}: {}", source_name, p.line, p.message);
        }
        return false;
    }
    config = std::move(fresh);
    return true;
}

bool loadConfigFile(const std::string& path, Config& config, std::string& error) {
    // A directory opens fine as a stream and reads as empty: refuse it explicitly.
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        error = fmt::format("{}: cannot read: {}", path, std::strerror(EISDIR));
        return false;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        error = fmt::format("{}: cannot open: {}", path, std::strerror(errno));
        return false;
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) {
        error = fmt::format("{}: cannot read: {}", path, std::strerror(errno));
        return false;
    }
    return loadConfigString(text.str(), path, config, error);
}

std::vector<std::string> restartRequiredChanges(const Config& old, const Config& fresh) {
    std::vector<std::string> changed;
    if (old.bind != fresh.bind) {
        changed.emplace_back("bind");
    }
    if (old.port != fresh.port) {
        changed.emplace_back("port");
    }
    if (old.admin != fresh.admin) {
        changed.emplace_back("admin");
    }
    if (old.output_cap_bytes != fresh.output_cap_bytes) {
        changed.emplace_back("output_cap_bytes");
    }
    return changed;
}

}  // namespace tundra::server
