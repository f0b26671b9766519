// SPDX-License-Identifier: Apache-2.0
// Parsing of what is typed at the interactive prompt: plain text (a broadcast) or a /command.
#pragma once

#include <string>
#include <string_view>

namespace tundra::cli {

struct ChatLine {
    enum class Kind {
        Empty,
        Broadcast,
        Direct,
        Agent,
        Image,
        Users,
        Health,
        Ping,
        Help,
        Quit,
        Invalid
    };
    Kind kind = Kind::Empty;
    std::string to;       ///< Direct, Agent, Image ("" = everyone)
    std::string text;     ///< Broadcast, Direct
    std::string command;  ///< Agent
    std::string args;     ///< Agent
    std::string file;     ///< Image
    std::string mime;     ///< Image (optional)
    std::string prefix;   ///< Users
    std::string error;    ///< Invalid: what to tell the user
};

/// Interprets one typed line. Text not starting with '/' is a broadcast (sent as typed);
/// "//x" sends "/x". Commands: /msg NAME TEXT, /agent NAME|* CMD [ARGS], /image NAME|* FILE
/// [MIME], /users [PREFIX], /health, /ping, /help, /quit (or /exit).
ChatLine parseChatLine(std::string_view line);

/// The /help text (lines end with '\n').
const char* chatHelp();

}  // namespace tundra::cli
