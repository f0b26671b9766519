// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the tundra-cli modes, the one-shot commands (commands.h) and the interactive
// chat (interactive.h): interrupts, client options, exit codes, stdout/stderr lines,
// registering, image MIME types, --save-images and reading files. Neither mode includes the
// other; both include this.
#pragma once

#include <csignal>
#include <optional>
#include <string>
#include <string_view>

#include "cli/args.h"
#include "cli/image_saver.h"
#include "cli/output.h"
#include "tundra/client.h"

namespace tundra::cli {

/// Set by SIGINT/SIGTERM once installInterruptHandlers() ran.
extern volatile std::sig_atomic_t g_interrupted;
/// SIGINT and SIGTERM set g_interrupted and interrupt blocking calls (no SA_RESTART).
void installInterruptHandlers();

client::Options clientOptions(const GlobalOptions& g);
/// The exit code for a failure: 1 refused, 3 unreachable or lost, 4 timeout.
int exitCodeFor(const client::ClientError& e);
/// Prints "tundra-cli: CONTEXT: MESSAGE" (or without context) on stderr.
void printError(std::string_view context, const client::ClientError& e);
void printError(std::string_view message);
/// Writes one line on stdout and flushes.
void printLine(std::string_view line);

/// --user, or a generated name.
std::string sessionName(const GlobalOptions& g);
/// Registers `c` as sessionName(); on failure prints why and returns the exit code.
std::optional<int> registerClient(client::Client& c, const CliConfig& cfg, const std::string& name,
                                  client::Welcome* welcome = nullptr);

/// "image/png" for "x.png" (png, jpg, jpeg, gif, webp, bmp, svg; case-insensitive), else "".
std::string guessImageMime(std::string_view path);
/// Opens --save-images DIR (when given) into `saver` before anything else happens: on a missing
/// or unwritable directory prints why and returns kExitUsage.
std::optional<int> openImageSaver(const CliConfig& cfg, std::optional<ImageSaver>& saver);
/// Writes an image delivery with `saver` (--save-images): the path, or the error.
SavedImage saveImage(ImageSaver& saver, const client::Delivery& d);
/// "--save-images: cannot save image ID from NAME: WHY", safe for a terminal.
std::string saveFailureText(const client::Delivery& d, std::string_view error);
/// Reads a whole file; nullopt with `error` set on failure.
std::optional<std::string> readFile(const std::string& path, std::string& error);

}  // namespace tundra::cli
