// SPDX-License-Identifier: Apache-2.0
// UserRegistry: every user the server remembers, their presence state, and their stored
// deliveries (offline buffer + delivery window) under the count and byte budgets. Internal to
// the core; treats connections as opaque pointers and sends nothing.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/frame_ring.h"
#include "core/metrics.h"
#include "core/outbox.h"
#include "tundra/protocol.h"

namespace tundra::core {

struct Conn;  // a connection's state, owned by the SessionManager

/// A remembered user. Users outlive sessions: the buffer and window belong here. At most one
/// session per user exists (a second REGISTER for an online or detached name is refused), so
/// the session lives inside the user too. About 200 bytes when idle with nothing stored.
struct User {
    std::string name;
    Uuid session{};               ///< nil while Offline
    Conn* conn = nullptr;         ///< the live connection while Online
    std::int64_t since_ms = 0;    ///< steady ms: Detached since / Offline since (last seen)
    FrameRing window;             ///< last deliveries queued to a live connection
    FrameRing offline;            ///< deliveries addressed to it while it had no live connection
    std::size_t bytes = 0;        ///< window + offline, charged against user_buffer_bytes
    std::uint32_t dropped = 0;    ///< offline entries lost since the last WELCOME (DROPPED)
    std::uint32_t list_pos = 0;   ///< index in the registry's online/detached list
    std::uint32_t lingering = 0;  ///< connections the core closed that await onDisconnect()
    ClientKind kind = ClientKind::User;
    UserState state = UserState::Offline;
    std::uint8_t lru = 0;  ///< which list holds it (0 none, 1 clean, 2 dirty offline, 3 detached)
    bool window_replayed = false;      ///< the current registration asked for last_id > 0
    std::uint64_t resume_last_id = 0;  ///< last_id of the current registration
    /// Oldest window id replayed after the current WELCOME (UINT64_MAX: none)
    std::uint64_t replay_floor = UINT64_MAX;
    User* lru_prev = nullptr;
    User* lru_next = nullptr;
};

struct BufferLimits {
    std::size_t max_buffered = 50;
    std::size_t user_bytes = 1U << 20;
    std::size_t total_bytes = 256U << 20;
};

// Byte budget policy (documented in docs/PROTOCOL.md as well). Every stored entry is charged
// its full frame size to the user holding it, even when the frame is shared with other users,
// so the accounted total is an upper bound of the real memory. When an entry would push the
// user over `user_bytes`, or everybody over `total_bytes`, the user's own oldest entries go
// first: window entries (already written, kept only as a safety net for last_id replays; their
// loss is not a DROPPED) before offline entries (each one counted in the user's DROPPED and in
// offline_dropped_total). If the user has nothing left to give and the total budget is still
// exhausted by other users, the new entry itself is not stored (and counted as dropped when it
// was an offline delivery). Nobody else's messages are touched: a user can only lose its own
// oldest entries, never another user's.
class UserRegistry {
public:
    explicit UserRegistry(Metrics& metrics) : metrics_(metrics) {}
    ~UserRegistry();
    UserRegistry(const UserRegistry&) = delete;
    UserRegistry& operator=(const UserRegistry&) = delete;

    [[nodiscard]] User* find(std::string_view name) const;
    /// Adds an offline user. With `max_users` already remembered, first forgets the least
    /// recently seen offline user with an empty offline buffer, else the one that has waited
    /// longest with a non-empty one; users online, detached or with lingering connections are
    /// never forgotten here (the SessionManager ends the oldest detached sessions first, see
    /// oldestDetached(); the registry grows past the limit rather than drop an online user).
    User& create(std::string_view name, ClientKind kind, std::size_t max_users,
                 std::int64_t now_ms);

    void setOnline(User& u, Conn* conn, ClientKind kind);
    void setDetached(User& u, std::int64_t now_ms);
    void setOffline(User& u, std::int64_t now_ms);

    [[nodiscard]] const std::vector<User*>& online(ClientKind kind) const {
        return online_[index(kind)];
    }
    [[nodiscard]] const std::vector<User*>& detached(ClientKind kind) const {
        return detached_[index(kind)];
    }
    /// The session detached longest ago, null if none.
    [[nodiscard]] User* oldestDetached() const { return lru_[kLruDetached].head; }
    /// Forgets one offline user (see create()); false if none can be forgotten.
    bool forgetOne();

    /// Stores a delivery in the offline buffer (in id order). False if it could not be kept
    /// (then it counts as dropped).
    bool storeOffline(User& u, StoredFrame e, const BufferLimits& limits);
    /// Keeps a delivery just queued to the user's live connection in its window.
    void storeWindow(User& u, StoredFrame e, const BufferLimits& limits);
    /// Moves the window entry `id` (queued but never written) to the offline buffer. False if
    /// the window no longer holds it.
    bool moveToOffline(User& u, std::uint64_t id, const BufferLimits& limits);
    /// Forgets the window entries with ids up to `id`: the client proved it read them (it
    /// answered a PING queued after them), so no last_id replay can need them again.
    void confirmWindowThrough(User& u, std::uint64_t id);
    /// Moves the oldest offline entry into the window (it was just replayed).
    void promoteOfflineFront(User& u, const BufferLimits& limits);
    /// Counts `n` deliveries lost for `u` (DROPPED and offline_dropped_total).
    void countDropped(User& u, std::uint64_t n);
    /// Applies smaller limits to what is already stored (after reconfigure).
    void enforce(const BufferLimits& limits);

    template <class F>
    void forEach(F&& f) const {
        for (const auto& [name, u] : users_) {
            f(*u);
        }
    }
    /// forEach() that stops once `f` returns false.
    template <class F>
    void forEachWhile(F&& f) const {
        for (const auto& [name, u] : users_) {
            if (!f(*u)) {
                return;
            }
        }
    }

    [[nodiscard]] std::size_t size() const { return users_.size(); }
    [[nodiscard]] std::uint64_t offlineCount() const { return offline_count_; }
    [[nodiscard]] std::uint64_t windowCount() const { return window_count_; }
    [[nodiscard]] std::uint64_t storedBytes() const { return total_bytes_; }

private:
    struct LruList {
        User* head = nullptr;
        User* tail = nullptr;
    };

    static constexpr std::uint8_t kLruDetached = 3;
    static std::size_t index(ClientKind kind) { return kind == ClientKind::Agent ? 1 : 0; }
    void unlist(User& u);
    void lruUnlink(User& u);
    void lruAppend(User& u);
    /// Puts an offline user on the clean or dirty list as its buffer dictates.
    void lruRelink(User& u);
    void forget(User& u);
    /// Drops the user's oldest stored entry (window first); false if it has none.
    bool evictOldest(User& u);
    void dropOfflineFront(User& u);
    void account(User& u, std::size_t bytes, bool add);
    /// Makes room for `need` bytes in u's and the total budget; false if impossible.
    bool makeRoom(User& u, std::size_t need, const BufferLimits& limits);

    Metrics& metrics_;
    // Key views User::name. TODO(#9): use the keyed hash from src/common (point 7).
    std::unordered_map<std::string_view, std::unique_ptr<User>> users_;
    std::array<std::vector<User*>, 2> online_;
    std::array<std::vector<User*>, 2> detached_;
    // [1] offline with empty buffer, [2] offline with pending entries, [3] detached, oldest first
    std::array<LruList, 4> lru_{};
    std::uint64_t offline_count_ = 0;
    std::uint64_t window_count_ = 0;
    std::uint64_t total_bytes_ = 0;
};

}  // namespace tundra::core
