// SPDX-License-Identifier: Apache-2.0
// tundra-cli interactive chat: readline (or a plain line fallback) with incoming events
// printed above the prompt.
#pragma once

#include "cli/args.h"

namespace tundra::cli {

/// The interactive chat; returns the exit code.
int runInteractive(const CliConfig& cfg);

}  // namespace tundra::cli
