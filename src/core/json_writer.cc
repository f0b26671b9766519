// SPDX-License-Identifier: Apache-2.0
// JsonWriter implementation: comma placement, string escaping and number formatting.
#include "core/json_writer.h"

#include <fmt/format.h>

#include <cmath>
#include <iterator>

#include "tundra/codec.h"

namespace tundra::core {

namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 if the bytes there are not one.
std::size_t utf8SequenceLength(std::string_view s, std::size_t i) {
    for (std::size_t n = 2; n <= 4 && i + n <= s.size(); ++n) {
        if (isValidUtf8(s.substr(i, n))) {
            return n;
        }
    }
    return 0;
}

}  // namespace

void JsonWriter::separate() {
    if (!out_.empty()) {
        char last = out_.back();
        if (last != '{' && last != '[' && last != ':') {
            out_.push_back(',');
        }
    }
}

JsonWriter& JsonWriter::beginObject() {
    separate();
    out_.push_back('{');
    return *this;
}

JsonWriter& JsonWriter::endObject() {
    out_.push_back('}');
    return *this;
}

JsonWriter& JsonWriter::key(std::string_view k) {
    separate();
    writeString(k);
    out_.push_back(':');
    return *this;
}

JsonWriter& JsonWriter::value(std::string_view s) {
    separate();
    writeString(s);
    return *this;
}

JsonWriter& JsonWriter::value(std::uint64_t n) {
    separate();
    fmt::format_to(std::back_inserter(out_), "{}", n);
    return *this;
}

JsonWriter& JsonWriter::value(std::int64_t n) {
    separate();
    fmt::format_to(std::back_inserter(out_), "{}", n);
    return *this;
}

JsonWriter& JsonWriter::value(double d) {
    if (!std::isfinite(d)) {
        return null();
    }
    separate();
    // Fixed notation: JSON has no "inf", and three decimals are plenty for milliseconds.
    fmt::format_to(std::back_inserter(out_), "{:.3f}", d);
    return *this;
}

JsonWriter& JsonWriter::value(std::optional<double> d) { return d ? value(*d) : null(); }

JsonWriter& JsonWriter::null() {
    separate();
    out_ += "null";
    return *this;
}

void JsonWriter::writeString(std::string_view s) {
    out_.push_back('"');
    for (std::size_t i = 0; i < s.size();) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            std::size_t n = utf8SequenceLength(s, i);
            if (n == 0) {
                out_ += "\\ufffd";
                ++i;
            } else {
                out_.append(s.substr(i, n));
                i += n;
            }
            continue;
        }
        switch (c) {
            case '"':
                out_ += "\\\"";
                break;
            case '\\':
                out_ += "\\\\";
                break;
            case '\n':
                out_ += "\\n";
                break;
            case '\r':
                out_ += "\\r";
                break;
            case '\t':
                out_ += "\\t";
                break;
            case '\b':
                out_ += "\\b";
                break;
            case '\f':
                out_ += "\\f";
                break;
            default:
                if (c < 0x20) {
                    fmt::format_to(std::back_inserter(out_), "\\u{:04x}", c);
                } else {
                    out_.push_back(static_cast<char>(c));
                }
        }
        ++i;
    }
    out_.push_back('"');
}

}  // namespace tundra::core
