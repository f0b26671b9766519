// SPDX-License-Identifier: Apache-2.0
// Internal to src/core: the state shared by the SessionManager's concern files (Conn, the
// Impl struct with every member it keeps, small inline helpers). Each .cc defines one concern:
// session_manager.cc (the public facade, output helpers), dispatch.cc, registration.cc,
// routing.cc, heartbeat.cc, shutdown.cc, health.cc. Not installed; only core and its tests
// include it.
#pragma once

#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/intrusive_hash.h"
#include "common/keyed_hash.h"
#include "common/log_throttle.h"
#include "common/ring_queue.h"
#include "common/slab_pool.h"
#include "core/deadline_wheel.h"
#include "core/metrics.h"
#include "core/rate_limit.h"
#include "core/session_manager.h"
#include "core/user_registry.h"
#include "tundra/messages.h"

namespace tundra::core {

/// A session id as logs show it (see Impl::sessionText): "ab12.." or "-".
struct SessionText {
    bool set = false;
    std::uint8_t first = 0;
    std::uint8_t second = 0;

    static SessionText of(const User* u) {
        SessionText t;
        if (u != nullptr && !isNil(u->session)) {
            t.set = true;
            t.first = u->session[0];
            t.second = u->session[1];
        }
        return t;
    }
};

}  // namespace tundra::core

template <>
struct fmt::formatter<tundra::core::SessionText> : fmt::formatter<std::string_view> {
    template <typename Context>
    auto format(const tundra::core::SessionText& t, Context& ctx) const {
        if (!t.set) {
            return fmt::format_to(ctx.out(), "-");
        }
        return fmt::format_to(ctx.out(), "{:02x}{:02x}..", t.first, t.second);
    }
};

namespace tundra::core {

inline constexpr std::int64_t kTickMs = 100;
inline constexpr std::size_t kWheelSlots = 1024;  // 102.4 s per revolution
inline constexpr int kSessionIdAttempts = 4;

struct UuidHash {
    std::size_t operator()(const Uuid& id) const noexcept {
        std::uint64_t a = 0;
        std::uint64_t b = 0;
        std::memcpy(&a, id.data(), 8);
        std::memcpy(&b, id.data() + 8, 8);
        return static_cast<std::size_t>(a ^ (b * 0x9E3779B97F4A7C15ULL));
    }
};

/// A user's key in the SessionManager's table of sessions: its session id.
struct UserSession {
    const Uuid& operator()(const User& u) const { return u.session; }
};

/// Online and detached sessions by id, linked through User::session_next. Session ids are
/// random (chosen here, never by a client), so UuidHash's mix is enough. Looked up only on a
/// resume and a session expiry: 8 sessions per bucket (1 to 2 bytes of buckets per session).
using SessionTable = common::IntrusiveHashTable<User, UserSession, UuidHash, &User::session_next,
                                                std::equal_to<>, 8>;

/// What the core keeps per source address (SessionManager::onConnect's `source`): open
/// connections and the REGISTER token bucket. Kept while it has connections or its bucket is not
/// full again, so closing and reconnecting does not reset the bucket.
struct SourceEntry {
    std::size_t conns = 0;
    std::int64_t tokens_milli = 0;           ///< REGISTER tokens x 1000
    std::int64_t refill_ms = 0;              ///< when tokens_milli was last brought up to date
    std::uint32_t auth_failures = 0;         ///< failed authentications (auth_fail_limit)
    std::int64_t auth_last_failure_ms = 0;   ///< when the last one happened
    std::int64_t auth_blocked_until_ms = 0;  ///< locked out until then
};

/// For logs: "peer closed", "heartbeat timeout", ...
const char* reasonName(DisconnectReason r);

/// Most malformed frames a connection's count keeps (Conn::bad_frames is 24 bits; the
/// max_bad_frames setting stops at 1,000,000).
inline constexpr std::uint32_t kBadFramesCap = (1U << 24) - 1;

// Per-connection state: 136 bytes (x86-64) in the ConnMap's slab pool, nothing else allocated
// while idle. Ordered by size so nothing is padding (the flags share a word with
// bad_frames); tests/unit/core/memory_test.cc holds the whole per-connection footprint of the
// core.
struct Conn {
    ConnId id = 0;
    User* user = nullptr;  ///< set by REGISTER; kept after the core closed it (for unwritten)
    SourceEntry* source = nullptr;  ///< its source address entry; null = unknown source
    std::int64_t connected_ms = 0;
    std::int64_t last_activity_ms = 0;   ///< last inbound frame (O(1) store per frame)
    std::int64_t ping_sent_us = 0;       ///< when the last PING went out (steady microseconds)
    std::uint64_t ping_window_mark = 0;  ///< newest window id queued before the PING, 0 = none
    std::uint64_t frames_in = 0;
    std::uint64_t frames_out = 0;
    /// When its token stops being valid (steady ms), 0 = never; AUTH_REFRESH moves it.
    std::int64_t auth_deadline_ms = 0;
    /// The deadline its conn_wheel_ entry is filed for, 0 = none: the earliest of its REGISTER,
    /// token and heartbeat deadlines when it was filed. The wheel holds only the id and asks
    /// for this (an entry in another deadline's slot is stale).
    std::int64_t wake_ms = 0;
    /// Per-connection rate limits, refilled together: frames (rate_messages_per_s/_burst) and
    /// bytes (rate_bytes_per_s/_burst).
    TokenBuckets<2> rate;
    /// Token of the last server PING not yet answered, 0 = none (sent as 8 bytes; the server
    /// only ever issues 32-bit ones).
    std::uint32_t ping_token = 0;
    /// What its identity may do (core::perm bits); everything without an Authenticator.
    std::uint32_t perms = perm::kAll;
    float rtt_ms = -1;  ///< last PING/PONG round trip, < 0 = none yet
    /// Frames answered with a bad-frame ERROR so far (closed at max_bad_frames; stops at
    /// kBadFramesCap).
    std::uint32_t bad_frames : 24 = 0;
    bool awaiting_pong : 1 = false;  ///< a PING went out and no frame has arrived since
    /// The core closed it (closeConn); onDisconnect() will follow. This is the one place that
    /// decides a chat connection is closing: the server keeps no set of its own, and net only
    /// executes the close-after-flush.
    bool closed : 1 = false;
    bool counted : 1 = true;  ///< counts toward max_clients (false for SERVER_FULL refusals)
    bool awaiting_register : 1 = false;  ///< counted, and no REGISTER has succeeded on it yet
    /// Its REGISTER carried EPHEMERAL and created the user: after LOGOUT, once this connection
    /// is gone, the user is forgotten if nothing is buffered for it.
    bool forget_at_logout : 1 = false;
    Conn* map_next = nullptr;  ///< chain link in the ConnMap

