// SPDX-License-Identifier: Apache-2.0
// tundrad command-line flags: every setting's flag comes from the settings table (settings.h),
// checked there like the file's keys; --config, --check-config, --help and --version are ours.
#include "server/config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "server/settings.h"

namespace tundra::server {

namespace {

// "--name=value" -> ("--name", "value"); anything else -> (arg, nullopt).
std::pair<std::string_view, std::optional<std::string_view>> splitFlag(std::string_view arg) {
    if (auto eq = arg.find('='); eq != std::string_view::npos && arg.starts_with("--")) {
        return {arg.substr(0, eq), arg.substr(eq + 1)};
    }
    return {arg, std::nullopt};
}

bool isFileFlag(std::string_view name) { return name == "--config" || name == "--check-config"; }

std::string unknownOption(std::string_view arg, std::string_view name) {
    std::vector<std::string> names = {"--config", "--check-config", "--help", "--version"};
    for (const auto& s : settings()) {
        names.push_back(s.flag);
        if (s.type == SettingType::Bool) {
            names.push_back("--no-" + s.flag.substr(2));
        }
    }
    const std::string_view best =
        closestName(name, std::vector<std::string_view>(names.begin(), names.end()));
    if (best.empty()) {
        return fmt::format("unknown option '{}'", arg);
    }
    return fmt::format("unknown option '{}' (did you mean '{}'?)", arg, best);
}

}  // namespace

std::string usage() {
    std::string out =
        "Usage: tundrad [OPTIONS]\n"
        "       tundrad --check-data DIR              verify a data directory (exit 0 ok, 1 not)\n"
        "       tundrad backup --data-dir DIR FILE    copy the store, also while running\n"
        "The Tundra chat and agent-messaging server (protocol v1).\n\n"
        "Options (each also takes --option=VALUE; each setting is also a tundra.conf key):\n";
    std::vector<std::pair<std::string, std::string>> lines = {
        {"--config FILE", "read settings from a TOML file; flags override it"},
        {"--check-config FILE", "validate FILE and exit (0 valid, 2 invalid)"}};
    for (auto& line : settingsUsage()) {
        lines.push_back(std::move(line));
    }
    lines.emplace_back("--help", "show this help and exit");
    lines.emplace_back("--version", "print the version and exit");
    std::size_t width = 0;
    for (const auto& line : lines) {
        width = std::max(width, line.first.size());
    }
    for (const auto& [left, help] : lines) {
        out += fmt::format("  {:<{}}  {}\n", left, width, help);
    }
    out +=
        "\nOnce ready, tundrad logs 'listening on ADDR:PORT'. SIGTERM/SIGINT drain and exit 0.\n"
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
        auto [name, inline_value] = splitFlag(args[i]);
        if (!isFileFlag(name)) {
            continue;
        }
        if (inline_value) {
            result.config.config_file = std::string(*inline_value);
        } else if (i + 1 < args.size()) {
            result.config.config_file = args[++i];
        } else {
            return fail(fmt::format("{} needs a FILE argument", name));
        }
        if (result.config.config_file.empty()) {
            return fail(fmt::format("{} needs a FILE argument", name));
        }
        if (name == "--check-config") {
            result.action = ParsedArgs::Action::CheckConfig;
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
        const std::string_view arg = args[i];
        if (arg == "--help" || arg == "-h") {
            result.action = ParsedArgs::Action::Help;
            result.message = usage();
            return result;
        }
        if (arg == "--version") {
            result.action = ParsedArgs::Action::Version;
            return result;
        }
        auto [name, inline_value] = splitFlag(arg);
        if (isFileFlag(name)) {
            i += inline_value ? 0 : 1;
            continue;
        }
        if (name == "--print-settings") {  // hidden: generates the settings docs
            // Each branch a string_view: a mixed ternary would make a temporary std::string.
            std::string_view format;
            if (inline_value) {
                format = *inline_value;
            } else if (i + 1 < args.size()) {
                format = args[i + 1];
            }
            auto doc = renderSettingsDoc(format);
            if (!doc) {
                return fail(fmt::format("--print-settings: '{}' is not one of {}", format,
                                        fmt::join(settingsDocFormats(), ", ")));
            }
            result.action = ParsedArgs::Action::Help;
            result.message = std::move(*doc);
            return result;
        }
        bool negated = false;
        const Setting* setting = findSettingByFlag(name, negated);
        if (setting == nullptr) {
            return fail(unknownOption(arg, name));
        }
        std::string_view text;
        if (setting->type == SettingType::Bool) {
            if (negated && inline_value) {
                return fail(fmt::format("{} takes no value", name));
            }
            text = negated ? "false" : inline_value.value_or("true");
        } else if (inline_value) {
            text = *inline_value;
        } else if (i + 1 < args.size()) {
            text = args[++i];
        } else {
            return fail(fmt::format("{} needs a {} argument", name, flagArgName(*setting)));
        }
        SettingValue value;
        if (auto error = parseFlagValue(*setting, text, value); !error.empty()) {
            return fail(error);
        }
        setting->access.set(result.config, value);
    }
    if (auto bad = checkConsistency(result.config)) {
        return fail(bad->message);
    }
    return result;
}

}  // namespace tundra::server
