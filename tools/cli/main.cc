// SPDX-License-Identifier: Apache-2.0
// tundra-cli entry point: parse the command line, pick the mode, map failures to exit codes.
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/interactive.h"

#ifndef TUNDRA_VERSION
#define TUNDRA_VERSION "unknown"
#endif

int main(int argc, char** argv) {
    using namespace tundra::cli;
    try {
        std::vector<std::string> args(argv + 1, argv + argc);
        ParseOutcome outcome = parseArgs(args);
        if (const auto* help = std::get_if<HelpRequest>(&outcome)) {
            std::fputs(helpText(help->command).c_str(), stdout);
            return kExitOk;
        }
        if (std::holds_alternative<VersionRequest>(outcome)) {
            std::printf("tundra-cli %s (protocol 1)\n", TUNDRA_VERSION);
            return kExitOk;
        }
        if (const auto* err = std::get_if<UsageError>(&outcome)) {
            std::fprintf(stderr, "tundra-cli: %s\n", err->message.c_str());
            return kExitUsage;
        }
        CliConfig cfg = std::get<CliConfig>(outcome);
        if (cfg.command == Command::Auto) {
            cfg.command = ::isatty(STDIN_FILENO) == 1 ? Command::Chat : Command::Pipe;
            if (cfg.command == Command::Pipe && !cfg.save_images.empty()) {
                std::fprintf(stderr,
                             "tundra-cli: --save-images works in listen and interactive mode; "
                             "standard input is not a terminal, so this is pipe mode\n");
                return kExitUsage;
            }
        }
        if (cfg.command == Command::Chat) {
            return runInteractive(cfg);
        }
        return runCommand(cfg);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tundra-cli: %s\n", e.what());
        return kExitFailed;
    }
}
