// SPDX-License-Identifier: Apache-2.0
// How tundra-cli prints things: one human line or one JSON object per event, user and ACK
// lines, the health summary. Pure string building (no I/O), so the formats are unit-tested.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tundra/client.h"

namespace tundra::cli {

/// JSON as tundra-cli reads it: objects keep their members in document order.
using Json = nlohmann::ordered_json;

/// Parses one JSON text (nlohmann-json, strict RFC 8259); nullopt if it is not valid JSON or
/// nests deeper than 64 levels (HEALTH_RESULT comes from the network).
std::optional<Json> parseJson(std::string_view text);
/// Member lookup by dotted path ("sessions.online"); nullptr if absent or not an object.
const Json* findPath(const Json& root, std::string_view path);

/// Builds one JSON object on one line. Strings are escaped; bytes that are not valid UTF-8
/// become U+FFFD so the output is always valid JSON.
class JsonLine {
public:
    JsonLine& field(std::string_view key, std::string_view value);
    JsonLine& field(std::string_view key, const char* value) {
        return field(key, std::string_view(value));
    }
    JsonLine& field(std::string_view key, std::uint64_t value);
    JsonLine& field(std::string_view key, std::uint32_t value) {
        return field(key, static_cast<std::uint64_t>(value));
    }
    JsonLine& field(std::string_view key, bool value);
    JsonLine& field(std::string_view key, double value);
    /// `raw` must already be JSON.
    JsonLine& rawField(std::string_view key, std::string_view raw);
    /// The object, without a trailing newline.
    [[nodiscard]] std::string str() const { return body_ + "}"; }

private:
    void key(std::string_view k);
    std::string body_ = "{";
};

/// `s` as a quoted JSON string (tundra::appendJsonString: DEL escaped, invalid UTF-8 as U+FFFD).
std::string jsonQuote(std::string_view s);
/// Standard base64 with padding.
std::string base64(std::string_view bytes);
/// Text safe for a terminal: control characters (escape sequences!) and invalid UTF-8 shown
/// as \xNN, newlines as \n; tab kept.
std::string sanitizeForTerminal(std::string_view s);
/// "HH:MM:SS" in local time.
std::string clockTime(std::uint64_t time_ms);

/// What --save-images did with an image delivery: the file written, or why there is none.
struct SavedImage {
    std::string path;   ///< set when the image was written
    std::string error;  ///< set when it could not be
};

/// True for a client::Delivery.
bool isDelivery(const client::Event& e);
/// One line (no newline) describing an event for people. With `saved` (an image delivery
/// under --save-images) the line ends with "saved to PATH" or "(not saved)".
std::string formatHuman(const client::Event& e, const SavedImage* saved = nullptr);
/// One JSON object (no newline) describing an event. With `saved`, a "saved" field holds the
/// path, or a "save_error" field says why the image was not written.
std::string formatJson(const client::Event& e, const SavedImage* saved = nullptr);

std::string formatAckHuman(const client::Ack& a, std::string_view to);
std::string formatAckJson(const client::Ack& a);
std::string formatUserHuman(const client::UserInfo& u);
std::string formatUserJson(const client::UserInfo& u);

/// Lower-case names used in JSON and tables.
const char* kindName(ClientKind k);
const char* stateName(UserState s);
const char* systemEventName(SystemEvent e);

/// A multi-line summary of a HEALTH_RESULT object (each line ends with '\n').
std::string formatHealthSummary(const Json& health, std::string_view endpoint);

}  // namespace tundra::cli
