// SPDX-License-Identifier: Apache-2.0
// UserRegistry: every user the server remembers, their presence state, and their stored
// deliveries (offline buffer + delivery window) under the count and byte budgets. Internal to
// the core; treats connections as opaque pointers and sends nothing.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/intrusive_hash.h"
#include "common/keyed_hash.h"
#include "common/short_string.h"
#include "common/slab_pool.h"
#include "core/frame_ring.h"
#include "core/metrics.h"
#include "core/outbox.h"
#include "core/store_recorder.h"
#include "tundra/protocol.h"

namespace tundra::core {

struct Conn;  // a connection's state, owned by the SessionManager

/// A remembered user. Users outlive sessions: the buffer and window belong here. At most one
/// session per user exists (a second REGISTER for an online or detached name is refused), so
/// the session lives inside the user too. 168 bytes when idle with nothing stored (x86-64), in
/// the registry's slab pool, and nothing else for a name of up to 15 bytes.
struct User {
    common::ShortString name;
    Uuid session{};              ///< nil while Offline
    Conn* conn = nullptr;        ///< the live connection while Online
    std::int64_t since_ms = 0;   ///< steady ms: Detached since / Offline since (last seen)
    FrameRing window;            ///< last deliveries queued to a live connection
    FrameRing offline;           ///< deliveries addressed to it while it had no live connection
    std::size_t bytes = 0;       ///< window + offline, charged against user_buffer_bytes
    std::uint32_t dropped = 0;   ///< offline entries lost since the last WELCOME (DROPPED)
    std::uint32_t list_pos = 0;  ///< index in the registry's online/detached list
    /// Index in the registry's by-bytes heap while bytes > 0 (UINT32_MAX: not in it).
    std::uint32_t heap_pos = UINT32_MAX;
    std::uint32_t lingering = 0;  ///< connections the core closed that await onDisconnect()
    ClientKind kind = ClientKind::User;
    UserState state = UserState::Offline;
    std::uint8_t lru = 0;  ///< which list holds it (0 none, 1 clean, 2 dirty offline, 3 detached)
    bool window_replayed = false;  ///< the current registration asked for last_id > 0
    bool store_dirty = false;      ///< its row is in the open store batch already
    /// Window entries up to this id were popped in the open batch (0: none): written as one
    /// TrimWindow op per user and batch instead of one delete per entry.
    std::uint64_t store_trim = 0;
    /// The highest id of a window entry stored as an entry of its own (0: none left), so a
    /// window pop above it (a broadcast kept only as a range) writes no trim.
    std::uint64_t store_written_max = 0;
    /// Online with a store: the window holds every broadcast from this id on without an entry
    /// per delivery (StoreOp::bcast_since); 0 = every window entry is stored as an entry.
    std::uint64_t bcast_since = 0;
    /// Online: the current registration's replay bounds (read by the core when a replaced
    /// connection reports what it never wrote). Offline or detached: the links of the LRU list
    /// that holds it (`lru`). Never both at once, so they share 16 bytes: setOnline() takes the
    /// user out of its list before attach() writes `replay`, and `replay` is read only while
    /// the user is online.
    union Phase {
        struct Links {
            User* prev;
            User* next;
        } lru;
        struct Replay {
            std::uint64_t resume_last_id;  ///< last_id of the current registration
            /// Oldest window id replayed after the current WELCOME (UINT64_MAX: none)
            std::uint64_t replay_floor;
        } replay;
    } phase{};
    User* name_next = nullptr;     ///< chain link in the registry's table of users by name
    User* session_next = nullptr;  ///< chain link in the SessionManager's table by session id
};

/// A user's key in the registry's table: its name.
struct UserName {
    std::string_view operator()(const User& u) const { return u.name; }
};

struct BufferLimits {
    std::size_t max_buffered = 50;
    std::size_t user_bytes = 1U << 20;
    std::size_t total_bytes = 256U << 20;
};

// Byte budget policy (documented in docs/PROTOCOL.md, section 12, as well). Every stored entry
// is charged its full frame size to the user holding it, even when the frame is shared with other
// users, so the accounted total is an upper bound of the real memory.
//
// Per user: when an entry would push its user U over `user_bytes`, U's own oldest entries go:
// window entries (already written, kept only as a safety net for last_id replays; their loss is
// not a DROPPED) before offline entries (each one counted in the user's DROPPED and in
// offline_dropped_total).
//
// All users together (fair share): when an entry for U would push everybody over `total_bytes`,
// the oldest entries of the user holding the most bytes go first, one at a time, until it fits:
// U's own when U holds at least as much as anyone else (ties go against U), otherwise the
// heaviest other user's. So nobody can drain the shared pool for the others: parking messages in
// many throwaway users only makes those users the heaviest, and they lose first; a user holding
// less than the heaviest always gets its entry stored (unless the entry alone is larger than a
// budget). Under pressure the holdings converge to equal shares (total_bytes divided by the
// users holding entries), and a user only loses entries while it is among the heaviest. Entries
// taken from another user are counted in budget_evictions_total (and, for offline entries, in
// that user's DROPPED). The heaviest user is found in O(log n) through an indexed max-heap of
// users by bytes held (only users that hold something are in it), kept only while the total
// budget is under pressure (see user_registry.cc), so deliveries far from it do not pay for it.
//
// Names are client-chosen, so the table of users hashes them with common::KeyedStringHash
// (SipHash-2-4 under a per-process random key): nobody can pick names that share a bucket.
class UserRegistry {
public:
    /// Users by name, hashed with the per-process key; linked through User::name_next (no node
    /// per user). The registry owns the users: create() makes one in its slab pool, forget()
    /// destroys it.
    using UserTable =
        common::IntrusiveHashTable<User, UserName, common::KeyedStringHash, &User::name_next>;

