// SPDX-License-Identifier: Apache-2.0
// Compaction: folding batches into their net effect (see compaction.h). Why it is exact:
// the range deletions are applied to the database's rows before any keyed state, so for a
// row the run never touched only the union of the ranges matters (hence one window trim per
// user, one broadcast trim); a row the run did touch ends in its keyed state, which already
// accounts for every range that came after the last write to it.
#include "storage/compaction.h"

namespace tundra::storage {

void Compaction::removeEntry(std::map<std::uint64_t, Entry>& log,
                             std::map<std::uint64_t, Entry>::iterator it) {
    if (it->first > base_max_entry_id_) {
        log.erase(it);  // never reached the database
    } else {
        it->second = Entry{false, false, nullptr};
    }
}

void Compaction::removeWritten(const std::string& user, std::uint64_t upto) {
    auto log = entries.find(user);
    if (log == entries.end()) {
        return;
    }
    for (auto it = log->second.begin(); it != log->second.end() && it->first <= upto;) {
        auto next = std::next(it);
        if (it->second.present && it->second.written) {
            removeEntry(log->second, it);
        }
        it = next;
    }
}

void Compaction::add(const core::StoreBatch& b) {
    using K = core::StoreOp::Kind;
    ++batches_;
    if (b.full) {
        wipe = true;
        window_trims.clear();
        deleted_users.clear();
        broadcast_trim = 0;
        users.clear();
        entries.clear();
        broadcasts.clear();
        base_max_entry_id_ = 0;  // the database will be empty: nothing in it to delete
    }
    if (b.id_reserve != 0) {
        id_reserve = b.id_reserve;
    }
    for (const core::StoreOp& op : b.ops) {
        switch (op.kind) {
            case K::UpsertUser:
                users[op.user] = UserRow{op.client_kind, op.session, op.detached_wall_ms,
                                         op.dropped, op.bcast_since};
                break;
            case K::DeleteUser: {
                users[op.user] = std::nullopt;
                deleted_users.push_back(op.user);
                removeWritten(op.user, UINT64_MAX);
                break;
            }
            case K::PutEntry:
                entries[op.user][op.id] = Entry{true, op.written, op.frame};
                break;
            case K::DeleteEntry: {
                auto& log = entries[op.user];
                auto it = log.try_emplace(op.id).first;
                removeEntry(log, it);
                break;
            }
            case K::TrimWindow: {
                auto& trim = window_trims[op.user];
                trim = std::max(trim, op.id);
                removeWritten(op.user, op.id);
                break;
            }
            case K::PutBroadcast:
                // Stored once: a second put of the same id changes nothing (as in the database).
                broadcasts.try_emplace(
                    op.id, Broadcast{op.user, op.client_kind == ClientKind::Agent, op.frame});
                break;
            case K::TrimBroadcasts:
                broadcast_trim = std::max(broadcast_trim, op.id);
                broadcasts.erase(broadcasts.begin(), broadcasts.upper_bound(op.id));
                break;
        }
    }
}

}  // namespace tundra::storage
