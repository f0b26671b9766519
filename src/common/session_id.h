// SPDX-License-Identifier: Apache-2.0
// Random (version 4) session UUIDs from libuuid. Returns the 16 raw bytes; the wire type
// (tundra::Uuid in tundra/protocol.h) is the same std::array, so common needs no proto header.
#pragma once

#include <array>
#include <cstdint>

namespace tundra::common {

/// A fresh RFC 4122 version 4 UUID, as its 16 bytes in wire order.
std::array<std::uint8_t, 16> newSessionId();

}  // namespace tundra::common
