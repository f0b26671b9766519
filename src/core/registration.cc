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

void SessionManager::Impl::onConnect(ConnId id, std::string_view source,
                                     std::string_view cert_name) {
    Conn* added = conns_.add(id);
    if (added == nullptr) {
        spdlog::warn("conn={} connected twice; ignored", id);
        return;
    }
    if (!cert_name.empty()) {
        cert_names_[id] = std::string(cert_name);
    }
    Conn& c = *added;
    c.connected_ms = now();
    c.last_activity_ms = c.connected_ms;
    ++metrics().connections_total;
    if (live_conns_ >= cfg().max_clients) {
        refuse(c, metrics().errors_total[static_cast<std::uint16_t>(ErrorCode::ServerFull)],
               log_full_, "server full");
        return;
    }
    if (cfg().max_unregistered > 0 && unregistered_ >= cfg().max_unregistered) {
        refuse(c, metrics().unregistered_refused_total, log_unregistered_,
               "too many connections waiting to register");
        return;
    }
    if (!source.empty()) {
        auto [sit, fresh] = sources_.try_emplace(std::string(source));
        SourceEntry& src = sit->second;
        if (fresh) {
            src.tokens_milli = std::int64_t{cfg().register_burst} * 1000;
            src.refill_ms = c.connected_ms;
        }
        if (cfg().max_connections_per_ip > 0 && src.conns >= cfg().max_connections_per_ip) {
            refuse(c, metrics().per_ip_refused_total, log_per_ip_,
                   "too many connections from your address");
            return;  // the entry stays (a sweep forgets it once unused)
        }
        ++src.conns;
        c.source = &src;
    }
    ++live_conns_;
    ++unregistered_;
    c.awaiting_register = true;
    fileConn(c);
}

void SessionManager::Impl::refuse(Conn& c, std::uint64_t& counter, common::LogThrottle& throttle,
                                  std::string_view why) {
    c.counted = false;
    if (&counter != &metrics().errors_total[static_cast<std::uint16_t>(ErrorCode::ServerFull)]) {
        ++counter;  // SERVER_FULL itself is counted by sendError below
    }
    std::uint64_t held = 0;
    if (throttle.allow(now(), held)) {
        spdlog::warn("conn={} refused: {} ({} connections, {} unregistered; {} more not logged)",
                     c.id, why, live_conns_, unregistered_, held);
    }
    sendError(c, 0, ErrorCode::ServerFull, why);
    closeConn(c);
}

void SessionManager::Impl::markRegistered(Conn& c) {
    if (c.awaiting_register) {
        c.awaiting_register = false;
        --unregistered_;
    }
}

bool SessionManager::Impl::takeRegisterToken(Conn& c) {
    if (c.source == nullptr || cfg().register_rate == 0) {
        return true;
    }
    SourceEntry& src = *c.source;
    const std::int64_t t = now();
    const std::int64_t cap = std::int64_t{std::max<std::uint32_t>(cfg().register_burst, 1)} * 1000;
    if (t > src.refill_ms) {
        // elapsed ms x rate/s = milli-tokens; capped before multiplying to stay in range
        const std::int64_t elapsed = std::min<std::int64_t>(t - src.refill_ms, 3'600'000);
        src.tokens_milli = std::min(cap, src.tokens_milli + elapsed * cfg().register_rate);
        src.refill_ms = t;
    }
    if (src.tokens_milli < 1000) {
        return false;
    }
    src.tokens_milli -= 1000;
    return true;
}

void SessionManager::Impl::sweepSources(std::int64_t t) {
    if (t < next_source_sweep_ms_) {
        return;
    }
    next_source_sweep_ms_ = t + 1000;
    const std::int64_t cap = std::int64_t{std::max<std::uint32_t>(cfg().register_burst, 1)} * 1000;
    std::erase_if(sources_, [&](const auto& kv) {
        const SourceEntry& src = kv.second;
        if (src.conns > 0) {
            return false;
        }
        const std::int64_t refilled =
            cfg().register_rate == 0
                ? cap
                : src.tokens_milli +
                      std::min<std::int64_t>(t - src.refill_ms, 3'600'000) * cfg().register_rate;
        return refilled >= cap;  // a new entry would start the same: nothing to remember
    });
}

