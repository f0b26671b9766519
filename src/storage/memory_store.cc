// SPDX-License-Identifier: Apache-2.0
// MemoryStore: batches applied to an in-memory model, synchronously.
#include "storage/memory_store.h"

namespace tundra::storage {

bool MemoryStore::load(core::StoreSnapshot& out, std::string& /*error*/) {
    out = core::StoreSnapshot{};
    out.id_reserve = id_reserve_;
    for (const auto& [name, row] : users_) {
        core::SnapshotUser u = row.user;
        u.entries.clear();
        for (const auto& [id, e] : row.entries) {
            u.entries.push_back(e);
        }
        out.users.push_back(std::move(u));
    }
    for (const auto& [id, b] : broadcasts_) {
        out.broadcasts.push_back(b);
    }
    return true;
}

void MemoryStore::apply(const core::StoreBatch& b) {
    using K = core::StoreOp::Kind;
    if (b.full) {
        users_.clear();
        broadcasts_.clear();
    }
    if (b.id_reserve != 0) {
        id_reserve_ = b.id_reserve;
    }
    for (const core::StoreOp& op : b.ops) {
        switch (op.kind) {
            case K::UpsertUser: {
                Row& r = users_[op.user];
                r.user.name = op.user;
                r.user.kind = op.client_kind;
                r.user.session = op.session;
                r.user.detached_wall_ms = op.detached_wall_ms;
                r.user.dropped = op.dropped;
                r.user.bcast_since = op.bcast_since;
                break;
            }
            case K::DeleteUser:
                // As SQLite does: the row and its written entries; offline entries left over
                // (the core must delete them first) keep the user, as at a SQLite load.
                if (auto it = users_.find(op.user); it != users_.end()) {
                    std::erase_if(it->second.entries,
                                  [](const auto& kv) { return kv.second.written; });
                    if (it->second.entries.empty()) {
                        users_.erase(it);
                    } else {
                        it->second.user = core::SnapshotUser{};
                        it->second.user.name = op.user;
                    }
                }
                break;
            case K::PutEntry: {
                Row& r = users_[op.user];
                r.user.name = op.user;
                r.entries[op.id] = core::SnapshotEntry{op.id, op.frame, op.written};
                break;
            }
            case K::DeleteEntry:
                if (auto it = users_.find(op.user); it != users_.end()) {
                    it->second.entries.erase(op.id);
                }
                break;
            case K::TrimWindow:
                if (auto it = users_.find(op.user); it != users_.end()) {
                    std::erase_if(it->second.entries, [&](const auto& kv) {
                        return kv.first <= op.id && kv.second.written;
                    });
                }
                break;
            case K::PutBroadcast:
                broadcasts_[op.id] = core::SnapshotBroadcast{
                    op.id, op.user, op.client_kind == ClientKind::Agent, op.frame};
                break;
            case K::TrimBroadcasts:
                broadcasts_.erase(broadcasts_.begin(), broadcasts_.upper_bound(op.id));
                break;
        }
    }
}

bool MemoryStore::submit(core::StoreBatch& batch) {
    core::BatchResult r;
    r.seq = batch.seq;
    if (fail_next_ > 0) {
        --fail_next_;
        r.error = "database or disk is full (simulated)";
    } else {
        if (model_) {
            apply(batch);
        }
        ++applied_;
        r.ok = true;
    }
    results_.push_back(std::move(r));
    batch = core::StoreBatch{};
    return true;
}

void MemoryStore::takeResults(std::vector<core::BatchResult>& out) {
    for (auto& r : results_) {
        out.push_back(std::move(r));
    }
    results_.clear();
}

}  // namespace tundra::storage
