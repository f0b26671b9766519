// SPDX-License-Identifier: Apache-2.0
// JsonWriter implementation: comma placement and number formatting; strings go through the
// protocol's appendJsonString.
#include "core/json_writer.h"

#include <fmt/format.h>

#include <cmath>
#include <iterator>

#include "tundra/codec.h"

namespace tundra::core {

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

void JsonWriter::writeString(std::string_view s) { appendJsonString(out_, s); }

}  // namespace tundra::core
