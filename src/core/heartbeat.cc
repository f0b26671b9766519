// SPDX-License-Identifier: Apache-2.0
// Heartbeats and timers: PING/PONG (echo, RTT, window confirmation), the connection wheel
// (server PINGs, heartbeat timeouts) and the session wheel (expiry of detached sessions).
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
    send(c, w.finishShared());
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
    conn_wheel_.advance(t, [&](ConnId id, std::int64_t) { onConnTimer(id, t); });
    session_wheel_.advance(
        t, [&](const Uuid& sid, std::int64_t deadline) { onSessionTimer(sid, deadline, t); });
}

void SessionManager::Impl::onConnTimer(ConnId id, std::int64_t t) {
    auto it = conns_.find(id);
    if (it == conns_.end() || it->second.closed || !heartbeatsOn()) {
        return;  // gone (or heartbeats turned off): its entry just lapses
    }
    Conn& c = it->second;
    const std::int64_t due = connDeadline(c);
    if (t < due) {
        conn_wheel_.schedule(id, due);  // it was active since this entry was filed
        return;
    }
    if (c.awaiting_pong) {
        ++metrics().heartbeat_timeouts_total;
        spdlog::info("conn={} session={} heartbeat timeout (silent {} ms)", id, sessionText(c.user),
                     t - c.last_activity_ms);
        closeConn(c);
        if (c.user != nullptr && c.user->conn == &c) {
            detach(c, reasonName(DisconnectReason::HeartbeatTimeout));
        }
        return;
    }
    c.ping_token = next_token_++;
    c.ping_sent_ms = t;
    c.ping_sent_us = clock_.steadyUs();
    c.ping_window_mark = c.user != nullptr && c.user->conn == &c && !c.user->window.empty()
                             ? c.user->window.back().id
                             : 0;
    c.awaiting_pong = true;
    send(c, share(msg::encodePing(MsgType::Ping, c.ping_token, 0)));
    conn_wheel_.schedule(id, connDeadline(c));
}

void SessionManager::Impl::onSessionTimer(const Uuid& sid, std::int64_t deadline, std::int64_t t) {
    auto it = sessions_.find(sid);
    if (it == sessions_.end()) {
        return;
    }
    User& u = *it->second;
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
    for (auto& [id, c] : conns_) {
        if (!c.closed && heartbeatsOn()) {
            conn_wheel_.schedule(id, connDeadline(c));
        }
    }
    for (auto kind : {ClientKind::User, ClientKind::Agent}) {
        for (User* u : users_.detached(kind)) {
            session_wheel_.schedule(u->session, u->since_ms + cfg().session_timeout_ms);
        }
    }
}

}  // namespace tundra::core
