// SPDX-License-Identifier: Apache-2.0
// Logging setup: spdlog to stderr with syslog priority prefixes ("<6>") so journald keeps levels.
#pragma once

#include <spdlog/spdlog.h>

#include <optional>
#include <string_view>

namespace tundra::common {

/// Parses "trace|debug|info|warn|error|critical|off".
std::optional<spdlog::level::level_enum> parseLogLevel(std::string_view name);
/// Installs the default stderr logger at `level`.
void setupLogging(spdlog::level::level_enum level);

}  // namespace tundra::common
