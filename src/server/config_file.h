// SPDX-License-Identifier: Apache-2.0
// The TOML configuration file (tundra.conf(5)): one flat table of the keys in settings.h.
// Loads into a Config and reports every problem as "FILE:LINE: message"; never throws.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "server/config.h"
#include "server/settings.h"  // parseHostPort, restartRequiredChanges

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

}  // namespace tundra::server
