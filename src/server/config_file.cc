// SPDX-License-Identifier: Apache-2.0
// tundra.conf loading with toml++: each key is looked up in the settings table (settings.h) and
// checked there, so that every error names the file, the line and the key. toml++ exceptions
// stay inside this file.
#include "server/config_file.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

namespace tundra::server {

namespace {

struct Problem {
    std::uint32_t line;
    std::string message;
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

// The TOML node as the setting's value type; "" or "expected X, got Y".
std::string toValue(const Setting& s, const toml::node& node, SettingValue& out) {
    const char* expected = "a string";
    switch (s.type) {
        case SettingType::Bool:
            if (const auto* v = node.as_boolean()) {
                out = v->get();
                return "";
            }
            expected = "true or false";
            break;
        case SettingType::Int:
        case SettingType::Port:
        case SettingType::Bytes:
        case SettingType::WholeSeconds:
            if (const auto* v = node.as_integer()) {
                out = v->get();
                return "";
            }
            expected = "an integer";
            break;
        case SettingType::Seconds:
            if (const auto* i = node.as_integer()) {
                out = static_cast<double>(i->get());
                return "";
            }
            if (const auto* f = node.as_floating_point()) {
                out = f->get();
                return "";
            }
            expected = "a number of seconds";
            break;
        case SettingType::LogLevel:
        case SettingType::Address:
        case SettingType::HostPort:
        case SettingType::Path:
            if (const auto* v = node.as_string()) {
                out = v->get();
                return "";
            }
            break;
    }
    return fmt::format("expected {}, got {}", expected, typeName(node));
}

std::string unknownKey(std::string_view name) {
    std::vector<std::string_view> keys;
    for (const auto& s : settings()) {
        keys.push_back(s.key);
    }
    const std::string_view best = closestName(name, keys);
    if (best.empty()) {
        return fmt::format("unknown key '{}'", name);
    }
    return fmt::format("unknown key '{}' (did you mean '{}'?)", name, best);
}

std::uint32_t lineOf(const toml::source_region& region) { return region.begin.line; }

}  // namespace

std::vector<std::string_view> configFileKeys() {
    std::vector<std::string_view> names;
    for (const auto& s : settings()) {
        names.push_back(s.key);
    }
    return names;
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
    std::map<std::string_view, std::uint32_t> lines;  // where each known key was set
    for (const auto& [key, node] : table) {
        const std::uint32_t line = lineOf(key.source());
        const Setting* setting = findSettingByKey(key.str());
        if (setting == nullptr) {
            const char* hint = node.is_table() ? " (tundra.conf has no sections)" : "";
            problems.push_back({line, unknownKey(key.str()) + hint});
            continue;
        }
        SettingValue value;
        std::string message = toValue(*setting, node, value);
        if (message.empty()) {
            message = checkSettingValue(*setting, value);
        }
        if (!message.empty()) {
            problems.push_back({line, fmt::format("{}: {}", key.str(), message)});
            continue;
        }
        setting->access.set(fresh, value);
        lines[setting->key] = line;
    }
    // A rule between keys is the file's problem only when the file set one of them.
    if (auto bad = checkConsistency(fresh); problems.empty() && bad) {
        for (auto key : bad->keys) {
            if (auto it = lines.find(key); it != lines.end()) {
                problems.push_back({it->second, bad->message});
                break;
            }
        }
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

}  // namespace tundra::server
