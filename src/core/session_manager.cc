// SPDX-License-Identifier: Apache-2.0
// SessionManager: the public facade over SessionManager::Impl (src/core/session_state.h) and
// the helpers every concern file uses to send frames and close connections. The protocol v1
// rules live in one file per concern (dispatch, registration, routing, heartbeat, shutdown,
// health; docs/PROTOCOL.md, "Sessions, presence and offline buffers").
// Pure: output only through Outbox, time only through common::Clock, no exceptions.
#include "core/session_manager.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "core/session_state.h"

namespace tundra::core {

const char* reasonName(DisconnectReason r) {
    switch (r) {
        case DisconnectReason::PeerClosed:
            return "peer closed";
        case DisconnectReason::Error:
            return "error";
        case DisconnectReason::SlowConsumer:
            return "slow consumer";
        case DisconnectReason::HeartbeatTimeout:
            return "heartbeat timeout";
        case DisconnectReason::Local:
            return "local close";
        case DisconnectReason::Shutdown:
            return "shutdown";
    }
    return "?";
}

SessionManager::Impl::Impl(SessionManager& self, Outbox& outbox, const common::Clock& clock,
                           std::function<Uuid()> new_session_id,
                           std::function<ServerStats()> server_stats)
    : self_(self),
      outbox_(outbox),
      clock_(clock),
      new_session_id_(std::move(new_session_id)),
      server_stats_(std::move(server_stats)),
      users_(self.metrics_, recorder_),
      conn_wheel_(kTickMs, kWheelSlots, clock.steadyMs()),
      session_wheel_(kTickMs, kWheelSlots, clock.steadyMs()),
      start_ms_(clock.steadyMs()),
      last_id_(static_cast<std::uint64_t>(clock.wallMs()) << 12) {}

// ---- output helpers -------------------------------------------------------------------------

bool SessionManager::Impl::send(Conn& c, SharedFrame frame, std::uint64_t delivery_id) {
    flushBroadcasts();  // what was accepted before goes out before anything sent after it
    if (!outbox_.send(c.id, std::move(frame), delivery_id)) {
        return false;
    }
    ++c.frames_out;
    ++metrics().frames_out_total;
    return true;
}

bool SessionManager::Impl::sendNow(Conn& c, SharedFrame frame) {
    flushBroadcasts();
    if (!outbox_.sendNow(c.id, std::move(frame))) {
        return false;
    }
    ++c.frames_out;
    ++metrics().frames_out_total;
    return true;
}

void SessionManager::Impl::sendError(Conn& c, std::uint16_t seq, ErrorCode code,
                                     std::string_view text) {
    auto raw = static_cast<std::uint16_t>(code);
    if (raw <= kMaxErrorCode) {
        ++metrics().errors_total[raw];
    }
    if (isBadFrameError(code) && c.bad_frames < kBadFramesCap) {
        ++c.bad_frames;  // dispatch closes the connection at max_bad_frames
    }
    spdlog::debug("conn={} session={} ERROR {} ({}): {}", c.id, sessionText(c.user), raw,
                  errorCodeName(code), text);
    send(c, share(msg::encode(msg::Error{raw, text}, seq)));
}

void SessionManager::Impl::sendSystem(Conn& c, const msg::System& s, std::uint16_t seq) {
    send(c, share(msg::encode(s, seq)));
}

// The core ends a connection: flush what is queued, then close. onDisconnect() follows.
void SessionManager::Impl::closeConn(Conn& c) {
    if (c.closed) {
        return;
    }
    flushBroadcasts();  // their deliveries and ACKs are queued before the close
    c.closed = true;
    if (c.user != nullptr) {
        ++c.user->lingering;  // keeps the user from being forgotten until onDisconnect
    }
    outbox_.closeAfterFlush(c.id);
}

std::uint64_t SessionManager::Impl::nextId() {
    // One server-wide counter, never below wall-clock ms << 12, so ids also keep growing
    // across a restart (4096 ids per millisecond before the counter runs ahead of time).
    auto floor = static_cast<std::uint64_t>(clock_.wallMs()) << 12;
    last_id_ = std::max(last_id_ + 1, floor);
    if (storeOn()) {
        reserveIds();
    }
    return last_id_;
}

// ---- public wrappers ----------------------------------------------------------------------

SessionManager::SessionManager(CoreConfig config, Outbox& outbox, const common::Clock& clock,
                               std::function<Uuid()> new_session_id,
                               std::function<ServerStats()> server_stats)
    : config_(std::move(config)),
      impl_(std::make_unique<Impl>(*this, outbox, clock, std::move(new_session_id),
                                   std::move(server_stats))) {}

SessionManager::~SessionManager() = default;

void SessionManager::onConnect(ConnId conn, std::string_view source, std::string_view cert_name) {
    impl_->flushBroadcasts();
    impl_->onConnect(conn, source, cert_name);
}

bool SessionManager::onFrame(ConnId conn, const FrameHeader& header, ByteSpan payload) {
    return impl_->onFrame(conn, header, payload);
}

void SessionManager::beginInput() { impl_->batching_ = true; }

void SessionManager::endInput() {
    impl_->batching_ = false;
    impl_->flushBroadcasts();
}

void SessionManager::onHeaderError(ConnId conn, std::uint16_t sequence, ErrorCode code,
                                   std::string_view why) {
    impl_->flushBroadcasts();
    impl_->onHeaderError(conn, sequence, code, why);
}

void SessionManager::onDisconnect(ConnId conn, DisconnectReason reason,
                                  const std::vector<std::uint64_t>& unwritten) {
    impl_->flushBroadcasts();
    impl_->onDisconnect(conn, reason, unwritten);
}

void SessionManager::tick() {
    impl_->flushBroadcasts();
    impl_->tick();
}

std::int64_t SessionManager::tickIntervalMs() const { return kTickMs; }

void SessionManager::shutdown(std::uint16_t retry_after_s) {
    impl_->flushBroadcasts();
    impl_->shutdown(retry_after_s);
}

void SessionManager::setAuthenticator(std::shared_ptr<const Authenticator> auth) {
    impl_->auth_ = std::move(auth);
}

void SessionManager::reconfigure(const CoreConfig& config) {
    const bool timers_changed = config.ping_interval_ms != config_.ping_interval_ms ||
                                config.session_timeout_ms != config_.session_timeout_ms ||
                                config.register_timeout_ms != config_.register_timeout_ms;
    impl_->flushBroadcasts();
    config_ = config;
    if (timers_changed) {
        impl_->rebuildTimers();
    }
    impl_->users_.enforce(impl_->limits());
    spdlog::info(
        "core reconfigured (max_clients={} max_payload={} ping_interval={}ms "
        "session_timeout={}ms max_buffered={} register_timeout={}ms max_unregistered={} "
        "max_connections_per_ip={} register_rate={}/s)",
        config_.max_clients, config_.max_payload, config_.ping_interval_ms,
        config_.session_timeout_ms, config_.max_buffered, config_.register_timeout_ms,
        config_.max_unregistered, config_.max_connections_per_ip, config_.register_rate);
}

void SessionManager::attachStore(const StoreSnapshot& snapshot) { impl_->attachStore(snapshot); }

bool SessionManager::storePending() const {
    return impl_->recorder_.pending() || impl_->want_full_;
}

std::size_t SessionManager::acksHeld() const { return impl_->held_acks_.size(); }

StoreBatch SessionManager::takeStoreBatch() {
    impl_->flushBroadcasts();
    return impl_->takeStoreBatch();
}

void SessionManager::onStoreResult(BatchResult& result) {
    impl_->flushBroadcasts();
    impl_->onStoreResult(result);
}

bool SessionManager::storageDegraded() const { return impl_->degraded_; }

Gauges SessionManager::gauges() const { return impl_->gauges(); }

std::string SessionManager::healthJson(ConnId asker) const { return impl_->healthJson(asker); }

}  // namespace tundra::core