    [[nodiscard]] bool registered() const { return user != nullptr && !closed; }
};

/// The core's connections by id. Each Conn lives in the map's slab pool (no malloc header),
/// linked into an intrusive table (no map node), and stays at the same address until erased.
class ConnMap {
public:
    ConnMap() = default;
    ~ConnMap() {
        table_.forEach([](Conn& c) { common::SlabPool::destroy(&c); });
        table_.clear();
    }
    ConnMap(const ConnMap&) = delete;
    ConnMap& operator=(const ConnMap&) = delete;

    [[nodiscard]] Conn* find(ConnId id) const { return table_.find(id); }
    /// The new connection `id` (its other fields default), or null if `id` is already there.
    Conn* add(ConnId id) {
        if (table_.contains(id)) {
            return nullptr;
        }
        Conn* c = pool_.make<Conn>();
        c->id = id;
        table_.insert(*c);
        return c;
    }
    /// Removes and destroys `c`.
    void erase(Conn& c) {
        table_.erase(c);
        common::SlabPool::destroy(&c);
    }
    [[nodiscard]] std::size_t size() const { return table_.size(); }
    /// Calls f(Conn&) for each connection; `f` must not add or erase any.
    template <class F>
    void forEach(F&& f) const {
        table_.forEach(std::forward<F>(f));
    }

private:
    struct Key {
        ConnId operator()(const Conn& c) const { return c.id; }
    };
    struct Hash {  // ids are the server's (a counter and a slot): a full 64-bit mix
        std::size_t operator()(ConnId id) const {
            std::uint64_t x = id;
            x ^= x >> 33;
            x *= 0xFF51AFD7ED558CCDULL;
            x ^= x >> 33;
            return static_cast<std::size_t>(x);
        }
    };
    common::SlabPool pool_{sizeof(Conn), alignof(Conn)};  // before the table of its objects
    common::IntrusiveHashTable<Conn, Key, Hash, &Conn::map_next> table_;
};

// Message kinds routed by Impl::route().
enum class Audience { Everyone, AgentsOnly };

struct SessionManager::Impl {
    Impl(SessionManager& self, Outbox& outbox, const common::Clock& clock,
         std::function<Uuid()> new_session_id, std::function<ServerStats()> server_stats);

