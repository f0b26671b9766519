// SPDX-License-Identifier: Apache-2.0
// The TOML configuration file (tundra.conf(5)): one flat table whose keys mirror the flags.
// Loads into a Config and reports every problem as "FILE:LINE: message"; never throws.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "server/config.h"

namespace tundra::server {

/// Reads the TOML file at `path` and applies its keys on top of `config`. On any problem
/// (unreadable file, TOML syntax error, unknown key, wrong type, out-of-range value) returns
/// false, leaves `config` untouched and sets `error` to one "FILE:LINE: message" line per
/// problem, in line order. Matches server::ConfigFileLoader, so it can be passed to parseArgs.
bool loadConfigFile(const std::string& path, Config& config, std::string& error);

/// The same, for a document already in memory; `source_name` stands for FILE in messages.
bool loadConfigString(std::string_view text, const std::string& source_name, Config& config,
                      std::string& error);

/// Every key the file accepts, in documentation order (for tests and tooling).
std::vector<std::string_view> configFileKeys();

/// Names of the settings that differ between `old` and `fresh` but only take effect after a
/// restart (the listeners: bind, port, admin; and output_cap_bytes, fixed by the TcpServer at
/// construction), in a fixed order. Everything else is applied by a SIGHUP reload.
std::vector<std::string> restartRequiredChanges(const Config& old, const Config& fresh);

/// Splits "ADDR:PORT" or "[V6ADDR]:PORT" into a numeric IP literal and a port (0 = any).
/// False when the form is wrong, the address is not an IPv4/IPv6 literal or the port is not
/// 0-65535.
bool parseHostPort(std::string_view text, std::string& host, std::uint16_t& port);

}  // namespace tundra::server
