// SPDX-License-Identifier: Apache-2.0
// UserRegistry implementation: presence lists, the offline LRU used to forget users, and the
// count/byte budgets of offline buffers and delivery windows.
#include "core/user_registry.h"

#include <spdlog/spdlog.h>

#include <utility>

namespace tundra::core {

namespace {
constexpr std::uint8_t kLruNone = 0;
constexpr std::uint8_t kLruClean = 1;
constexpr std::uint8_t kLruDirty = 2;
}  // namespace

UserRegistry::~UserRegistry() = default;

User* UserRegistry::find(std::string_view name) const {
    auto it = users_.find(name);
    return it == users_.end() ? nullptr : it->second.get();
}

User& UserRegistry::create(std::string_view name, ClientKind kind, std::size_t max_users,
                           std::int64_t now_ms) {
    while (users_.size() >= max_users && forgetOne()) {
    }
    auto u = std::make_unique<User>();
    u->name.assign(name);
    u->kind = kind;
    u->since_ms = now_ms;
    User& ref = *u;
    users_.emplace(std::string_view(ref.name), std::move(u));
    lruRelink(ref);
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
    unlist(u);
    u.kind = kind;
    u.state = UserState::Online;
    u.conn = conn;
    auto& list = online_[index(kind)];
    u.list_pos = static_cast<std::uint32_t>(list.size());
    list.push_back(&u);
}

void UserRegistry::setDetached(User& u, std::int64_t now_ms) {
    unlist(u);
    u.state = UserState::Detached;
    u.conn = nullptr;
    u.since_ms = now_ms;
    auto& list = detached_[index(u.kind)];
    u.list_pos = static_cast<std::uint32_t>(list.size());
    list.push_back(&u);
    u.lru = kLruDetached;  // appended: the list stays in detach order
    lruAppend(u);
}

void UserRegistry::setOffline(User& u, std::int64_t now_ms) {
    unlist(u);
    u.state = UserState::Offline;
    u.conn = nullptr;
    u.session = Uuid{};
    u.since_ms = now_ms;
    u.window_replayed = false;
    u.resume_last_id = 0;
    u.replay_floor = UINT64_MAX;
    lruRelink(u);
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
    (u.lru_prev != nullptr ? u.lru_prev->lru_next : list.head) = u.lru_next;
    (u.lru_next != nullptr ? u.lru_next->lru_prev : list.tail) = u.lru_prev;
    u.lru_prev = nullptr;
    u.lru_next = nullptr;
    u.lru = kLruNone;
}

void UserRegistry::lruAppend(User& u) {
    auto& list = lru_[u.lru];
    u.lru_prev = list.tail;
    u.lru_next = nullptr;
    (list.tail != nullptr ? list.tail->lru_next : list.head) = &u;
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
        for (User* u = lru_[l].head; u != nullptr; u = u->lru_next) {
            if (u->lingering == 0) {
                forget(*u);
                return true;
            }
        }
    }
    return false;
}

void UserRegistry::forget(User& u) {
    spdlog::info("user={} forgotten (max_users reached, offline entries={})", u.name,
                 u.offline.size());
    if (!u.offline.empty()) {
        countDropped(u, u.offline.size());
    }
    account(u, u.bytes, false);
    offline_count_ -= u.offline.size();
    window_count_ -= u.window.size();
    lruUnlink(u);
    auto it = users_.find(std::string_view(u.name));
    users_.erase(it);  // destroys u (erase by iterator: the key views u.name)
}

// ---- stored deliveries ----------------------------------------------------------------------

void UserRegistry::account(User& u, std::size_t bytes, bool add) {
    if (add) {
        u.bytes += bytes;
        total_bytes_ += bytes;
    } else {
        u.bytes -= bytes;
        total_bytes_ -= bytes;
    }
}

void UserRegistry::countDropped(User& u, std::uint64_t n) {
    std::uint64_t sum = std::uint64_t{u.dropped} + n;
    u.dropped = sum > UINT32_MAX ? UINT32_MAX : static_cast<std::uint32_t>(sum);
    metrics_.offline_dropped_total += n;
}

void UserRegistry::dropOfflineFront(User& u) {
    StoredFrame e = u.offline.popFront();
    account(u, e.bytes(), false);
    --offline_count_;
    countDropped(u, 1);
    lruRelink(u);
}

bool UserRegistry::evictOldest(User& u) {
    if (!u.window.empty()) {
        StoredFrame e = u.window.popFront();
        account(u, e.bytes(), false);
        --window_count_;
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
    while (total_bytes_ + need > limits.total_bytes) {
        if (!evictOldest(u)) {
            return false;
        }
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
    u.offline.insertSorted(std::move(e));
    account(u, need, true);
    ++offline_count_;
    ++metrics_.offline_buffered_total;
    lruRelink(u);
    return true;
}

void UserRegistry::storeWindow(User& u, StoredFrame e, const BufferLimits& limits) {
    if (limits.max_buffered == 0) {
        return;
    }
    if (u.window.size() >= limits.max_buffered) {
        StoredFrame old = u.window.popFront();
        account(u, old.bytes(), false);
        --window_count_;
    }
    std::size_t need = e.bytes();
    if (!makeRoom(u, need, limits)) {
        return;  // not kept: it was written, so nothing is lost unless the connection dies
    }
    u.window.insertSorted(std::move(e));
    account(u, need, true);
    ++window_count_;
}

void UserRegistry::confirmWindowThrough(User& u, std::uint64_t id) {
    while (!u.window.empty() && u.window.front().id <= id) {
        StoredFrame e = u.window.popFront();  // frees the ring's storage once empty
        account(u, e.bytes(), false);
        --window_count_;
    }
}

bool UserRegistry::moveToOffline(User& u, std::uint64_t id, const BufferLimits& limits) {
    std::size_t idx = u.window.find(id);
    if (idx == u.window.size()) {
        return false;
    }
    StoredFrame e = u.window.erase(idx);
    account(u, e.bytes(), false);
    --window_count_;
    storeOffline(u, std::move(e), limits);
    return true;
}

void UserRegistry::promoteOfflineFront(User& u, const BufferLimits& limits) {
    StoredFrame e = u.offline.popFront();
    account(u, e.bytes(), false);
    --offline_count_;
    storeWindow(u, std::move(e), limits);
    lruRelink(u);
}

void UserRegistry::enforce(const BufferLimits& limits) {
    for (auto& [name, up] : users_) {
        User& u = *up;
        while (u.offline.size() > limits.max_buffered) {
            dropOfflineFront(u);
        }
        while (u.window.size() > limits.max_buffered) {
            StoredFrame e = u.window.popFront();
            account(u, e.bytes(), false);
            --window_count_;
        }
        while (u.bytes > limits.user_bytes && evictOldest(u)) {
        }
    }
    // The total budget: take from users in map order until it fits (rare: only a reload that
    // shrinks total_buffer_bytes below what is held).
    for (auto& [name, up] : users_) {
        while (total_bytes_ > limits.total_bytes && evictOldest(*up)) {
        }
    }
}

}  // namespace tundra::core