    // ---- small helpers (session_manager.cc) -------------------------------------------------

    const CoreConfig& cfg() const { return self_.config_; }
    Metrics& metrics() { return self_.metrics_; }
    std::int64_t now() const { return clock_.steadyMs(); }
    BufferLimits limits() const {
        return BufferLimits{cfg().max_buffered, cfg().user_buffer_bytes, cfg().total_buffer_bytes};
    }
    /// For logs: never the whole session id (whoever reads the logs could resume the session
    /// with it), only its first 4 hex digits, enough to tell sessions apart in one log. Formatted
    /// only if the line is written: a debug line's arguments are built even when debug is off.
    static SessionText sessionText(const User* u) { return SessionText::of(u); }

    bool send(Conn& c, SharedFrame frame, std::uint64_t delivery_id = 0);
    /// send() through Outbox::sendNow: for a frame with nothing to batch it with (a PING).
    bool sendNow(Conn& c, SharedFrame frame);
    void sendError(Conn& c, std::uint16_t seq, ErrorCode code, std::string_view text);
    void sendSystem(Conn& c, const msg::System& s, std::uint16_t seq);
    /// The core ends a connection: flush what is queued, then close. onDisconnect() follows.
    void closeConn(Conn& c);
    std::uint64_t nextId();

    // ---- inbound frames (dispatch.cc) --------------------------------------------------------

    /// Returns false once the core has closed `id` (the rest of its input is to be ignored).
    bool onFrame(ConnId id, const FrameHeader& header, ByteSpan payload);
    /// onFrame() for a known connection: counts it, then checks and hands it to its handler.
    void dispatch(Conn& c, const FrameHeader& header, ByteSpan payload);
    /// ERROR with the header's sequence, then the one close request for the connection.
    void onHeaderError(ConnId id, std::uint16_t seq, ErrorCode code, std::string_view why);
    void handleListUsers(Conn& c, std::uint16_t seq, ByteSpan payload);
    /// The per-connection rate limit: false (and ERROR RATE_LIMITED) if the frame is refused.
    bool admitFrame(Conn& c, const FrameHeader& header, std::size_t payload_size);
    /// Closes `c` once it has sent max_bad_frames frames answered with a bad-frame ERROR.
    void checkBadFrames(Conn& c);

    // ---- connections, REGISTER, resume, takeover, LOGOUT, expiry (registration.cc) ----------

    void onConnect(ConnId id, std::string_view source, std::string_view cert_name);
    /// Refuses a new connection with ERROR SERVER_FULL (not counted toward the limits).
    void refuse(Conn& c, std::uint64_t& counter, common::LogThrottle& throttle,
                std::string_view why);
    /// The connection's REGISTER succeeded (or it is gone): it stops counting as unregistered.
    void markRegistered(Conn& c);
    /// Takes one REGISTER token from the source of `c`; false if its bucket is empty.
    bool takeRegisterToken(Conn& c);
    /// Forgets source entries with no connection and a full bucket (from tick()).
    void sweepSources(std::int64_t t);
    /// Before a new user is created at max_users: ends the oldest detached sessions while no
    /// offline user can be forgotten instead.
    void makeRoomForUser();
    void onDisconnect(ConnId id, DisconnectReason reason,
                      const std::vector<std::uint64_t>& unwritten);
    /// The session of `c` loses its connection without LOGOUT: it waits session_timeout.
    void detach(Conn& c, const char* why);
    Uuid freshSessionId();
    /// A detached session whose time is up expires now, even if tick() has not run yet, so the
    /// deadline is exact for REGISTER.
    void expireIfDue(User& u);
    void expire(User& u);
    /// `ephemeral`: the REGISTER's EPHEMERAL flag (a user it creates is forgotten at LOGOUT).
    void handleRegister(Conn& c, std::uint16_t seq, ByteSpan payload, bool ephemeral = false);
    /// Makes `u` online on `c`: WELCOME, DROPPED, replays, then JOINED to the others.
    void attach(Conn& c, User& u, const msg::Register& r, std::uint16_t seq, bool resumed,
                bool announce_join);
    void handleLogout(Conn& c, std::uint16_t seq);

