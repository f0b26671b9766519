// SPDX-License-Identifier: Apache-2.0
// Recent-id window for delivery deduplication.
#include "client/dedupe_window.h"

#include <algorithm>

namespace tundra::client {

bool DedupeWindow::accept(std::uint64_t id, bool live) {
    if (ids_.count(id) != 0) {
        ++duplicates_;  // really seen: it is still remembered
        return false;
    }
    if (!anchored_ && live) {
        if (id <= highest_) {
            // Unseen, yet not above what the old session saw: ids started again lower (a
            // restarted server whose clock stepped back). Follow the new sequence.
            ids_.clear();
            floor_ = 0;
            highest_ = 0;
            ++resets_;
        }
        anchored_ = true;
    } else if (id <= floor_) {
        ++duplicates_;
        return false;
    }
    ids_.insert(id);
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
