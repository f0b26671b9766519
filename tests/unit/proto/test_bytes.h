// SPDX-License-Identifier: Apache-2.0
// Hex helpers for the codec tests: expected frames are written as hex text so that a failure
// prints both sides byte by byte.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "tundra/codec.h"

namespace tundra::test {

/// "01 00 0a" -> {0x01, 0x00, 0x0a}. Spaces are ignored; anything else that is not hex throws.
inline Bytes hexBytes(std::string_view hex) {
    Bytes out;
    int high = -1;
    for (char c : hex) {
        if (c == ' ' || c == '\n') {
            continue;
        }
        int v = -1;
        if (c >= '0' && c <= '9') {
            v = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            v = c - 'a' + 10;
        } else if (c >= 'A' && c <= 'F') {
            v = c - 'A' + 10;
        } else {
            throw std::invalid_argument("bad hex digit");
        }
        if (high < 0) {
            high = v;
        } else {
            out.push_back(static_cast<std::uint8_t>((high << 4) | v));
            high = -1;
        }
    }
    if (high >= 0) {
        throw std::invalid_argument("odd number of hex digits");
    }
    return out;
}

/// {0x01, 0x0a} -> "01 0a".
inline std::string toHex(ByteSpan bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        if (i > 0) {
            out.push_back(' ');
        }
        out.push_back(kDigits[bytes[i] >> 4]);
        out.push_back(kDigits[bytes[i] & 0x0F]);
    }
    return out;
}

/// Normalises hex text so it compares equal to toHex() of the same bytes.
inline std::string hex(std::string_view text) { return toHex(hexBytes(text)); }

inline ByteSpan span(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace tundra::test