    // ---- authentication and authorization (auth.cc) -----------------------------------------

    /// REGISTER with an Authenticator: false (and ERROR AUTH_FAILED) unless `r` carries a valid
    /// token for its name; on success sets the connection's permissions and token deadline.
    bool authenticate(Conn& c, std::uint16_t seq, const msg::Register& r);
    /// True if the source of `c` is locked out after too many failures (counted, answered).
    bool lockedOut(Conn& c, std::uint16_t seq);
    /// One failed authentication from the source of `c`: counted, logged (throttled, at debug,
    /// with `why`), answered AUTH_FAILED that never says why.
    void authFailed(Conn& c, std::uint16_t seq, std::string_view why);
    /// Applies a verified identity's permissions and expiry to `c`.
    void applyIdentity(Conn& c, const AuthResult& r);
    void handleAuthRefresh(Conn& c, std::uint16_t seq, ByteSpan payload);
    /// From onConnTimer: false (and the connection closed, ERROR AUTH_FAILED) once the token of
    /// a registered connection has expired at `t`.
    bool checkToken(Conn& c, std::int64_t t);
    /// False (and ERROR FORBIDDEN, the connection stays open) unless `c` holds all of `need`.
    bool permitted(Conn& c, std::uint16_t seq, std::uint32_t need, std::string_view what);

    // ---- presence, routing, delivery windows and replay (routing.cc) -------------------------

    enum class Outcome { None, Delivered, Buffered };
    /// To one recipient: its live connection if it has one that takes the frame, else its
    /// offline buffer. `broadcast`: to everyone (or every agent), stored once (PutBroadcast).
    Outcome deliver(User& r, const StoredFrame& e, bool broadcast = false);
    /// Common path of MESSAGE, AGENT_COMMAND and IMAGE once the fields and names are valid.
    void route(Conn& c, std::uint16_t seq, bool want_ack, msg::Delivery& d, Audience audience);
    bool checkRecipientName(Conn& c, std::uint16_t seq, std::string_view to);
    void handleMessage(Conn& c, std::uint16_t seq, bool want_ack, ByteSpan payload);
    void handleAgentCommand(Conn& c, std::uint16_t seq, bool want_ack, ByteSpan payload);
    void handleImage(Conn& c, std::uint16_t seq, bool want_ack, ByteSpan payload);
    /// Sends a stored delivery again, flagged REPLAY (a copy: the stored frame is shared).
    bool replay(Conn& c, const StoredFrame& e);
    /// Deliveries that were queued to a dead connection but never written.
    void requeueUnwritten(User& u, const Conn& c, const std::vector<std::uint64_t>& unwritten);
    /// A throttled log line if storing took entries from the heaviest user since `before`.
    void noteBudgetEvictions(std::uint64_t before);

    /// A broadcast accepted (id, frame, store record) whose fan-out and ACK wait in
    /// `pending_bcasts_` until flushBroadcasts().
    struct PendingBroadcast {
        StoredFrame e;
        Conn* from = nullptr;  ///< the sender's connection (the ACK's destination)
        User* sender = nullptr;
        std::uint16_t seq = 0;
        bool want_ack = false;
        bool all = true;  ///< Audience::Everyone (else agents only)
        MsgType type = MsgType::BroadcastMessage;
        std::uint32_t delivered = 0;
        std::uint32_t buffered = 0;
        /// With a store and an ACK asked for: whose offline buffers it went to (HeldAck).
        std::string buffered_first;
        std::vector<std::string> buffered_more;
    };
    /// Fans the pending broadcasts out, recipient by recipient (each online or detached
    /// recipient takes all of them, in id order, before the next one is touched), then sends
    /// their ACKs in order. Every path that could send to anyone, close a connection or handle
    /// a frame other than a broadcast calls it first, so no connection can observe the delay.
    void flushBroadcasts();
    /// One recipient's share of the pending broadcasts, one frame at a time.
    void fanOutTo(User& r, ClientKind kind);
    /// The pending broadcasts' frames back to back (`everyone_only`: those to everyone).
    SharedFrame joinFrames(bool everyone_only) const;
    /// An online recipient's share as one joined unit (Outbox::sendJoined); false if its
    /// connection did not take it (then nothing was done).
    bool deliverJoined(User& r, ClientKind kind, const SharedFrame& joined);

