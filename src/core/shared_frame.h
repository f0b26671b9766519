// SPDX-License-Identifier: Apache-2.0
// SharedFrame: an encoded frame shared by every connection queue, window, offline buffer and
// store batch that holds it (a broadcast is encoded once), in one allocation
// (common::SharedBytes). Internal to the server side; the client library never shares frames.
#pragma once

#include <cstdint>

#include "common/shared_bytes.h"
#include "tundra/codec.h"

namespace tundra {

using SharedFrame = common::SharedBytes;

namespace core {

/// The frame in a shared buffer (a copy of `bytes`; never null, also when empty).
inline SharedFrame share(ByteSpan bytes) { return SharedFrame::copyOf(bytes); }

/// A copy of the encoded `frame` with `flag_bits` OR-ed into its header's flags byte (e.g.
/// flags::kReplay on a stored delivery sent again). The original is never patched: stored
/// frames are shared between recipients. Shorter than 2 bytes (no flags byte): copied as is.
inline SharedFrame withFlags(ByteSpan frame, std::uint8_t flag_bits) {
    std::uint8_t* at = nullptr;
    SharedFrame copy = SharedFrame::allocate(frame.size(), at);
    if (!frame.empty()) {
        std::memcpy(at, frame.data(), frame.size());
    }
    if (frame.size() > 1) {
        at[1] = static_cast<std::uint8_t>(at[1] | flag_bits);
    }
    return copy;
}

}  // namespace core
}  // namespace tundra
