// SPDX-License-Identifier: Apache-2.0
// Remembers recent delivery ids so a replay after a reconnect is passed to the caller once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <set>

namespace tundra::client {

/// The last `capacity` accepted ids, plus a floor: every id at or below the floor counts as
/// seen (the caller's saved last_id, or ids evicted from the window). Server ids only grow,
/// so an id older than the whole window is a duplicate too.
class DedupeWindow {
public:
    explicit DedupeWindow(std::size_t capacity = 4096) : capacity_(capacity == 0 ? 1 : capacity) {}

    /// True the first time an id is offered; false for repeats and ids at or below the floor.
    bool accept(std::uint64_t id);
    /// Treats every id <= `id` as seen.
    void raiseFloor(std::uint64_t id);
    /// Highest id seen (or the floor), 0 if none.
    [[nodiscard]] std::uint64_t highest() const { return highest_; }
    [[nodiscard]] std::size_t size() const { return ids_.size(); }

private:
    std::size_t capacity_;
    std::uint64_t floor_ = 0;
    std::uint64_t highest_ = 0;
    std::set<std::uint64_t> ids_;
};

}  // namespace tundra::client
