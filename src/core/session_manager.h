// SPDX-License-Identifier: Apache-2.0
// The pure chat core: sessions, presence, routing, offline buffers, delivery windows,
// heartbeats and metrics. No sockets, no clock reads except through common::Clock; output goes
// through Outbox. Driven by the server (or by tests with a FakeClock and a RecordingOutbox).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "core/authenticator.h"
#include "core/metrics.h"
#include "core/outbox.h"
#include "core/store_batch.h"
#include "tundra/codec.h"
#include "tundra/protocol.h"

namespace tundra::core {

/// How presence reaches clients (docs/PROTOCOL.md, "Presence").

struct CoreConfig {
    std::size_t max_clients = 1000;
    std::size_t max_payload = kMaxPayload;  ///< bound on client frames
    std::int64_t session_timeout_ms = 120'000;
    std::int64_t ping_interval_ms = 30'000;
    std::size_t max_buffered = 50;                ///< per-user offline buffer and window
    std::size_t user_buffer_bytes = 1U << 20;     ///< per-user budget (offline + window)
    std::size_t total_buffer_bytes = 256U << 20;  ///< all users together
    std::size_t max_users = 100'000;
    bool presence_events = true;  ///< false: presence on demand (LIST_USERS only)
    /// A connection that has not registered within this long gets ERROR NOT_REGISTERED and is
    /// closed after flush; 0 = no deadline.
    std::int64_t register_timeout_ms = 10'000;
    /// Connections not yet registered, server-wide; beyond it a new connection gets
    /// SERVER_FULL. 0 = no cap.
    std::size_t max_unregistered = 1024;
    /// Open connections per source address (the peer IP, loopback included); beyond it a new
    /// connection gets SERVER_FULL. 0 = no cap.
    std::size_t max_connections_per_ip = 64;
    /// REGISTER attempts per second per source address (token bucket refilled at this rate,
    /// holding up to register_burst); beyond it ERROR RATE_LIMITED. 0 = no limit.
    std::uint32_t register_rate = 20;
    std::uint32_t register_burst = 40;
    /// Per-connection rate limits (token buckets; every frame counts, docs/PROTOCOL.md 2.5).
    /// A rate of 0 turns that limit off.
    std::uint64_t rate_messages_per_s = 1000;
    std::uint64_t rate_messages_burst = 2000;
    std::uint64_t rate_bytes_per_s = 8U << 20;
    std::uint64_t rate_bytes_burst = 16U << 20;
    /// Frames answered with a bad-frame ERROR before the connection is closed; 0 = never.
    std::uint32_t max_bad_frames = 16;
    /// With an Authenticator: failed authentications per source address before each further
    /// failure locks that address out (REGISTER and AUTH_REFRESH answered AUTH_FAILED without
    /// looking at the token) for 1 s, doubling per failure up to auth_fail_lockout_max_ms. The
    /// count is forgotten after auth_fail_lockout_max_ms without a failure.
    std::uint32_t auth_fail_limit = 5;
    std::int64_t auth_fail_lockout_max_ms = 60'000;
    std::string software_version = "0.1.0";
};

/// Why a connection ended, from the core's point of view.
enum class DisconnectReason { PeerClosed, Error, SlowConsumer, HeartbeatTimeout, Local, Shutdown };

/// Extra figures only the server knows, added to HEALTH_RESULT and /metrics.
struct ServerStats {
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
    std::uint64_t rss_bytes = 0;
    // Net (issue 9): queued output as charged to the caps, reading paused by the soft cap,
    // connections cut by the hard cap, peers shed at the fd limit, admin connections refused.
    std::uint64_t output_queued_bytes = 0;
    std::uint64_t output_paused = 0;
    std::uint64_t output_pauses_total = 0;
    std::uint64_t output_cuts_total = 0;
    std::uint64_t accept_shed_total = 0;
    std::uint64_t admin_refused_total = 0;
    /// Storage (issue 11): times reading from clients paused because the writer's queue was
    /// full (backpressure).
    std::uint64_t storage_read_holds_total = 0;
    /// The SQLite store's journal: bytes not yet folded into the database, checkpoints done,
    /// checkpoints that failed (each retried a second later).
    std::uint64_t storage_journal_bytes = 0;
    std::uint64_t storage_checkpoints_total = 0;
    std::uint64_t storage_checkpoint_failures_total = 0;
    // TLS (issue 10): handshakes completed, failed, abandoned at the deadline; open now.
    std::uint64_t tls_handshakes_total = 0;
    std::uint64_t tls_handshake_failures_total = 0;
    std::uint64_t tls_handshake_timeouts_total = 0;
    std::uint64_t tls_connections = 0;
};

class SessionManager {
public:
    /// `new_session_id` makes UUID v4s (common::newSessionId in production; deterministic in
    /// tests). `server_stats` is called when HEALTH_RESULT is built.
    SessionManager(CoreConfig config, Outbox& outbox, const common::Clock& clock,
                   std::function<Uuid()> new_session_id,
                   std::function<ServerStats()> server_stats = {});
    ~SessionManager();
    SessionManager(const SessionManager&) = delete;
    SessionManager& operator=(const SessionManager&) = delete;