void SessionManager::Impl::onDisconnect(ConnId id, DisconnectReason reason,
                                        const std::vector<std::uint64_t>& unwritten) {
    Conn* found = conns_.find(id);
    if (found == nullptr) {
        return;  // unknown or already reported: idempotent
    }
    cert_names_.erase(id);
    Conn& c = *found;
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
        // An EPHEMERAL user that logged out (offline, not registered again meanwhile) with
        // nothing buffered leaves nothing behind: one-shot tools do not fill the registry.
        if (c.forget_at_logout && u->state == UserState::Offline && u->lingering == 0 &&
            users_.forgetUnused(*u)) {
            c.user = nullptr;
        }
    }
    markRegistered(c);
    if (c.counted) {
        --live_conns_;
        if (c.source != nullptr) {
            --c.source->conns;
        }
    }
    spdlog::debug("conn={} gone ({}, {} unwritten)", id, reasonName(reason), unwritten.size());
    conns_.erase(c);
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

// Before a new user is created at max_users: ends the oldest detached sessions while no
// offline user can be forgotten instead. Online users are never touched (they are bounded by
// max_clients), so users_known stays within max_users + online users.
void SessionManager::Impl::makeRoomForUser() {
    while (users_.size() >= cfg().max_users && !users_.forgetOne()) {
        User* oldest = users_.oldestDetached();
        if (oldest == nullptr) {
            return;
        }
        ++metrics().detached_evicted_total;
        std::uint64_t held = 0;
        if (log_detached_evicted_.allow(now(), held)) {
            spdlog::warn(
                "max_users ({}) reached: detached session of user={} ended early ({} more not "
                "logged)",
                cfg().max_users, oldest->name, held);
        }
        expire(*oldest);  // now offline: the next forgetOne() can forget it
    }
}

void SessionManager::Impl::expire(User& u) {
    spdlog::info("conn=- session={} user={} expired", sessionText(&u), u.name);
    sessions_.erase(u);
    users_.setOffline(u, now());
    ++metrics().sessions_expired_total;
    // No LEFT: the user already left when the session detached.
}

void SessionManager::Impl::handleRegister(Conn& c, std::uint16_t seq, ByteSpan payload,
                                          bool ephemeral) {
    if (c.user != nullptr) {
        sendError(c, seq, ErrorCode::AlreadyRegistered, "already registered");
        return;
    }
    if (!takeRegisterToken(c)) {
        // The connection stays open (its REGISTER deadline still runs): it may try again.
        ++metrics().register_rate_limited_total;
        std::uint64_t held = 0;
        if (log_register_rate_.allow(now(), held)) {
            spdlog::warn(
                "conn={} REGISTER refused: register_rate ({}/s) exceeded ({} more not "
                "logged)",
                c.id, cfg().register_rate, held);
        }
        sendError(c, seq, ErrorCode::RateLimited, "too many registrations from your address");
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
    // With an Authenticator every REGISTER, a resume or takeover included, needs a valid token
    // for its name: a session UUID alone is never enough.
    if (auth_ && !authenticate(c, seq, r)) {
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
            makeRoomForUser();
            u = &users_.create(r.username, r.kind, cfg().max_users, now());
            c.forget_at_logout = ephemeral;
        }
        u->session = sid;
        sessions_.insert(*u);
        ++metrics().registrations_total;
        spdlog::info("conn={} session={} user={} registered (kind={})", c.id, sessionText(u),
                     u->name, static_cast<int>(r.kind));
        attach(c, *u, r, seq, false, true);
        return;
    }
    User* resumed = sessions_.find(r.session);
    if (resumed == nullptr || resumed->name != r.username) {
        sendError(c, seq, ErrorCode::SessionExpired, "session expired or unknown");
        return;
    }
    u = resumed;
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
    users_.openBroadcasts(u, last_id_ + 1);  // every id handed out from now on is above last_id_
    c.user = &u;
    markRegistered(c);
    u.window_replayed = r.last_id > 0;
    u.phase.replay.resume_last_id = r.last_id;

    // Replay plan (docs/PROTOCOL.md, "Replay order after WELCOME"): kept window deliveries
    // above last_id, then every never-written offline entry; both are in id order and the
    // window's ids are all older than the offline buffer's.
    const std::size_t win_from = r.last_id > 0 ? u.window.upperBound(r.last_id) : u.window.size();
    const std::size_t win_count = u.window.size() - win_from;
    const std::size_t pending = win_count + u.offline.size();
    // Window entries from here on are replayed now; anything older the window no longer
    // holds (requeueUnwritten() counts such entries as lost).
    u.phase.replay.replay_floor = win_count > 0 ? u.window.at(win_from).id : UINT64_MAX;

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
    sessions_.erase(u);  // the UUID can never be resumed
    users_.setOffline(u, now());
    closeConn(c);  // its onDisconnect() finds u.conn != c: no second LEFT
    announce(u, SystemEvent::Left);
}

