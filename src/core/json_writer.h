// SPDX-License-Identifier: Apache-2.0
// JsonWriter: a minimal streaming JSON writer for HEALTH_RESULT (objects, strings, numbers,
// null). Internal to the core; it produces valid JSON for any input string.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace tundra::core {

// Callers nest beginObject()/endObject() and alternate key()/value inside objects; commas are
// inserted automatically. Strings are encoded by tundra::appendJsonString (RFC 8259 escapes,
// DEL as \u007f; bytes that are not valid UTF-8 come out as U+FFFD) so the result is always
// valid UTF-8. Non-finite doubles are written as null.
class JsonWriter {
public:
    JsonWriter& beginObject();
    JsonWriter& endObject();
    JsonWriter& key(std::string_view k);
    JsonWriter& value(std::string_view s);
    JsonWriter& value(const char* s) { return value(std::string_view(s)); }
    JsonWriter& value(std::uint64_t n);
    JsonWriter& value(std::int64_t n);
    JsonWriter& value(int n) { return value(static_cast<std::int64_t>(n)); }
    JsonWriter& value(double d);
    JsonWriter& value(std::optional<double> d);
    JsonWriter& null();

    [[nodiscard]] const std::string& str() const { return out_; }
    std::string take() { return std::move(out_); }

private:
    void separate();
    void writeString(std::string_view s);

    std::string out_;
};

}  // namespace tundra::core
