// SPDX-License-Identifier: Apache-2.0
// Remembers recent delivery ids so a replay after a reconnect is passed to the caller once, and
// notices when a new session brings a new id sequence (a server restarted with its clock behind).
#pragma once

#include <cstddef>
#include <cstdint>
#include <set>

namespace tundra::client {

/// The last `capacity` accepted ids, plus a floor: every id at or below the floor counts as
/// seen (the caller's saved last_id, or ids evicted from the window). Within one server process
/// ids only grow, so an id older than the whole window is a duplicate too.
///
/// That assumption breaks across a server restart whose wall clock stepped back: the new
/// process issues ids below everything seen before. So after newSession() (a WELCOME that did
/// not resume the session) the next live delivery (not a replay: a restarted server has nothing
/// to replay) decides: an id remembered exactly is a duplicate; an unseen id at or below
/// highest() starts a new id sequence (the window forgets the old one, floor included); an id
/// above highest() shows the ids still grow, and the floor is trusted again. Replays are
/// always judged by the window and the floor (the server replays only what follows last_id).
class DedupeWindow {
public:
    explicit DedupeWindow(std::size_t capacity = 4096) : capacity_(capacity == 0 ? 1 : capacity) {}

    /// True the first time an id is offered; false for repeats and ids at or below the floor
    /// (while the floor is trusted). `live` is false for replays (flag REPLAY).
    bool accept(std::uint64_t id, bool live = true);
    /// Treats every id <= `id` as seen.
    void raiseFloor(std::uint64_t id);
    /// A session that is not a resume began: the server may be a new process whose ids restart
    /// lower. The next live id decides (see the class comment).
    void newSession() { anchored_ = false; }
    /// Highest id seen (or the floor) in the current id sequence, 0 if none.
    [[nodiscard]] std::uint64_t highest() const { return highest_; }
    [[nodiscard]] std::size_t size() const { return ids_.size(); }
    /// Ids refused by accept() so far.
    [[nodiscard]] std::uint64_t duplicates() const { return duplicates_; }
    /// Times a new id sequence replaced the old one (see newSession()).
    [[nodiscard]] std::uint64_t resets() const { return resets_; }

private:
    std::size_t capacity_;
    std::uint64_t floor_ = 0;
    std::uint64_t highest_ = 0;
    std::set<std::uint64_t> ids_;
    bool anchored_ = true;  // false after newSession() until ids are seen to keep growing
    std::uint64_t duplicates_ = 0;
    std::uint64_t resets_ = 0;
};

}  // namespace tundra::client
