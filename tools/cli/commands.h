// SPDX-License-Identifier: Apache-2.0
// tundra-cli one-shot subcommands and pipe mode: each takes the parsed configuration and
// returns the exit code. Results go to stdout (flushed per line, so pipes see them at once),
// status and errors to stderr as "tundra-cli: ...". The interactive chat is interactive.h.
#pragma once

#include "cli/args.h"

namespace tundra::cli {

/// Runs a non-interactive command: send, agent, image, listen, pipe, health, ping, users.
/// Chat and Auto are not commands here (main() resolves Auto and runs the chat through
/// runInteractive()): they return kExitUsage.
int runCommand(const CliConfig& cfg);

}  // namespace tundra::cli
