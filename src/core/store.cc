// SPDX-License-Identifier: Apache-2.0
// Durability in the core: restoring a StoreSnapshot at start, closing the iteration's batch
// (user rows of the users touched, the id reserve), ACKs held until their batch commits, and
// degraded mode after a failed batch (refuse what needs storing, resync once writes succeed).
#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/session_state.h"

namespace tundra::core {

namespace {
// Ids handed out stay below a persisted reserve; it is moved this far ahead once ids come
// within half of it, so a crash never lets ids restart below one a client has seen (even with
// the wall clock stepped back), as long as the writer is less than 2^31 ids behind.
constexpr std::uint64_t kIdReserve = 1ULL << 32;
constexpr std::int64_t kProbeIntervalMs = 1000;
// A failure within this long of a recovery counts as flapping: the next resync waits twice as
// long as the last, up to kMaxProbeIntervalMs. A failure after a longer good spell starts over.
constexpr std::int64_t kFlapWindowMs = 60'000;
constexpr std::int64_t kMaxProbeIntervalMs = 60'000;
// How often stored broadcasts that no window needs any more are forgotten.
constexpr std::int64_t kBroadcastTrimIntervalMs = 1000;
}  // namespace

void SessionManager::Impl::reserveIds() {
    if (last_id_ + kIdReserve / 2 > id_reserve_) {
        id_reserve_ = last_id_ + kIdReserve;
        recorder_.reserveIds(id_reserve_);
    }
}

void SessionManager::Impl::attachStore(const StoreSnapshot& snapshot) {
    recorder_.setOn(false);  // what is restored is already stored
    id_reserve_ = snapshot.id_reserve;
    last_id_ = std::max(last_id_, id_reserve_);
    const std::int64_t wall = clock_.wallMs();
    std::size_t entries = 0;
    std::size_t detached = 0;
    // Online at the crash, with the broadcast range they had: their windows include broadcasts.
    std::vector<std::pair<User*, std::uint64_t>> ranged;
    const auto& bcasts = snapshot.broadcasts;
    bcast_last_ = bcasts.empty() ? 0 : bcasts.back().id;  // trimmed by the first trimBroadcasts()
    bcast_trimmed_ = 0;
    for (const SnapshotUser& su : snapshot.users) {
        if (users_.find(su.name) != nullptr || !isValidName(su.name)) {
            continue;
        }
        User& u = users_.create(su.name, su.kind, SIZE_MAX, now());
        u.dropped = su.dropped;
        for (const SnapshotEntry& e : su.entries) {
            if (e.frame && !e.frame->empty()) {
                users_.restoreEntry(u, StoredFrame{e.frame, e.id}, e.written);
                ++entries;
            }
        }
        if (su.bcast_since != 0) {
            // Its window also held the broadcasts meant for it since bcast_since: the newest
            // max_buffered of those still stored (the window never held more), unless an entry
            // of its own has the id (a broadcast its connection did not take went offline).
            std::size_t taken = 0;
            for (auto it = bcasts.rbegin();
                 it != bcasts.rend() && it->id >= su.bcast_since && taken < limits().max_buffered;
                 ++it) {
                if (it->sender == su.name || (it->agents_only && su.kind != ClientKind::Agent) ||
                    !it->frame || it->frame->empty() || u.window.find(it->id) < u.window.size() ||
                    u.offline.find(it->id) < u.offline.size()) {
                    continue;
                }
                users_.restoreEntry(u, StoredFrame{it->frame, it->id}, true);
                ++taken;
                ++entries;
            }
            ranged.emplace_back(&u, su.bcast_since);
        }
        if (!isNil(su.session) && !sessions_.contains(su.session)) {
            // Detached since its recorded detach time (an online session at the crash:
            // since now), so it stays resumable for what is left of session_timeout.
            const std::int64_t elapsed = su.detached_wall_ms > 0
                                             ? std::clamp<std::int64_t>(wall - su.detached_wall_ms,
                                                                        0, cfg().session_timeout_ms)
                                             : 0;
            u.session = su.session;
            sessions_.insert(u);
            users_.setDetached(u, now() - elapsed);
            session_wheel_.schedule(u.session, u.since_ms + cfg().session_timeout_ms);
            ++detached;
        }
        u.store_dirty = false;
    }
    recorder_.setOn(true);
    // Nobody is online after a start: those windows get entries of their own, and the user
    // rows say so (bcast_since 0), before the broadcasts they came from are trimmed.
    for (auto [u, since] : ranged) {
        u->bcast_since = since;  // as stored; closing writes the entries and the row
        users_.closeBroadcasts(*u);
    }
    users_.enforce(limits());  // the budgets may have shrunk since: recorded like any trim
    reserveIds();
    spdlog::info("store: restored {} users, {} stored deliveries, {} resumable sessions",
                 snapshot.users.size(), entries, detached);
}

void SessionManager::Impl::fillFullBatch(StoreBatch& b) {
    const std::int64_t wall = clock_.wallMs();
    users_.forEach([&](const User& u) {
        StoreOp row;
        row.kind = StoreOp::Kind::UpsertUser;
        row.user = u.name;
        row.client_kind = u.kind;
        row.dropped = u.dropped;
        // Every window entry is written below: the range only needs the broadcasts to come.
        row.bcast_since = u.bcast_since != 0 ? last_id_ + 1 : 0;
        if (u.state != UserState::Offline) {
            row.session = u.session;
            row.detached_wall_ms = u.state == UserState::Detached ? wall - (now() - u.since_ms) : 0;
        }
        b.ops.push_back(std::move(row));
        for (const FrameRing* ring : {&u.window, &u.offline}) {
            for (std::size_t i = 0; i < ring->size(); ++i) {
                StoreOp op;
                op.kind = StoreOp::Kind::PutEntry;
                op.user = u.name;
                op.id = ring->at(i).id;
                op.frame = ring->at(i).frame;
                op.written = ring == &u.window;
                b.ops.push_back(std::move(op));
            }
        }
    });
}

StoreBatch SessionManager::Impl::takeStoreBatch() {
    if (want_full_) {
        want_full_ = false;
        for (const std::string& name : recorder_.dirtyUsers()) {
            if (User* u = users_.find(name)) {
                u->store_dirty = false;
            }
        }
        for (const std::string& name : recorder_.trimUsers()) {
            if (User* u = users_.find(name)) {
                u->store_trim = 0;
            }
        }
        StoreBatch b = recorder_.take();
        b.ops.clear();  // the full state supersedes them
        b.full = true;
        b.id_reserve = id_reserve_;
        fillFullBatch(b);
        users_.forEachMutable([&](User& u) {
            u.store_written_max = u.window.empty() ? 0 : u.window.back().id;
            if (u.bcast_since != 0) {
                u.bcast_since = last_id_ + 1;
            }
        });
        bcast_trimmed_ = last_id_;  // the full batch stored no broadcast
        resync_seq_ = b.seq;
        return b;
    }
    for (const std::string& name : recorder_.trimUsers()) {
        User* u = users_.find(name);
        if (u != nullptr && u->store_trim != 0) {
            recorder_.trimWindow(u->name, u->store_trim);
            if (u->store_trim >= u->store_written_max) {
                u->store_written_max = 0;  // no written entry of its own is left
            }
            u->store_trim = 0;
        }
    }
    const std::int64_t wall = clock_.wallMs();
    for (const std::string& name : recorder_.dirtyUsers()) {
        User* u = users_.find(name);
        if (u == nullptr || !u->store_dirty) {
            continue;  // forgotten since (its DeleteUser is in the batch), or written already
        }
        u->store_dirty = false;
        StoreOp row;
        row.kind = StoreOp::Kind::UpsertUser;
        row.user = u->name;
        row.client_kind = u->kind;
        row.dropped = u->dropped;
        row.bcast_since = u->bcast_since;
        if (u->state != UserState::Offline) {
            row.session = u->session;
            row.detached_wall_ms =
                u->state == UserState::Detached ? wall - (now() - u->since_ms) : 0;
        }
        recorder_.batch().ops.push_back(std::move(row));
    }
    return recorder_.take();
}

void SessionManager::Impl::onStoreResult(BatchResult& result) {
    if (!result.spare.empty() || result.spare.capacity() > 0) {
        recorder_.recycle(std::move(result.spare));
    }
    if (!result.ok) {
        ++metrics().storage_errors_total;
        std::uint64_t held = 0;
        if (storage_log_.allow(now(), held)) {
            spdlog::error(
                "store: batch {} not stored: {}; refusing what needs storing until writes "
                "succeed again ({} more such errors not logged)",
                result.seq, result.error, held);
        }
        if (!degraded_) {
            // The first resync a second later; sooner after a recovery than kFlapWindowMs,
            // twice the previous wait (the disk is nearly full: every flap rewrites the state).
            const bool flapping = now() - recovered_ms_ < kFlapWindowMs && probe_interval_ms_ > 0;
            probe_interval_ms_ =
                flapping ? std::min(probe_interval_ms_ * 2, kMaxProbeIntervalMs) : kProbeIntervalMs;
            next_probe_ms_ = now() + probe_interval_ms_;
        }
        degraded_ = true;
        if (result.seq == resync_seq_) {
            resync_seq_ = 0;
        }
    } else if (result.seq == resync_seq_) {
        resync_seq_ = 0;
        if (degraded_) {
            degraded_ = false;
            recovered_ms_ = now();
            ++metrics().storage_recoveries_total;
            std::uint64_t held = 0;
            if (recovery_log_.allow(now(), held)) {
                spdlog::warn(
                    "store: writes succeed again; state resynced, accepting everything ({} more "
                    "recoveries not logged; a failure within {} s waits {} s before the next "
                    "resync)",
                    held, kFlapWindowMs / 1000,
                    std::min(probe_interval_ms_ * 2, kMaxProbeIntervalMs) / 1000);
            }
        }
    }
    while (!held_acks_.empty() && held_acks_.front().batch <= result.seq) {
        HeldAck h = std::move(held_acks_.front());
        held_acks_.pop_front();
        Conn* found = conns_.find(h.conn);
        Conn* c = found == nullptr || found->closed ? nullptr : found;
        if (result.ok) {
            if (c != nullptr) {
                send(*c, share(msg::encode(msg::Ack{h.id, h.delivered, h.buffered}, h.seq)));
            }
            continue;
        }
        // Refused: withdraw what was buffered, so nobody gets a message its sender was told
        // was not accepted (unless a recipient came online and got it meanwhile).
        auto withdraw = [&](const std::string& name) {
            if (User* u = users_.find(name)) {
                users_.removeOffline(*u, h.id);
            }
        };
        withdraw(h.buffered_first);
        for (const std::string& name : h.buffered_more) {
            withdraw(name);
        }
        if (c != nullptr) {
            sendError(*c, h.seq, ErrorCode::StorageUnavailable,
                      "the server cannot store messages right now; not accepted");
        }
    }
}

void SessionManager::Impl::trimBroadcasts() {
    if (!storeOn() || bcast_last_ <= bcast_trimmed_ || now() < next_bcast_trim_ms_) {
        return;
    }
    next_bcast_trim_ms_ = now() + kBroadcastTrimIntervalMs;
    // Only online users' windows refer to stored broadcasts, and only to ids at or above both
    // their range's start and their window's front (what was popped was confirmed or fell out
    // of the window): the oldest window entry in the range bounds what must stay.
    std::uint64_t keep = last_id_ + 1;
    for (auto kind : {ClientKind::User, ClientKind::Agent}) {
        for (const User* u : users_.online(kind)) {
            if (u->bcast_since == 0) {
                continue;
            }
            const std::size_t i = u->window.upperBound(u->bcast_since - 1);
            if (i < u->window.size()) {
                keep = std::min(keep, u->window.at(i).id);
            }
        }
    }
    if (keep - 1 > bcast_trimmed_) {
        bcast_trimmed_ = keep - 1;
        recorder_.trimBroadcasts(bcast_trimmed_);
    }
}

void SessionManager::Impl::probeStore() {
    if (!degraded_ || resync_seq_ != 0 || want_full_ || now() < next_probe_ms_) {
        return;
    }
    next_probe_ms_ = now() + std::max(probe_interval_ms_, kProbeIntervalMs);
    want_full_ = true;
}

}  // namespace tundra::core
