// SPDX-License-Identifier: Apache-2.0
// Server configuration: the Config struct (its defaults are the settings' defaults) and argv
// parsing. The settings themselves are listed once, in settings.h; a config file (TOML) layers
// under the flags: file values first, then flags override.
#pragma once

#include <spdlog/common.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/session_manager.h"

namespace tundra::server {

struct Config {
    std::string bind = "127.0.0.1";
    std::uint16_t port = 4242;
    core::CoreConfig core{};
    std::size_t output_cap_bytes = 8U << 20;  ///< slow-consumer cap per connection
    spdlog::level::level_enum log_level = spdlog::level::info;
    std::uint16_t shutdown_retry_after_s = 5;
    std::int64_t drain_timeout_ms = 5000;  ///< SIGTERM: give up flushing after this
    std::string admin;                     ///< "ADDR:PORT" admin HTTP listener, empty = off
    std::string config_file;               ///< path given with --config, if any
};

/// Result of parsing argv.
struct ParsedArgs {
    enum class Action { Run, Help, Version, CheckConfig, Error } action = Action::Run;
    Config config;
    std::string message;  ///< help text, or the error ("--port: 'abc' is not a number ...")
};

/// Loads a config file into `config`; false with `error` as "FILE:LINE: message".
using ConfigFileLoader =
    std::function<bool(const std::string& path, Config& config, std::string& error)>;

/// Parses tundrad's argv (without argv[0]). A --config/--check-config file is loaded first
/// through `load_file`, then the flags override it. Never throws; bad values give
/// Action::Error with a clear message.
ParsedArgs parseArgs(const std::vector<std::string>& args, const ConfigFileLoader& load_file = {});
/// The --help text.
std::string usage();

}  // namespace tundra::server
