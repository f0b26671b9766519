// SPDX-License-Identifier: Apache-2.0
// The one table of tundrad settings: key, flag, type, range, default, help, reloadability.
// Flags, tundra.conf, --help, the reload check and the settings docs are all built from it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "server/config.h"

namespace tundra::server {

/// How a value is written and checked. Adding a type means teaching settings.cc (text form,
/// checks, docs) and config_file.cc (TOML form) about it.
enum class SettingType {
    Bool,          ///< true/false; flags --key, --key=BOOL and --no-key
    Int,           ///< whole number in [min, max]
    Port,          ///< TCP port, 0-65535
    Bytes,         ///< whole number of bytes in [min, max]
    Seconds,       ///< seconds in [min, max], decimals allowed; stored as milliseconds
    WholeSeconds,  ///< whole seconds in [min, max]
    LogLevel,      ///< trace, debug, info, warn, error, critical, off
    Address,       ///< numeric IPv4 or IPv6 literal
    HostPort,      ///< "ADDR:PORT" / "[V6]:PORT" with a numeric address, or "" (off)
    Path,          ///< a file path, or "" (none); read when the server starts (or reloads)
};

/// A value as both front ends hand it over: Bool -> bool, Int/Port/Bytes/WholeSeconds ->
/// int64, Seconds -> double (seconds), LogLevel/Address/HostPort/Path -> string.
using SettingValue = std::variant<bool, std::int64_t, double, std::string>;

/// Where a setting lives in Config, as SettingValue (made by the helpers in settings.cc).
struct SettingAccess {
    std::function<SettingValue(const Config&)> get;
    std::function<void(Config&, const SettingValue&)> set;
};

/// One setting. The default is whatever Config{} holds.
struct Setting {
    std::string_view key;   ///< TOML key, snake_case
    std::string flag = {};  ///< "--kebab-case"; empty: "--" + key with '_' -> '-'
    SettingType type = SettingType::Int;
    double min = 0;            ///< range of the numeric types (inclusive)
    double max = 0;            ///< likewise
    bool reloadable = false;   ///< SIGHUP applies it; otherwise it "needs a restart"
    std::string_view group;    ///< tundra.conf(5) subsection
    std::string_view summary;  ///< one line: --help, OPERATIONS.md, tundrad(8)
    std::string_view details;  ///< tundra.conf(5), after the type and range
    SettingAccess access;
};

/// Every setting, in documentation order.
const std::vector<Setting>& settings();
const Setting* findSettingByKey(std::string_view key);
/// The setting a flag names: its own flag, or "--no-KEY" for a Bool (sets `negated`).
const Setting* findSettingByFlag(std::string_view flag, bool& negated);

/// Checks a value against the setting's type and range: "" when valid, else the problem as
/// tundra.conf reports it after "KEY: " (e.g. "70000 is out of range (0 to 65535)"). The one
/// verdict both the flags and the file use.
std::string checkSettingValue(const Setting& s, const SettingValue& value);

/// A flag's text -> value, through checkSettingValue. "" on success, else the flag message
/// ("--port: 'abc' is not a port number (0-65535)").
std::string parseFlagValue(const Setting& s, std::string_view text, SettingValue& out);

/// The placeholder in "--port N" ("" for Bool).
std::string_view flagArgName(const Setting& s);

/// A rule between settings that no single range expresses (user_buffer_bytes <= ...).
struct Inconsistency {
    std::vector<std::string_view> keys;  ///< the keys involved, the first one to blame first
    std::string message;
};
std::optional<Inconsistency> checkConsistency(const Config& config);

/// Keys of the settings that differ between `old` and `fresh` but only take effect after a
/// restart (reloadable = false), in table order.
std::vector<std::string> restartRequiredChanges(const Config& old, const Config& fresh);
/// Copies every restart-only setting from `running` into `fresh` (a reload keeps them).
void keepRestartSettings(const Config& running, Config& fresh);

/// One ("--flag ARG", "help (default X)") pair per setting, for --help.
std::vector<std::pair<std::string, std::string>> settingsUsage();
/// The generated docs: "markdown" (docs/OPERATIONS.md table), "man-keys" (tundra.conf(5)
/// KEYS), "man-flags" (tundrad(8) OPTIONS). nullopt for an unknown format.
std::optional<std::string> renderSettingsDoc(std::string_view format);
/// The formats renderSettingsDoc knows.
std::vector<std::string_view> settingsDocFormats();

/// The closest of `candidates` to `name` within a small edit distance, or "".
std::string_view closestName(std::string_view name,
                             const std::vector<std::string_view>& candidates);

/// Splits "ADDR:PORT" or "[V6ADDR]:PORT" into a numeric IP literal and a port (0 = any).
/// False when the form is wrong, the address is not an IPv4/IPv6 literal or the port is not
/// 0-65535.
bool parseHostPort(std::string_view text, std::string& host, std::uint16_t& port);

}  // namespace tundra::server
