// SPDX-License-Identifier: Apache-2.0
// What the core makes durable, as plain data: the mutations of one loop iteration (StoreBatch)
// and the state a store hands back at start (StoreSnapshot). The core records batches and
// consumes snapshots; src/storage implements them (memory, SQLite). No I/O here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/shared_frame.h"
#include "tundra/codec.h"
#include "tundra/protocol.h"

namespace tundra::core {

/// One mutation. Every user has one log of deliveries ordered by id; an entry is either
/// `written` (handed to the user's socket, kept until the client confirms it: the delivery
/// window) or not (the offline buffer). Broadcasts to online users are not entries: each is
/// stored once (PutBroadcast), and an online user's row says from which id on its window holds
/// every broadcast meant for it (`bcast_since`). See docs/ARCHITECTURE.md, "Storage".
struct StoreOp {
    enum class Kind : std::uint8_t {
        UpsertUser,  ///< name, client_kind, session, detached_wall_ms, dropped, bcast_since
        /// name: the user and its written entries. Its offline entries are deleted first,
        /// one DeleteEntry each (the core holds them), so a store needs no index by user
        /// over the offline buffers.
        DeleteUser,
        PutEntry,        ///< name, id, frame, written: insert or update one log entry
        DeleteEntry,     ///< name, id (its frame goes too unless something else uses it)
        TrimWindow,      ///< name, id: delete the user's written entries with ids <= id
        PutBroadcast,    ///< id, frame, name = sender, client_kind Agent = to the agents only
        TrimBroadcasts,  ///< id: forget the broadcasts with ids <= id (no window needs them)
    };
    Kind kind = Kind::UpsertUser;
    std::string user;
    std::uint64_t id = 0;
    SharedFrame frame;  ///< PutEntry: the encoded delivery (shared by every recipient; stored once)
    bool written = false;
    ClientKind client_kind = ClientKind::User;
    Uuid session{};                     ///< nil: no session
    std::int64_t detached_wall_ms = 0;  ///< wall ms the session detached; 0 = it was online
    std::uint32_t dropped = 0;          ///< DROPPED count not yet reported to the user
    /// UpsertUser: the user is online and its window holds, besides its entries, every stored
    /// broadcast with an id >= this that was meant for it (not its own, and of its audience);
    /// 0 = none (detached or offline: its window is all entries).
    std::uint64_t bcast_since = 0;
};

/// The mutations of one loop iteration, applied atomically (one transaction) and in order.
struct StoreBatch {
    std::uint64_t seq = 0;  ///< increasing per SessionManager, from 1
    /// Ops describe the whole state: the store replaces everything it holds (resync after a
    /// failure).
    bool full = false;
    std::uint64_t id_reserve = 0;  ///< new id high-water mark to record; 0 = unchanged
    std::vector<StoreOp> ops;

    [[nodiscard]] bool empty() const { return ops.empty() && id_reserve == 0 && !full; }
};

/// The outcome of one batch, reported back on the reactor.
struct BatchResult {
    std::uint64_t seq = 0;
    bool ok = false;
    std::string error;  ///< why it failed ("database or disk is full")
    /// The batch's op storage, emptied, handed back for reuse (the next batches then need no
    /// fresh pages); may be empty.
    std::vector<StoreOp> spare;
};

struct SnapshotEntry {
    std::uint64_t id = 0;
    SharedFrame frame;
    bool written = false;
};

struct SnapshotUser {
    std::string name;
    ClientKind kind = ClientKind::User;
    Uuid session{};
    std::int64_t detached_wall_ms = 0;
    std::uint32_t dropped = 0;
    std::uint64_t bcast_since = 0;       ///< see StoreOp::bcast_since
    std::vector<SnapshotEntry> entries;  ///< ascending id
};

/// A stored broadcast (PutBroadcast): the windows of the users online when it was sent.
struct SnapshotBroadcast {
    std::uint64_t id = 0;
    std::string sender;
    bool agents_only = false;
    SharedFrame frame;
};

/// Everything a store holds, loaded once at start (single node).
struct StoreSnapshot {
    std::vector<SnapshotUser> users;
    std::vector<SnapshotBroadcast> broadcasts;  ///< ascending id
    std::uint64_t id_reserve = 0;               ///< every id ever handed out is below this
};

}  // namespace tundra::core