    // ---- durability (store.cc) ---------------------------------------------------------------

    /// An ACK reporting buffered > 0, held until the batch that stored it commits.
    struct HeldAck {
        ConnId conn = 0;
        std::uint64_t batch = 0;
        std::uint16_t seq = 0;
        std::uint64_t id = 0;
        /// The ACK's counts; it is encoded when it leaves (nothing allocated while held).
        std::uint32_t delivered = 0;
        std::uint32_t buffered = 0;
        /// Whose offline buffer it went to: the first (a direct message's only one) needs no
        /// vector, the others of a broadcast follow in `buffered_more`.
        std::string buffered_first;
        std::vector<std::string> buffered_more;
    };
    bool storeOn() const { return recorder_.on(); }
    void attachStore(const StoreSnapshot& snapshot);
    StoreBatch takeStoreBatch();
    void onStoreResult(BatchResult& result);
    /// While degraded: a full resync batch once a second (from tick()), the probe that ends it.
    void probeStore();
    /// Appends every user and entry to `b` (a full batch).
    void fillFullBatch(StoreBatch& b);
    /// Extends the persisted id reserve when ids come near it.
    void reserveIds();
    /// Once a second (from tick()): forgets the stored broadcasts older than every online
    /// user's window (one TrimBroadcasts op).
    void trimBroadcasts();

    // ---- presence (heartbeat.cc: flushed by tick) ---------------------------------------------

    bool presencePush() const { return cfg().presence_events; }
    /// Queues JOINED or LEFT about `subject` for the next tick; a queued opposite event for the
    /// same user cancels out instead (nothing is sent for a join and leave within one tick).
    void announce(const User& subject, SystemEvent event);
    /// Sends the queued JOINED/LEFT to every online user but their subject.
    void flushPresence();

    // ---- PING/PONG, heartbeat and expiry timers (heartbeat.cc) -------------------------------

    /// ping_interval_ms <= 0 turns heartbeats off (no PINGs, nobody declared dead).
    bool heartbeatsOn() const { return cfg().ping_interval_ms > 0; }
    /// The heartbeat deadline: a PING is due (or, awaiting a PONG, the connection is dead).
    std::int64_t connDeadline(const Conn& c) const {
        return (c.awaiting_pong ? c.ping_sent_us / 1000 : c.last_activity_ms) +
               cfg().ping_interval_ms;
    }
    /// The earliest of the connection's deadlines (REGISTER while awaiting it, token expiry,
    /// heartbeat), 0 = none.
    std::int64_t connWake(const Conn& c) const;
    /// Files the connection's next wake-up unless its live entry comes no later (one entry per
    /// connection; a deadline that only moved later is re-filed when the entry fires).
    void fileConn(Conn& c);
    void handlePing(Conn& c, std::uint16_t seq, ByteSpan payload);
    void handlePong(Conn& c, std::uint16_t seq, ByteSpan payload);
    void tick();
    /// The connection's wheel entry fired: REGISTER timeout, token expiry, PING or heartbeat
    /// timeout, whichever are due; then its next wake-up is filed.
    void onConnTimer(ConnId id, std::int64_t t);
    void onSessionTimer(const Uuid& sid, std::int64_t deadline, std::int64_t t);
    /// From onConnTimer: false (and the connection closed) once its REGISTER is overdue at `t`.
    bool checkRegisterDeadline(Conn& c, std::int64_t t);
    /// Re-files every deadline (after the intervals changed).
    void rebuildTimers();

    // ---- shutdown (shutdown.cc) and health (health.cc) ---------------------------------------

    void shutdown(std::uint16_t retry_after_s);
    Gauges gauges() const;
    std::string healthJson(ConnId asker) const;
    /// HEALTH_RESULT for `c`: the full JSON, or without an Authenticator's kHealthDetails
    /// permission only status, version, protocol and its own connection.
    std::string healthJsonFor(ConnId asker, bool full) const;

    // ---- state ------------------------------------------------------------------------------

