// SPDX-License-Identifier: Apache-2.0
// A small JSON reader for the server's HEALTH_RESULT (RFC 8259 values, depth-limited). It
// exists so `tundra-cli health` can summarise without a JSON library dependency.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tundra::cli {

/// A parsed JSON value. Objects keep their members in document order.
struct JsonValue {
    enum class Type { Null, Bool, Number, String, Array, Object };
    Type type = Type::Null;
    bool boolean = false;
    double number = 0;
    std::string string;
    std::vector<JsonValue> array;
    std::vector<std::pair<std::string, JsonValue>> object;

    /// Member lookup by dotted path ("sessions.online"); nullptr if absent or not an object.
    [[nodiscard]] const JsonValue* find(std::string_view path) const;
    [[nodiscard]] bool isNumber() const { return type == Type::Number; }
    [[nodiscard]] bool isString() const { return type == Type::String; }
    [[nodiscard]] bool isObject() const { return type == Type::Object; }
};

/// Parses one JSON text (surrounding whitespace allowed); nullopt if it is not valid JSON or
/// nests deeper than 64 levels.
std::optional<JsonValue> parseJson(std::string_view text);

}  // namespace tundra::cli
