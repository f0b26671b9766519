// SPDX-License-Identifier: Apache-2.0
// UserRegistry implementation: presence lists, the offline LRU used to forget users, and the
// count/byte budgets of offline buffers and delivery windows (with the by-bytes heap behind the
// fair share of the total budget).
#include "core/user_registry.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

namespace tundra::core {

namespace {
constexpr std::uint8_t kLruNone = 0;
constexpr std::uint8_t kLruClean = 1;
constexpr std::uint8_t kLruDirty = 2;
}  // namespace

UserRegistry::~UserRegistry() {
    users_.forEach([](User& u) { common::SlabPool::destroy(&u); });
    users_.clear();
}

User* UserRegistry::find(std::string_view name) const {
    // A sender usually writes to the same name many times in a row: one compare instead of a
    // keyed hash of the name and a chain walk.
    if (last_found_ != nullptr && std::string_view(last_found_->name) == name) {
        return last_found_;
    }
    User* u = users_.find(name);
    if (u != nullptr) {
        last_found_ = u;
    }
    return u;
}

User& UserRegistry::create(std::string_view name, ClientKind kind, std::size_t max_users,
                           std::int64_t now_ms) {
    while (users_.size() >= max_users && forgetOne()) {
    }
    User& ref = *pool_.make<User>();  // owned by the table (destroyed by forget())
    ref.name.assign(name);
    ref.kind = kind;
    ref.since_ms = now_ms;
    users_.insert(ref);
    lruRelink(ref);
    touch(ref);
    return ref;
}

void UserRegistry::unlist(User& u) {
    std::vector<User*>* list = nullptr;
    if (u.state == UserState::Online) {
        list = &online_[index(u.kind)];
    } else if (u.state == UserState::Detached) {
        list = &detached_[index(u.kind)];
        lruUnlink(u);
    } else {
        lruUnlink(u);
        return;
    }
    // Swap-remove: O(1), order of the presence lists does not matter.
    User* last = list->back();
    (*list)[u.list_pos] = last;
    last->list_pos = u.list_pos;
    list->pop_back();
}

void UserRegistry::setOnline(User& u, Conn* conn, ClientKind kind) {
    if (kind != u.kind) {
        closeBroadcasts(u);  // the range was for the other kind's audience
    }
    unlist(u);
    u.kind = kind;
    u.state = UserState::Online;
    u.conn = conn;
    touch(u);
    auto& list = online_[index(kind)];
    u.list_pos = static_cast<std::uint32_t>(list.size());
    list.push_back(&u);
}

void UserRegistry::setDetached(User& u, std::int64_t now_ms) {
    closeBroadcasts(u);
    unlist(u);
    u.state = UserState::Detached;
    u.conn = nullptr;
    u.since_ms = now_ms;
    touch(u);
    auto& list = detached_[index(u.kind)];
    u.list_pos = static_cast<std::uint32_t>(list.size());
    list.push_back(&u);
    u.lru = kLruDetached;  // appended: the list stays in detach order
    lruAppend(u);
}

void UserRegistry::setOffline(User& u, std::int64_t now_ms) {
    closeBroadcasts(u);
    unlist(u);
    u.state = UserState::Offline;
    u.conn = nullptr;
    u.session = Uuid{};
    u.since_ms = now_ms;
    u.window_replayed = false;  // (phase.replay is attach()'s; phase.lru is written next)
    lruRelink(u);
    touch(u);
}

// ---- the offline LRU ------------------------------------------------------------------------
// Offline users sit on one of two intrusive lists in the order they went offline (appending
// keeps each list sorted by last-seen time). "Clean" users have nothing undelivered and are
// forgotten first; "dirty" ones only when no clean one is left. A user moves from clean to
// dirty when a delivery is buffered for it, at the tail (so that list is ordered by how long
// the oldest undelivered message has waited).

void UserRegistry::lruUnlink(User& u) {
    if (u.lru == kLruNone) {
        return;
    }
    auto& list = lru_[u.lru];
    (u.phase.lru.prev != nullptr ? u.phase.lru.prev->phase.lru.next : list.head) = u.phase.lru.next;
    (u.phase.lru.next != nullptr ? u.phase.lru.next->phase.lru.prev : list.tail) = u.phase.lru.prev;
    u.phase.lru.prev = nullptr;
    u.phase.lru.next = nullptr;
    u.lru = kLruNone;
}

void UserRegistry::lruAppend(User& u) {
    auto& list = lru_[u.lru];
    u.phase.lru.prev = list.tail;
    u.phase.lru.next = nullptr;
    (list.tail != nullptr ? list.tail->phase.lru.next : list.head) = &u;
    list.tail = &u;
}

void UserRegistry::lruRelink(User& u) {
    if (u.state != UserState::Offline) {
        return;
    }
    std::uint8_t want = u.offline.empty() ? kLruClean : kLruDirty;
    if (u.lru == want) {
        return;
    }
    lruUnlink(u);
    u.lru = want;
    lruAppend(u);
}

bool UserRegistry::forgetOne() {
    for (std::uint8_t l : {kLruClean, kLruDirty}) {
        for (User* u = lru_[l].head; u != nullptr; u = u->phase.lru.next) {
            if (u->lingering == 0) {
                forget(*u);
                return true;
            }
        }
    }
    return false;
}

bool UserRegistry::forgetUnused(User& u) {
    if (u.state != UserState::Offline || u.lingering != 0 || !u.offline.empty()) {
        return false;
    }
    forget(u, "ephemeral, logged out");
    return true;
}

void UserRegistry::forget(User& u, const char* why) {
    spdlog::info("user={} forgotten ({}, offline entries={})", u.name, why, u.offline.size());
    if (!u.offline.empty()) {
        countDropped(u, u.offline.size());
    }
    account(u, u.bytes, false);
    offline_count_ -= u.offline.size();
    window_count_ -= u.window.size();
    lruUnlink(u);
    for (std::size_t i = 0; i < u.offline.size(); ++i) {
        rec_.deleteEntry(u.name, u.offline.at(i).id);  // DeleteUser covers the written ones
    }
    rec_.deleteUser(u.name);
    if (last_found_ == &u) {
        last_found_ = nullptr;
    }
    users_.erase(u);
    common::SlabPool::destroy(&u);
}

// ---- stored deliveries ----------------------------------------------------------------------

void UserRegistry::account(User& u, std::size_t bytes, bool add) {
    if (bytes == 0) {
        return;
    }
    if (add) {
        u.bytes += bytes;
        total_bytes_ += bytes;
    } else {
        u.bytes -= bytes;
        total_bytes_ -= bytes;
    }
    if (heap_live_) {
        heapFix(u);
    }
}

// ---- the heap of users by bytes held --------------------------------------------------------
// Only users holding something are in it, so idle users cost nothing here. While it is live,
// every change of a user's bytes re-files it in O(log n); the heaviest is heap_.front(). It is
// only live while the total budget is under pressure: built in O(users) when a store would not
// fit the total, dropped again once the total held falls below a quarter of the budget. Far from
// the budget (the normal case) a delivery pays nothing for it; the hysteresis means a rebuild
// needs three quarters of the total budget stored and released in between.

void UserRegistry::heapStart() {
    if (heap_live_) {
        return;
    }
    heap_.clear();
    users_.forEach([this](User& user) {
        if (user.bytes > 0) {
            heap_.push_back(&user);
            user.heap_pos = static_cast<std::uint32_t>(heap_.size() - 1);
        }
    });
    for (std::size_t i = heap_.size() / 2; i-- > 0;) {
        heapSiftDown(i);
    }
    heap_live_ = true;
}

void UserRegistry::heapStopBelow(std::uint64_t threshold) {
    if (!heap_live_ || total_bytes_ >= threshold) {
        return;
    }
    for (User* u : heap_) {
        u->heap_pos = UINT32_MAX;
    }
    heap_.clear();
    heap_live_ = false;
}

const User* UserRegistry::heaviest() const {
    if (heap_live_) {
        return heap_.empty() ? nullptr : heap_.front();
    }
    const User* best = nullptr;
    users_.forEach([&best](const User& user) {
        if (user.bytes > 0 && (best == nullptr || user.bytes > best->bytes)) {
            best = &user;
        }
    });
    return best;
}

void UserRegistry::heapFix(User& u) {
    if (u.bytes == 0) {
        heapRemove(u);
        return;
    }
    if (u.heap_pos == UINT32_MAX) {
        heap_.push_back(&u);
        u.heap_pos = static_cast<std::uint32_t>(heap_.size() - 1);
    }
    heapSiftUp(u.heap_pos);
    heapSiftDown(u.heap_pos);
}

void UserRegistry::heapRemove(User& u) {
    if (u.heap_pos == UINT32_MAX) {
        return;
    }
    const std::size_t i = u.heap_pos;
    u.heap_pos = UINT32_MAX;
    User* last = heap_.back();
    heap_.pop_back();
    if (last == &u) {
        return;
    }
    heapPlace(i, last);
    heapSiftUp(i);
    heapSiftDown(last->heap_pos);
}

void UserRegistry::heapSiftUp(std::size_t i) {
    User* u = heap_[i];
    while (i > 0) {
        std::size_t parent = (i - 1) / 2;
        if (heap_[parent]->bytes >= u->bytes) {
            break;
        }
        heapPlace(i, heap_[parent]);
        i = parent;
    }
    heapPlace(i, u);
}

void UserRegistry::heapSiftDown(std::size_t i) {
    User* u = heap_[i];
    const std::size_t n = heap_.size();
    for (;;) {
        std::size_t child = 2 * i + 1;
        if (child >= n) {
            break;
        }
        if (child + 1 < n && heap_[child + 1]->bytes > heap_[child]->bytes) {
            ++child;
        }
        if (heap_[child]->bytes <= u->bytes) {
            break;
        }
        heapPlace(i, heap_[child]);
        i = child;
    }
    heapPlace(i, u);
}

void UserRegistry::countDropped(User& u, std::uint64_t n) {
    std::uint64_t sum = std::uint64_t{u.dropped} + n;
    u.dropped = sum > UINT32_MAX ? UINT32_MAX : static_cast<std::uint32_t>(sum);
    metrics_.offline_dropped_total += n;
    touch(u);
}

void UserRegistry::recordPut(User& u, const StoredFrame& e, bool written) {
    if (!rec_.on()) {
        return;
    }
    if (u.store_trim != 0 && e.id <= u.store_trim) {
        rec_.trimWindow(u.name, u.store_trim);  // before the put it would otherwise cover
        u.store_trim = 0;
    }
    rec_.putEntry(u.name, e, written);
    if (written) {
        u.store_written_max = std::max(u.store_written_max, e.id);
    }
}

void UserRegistry::openBroadcasts(User& u, std::uint64_t since) {
    if (!rec_.on() || u.bcast_since != 0) {
        return;  // no store, or still open (a takeover: the same window goes on)
    }
    u.bcast_since = since;
    touch(u);
}

void UserRegistry::closeBroadcasts(User& u) {
    if (u.bcast_since == 0) {
        return;
    }
    // Every window entry the range may cover gets a row of its own (those that had one are
    // rewritten as they were), so the user's window no longer depends on stored broadcasts.
    for (std::size_t i = u.window.upperBound(u.bcast_since - 1); i < u.window.size(); ++i) {
        recordPut(u, u.window.at(i), true);
    }
    u.bcast_since = 0;
    touch(u);
}

StoredFrame UserRegistry::popWindowFront(User& u) {
    StoredFrame e = u.window.popFront();
    u.window.prefetchNextPops();
    if (rec_.on() && u.store_written_max != 0) {
        // The window is popped from its front only: every written entry up to this id is
        // gone, so one trim per user and batch stands for all of them.
        if (u.store_trim == 0) {
            rec_.noteTrim(u.name);
        }
        u.store_trim = std::max(u.store_trim, e.id);
    }
    account(u, e.bytes(), false);
    --window_count_;
    return e;
}

void UserRegistry::dropOfflineFront(User& u) {
    StoredFrame e = u.offline.popFront();
    rec_.deleteEntry(u.name, e.id);
    account(u, e.bytes(), false);
    --offline_count_;
    countDropped(u, 1);
    lruRelink(u);
}

bool UserRegistry::evictOldest(User& u) {
    if (!u.window.empty()) {
        popWindowFront(u);
        return true;
    }
    if (!u.offline.empty()) {
        dropOfflineFront(u);
        return true;
    }
    return false;
}

bool UserRegistry::makeRoom(User& u, std::size_t need, const BufferLimits& limits) {
    if (need > limits.user_bytes || need > limits.total_bytes) {
        return false;
    }
    while (u.bytes + need > limits.user_bytes) {
        if (!evictOldest(u)) {
            return false;
        }
    }
    return fitTotal(u, need, limits);
}

bool UserRegistry::fitTotal(User& u, std::size_t need, const BufferLimits& limits) {
    if (total_bytes_ + need <= limits.total_bytes) {
        heapStopBelow(limits.total_bytes / 4);
        return true;
    }
    heapStart();
    while (total_bytes_ + need > limits.total_bytes) {
        User* h = heap_.empty() ? nullptr : heap_.front();
        if (h == nullptr || h == &u || u.bytes >= h->bytes) {
            if (!evictOldest(u)) {  // u is (one of) the heaviest: it gives its own
                return false;
            }
            continue;
        }
        evictOldest(*h);  // h holds more than u: the heaviest gives first
        ++metrics_.budget_evictions_total;
    }
    return true;
}

bool UserRegistry::storeOffline(User& u, StoredFrame e, const BufferLimits& limits) {
    if (limits.max_buffered == 0) {
        countDropped(u, 1);
        return false;
    }
    if (u.offline.size() >= limits.max_buffered) {
        if (e.id < u.offline.front().id) {
            countDropped(u, 1);  // older than everything kept: it is the one that goes
            return false;
        }
        dropOfflineFront(u);
    }
    std::size_t need = e.bytes();
    if (!makeRoom(u, need, limits)) {
        countDropped(u, 1);
        return false;
    }
    recordPut(u, e, false);
    u.offline.insertSorted(std::move(e));
    account(u, need, true);
    ++offline_count_;
    ++metrics_.offline_buffered_total;
    lruRelink(u);
    return true;
}

void UserRegistry::storeWindow(User& u, StoredFrame e, const BufferLimits& limits, bool ranged) {
    if (limits.max_buffered == 0) {
        return;
    }
    if (u.window.size() >= limits.max_buffered) {
        popWindowFront(u);
    }
    std::size_t need = e.bytes();
    if (!makeRoom(u, need, limits)) {
        return;  // not kept: it was written, so nothing is lost unless the connection dies
    }
    if (!ranged) {
        recordPut(u, e, true);
    }
    u.window.insertSorted(std::move(e));
    account(u, need, true);
    ++window_count_;
}

void UserRegistry::confirmWindowThrough(User& u, std::uint64_t id) {
    while (!u.window.empty() && u.window.front().id <= id) {
        popWindowFront(u);  // frees the ring's storage once empty
    }
}

std::size_t UserRegistry::moveToOffline(User& u, const std::vector<std::uint64_t>& ids,
                                        const BufferLimits& limits) {
    std::vector<StoredFrame> moved;
    moved.reserve(ids.size());
    const std::size_t found = u.window.extractSorted(ids, moved);
    for (const StoredFrame& e : moved) {
        account(u, e.bytes(), false);
    }
    window_count_ -= found;
    // Merge them with the offline buffer in id order, keeping the newest max_buffered: the
    // oldest of the union go (counted as dropped), as storing them one by one would.
    std::vector<StoredFrame> old;
    old.reserve(u.offline.size());
    while (!u.offline.empty()) {
        old.push_back(u.offline.popFront());
    }
    const std::size_t total = old.size() + moved.size();
    std::size_t drop = total > limits.max_buffered ? total - limits.max_buffered : 0;
    std::size_t i = 0;
    std::size_t j = 0;
    while (i < old.size() || j < moved.size()) {
        const bool from_old = j == moved.size() || (i < old.size() && old[i].id <= moved[j].id);
        StoredFrame e = from_old ? std::move(old[i++]) : std::move(moved[j++]);
        if (drop > 0) {
            --drop;
            if (from_old) {
                account(u, e.bytes(), false);
                --offline_count_;
            }
            rec_.deleteEntry(u.name, e.id);
            countDropped(u, 1);
            continue;
        }
        if (!from_old) {
            recordPut(u, e, false);  // written = false: it is offline again
            account(u, e.bytes(), true);
            ++offline_count_;
            ++metrics_.offline_buffered_total;
        }
        u.offline.pushBack(std::move(e));
    }
    // Then the byte budgets, oldest first: u's own, and the fair share of the total.
    while (u.bytes > limits.user_bytes && evictOldest(u)) {
    }
    fitTotal(u, 0, limits);
    lruRelink(u);
    return ids.size() - found;
}

void UserRegistry::promoteOfflineFront(User& u, const BufferLimits& limits) {
    StoredFrame e = u.offline.popFront();
    rec_.deleteEntry(u.name, e.id);  // storeWindow() puts it back as written if it is kept
    account(u, e.bytes(), false);
    --offline_count_;
    storeWindow(u, std::move(e), limits);
    lruRelink(u);
}

void UserRegistry::restoreEntry(User& u, StoredFrame e, bool written) {
    const std::size_t need = e.bytes();
    if (written) {
        u.store_written_max = std::max(u.store_written_max, e.id);
        u.window.insertSorted(std::move(e));
        ++window_count_;
    } else {
        u.offline.insertSorted(std::move(e));
        ++offline_count_;
    }
    account(u, need, true);
    lruRelink(u);
}

bool UserRegistry::removeOffline(User& u, std::uint64_t id) {
    const std::size_t i = u.offline.find(id);
    if (i >= u.offline.size()) {
        return false;
    }
    StoredFrame e = u.offline.erase(i);
    rec_.deleteEntry(u.name, e.id);
    account(u, e.bytes(), false);
    --offline_count_;
    lruRelink(u);
    return true;
}

void UserRegistry::enforce(const BufferLimits& limits) {
    users_.forEach([&](User& u) {
        while (u.offline.size() > limits.max_buffered) {
            dropOfflineFront(u);
        }
        while (u.window.size() > limits.max_buffered) {
            popWindowFront(u);
        }
        while (u.bytes > limits.user_bytes && evictOldest(u)) {
        }
    });
    // The total budget (rare: only a reload that shrinks total_buffer_bytes below what is
    // held): the heaviest users give first, as when storing.
    if (total_bytes_ > limits.total_bytes) {
        heapStart();
    }
    while (total_bytes_ > limits.total_bytes && !heap_.empty() && evictOldest(*heap_.front())) {
    }
}

}  // namespace tundra::core