// Deliveries that were queued to a dead connection but never written. Each one is either sent
// again, kept in the offline buffer, known to the client (at or below its last_id), or counted
// in DROPPED: nothing accepted vanishes uncounted.
void SessionManager::Impl::requeueUnwritten(User& u, const Conn& c,
                                            const std::vector<std::uint64_t>& unwritten) {
    if (unwritten.empty()) {
        return;
    }
    std::vector<std::uint64_t> ids(unwritten);
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    std::uint64_t lost = 0;
    if (u.conn != nullptr && u.conn != &c && !u.conn->closed) {
        // The user is already live on another connection (a takeover, or a resume before
        // this close was reported). If its REGISTER asked for last_id > 0, every window entry
        // above last_id was replayed to it already; otherwise send what the old connection
        // never wrote now (the client dedupes by id). What the window no longer holds and was
        // not replayed is lost: counted, and reported at once in SYSTEM DROPPED.
        Conn& live = *u.conn;
        for (auto id : ids) {
            if (id == 0 || (u.window_replayed && id <= u.phase.replay.resume_last_id)) {
                continue;  // the client has it (or it was no delivery)
            }
            std::size_t idx = u.window.find(id);
            if (idx < u.window.size()) {
                if (!u.window_replayed) {
                    replay(live, u.window.at(idx));
                }
                continue;
            }
            if (u.window_replayed && id >= u.phase.replay.replay_floor) {
                continue;  // replayed after WELCOME, gone from the window since
            }
            ++lost;
        }
        if (lost > 0) {
            users_.countDropped(u, lost);
            std::uint64_t held = 0;
            if (log_takeover_lost_.allow(now(), held)) {
                spdlog::warn(
                    "conn={} session={} user={}: {} deliveries never written to the replaced "
                    "connection were no longer kept; reported in DROPPED ({} more not logged)",
                    live.id, sessionText(&u), u.name, lost, held);
            }
            msg::System d;
            d.event = SystemEvent::Dropped;
            d.text = "messages lost when the connection was replaced";
            d.dropped = u.dropped;
            sendSystem(live, d, 0);
            u.dropped = 0;
        }
        return;
    }
    // Detached, offline, or its newer connection is closing as well: the offline buffer keeps
    // what the window still holds; the rest is counted and reported at the next WELCOME. All
    // of them in one pass over the window and the buffer (a slow-consumer cut with raised
    // limits can leave thousands): never one ring erase per id.
    if (ids.front() == 0) {
        ids.erase(ids.begin());  // sorted and unique: at most one 0 (not a delivery)
    }
    const std::uint64_t before = metrics().budget_evictions_total;
    lost = users_.moveToOffline(u, ids, limits());
    if (lost > 0) {
        users_.countDropped(u, lost);  // already pushed out of the window: never delivered
    }
    noteBudgetEvictions(before);
}

}  // namespace tundra::core
