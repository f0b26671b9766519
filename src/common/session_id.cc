// SPDX-License-Identifier: Apache-2.0
#include "common/session_id.h"

#include <uuid/uuid.h>

namespace tundra::common {

std::array<std::uint8_t, 16> newSessionId() {
    uuid_t raw;
    uuid_generate_random(raw);
    std::array<std::uint8_t, 16> id{};
    for (std::size_t i = 0; i < id.size(); ++i) {
        id[i] = raw[i];
    }
    return id;
}

}  // namespace tundra::common
