// SPDX-License-Identifier: Apache-2.0
// Heartbeats and timers: PING/PONG (echo, RTT, window confirmation), the connection wheel (one
// entry per connection for its REGISTER deadline, token expiry, server PINGs and heartbeat
// timeout), the session wheel (expiry of detached sessions), and the per-tick presence flush
// (JOINED/LEFT coalesced per tick).
#include <spdlog/spdlog.h>

#include "core/session_state.h"

namespace tundra::core {

void SessionManager::Impl::handlePing(Conn& c, std::uint16_t seq, ByteSpan payload) {
    msg::Ping p;
    if (const char* why = msg::parse(payload, p)) {
        sendError(c, seq, ErrorCode::InvalidFormat, why);
        return;
    }
    // The whole payload comes back, trailing bytes included.
    FrameWriter w(MsgType::Pong, seq);
    w.tail(payload);
    send(c, share(w.finish()));
}

void SessionManager::Impl::handlePong(Conn& c, std::uint16_t seq, ByteSpan payload) {
    msg::Ping p;
    if (const char* why = msg::parse(payload, p)) {
        sendError(c, seq, ErrorCode::InvalidFormat, why);
        return;
    }
    if (c.ping_token == 0 || p.token != c.ping_token) {
        return;  // unsolicited or stale: nothing to measure
    }
    auto rtt = static_cast<double>(clock_.steadyUs() - c.ping_sent_us) / 1000.0;
    c.ping_token = 0;
    // Everything queued before the PING reached the client: its window can go, which is
    // what brings an idle connection back to its minimal footprint.
    if (c.ping_window_mark != 0 && c.user != nullptr && c.user->conn == &c) {
        users_.confirmWindowThrough(*c.user, c.ping_window_mark);
    }
    c.ping_window_mark = 0;
    c.rtt_ms = static_cast<float>(rtt);
    latency_.add(rtt);
    spdlog::debug("conn={} rtt={}ms", c.id, rtt);
}

void SessionManager::Impl::tick() {
    const std::int64_t t = now();
    conn_wheel_.advance(
        t,
        [&](ConnId id) {
            const Conn* c = conns_.find(id);
            return c != nullptr && !c->closed ? c->wake_ms : 0;
        },
        [&](ConnId id, std::int64_t) { onConnTimer(id, t); });
    session_wheel_.advance(
        t, [&](const Uuid& sid, std::int64_t deadline) { onSessionTimer(sid, deadline, t); });
    flushPresence();
    sweepSources(t);
    probeStore();
    trimBroadcasts();
}

// ---- presence -------------------------------------------------------------------------------

// Queues JOINED or LEFT about `subject` for the next tick. A queued opposite event for the same
// name cancels out: a connect/REGISTER/close cycle inside one tick costs the others nothing.
void SessionManager::Impl::announce(const User& subject, SystemEvent event) {
    if (!presencePush()) {
        return;
    }
    auto it = presence_pending_.find(subject.name);
    if (it != presence_pending_.end()) {
        auto& queued = presence_queue_[it->second];
        if (queued.second != event) {
            queued.first.clear();  // cancelled: the others never saw the change
            presence_pending_.erase(it);
            ++metrics().presence_coalesced_total;
        }
        return;  // the same event again: already queued
    }
    presence_pending_.emplace(subject.name, presence_queue_.size());
    presence_queue_.emplace_back(subject.name, event);
}

// Sends the queued JOINED/LEFT to every online user but their subject.
void SessionManager::Impl::flushPresence() {
    if (presence_queue_.empty()) {
        return;
    }
    auto queue = std::move(presence_queue_);
    presence_queue_.clear();
    presence_pending_.clear();
    if (!presencePush()) {
        return;  // turned off by a reload since they were queued
    }
    for (auto& [name, event] : queue) {
        if (name.empty()) {
            continue;
        }
        const User* subject = users_.find(name);  // null once forgotten: everyone hears it
        SharedFrame frame;                        // built once, on the first recipient
        for (auto kind : {ClientKind::User, ClientKind::Agent}) {
            for (User* r : users_.online(kind)) {
                if (r == subject || r->conn == nullptr || r->conn->closed) {
                    continue;
                }
                if (!frame) {
                    msg::System s;
                    s.event = event;
                    s.name = name;
                    frame = share(msg::encode(s, 0));
                }
                send(*r->conn, frame);
            }
        }
    }
}

// ---- the connection wheel: REGISTER deadline, token expiry, heartbeat -----------------------

std::int64_t SessionManager::Impl::connWake(const Conn& c) const {
    std::int64_t wake = INT64_MAX;
    if (heartbeatsOn()) {
        wake = connDeadline(c);
    }
    if (c.awaiting_register && cfg().register_timeout_ms > 0) {
        wake = std::min(wake, c.connected_ms + cfg().register_timeout_ms);
    }
    if (c.auth_deadline_ms != 0) {
        wake = std::min(wake, c.auth_deadline_ms);
    }
    return wake == INT64_MAX ? 0 : std::max<std::int64_t>(wake, 1);
}

void SessionManager::Impl::fileConn(Conn& c) {
    if (c.closed) {
        return;
    }
    const std::int64_t wake = connWake(c);
    if (wake != 0 && (c.wake_ms == 0 || wake < c.wake_ms)) {
        c.wake_ms = wake;  // an entry filed for later, if any, is now stale
        conn_wheel_.schedule(c.id, wake);
    }
}

bool SessionManager::Impl::checkRegisterDeadline(Conn& c, std::int64_t t) {
    if (!c.awaiting_register || cfg().register_timeout_ms <= 0 ||
        t < c.connected_ms + cfg().register_timeout_ms) {
        return true;
    }
    ++metrics().register_timeouts_total;
    std::uint64_t held = 0;
    if (log_register_timeout_.allow(t, held)) {
        spdlog::info("conn={} closed: no REGISTER within {} ms ({} more not logged)", c.id,
                     cfg().register_timeout_ms, held);
    }
    sendError(c, 0, ErrorCode::NotRegistered, "no REGISTER in time");
    closeConn(c);
    return false;
}

void SessionManager::Impl::onConnTimer(ConnId id, std::int64_t t) {
    Conn* found = conns_.find(id);
    if (found == nullptr || found->closed) {
        return;  // the wheel asked just before: cannot happen, but costs nothing to check
    }
    Conn& c = *found;
    c.wake_ms = 0;  // spent; fileConn() below files the next one (or none)
    if (!checkRegisterDeadline(c, t) || !checkToken(c, t)) {
        return;
    }
    if (heartbeatsOn() && t >= connDeadline(c)) {
        if (c.awaiting_pong) {
            ++metrics().heartbeat_timeouts_total;
            spdlog::info("conn={} session={} heartbeat timeout (silent {} ms)", id,
                         sessionText(c.user), t - c.last_activity_ms);
            closeConn(c);
            if (c.user != nullptr && c.user->conn == &c) {
                detach(c, reasonName(DisconnectReason::HeartbeatTimeout));
            }
            return;
        }
        if (!tick_ping_ || tick_ping_at_ != t) {
            // One token per tick: a PONG still proves which PING it answers (a connection is
            // pinged at most once per tick, and tokens of later ticks differ).
            tick_ping_token_ = static_cast<std::uint32_t>(next_token_++);
            if (tick_ping_token_ == 0) {  // wrapped: 0 means none
                tick_ping_token_ = static_cast<std::uint32_t>(next_token_++);
            }
            tick_ping_ = share(msg::encodePing(MsgType::Ping, tick_ping_token_, 0));
            tick_ping_at_ = t;
        }
        c.ping_token = tick_ping_token_;
        c.ping_sent_us = clock_.steadyUs();  // the deadline is this in ms (t, on the loop's clock)
        c.ping_window_mark = c.user != nullptr && c.user->conn == &c && !c.user->window.empty()
                                 ? c.user->window.back().id
                                 : 0;
        c.awaiting_pong = true;
        // Written at once: an idle connection has nothing else to send, and a tick that pings
        // thousands of them then holds no output queue for each until the iteration's flush.
        sendNow(c, tick_ping_);
    }
    fileConn(c);  // the next deadline: later than t (the due ones were handled above)
}

void SessionManager::Impl::onSessionTimer(const Uuid& sid, std::int64_t deadline, std::int64_t t) {
    User* found = sessions_.find(sid);
    if (found == nullptr) {
        return;
    }
    User& u = *found;
    if (u.state != UserState::Detached || u.since_ms + cfg().session_timeout_ms != deadline) {
        return;  // resumed since, or a newer entry for a later detach exists
    }
    if (t >= deadline) {
        expire(u);
    }
}

// Re-files every deadline (after the intervals changed).
void SessionManager::Impl::rebuildTimers() {
    conn_wheel_.clear();
    session_wheel_.clear();
    conns_.forEach([this](Conn& c) {
        c.wake_ms = 0;
        fileConn(c);
    });
    for (auto kind : {ClientKind::User, ClientKind::Agent}) {
        for (User* u : users_.detached(kind)) {
            session_wheel_.schedule(u->session, u->since_ms + cfg().session_timeout_ms);
        }
    }
}

}  // namespace tundra::core
