// SPDX-License-Identifier: Apache-2.0
// The net effect of a run of batches (a journal segment, or several), for folding into the
// database in one pass: the last state of every entry, user and broadcast the run touched,
// plus the range deletions (window trims, deleted users, broadcast trims). Applying it gives
// the same content as applying the batches one by one (tests/unit/storage check this on
// random runs), but an entry stored and deleted within the run, the usual life of a message
// that reaches its user, never touches the database.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/store_batch.h"

namespace tundra::storage {

class Compaction {
public:
    /// `base_max_entry_id`: every entry already in the database has an id <= this, so a
    /// deleted entry above it needs no delete at all.
    explicit Compaction(std::uint64_t base_max_entry_id) : base_max_entry_id_(base_max_entry_id) {}

    /// Folds one batch in; a full batch replaces everything before it (`wipe`).
    void add(const core::StoreBatch& b);

    struct UserRow {
        ClientKind kind = ClientKind::User;
        Uuid session{};
        std::int64_t detached_wall_ms = 0;
        std::uint32_t dropped = 0;
        std::uint64_t bcast_since = 0;
    };
    struct Entry {
        bool present = true;  ///< false: delete it from the database
        bool written = false;
        SharedFrame frame;
    };
    struct Broadcast {
        std::string sender;
        bool agents_only = false;
        SharedFrame frame;
    };

    /// The database's content goes first.
    bool wipe = false;
    /// The last id reserve recorded (0 = none).
    std::uint64_t id_reserve = 0;
    /// Per user, the highest window trim (deletes its written entries with ids <= it).
    std::unordered_map<std::string, std::uint64_t> window_trims;
    /// Users deleted (their written entries with them), in the order seen.
    std::vector<std::string> deleted_users;
    /// The highest broadcast trim (0 = none).
    std::uint64_t broadcast_trim = 0;
    /// Applied after the range deletions above: per user, nullopt = delete the row.
    std::unordered_map<std::string, std::optional<UserRow>> users;
    std::unordered_map<std::string, std::map<std::uint64_t, Entry>> entries;
    std::map<std::uint64_t, Broadcast> broadcasts;

    [[nodiscard]] std::size_t batches() const { return batches_; }

private:
    /// The user's written entries with ids <= upto go (a window trim, a deleted user).
    void removeWritten(const std::string& user, std::uint64_t upto);
    void removeEntry(std::map<std::uint64_t, Entry>& log,
                     std::map<std::uint64_t, Entry>::iterator it);

    std::uint64_t base_max_entry_id_;
    std::size_t batches_ = 0;
};

}  // namespace tundra::storage