    /// Without a recorder it records nothing (tests of the registry alone).
    explicit UserRegistry(Metrics& metrics) : metrics_(metrics), rec_(own_recorder_) {}
    UserRegistry(Metrics& metrics, StoreRecorder& rec) : metrics_(metrics), rec_(rec) {}
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
    /// Forgets `u` if it is offline, has no closing connection and nothing in its offline
    /// buffer (an EPHEMERAL user after LOGOUT); false otherwise.
    bool forgetUnused(User& u);

    /// Stores a delivery in the offline buffer (in id order). False if it could not be kept
    /// (then it counts as dropped).
    bool storeOffline(User& u, StoredFrame e, const BufferLimits& limits);
    /// Keeps a delivery just queued to the user's live connection in its window. `ranged`: a
    /// broadcast covered by the user's broadcast range (stored once for all, no entry).
    void storeWindow(User& u, StoredFrame e, const BufferLimits& limits, bool ranged = false);
    /// storeWindow() for a delivery newer than everything stored (a broadcast just accepted:
    /// ids only grow), with the same result; inline, and without the sorted insert, while
    /// nothing has to be evicted for it but the oldest window entry.
    void storeNewestWindow(User& u, const StoredFrame& e, const BufferLimits& limits, bool ranged) {
        const std::size_t need = e.bytes();
        if (limits.max_buffered == 0 || heap_live_ || u.window.size() > limits.max_buffered) {
            storeWindow(u, e, limits, ranged);
            return;
        }
        if (u.window.size() == limits.max_buffered) {
            popWindowFront(u);
        }
        if (u.bytes + need > limits.user_bytes || total_bytes_ + need > limits.total_bytes) {
            storeWindow(u, e, limits, ranged);  // evicts more first (the budgets' rules)
            return;
        }
        if (!ranged) {
            recordPut(u, e, true);
        }
        u.window.pushBack(e);
        u.bytes += need;
        total_bytes_ += need;
        ++window_count_;
    }
    /// With a store: from id `since` on, the broadcasts `u` receives are stored once for all
    /// recipients, not as entries of its log (called when it comes online). Closes a range
    /// of another client kind first.
    void openBroadcasts(User& u, std::uint64_t since);
    /// Ends the user's broadcast range: its window entries are written as entries of their own
    /// (the stored broadcasts they point to may go once the user is not online).
    void closeBroadcasts(User& u);
    /// Moves the window entries with the given ids (queued to a dead connection, never written;
    /// sorted ascending, no duplicates, no 0) to the offline buffer, all in one pass: linear in
    /// the sizes of the window, the buffer and `ids`, never one ring erase per id. The result
    /// is what storing them one by one would keep (the newest max_buffered by id, then the byte
    /// budgets). Returns how many ids the window no longer held (lost, not counted here).
    std::size_t moveToOffline(User& u, const std::vector<std::uint64_t>& ids,
                              const BufferLimits& limits);
    /// Forgets the window entries with ids up to `id`: the client proved it read them (it
    /// answered a PING queued after them), so no last_id replay can need them again.
    void confirmWindowThrough(User& u, std::uint64_t id);
    /// Moves the oldest offline entry into the window (it was just replayed).
    void promoteOfflineFront(User& u, const BufferLimits& limits);
    /// A restored entry (from a StoreSnapshot at start): written entries join the window,
    /// the others the offline buffer. Budgets are applied afterwards with enforce().
    void restoreEntry(User& u, StoredFrame e, bool written);
    /// Removes the offline entry with this id, if still buffered (its batch could not be
    /// stored, so the sender was refused). True if it was there.
    bool removeOffline(User& u, std::uint64_t id);
    /// The user's store row changed (kind, session, presence, DROPPED).
    void touch(User& u) { rec_.touchUser(u.name, u.store_dirty); }
    /// Counts `n` deliveries lost for `u` (DROPPED and offline_dropped_total).
    void countDropped(User& u, std::uint64_t n);
    /// Applies smaller limits to what is already stored (after reconfigure).
    void enforce(const BufferLimits& limits);

