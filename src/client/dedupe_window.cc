// SPDX-License-Identifier: Apache-2.0
// Recent-id window for delivery deduplication.
#include "client/dedupe_window.h"

#include <algorithm>

namespace tundra::client {

bool DedupeWindow::accept(std::uint64_t id) {
    if (id <= floor_ || !ids_.insert(id).second) {
        return false;
    }
    highest_ = std::max(highest_, id);
    if (ids_.size() > capacity_) {
        floor_ = *ids_.begin();
        ids_.erase(ids_.begin());
    }
    return true;
}

void DedupeWindow::raiseFloor(std::uint64_t id) {
    if (id <= floor_) {
        return;
    }
    floor_ = id;
    ids_.erase(ids_.begin(), ids_.upper_bound(id));
    highest_ = std::max(highest_, id);
}

}  // namespace tundra::client
