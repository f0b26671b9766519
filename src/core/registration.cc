// SPDX-License-Identifier: Apache-2.0
// Connections and sessions: connect (SERVER_FULL), disconnect, REGISTER (new session,
// resume, takeover), WELCOME and the replay plan, LOGOUT, detach and expiry.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/session_state.h"

namespace tundra::core {

namespace {

// Whole seconds, rounded up, clamped to the u16 wire field.
std::uint16_t ceilSeconds(std::int64_t ms) {
    if (ms <= 0) {
        return 0;
    }
    std::int64_t s = (ms + 999) / 1000;
    return static_cast<std::uint16_t>(std::min<std::int64_t>(s, UINT16_MAX));
}

}  // namespace

void SessionManager::Impl::onConnect(ConnId id) {
    auto [it, inserted] = conns_.try_emplace(id);
    if (!inserted) {
        spdlog::warn("conn={} connected twice; ignored", id);
        return;
    }
    Conn& c = it->second;
    c.id = id;
    c.connected_ms = now();
    c.last_activity_ms = c.connected_ms;
    ++metrics().connections_total;
    if (live_conns_ >= cfg().max_clients) {
        c.counted = false;
        spdlog::warn("conn={} refused: server full ({} connections)", id, live_conns_);
        sendError(c, 0, ErrorCode::ServerFull, "server full");
        closeConn(c);
        return;
    }
    ++live_conns_;
    if (heartbeatsOn()) {
        conn_wheel_.schedule(id, connDeadline(c));
    }
}

void SessionManager::Impl::onDisconnect(ConnId id, DisconnectReason reason,
                                        const std::vector<std::uint64_t>& unwritten) {
    auto it = conns_.find(id);
    if (it == conns_.end()) {
        return;  // unknown or already reported: idempotent
    }
    Conn& c = it->second;
    if (reason == DisconnectReason::SlowConsumer) {
        ++metrics().slow_consumer_disconnects_total;
    }
    if (User* u = c.user; u != nullptr) {
        if (u->conn == &c) {
            detach(c, reasonName(reason));
        }
        if (c.closed) {
            --u->lingering;
        }
        requeueUnwritten(*u, c, unwritten);
    }
    if (c.counted) {
        --live_conns_;
    }
    spdlog::debug("conn={} gone ({}, {} unwritten)", id, reasonName(reason), unwritten.size());
    conns_.erase(it);
}

// The session of `c` loses its connection without LOGOUT: it waits session_timeout.
void SessionManager::Impl::detach(Conn& c, const char* why) {
    User& u = *c.user;
    users_.setDetached(u, now());
    session_wheel_.schedule(u.session, u.since_ms + cfg().session_timeout_ms);
    spdlog::info("conn={} session={} user={} detached ({})", c.id, sessionText(&u), u.name, why);
    announce(u, SystemEvent::Left);
}

Uuid SessionManager::Impl::freshSessionId() {
    for (int i = 0; i < kSessionIdAttempts; ++i) {
        Uuid id = new_session_id_ ? new_session_id_() : Uuid{};
        if (!isNil(id) && !sessions_.contains(id)) {
            return id;
        }
    }
    return Uuid{};
}

// A detached session whose time is up expires now, even if tick() has not run yet, so the
// deadline is exact for REGISTER.
void SessionManager::Impl::expireIfDue(User& u) {
    if (u.state == UserState::Detached && now() >= u.since_ms + cfg().session_timeout_ms) {
        expire(u);
    }
}

void SessionManager::Impl::expire(User& u) {
    spdlog::info("conn=- session={} user={} expired", sessionText(&u), u.name);
    sessions_.erase(u.session);
    users_.setOffline(u, now());
    ++metrics().sessions_expired_total;
    // No LEFT: the user already left when the session detached.
}

void SessionManager::Impl::handleRegister(Conn& c, std::uint16_t seq, ByteSpan payload) {
    if (c.user != nullptr) {
        sendError(c, seq, ErrorCode::AlreadyRegistered, "already registered");
        return;
    }
    msg::Register r;
    if (const char* why = msg::parse(payload, r)) {
        sendError(c, seq, ErrorCode::InvalidFormat, why);
        return;
    }
    if (!isValidName(r.username)) {
        sendError(c, seq, ErrorCode::InvalidName, "names are 1-32 bytes of [A-Za-z0-9_.-]");
        return;
    }
    User* u = users_.find(r.username);
    if (u != nullptr) {
        expireIfDue(*u);
    }
    if (isNil(r.session)) {
        if (u != nullptr && u->state != UserState::Offline) {
            sendError(c, seq, ErrorCode::UsernameTaken, "username taken");
            return;
        }
        Uuid sid = freshSessionId();
        if (isNil(sid)) {
            sendError(c, seq, ErrorCode::ServerError, "could not create a session");
            return;
        }
        if (u == nullptr) {
            u = &users_.create(r.username, r.kind, cfg().max_users, now());
        }
        u->session = sid;
        sessions_.emplace(sid, u);
        ++metrics().registrations_total;
        spdlog::info("conn={} session={} user={} registered (kind={})", c.id, sessionText(u),
                     u->name, static_cast<int>(r.kind));
        attach(c, *u, r, seq, false, true);
        return;
    }
    auto sit = sessions_.find(r.session);
    if (sit == sessions_.end() || sit->second->name != r.username) {
        sendError(c, seq, ErrorCode::SessionExpired, "session expired or unknown");
        return;
    }
    u = sit->second;
    const bool takeover = u->state == UserState::Online;
    if (takeover) {
        // The client reconnected before we noticed its old connection die.
        Conn& old = *u->conn;
        msg::System bye;
        bye.event = SystemEvent::Bye;
        bye.text = "taken over";
        sendSystem(old, bye, 0);
        closeConn(old);
        spdlog::info("conn={} session={} user={} taken over by conn={}", old.id, sessionText(u),
                     u->name, c.id);
    } else {
        spdlog::info("conn={} session={} user={} resumed", c.id, sessionText(u), u->name);
    }
    ++metrics().resumes_total;
    // A takeover is invisible to others: the user never went offline.
    attach(c, *u, r, seq, true, !takeover);
}

// Makes `u` online on `c`: WELCOME, DROPPED, replays, then JOINED to the others.
void SessionManager::Impl::attach(Conn& c, User& u, const msg::Register& r, std::uint16_t seq,
                                  bool resumed, bool announce_join) {
    users_.setOnline(u, &c, r.kind);
    c.user = &u;
    u.window_replayed = r.last_id > 0;

    // Replay plan (docs/PROTOCOL.md, "Replay order after WELCOME"): kept window deliveries
    // above last_id, then every never-written offline entry; both are in id order and the
    // window's ids are all older than the offline buffer's.
    const std::size_t win_from = r.last_id > 0 ? u.window.upperBound(r.last_id) : u.window.size();
    const std::size_t win_count = u.window.size() - win_from;
    const std::size_t pending = win_count + u.offline.size();

    msg::System w;
    w.event = SystemEvent::Welcome;
    w.text = resumed ? "welcome back" : "welcome";
    w.welcome.session = u.session;
    w.welcome.resumed = resumed;
    w.welcome.pending = static_cast<std::uint32_t>(std::min<std::size_t>(pending, UINT32_MAX));
    w.welcome.heartbeat_s = ceilSeconds(cfg().ping_interval_ms);
    w.welcome.session_timeout_s = ceilSeconds(cfg().session_timeout_ms);
    w.welcome.max_payload =
        static_cast<std::uint16_t>(std::min<std::size_t>(cfg().max_payload, kMaxPayload));
    sendSystem(c, w, seq);

    if (u.dropped > 0) {
        msg::System d;
        d.event = SystemEvent::Dropped;
        d.text = "messages lost to buffer overflow while away";
        d.dropped = u.dropped;
        sendSystem(c, d, 0);
        u.dropped = 0;
    }
    for (std::size_t i = win_from; i < win_from + win_count; ++i) {
        replay(c, u.window.at(i));
    }
    while (!u.offline.empty()) {
        if (!replay(c, u.offline.front())) {
            break;  // the connection is going away: the rest stays buffered
        }
        users_.promoteOfflineFront(u, limits());  // written now: it joins the window
    }
    if (pending > 0) {
        spdlog::debug("conn={} session={} replayed {} deliveries", c.id, sessionText(&u), pending);
    }
    if (announce_join) {
        announce(u, SystemEvent::Joined);
    }
}

void SessionManager::Impl::handleLogout(Conn& c, std::uint16_t seq) {
    User& u = *c.user;
    msg::System bye;
    bye.event = SystemEvent::Bye;
    bye.text = "bye";
    sendSystem(c, bye, seq);
    spdlog::info("conn={} session={} user={} logged out", c.id, sessionText(&u), u.name);
    sessions_.erase(u.session);  // the UUID can never be resumed
    users_.setOffline(u, now());
    closeConn(c);  // its onDisconnect() finds u.conn != c: no second LEFT
    announce(u, SystemEvent::Left);
}

}  // namespace tundra::core