    SessionManager& self_;
    Outbox& outbox_;
    StoreRecorder recorder_;  // before users_, which records through it
    const common::Clock& clock_;
    std::function<Uuid()> new_session_id_;
    std::function<ServerStats()> server_stats_;
    UserRegistry users_;
    ConnMap conns_;
    SessionTable sessions_;  // online and detached sessions only
    // One live entry per connection, the connection's id only (Conn::wake_ms is its deadline):
    // its REGISTER, token and heartbeat deadlines.
    KeyWheel<ConnId> conn_wheel_;
    DeadlineWheel<Uuid> session_wheel_;
    std::shared_ptr<const Authenticator> auth_;  // null: auth = none
    // TLS client certificate names of the connections that have one (few: kept aside so a
    // Conn does not grow for them).
    std::unordered_map<ConnId, std::string> cert_names_;
    // Source addresses (client-controlled through which address they connect from): keyed
    // hash, so no one can choose addresses that collide.
    common::KeyedStringMap<SourceEntry> sources_;
    std::int64_t next_source_sweep_ms_ = 0;
    std::size_t unregistered_ = 0;  // counted connections without a successful REGISTER
    // Presence queued for the next tick: (name, event) in order; a cancelled entry has an
    // empty name. presence_pending_ maps a name to its live entry.
    std::vector<std::pair<std::string, SystemEvent>> presence_queue_;
    common::KeyedStringMap<std::size_t> presence_pending_;  // keyed: names are client-chosen
    common::LogThrottle log_full_;
    common::LogThrottle log_unregistered_;
    common::LogThrottle log_per_ip_;
    common::LogThrottle log_register_timeout_;
    common::LogThrottle log_register_rate_;
    common::LogThrottle log_detached_evicted_;
    common::LogThrottle log_takeover_lost_;
    common::LogThrottle log_auth_failed_;
    common::LogThrottle log_auth_expired_;
    LatencyStats latency_;
    std::size_t live_conns_ = 0;  // counted toward max_clients
    std::int64_t start_ms_;
    std::uint64_t last_id_;
    std::uint64_t next_token_ = 1;
    // The PING of the current tick, one frame and one token for every connection it pings:
    // 10,000 idle connections pinged in one tick then cost one allocation, not 20,000 short
    // ones whose holes between the long-lived allocations of the same burst stayed resident.
    SharedFrame tick_ping_;
    std::uint32_t tick_ping_token_ = 0;
    std::int64_t tick_ping_at_ = -1;  // the tick (loop time) it was made for
    common::LogThrottle budget_log_;  // one line a second at most per event kind
    common::LogThrottle rate_log_;
    common::LogThrottle bad_frame_log_;
    // Durability: ACKs waiting for their batch, the persisted id reserve, degraded mode.
    common::RingQueue<HeldAck> held_acks_;  // in batch order; storage kept between batches
    // Broadcasts accepted but not yet fanned out (SessionManager::beginInput): id order.
    std::vector<PendingBroadcast> pending_bcasts_;
    bool batching_ = false;         // between beginInput() and endInput()
    bool flushing_bcasts_ = false;  // inside flushBroadcasts() (its own sends must not recurse)
    std::uint64_t id_reserve_ = 0;
    bool degraded_ = false;
    std::uint64_t resync_seq_ = 0;  // the full batch in flight, 0 = none
    bool want_full_ = false;        // the next batch is a full resync
    std::int64_t next_probe_ms_ = 0;
    // Stored broadcasts: the newest one recorded, the id up to which they are trimmed, and
    // when trimBroadcasts() looks next.
    std::uint64_t bcast_last_ = 0;
    std::uint64_t bcast_trimmed_ = 0;
    std::int64_t next_bcast_trim_ms_ = 0;
    // Flapping on a nearly full disk (a resync fits, the next batch does not): each failure
    // soon after a recovery doubles the wait before the next resync, up to a minute.
    std::int64_t probe_interval_ms_ = 0;         // 0 = the first one (kProbeIntervalMs)
    std::int64_t recovered_ms_ = INT64_MIN / 2;  // when degraded mode last ended
    common::LogThrottle storage_log_;
    common::LogThrottle recovery_log_;
};

/// ERROR codes that mean the client sent a malformed or out-of-protocol frame (they count
/// toward max_bad_frames): INVALID_FORMAT, NOT_REGISTERED, ALREADY_REGISTERED, INVALID_NAME,
/// UNKNOWN_TYPE.
inline bool isBadFrameError(ErrorCode code) {
    return code == ErrorCode::InvalidFormat || code == ErrorCode::NotRegistered ||
           code == ErrorCode::AlreadyRegistered || code == ErrorCode::InvalidName ||
           code == ErrorCode::UnknownType;
}

}  // namespace tundra::core
