// SPDX-License-Identifier: Apache-2.0
// Random (version 4) session UUIDs from libuuid.
#pragma once

#include "tundra/protocol.h"

namespace tundra::common {

/// A fresh RFC 4122 version 4 UUID.
Uuid newSessionId();

}  // namespace tundra::common