    /// A new connection. `source` is an opaque key for where it comes from (the peer IP
    /// without port; empty = unknown, not counted per source). Beyond max_clients,
    /// max_unregistered or max_connections_per_ip it gets ERROR SERVER_FULL and
    /// closeAfterFlush.
    /// `cert_name` is the subject CN of the connection's verified TLS client certificate ("" =
    /// none): with an Authenticator, a REGISTER with an empty token for exactly that name is
    /// authenticated by the certificate (Authenticator::certificate).
    void onConnect(ConnId conn, std::string_view source = {}, std::string_view cert_name = {});
    /// A complete frame whose header passed decodeFrame(). Handles flags, type, registration
    /// state, payload rules and routing. Never calls back into the caller synchronously other
    /// than through Outbox. Returns false once the core has closed `conn` (this frame's LOGOUT,
    /// or earlier): the caller then ignores the rest of its input. The core alone decides that
    /// a chat connection is closing; the caller keeps no state of its own for it.
    bool onFrame(ConnId conn, const FrameHeader& header, ByteSpan payload);
    /// The frames of one read follow (onFrame() calls until endInput()): a broadcast among them
    /// may have its fan-out and ACK wait until endInput() or until anything else would send,
    /// close or handle another kind of frame first, so consecutive broadcasts reach each
    /// recipient in one pass over its state. Nothing a client can observe changes: every
    /// connection gets the same frames in the same order as with one onFrame() at a time.
    void beginInput();
    /// Ends what beginInput() began: the waiting broadcasts go out now.
    void endInput();
    /// decodeFrame() reported a header error: ERROR with `code` and the header's sequence,
    /// then closeAfterFlush, requested exactly once (also for a connection it does not know).
    /// The caller must not close the connection itself.
    void onHeaderError(ConnId conn, std::uint16_t sequence, ErrorCode code, std::string_view why);
    /// The connection is gone. `unwritten` are delivery ids queued but never fully written
    /// (slow consumer, error); they move to the user's offline buffer. Detaches the session.
    void onDisconnect(ConnId conn, DisconnectReason reason,
                      const std::vector<std::uint64_t>& unwritten);
    /// Advances heartbeats (PINGs, dead connections) and session expiry to clock.now. Cheap
    /// when nothing is due; the server calls it every `tickIntervalMs()`.
    void tick();
    [[nodiscard]] std::int64_t tickIntervalMs() const;
    /// SIGTERM: SYSTEM SHUTDOWN(retry_after_s) to every connection, then closeAfterFlush each.
    void shutdown(std::uint16_t retry_after_s);
    /// Runtime-changeable settings (limits, timeouts); used by SIGHUP reload.
    void reconfigure(const CoreConfig& config);
    /// Who may register (docs/PROTOCOL.md, "Authentication"): null (the default) accepts every
    /// REGISTER as today and allows everything; otherwise REGISTER and AUTH_REFRESH are
    /// verified by `auth` and each connection may do what its identity's permissions allow.
    /// Connections already registered keep their identity when it is replaced (SIGHUP).
    void setAuthenticator(std::shared_ptr<const Authenticator> auth);

    // ---- durability (docs/ARCHITECTURE.md, "Storage") ----------------------------------------
    /// Turns recording on (a durable store is attached) and restores what it held: users,
    /// their logs (window and offline entries), detached sessions (resumable for what is left
    /// of session_timeout, counted from their detach time; sessions online at the crash count
    /// as detached now) and the id high-water mark. Call once, before any connection.
    void attachStore(const StoreSnapshot& snapshot);
    /// Mutations wait to be handed to the store (the server takes them once per iteration).
    [[nodiscard]] bool storePending() const;
    /// ACKs held until their batch is committed (or has failed): the drain waits for them.
    [[nodiscard]] std::size_t acksHeld() const;
    /// The mutations recorded since the last call, as one batch with the next sequence number.
    StoreBatch takeStoreBatch();
    /// The store finished a batch (in sequence order). ok: the ACKs held for it leave;
    /// failed: they become ERROR STORAGE_UNAVAILABLE, their buffered entries are withdrawn and
    /// the server runs degraded (accepting only what needs no storing) until a full resync
    /// batch commits.
    void onStoreResult(BatchResult& result);
    /// Writes failed and no resync has succeeded since: /readyz 503, health "degraded".
    [[nodiscard]] bool storageDegraded() const;

    [[nodiscard]] const CoreConfig& config() const { return config_; }
    [[nodiscard]] const Metrics& metrics() const { return metrics_; }
    /// Live gauges (connections, sessions online/detached, users known, buffered now).
    [[nodiscard]] Gauges gauges() const;
    /// The HEALTH_RESULT JSON; `asker` adds its own "connection" object when registered.
    [[nodiscard]] std::string healthJson(ConnId asker) const;

private:
    struct Impl;
    CoreConfig config_;
    Metrics metrics_;
    std::unique_ptr<Impl> impl_;
};

}  // namespace tundra::core