    template <class F>
    void forEach(F&& f) const {
        users_.forEach([&f](const User& u) { f(u); });
    }
    template <class F>
    void forEachMutable(F&& f) {
        users_.forEach(std::forward<F>(f));
    }
    /// forEach() that stops once `f` returns false.
    template <class F>
    void forEachWhile(F&& f) const {
        users_.forEachWhile([&f](const User& u) { return f(u); });
    }

    [[nodiscard]] std::size_t size() const { return users_.size(); }
    [[nodiscard]] std::uint64_t offlineCount() const { return offline_count_; }
    [[nodiscard]] std::uint64_t windowCount() const { return window_count_; }
    [[nodiscard]] std::uint64_t storedBytes() const { return total_bytes_; }
    /// The user holding the most bytes (window + offline), nullptr when nobody holds any.
    /// The user holding the most bytes (nullptr if none). O(1) while the budget is under
    /// pressure, else a scan of every user (tests and diagnostics only).
    [[nodiscard]] const User* heaviest() const;
    /// Whether the by-bytes heap is maintained right now (tests).
    [[nodiscard]] bool heapLive() const { return heap_live_; }

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
    void forget(User& u, const char* why = "max_users reached");
    /// Drops the user's oldest stored entry (window first); false if it has none.
    bool evictOldest(User& u);
    void dropOfflineFront(User& u);
    void account(User& u, std::size_t bytes, bool add);
    /// Makes room for `need` bytes in u's and the total budget; false if impossible.
    bool makeRoom(User& u, std::size_t need, const BufferLimits& limits);
    /// Evicts, oldest first, from whoever holds the most (ties against u) until `need` more
    /// bytes fit the total budget; false if u would have to give and has nothing left.
    bool fitTotal(User& u, std::size_t need, const BufferLimits& limits);
    // The indexed max-heap of users by bytes (heap_pos is each user's index).
    void heapStart();                             // build the heap (O(users)) if not live
    void heapStopBelow(std::uint64_t threshold);  // drop it while total_bytes_ < threshold
    void heapFix(User& u);
    void heapRemove(User& u);
    void heapSiftUp(std::size_t i);
    void heapSiftDown(std::size_t i);
    void heapPlace(std::size_t i, User* u) {
        heap_[i] = u;
        u->heap_pos = static_cast<std::uint32_t>(i);
    }

    /// Pops the oldest window entry (recorded as a window trim).
    StoredFrame popWindowFront(User& u);
    /// Records an entry put; a pending trim that would cover it is written first.
    void recordPut(User& u, const StoredFrame& e, bool written);

    Metrics& metrics_;
    StoreRecorder own_recorder_;  // off; used only without a recorder of the manager's
    StoreRecorder& rec_;
    // The users' storage (no malloc header per user); declared before the table that links them.
    common::SlabPool pool_{sizeof(User), alignof(User)};
    UserTable users_;
    mutable User* last_found_ = nullptr;  // find()'s last hit (forget() clears it)
    std::vector<User*> heap_;  // users with bytes > 0, max-heap by bytes (while heap_live_)
    bool heap_live_ = false;
    std::array<std::vector<User*>, 2> online_;
    std::array<std::vector<User*>, 2> detached_;
    // [1] offline with empty buffer, [2] offline with pending entries, [3] detached, oldest first
    std::array<LruList, 4> lru_{};
    std::uint64_t offline_count_ = 0;
    std::uint64_t window_count_ = 0;
    std::uint64_t total_bytes_ = 0;
};

}  // namespace tundra::core
