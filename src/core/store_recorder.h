// SPDX-License-Identifier: Apache-2.0
// StoreRecorder: collects the core's mutations of one loop iteration into a StoreBatch (entry
// puts and deletes as they happen, user rows once per batch for the users touched). Internal
// to the core; off (recording nothing) when the server runs without a durable store.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/frame_ring.h"
#include "core/store_batch.h"

namespace tundra::core {

class StoreRecorder {
public:
    [[nodiscard]] bool on() const { return on_; }
    void setOn(bool on) { on_ = on; }

    void putEntry(std::string_view user, const StoredFrame& e, bool written) {
        if (!on_) {
            return;
        }
        StoreOp op;
        op.kind = StoreOp::Kind::PutEntry;
        op.user = user;
        op.id = e.id;
        op.frame = e.frame;
        op.written = written;
        batch_.ops.push_back(std::move(op));
    }
    void deleteEntry(std::string_view user, std::uint64_t id) {
        if (!on_) {
            return;
        }
        StoreOp op;
        op.kind = StoreOp::Kind::DeleteEntry;
        op.user = user;
        op.id = id;
        batch_.ops.push_back(std::move(op));
    }
    /// The window of `user` lost its entries up to `id` (they are popped from its front).
    void trimWindow(std::string_view user, std::uint64_t id) {
        if (!on_) {
            return;
        }
        StoreOp op;
        op.kind = StoreOp::Kind::TrimWindow;
        op.user = user;
        op.id = id;
        batch_.ops.push_back(std::move(op));
    }
    /// A broadcast, stored once: it is in the window of every user online with a broadcast
    /// range when it was sent (UserRegistry::openBroadcasts), without an entry of its own.
    void putBroadcast(std::string_view sender, const StoredFrame& e, bool agents_only) {
        if (!on_) {
            return;
        }
        StoreOp op;
        op.kind = StoreOp::Kind::PutBroadcast;
        op.user = sender;
        op.id = e.id;
        op.frame = e.frame;
        op.client_kind = agents_only ? ClientKind::Agent : ClientKind::User;
        batch_.ops.push_back(std::move(op));
    }
    /// No window needs the broadcasts with ids up to `id` any more.
    void trimBroadcasts(std::uint64_t id) {
        if (!on_) {
            return;
        }
        StoreOp op;
        op.kind = StoreOp::Kind::TrimBroadcasts;
        op.id = id;
        batch_.ops.push_back(std::move(op));
    }
    /// `user` has a window trim pending (written once per batch, see UserRegistry).
    void noteTrim(std::string_view user) { trim_users_.emplace_back(user); }
    std::vector<std::string>& trimUsers() { return trim_users_; }
    void deleteUser(std::string_view user) {
        if (!on_) {
            return;
        }
        StoreOp op;
        op.kind = StoreOp::Kind::DeleteUser;
        op.user = user;
        batch_.ops.push_back(std::move(op));
    }
    /// The user's row changed (created, kind, session, presence, DROPPED): written once, with
    /// its state at the end of the iteration. `dirty` is the user's own flag.
    void touchUser(std::string_view user, bool& dirty) {
        if (!on_ || dirty) {
            return;
        }
        dirty = true;
        dirty_users_.emplace_back(user);
    }
    void reserveIds(std::uint64_t reserve) {
        if (on_) {
            batch_.id_reserve = reserve;
        }
    }
    /// Something waits to be handed to the store.
    [[nodiscard]] bool pending() const {
        return !batch_.empty() || !dirty_users_.empty() || !trim_users_.empty();
    }
    /// Names of the users whose row must be written with this batch (cleared by take()).
    std::vector<std::string>& dirtyUsers() { return dirty_users_; }
    StoreBatch& batch() { return batch_; }
    /// Closes the open batch and returns it with the next sequence number.
    StoreBatch take() {
        StoreBatch b = std::move(batch_);
        b.seq = ++last_seq_;
        batch_ = StoreBatch{};
        // Several batches are in flight while the store syncs: the next one takes a vector
        // the store handed back (already paged in, large enough not to regrow), else a fresh
        // one with room to grow.
        if (!spares_.empty()) {
            batch_.ops.swap(spares_.back());
            spares_.pop_back();
        }
        if (batch_.ops.capacity() < b.ops.size()) {
            batch_.ops.reserve(std::max<std::size_t>(2 * b.ops.size(), 64));
        }
        dirty_users_.clear();
        trim_users_.clear();
        return b;
    }
    /// Takes back an emptied op vector for reuse (a few are kept, the largest).
    void recycle(std::vector<StoreOp>&& ops) {
        ops.clear();
        if (ops.capacity() == 0) {
            return;
        }
        if (spares_.size() < kMaxSpares) {
            spares_.push_back(std::move(ops));
            return;
        }
        auto smallest = std::min_element(
            spares_.begin(), spares_.end(),
            [](const auto& x, const auto& y) { return x.capacity() < y.capacity(); });
        if (smallest->capacity() < ops.capacity()) {
            *smallest = std::move(ops);
        }
    }
    /// The sequence number the open batch will get.
    [[nodiscard]] std::uint64_t openSeq() const { return last_seq_ + 1; }

private:
    bool on_ = false;
    StoreBatch batch_;
    std::vector<std::string> dirty_users_;
    std::vector<std::string> trim_users_;
    static constexpr std::size_t kMaxSpares = 8;
    std::vector<std::vector<StoreOp>> spares_;
    std::uint64_t last_seq_ = 0;
};

}  // namespace tundra::core
