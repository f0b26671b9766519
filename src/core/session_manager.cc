// SPDX-License-Identifier: Apache-2.0
// SessionManager: the protocol v1 rules for connections, sessions, presence, routing, replay,
// heartbeats, expiry and health (docs/PROTOCOL.md, "Sessions, presence and offline buffers").
// Pure: output only through Outbox, time only through common::Clock, no exceptions.
#include "core/session_manager.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <unordered_map>
#include <utility>

#include "core/deadline_wheel.h"
#include "core/json_writer.h"
#include "core/user_registry.h"
#include "tundra/messages.h"

namespace tundra::core {

namespace {

constexpr std::int64_t kTickMs = 100;
constexpr std::size_t kWheelSlots = 1024;  // 102.4 s per revolution
constexpr int kSessionIdAttempts = 4;

SharedFrame share(Bytes&& bytes) { return std::make_shared<const Bytes>(std::move(bytes)); }

struct UuidHash {
    std::size_t operator()(const Uuid& id) const noexcept {
        std::uint64_t a = 0;
        std::uint64_t b = 0;
        std::memcpy(&a, id.data(), 8);
        std::memcpy(&b, id.data() + 8, 8);
        return static_cast<std::size_t>(a ^ (b * 0x9E3779B97F4A7C15ULL));
    }
};

// Whole seconds, rounded up, clamped to the u16 wire field.
std::uint16_t ceilSeconds(std::int64_t ms) {
    if (ms <= 0) {
        return 0;
    }
    std::int64_t s = (ms + 999) / 1000;
    return static_cast<std::uint16_t>(std::min<std::int64_t>(s, UINT16_MAX));
}

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

}  // namespace

// Per-connection state: about 80 bytes plus the map node, nothing allocated while idle.
struct Conn {
    ConnId id = 0;
    User* user = nullptr;  ///< set by REGISTER; kept after the core closed it (for unwritten)
    std::int64_t connected_ms = 0;
    std::int64_t last_activity_ms = 0;  ///< last inbound frame (O(1) store per frame)
    std::int64_t ping_sent_ms = 0;
    std::int64_t ping_sent_us = 0;  ///< the same instant in microseconds, for the RTT
    std::uint64_t ping_window_mark = 0;  ///< newest window id queued before the PING, 0 = none
    std::uint64_t ping_token = 0;  ///< token of the last server PING not yet answered, 0 = none
    std::uint64_t frames_in = 0;
    std::uint64_t frames_out = 0;
    float rtt_ms = -1;           ///< last PING/PONG round trip, < 0 = none yet
    bool awaiting_pong = false;  ///< a PING went out and no frame has arrived since
    bool closed = false;         ///< the core closed it; onDisconnect() will follow
    bool counted = true;         ///< counts toward max_clients (false for SERVER_FULL refusals)

    [[nodiscard]] bool registered() const { return user != nullptr && !closed; }
};

// Message kinds routed by Impl::route().
enum class Audience { Everyone, AgentsOnly };

struct SessionManager::Impl {
    Impl(SessionManager& self, Outbox& outbox, const common::Clock& clock,
         std::function<Uuid()> new_session_id, std::function<ServerStats()> server_stats)
        : self_(self),
          outbox_(outbox),
          clock_(clock),
          new_session_id_(std::move(new_session_id)),
          server_stats_(std::move(server_stats)),
          users_(self.metrics_),
          conn_wheel_(kTickMs, kWheelSlots, clock.steadyMs()),
          session_wheel_(kTickMs, kWheelSlots, clock.steadyMs()),
          start_ms_(clock.steadyMs()),
          last_id_(static_cast<std::uint64_t>(clock.wallMs()) << 12) {}

    // ---- small helpers ----------------------------------------------------------------------

    const CoreConfig& cfg() const { return self_.config_; }
    Metrics& metrics() { return self_.metrics_; }
    std::int64_t now() const { return clock_.steadyMs(); }

    BufferLimits limits() const {
        return BufferLimits{cfg().max_buffered, cfg().user_buffer_bytes, cfg().total_buffer_bytes};
    }

    static std::string sessionText(const User* u) {
        return u == nullptr || isNil(u->session) ? std::string("-") : uuidToString(u->session);
    }

    bool send(Conn& c, SharedFrame frame, std::uint64_t delivery_id = 0) {
        if (!outbox_.send(c.id, std::move(frame), delivery_id)) {
            return false;
        }
        ++c.frames_out;
        ++metrics().frames_out_total;
        return true;
    }

    void sendError(Conn& c, std::uint16_t seq, ErrorCode code, std::string_view text) {
        auto raw = static_cast<std::uint16_t>(code);
        if (raw <= kMaxErrorCode) {
            ++metrics().errors_total[raw];
        }
        spdlog::debug("conn={} session={} ERROR {} ({}): {}", c.id, sessionText(c.user), raw,
                      errorCodeName(code), text);
        send(c, share(msg::encode(msg::Error{raw, text}, seq)));
    }

    void sendSystem(Conn& c, const msg::System& s, std::uint16_t seq) {
        send(c, share(msg::encode(s, seq)));
    }

    /// The core ends a connection: flush what is queued, then close. onDisconnect() follows.
    void closeConn(Conn& c) {
        if (c.closed) {
            return;
        }
        c.closed = true;
        if (c.user != nullptr) {
            ++c.user->lingering;  // keeps the user from being forgotten until onDisconnect
        }
        outbox_.closeAfterFlush(c.id);
    }

    std::uint64_t nextId() {
        // One server-wide counter, never below wall-clock ms << 12, so ids also keep growing
        // across a restart (4096 ids per millisecond before the counter runs ahead of time).
        auto floor = static_cast<std::uint64_t>(clock_.wallMs()) << 12;
        last_id_ = std::max(last_id_ + 1, floor);
        return last_id_;
    }

    /// JOINED or LEFT about `subject` to every other online user (presence_events on).
    void announce(const User& subject, SystemEvent event) {
        if (!cfg().presence_events) {
            return;
        }
        SharedFrame frame;  // built once, on the first recipient
        for (auto kind : {ClientKind::User, ClientKind::Agent}) {
            for (User* r : users_.online(kind)) {
                if (r == &subject || r->conn == nullptr || r->conn->closed) {
                    continue;
                }
                if (!frame) {
                    msg::System s;
                    s.event = event;
                    s.name = subject.name;
                    frame = share(msg::encode(s, 0));
                }
                send(*r->conn, frame);
            }
        }
    }

    // ---- connection lifecycle -------------------------------------------------------------

    void onConnect(ConnId id) {
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

    void onDisconnect(ConnId id, DisconnectReason reason,
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

    /// The session of `c` loses its connection without LOGOUT: it waits session_timeout.
    void detach(Conn& c, const char* why) {
        User& u = *c.user;
        users_.setDetached(u, now());
        session_wheel_.schedule(u.session, u.since_ms + cfg().session_timeout_ms);
        spdlog::info("conn={} session={} user={} detached ({})", c.id, sessionText(&u), u.name,
                     why);
        announce(u, SystemEvent::Left);
    }

    /// Deliveries that were queued to a dead connection but never written.
    void requeueUnwritten(User& u, const Conn& c, const std::vector<std::uint64_t>& unwritten) {
        if (unwritten.empty()) {
            return;
        }
        std::vector<std::uint64_t> ids(unwritten);
        std::sort(ids.begin(), ids.end());
        ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
        if (u.conn != nullptr && u.conn != &c) {
            // The user is already live on another connection (a takeover, or a resume before
            // this close was reported). If its REGISTER asked for last_id > 0, every window
            // entry above last_id was replayed to it already; otherwise send what the old
            // connection never wrote now (the client dedupes by id).
            if (!u.window_replayed && !u.conn->closed) {
                for (auto id : ids) {
                    std::size_t idx = u.window.find(id);
                    if (idx < u.window.size()) {
                        replay(*u.conn, u.window.at(idx));
                    }
                }
            }
            return;
        }
        std::uint64_t lost = 0;
        for (auto id : ids) {
            if (id != 0 && !users_.moveToOffline(u, id, limits())) {
                ++lost;  // already pushed out of the window: the user never gets it
            }
        }
        if (lost > 0) {
            users_.countDropped(u, lost);
        }
    }

    // ---- inbound frames ---------------------------------------------------------------------

    void onFrame(ConnId id, const FrameHeader& header, ByteSpan payload) {
        auto it = conns_.find(id);
        if (it == conns_.end()) {
            spdlog::warn("conn={} frame for an unknown connection ignored", id);
            return;
        }
        Conn& c = it->second;
        ++metrics().frames_in_total;
        ++c.frames_in;
        if (c.closed) {
            return;  // on its way out (LOGOUT, takeover, refusal, heartbeat): ignore the rest
        }
        c.last_activity_ms = now();  // any frame counts as life
        c.awaiting_pong = false;
        const std::uint16_t seq = header.sequence;
        if ((header.flags & ~flags::kKnown) != 0) {
            sendError(c, seq, ErrorCode::InvalidFormat, "reserved flag bits set");
            return;
        }
        if (!isClientType(header.type)) {
            sendError(c, seq, ErrorCode::UnknownType,
                      isKnownType(header.type) ? "not a client message type" : "unknown type");
            return;
        }
        const auto type = static_cast<MsgType>(header.type);
        switch (type) {
            case MsgType::Ping:
                handlePing(c, seq, payload);
                return;
            case MsgType::Pong:
                handlePong(c, seq, payload);
                return;
            case MsgType::HealthCheck:
                send(c, share(msg::encode(msg::HealthResult{healthJson(c.id)}, seq)));
                return;
            case MsgType::Register:
                handleRegister(c, seq, payload);
                return;
            default:
                break;
        }
        if (!c.registered()) {
            sendError(c, seq, ErrorCode::NotRegistered, "REGISTER first");
            return;
        }
        // The client's REPLAY bit is ignored; ACK only means something on the three below.
        const bool want_ack = (header.flags & flags::kAck) != 0;
        switch (type) {
            case MsgType::Message:
                handleMessage(c, seq, want_ack, payload);
                return;
            case MsgType::AgentCommand:
                handleAgentCommand(c, seq, want_ack, payload);
                return;
            case MsgType::Image:
                handleImage(c, seq, want_ack, payload);
                return;
            case MsgType::ListUsers:
                handleListUsers(c, seq, payload);
                return;
            case MsgType::Logout:
                handleLogout(c, seq);
                return;
            default:
                sendError(c, seq, ErrorCode::UnknownType, "unknown type");
                return;
        }
    }

    void onHeaderError(ConnId id, std::uint16_t seq, ErrorCode code, std::string_view why) {
        auto it = conns_.find(id);
        if (it == conns_.end()) {
            return;
        }
        Conn& c = it->second;
        if (c.closed) {
            return;
        }
        spdlog::info("conn={} session={} header error {}: {}", id, sessionText(c.user),
                     errorCodeName(code), why);
        sendError(c, seq, code, why);
        closeConn(c);
    }

    void handlePing(Conn& c, std::uint16_t seq, ByteSpan payload) {
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

    void handlePong(Conn& c, std::uint16_t seq, ByteSpan payload) {
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

    // ---- REGISTER ---------------------------------------------------------------------------

    Uuid freshSessionId() {
        for (int i = 0; i < kSessionIdAttempts; ++i) {
            Uuid id = new_session_id_ ? new_session_id_() : Uuid{};
            if (!isNil(id) && !sessions_.contains(id)) {
                return id;
            }
        }
        return Uuid{};
    }

    /// A detached session whose time is up expires now, even if tick() has not run yet, so the
    /// deadline is exact for REGISTER.
    void expireIfDue(User& u) {
        if (u.state == UserState::Detached && now() >= u.since_ms + cfg().session_timeout_ms) {
            expire(u);
        }
    }

    void expire(User& u) {
        spdlog::info("conn=- session={} user={} expired", sessionText(&u), u.name);
        sessions_.erase(u.session);
        users_.setOffline(u, now());
        ++metrics().sessions_expired_total;
        // No LEFT: the user already left when the session detached.
    }

    void handleRegister(Conn& c, std::uint16_t seq, ByteSpan payload) {
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

    /// Makes `u` online on `c`: WELCOME, DROPPED, replays, then JOINED to the others.
    void attach(Conn& c, User& u, const msg::Register& r, std::uint16_t seq, bool resumed,
                bool announce_join) {
        users_.setOnline(u, &c, r.kind);
        c.user = &u;
        u.window_replayed = r.last_id > 0;

        // Replay plan (docs/PROTOCOL.md, "Replay order after WELCOME"): kept window deliveries
        // above last_id, then every never-written offline entry; both are in id order and the
        // window's ids are all older than the offline buffer's.
        const std::size_t win_from =
            r.last_id > 0 ? u.window.upperBound(r.last_id) : u.window.size();
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
            spdlog::debug("conn={} session={} replayed {} deliveries", c.id, sessionText(&u),
                          pending);
        }
        if (announce_join) {
            announce(u, SystemEvent::Joined);
        }
    }

    /// Sends a stored delivery again, flagged REPLAY (a copy: the stored frame is shared).
    bool replay(Conn& c, const StoredFrame& e) {
        auto copy = std::make_shared<Bytes>(*e.frame);
        (*copy)[1] |= flags::kReplay;
        if (!send(c, std::move(copy), e.id)) {
            return false;
        }
        ++metrics().messages_out_total;
        return true;
    }

    void handleLogout(Conn& c, std::uint16_t seq) {
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

    // ---- routing ----------------------------------------------------------------------------

    enum class Outcome { None, Delivered, Buffered };

    /// To one recipient: its live connection if it has one that takes the frame, else its
    /// offline buffer.
    Outcome deliver(User& r, const StoredFrame& e) {
        if (r.state == UserState::Online && r.conn != nullptr && !r.conn->closed &&
            send(*r.conn, e.frame, e.id)) {
            ++metrics().messages_out_total;
            users_.storeWindow(r, e, limits());
            return Outcome::Delivered;
        }
        return users_.storeOffline(r, e, limits()) ? Outcome::Buffered : Outcome::None;
    }

    /// Common path of MESSAGE, AGENT_COMMAND and IMAGE once the fields and names are valid.
    void route(Conn& c, std::uint16_t seq, bool want_ack, msg::Delivery& d, Audience audience) {
        User& sender = *c.user;
        d.from = sender.name;
        if (msg::deliveryPayloadSize(d) > kMaxPayload) {
            sendError(c, seq, ErrorCode::TooLarge, "the delivery would exceed the frame limit");
            return;
        }
        User* target = nullptr;
        if (!d.to.empty()) {
            target = users_.find(d.to);
            if (target == nullptr) {
                sendError(c, seq, ErrorCode::UnknownRecipient, "unknown recipient");
                return;
            }
        }
        d.id = nextId();
        d.time_ms = static_cast<std::uint64_t>(clock_.wallMs());
        ++metrics().messages_in_total;

        std::uint32_t delivered = 0;
        std::uint32_t buffered = 0;
        auto tally = [&](Outcome o) {
            delivered += o == Outcome::Delivered ? 1U : 0U;
            buffered += o == Outcome::Buffered ? 1U : 0U;
        };
        if (target != &sender) {  // a message to oneself is accepted and delivered to nobody
            Bytes bytes = msg::encode(d);
            if (bytes.empty()) {
                sendError(c, seq, ErrorCode::ServerError, "could not encode the delivery");
                return;
            }
            // One frame for every recipient: the same shared_ptr goes to every outbox queue,
            // window and offline buffer.
            const StoredFrame e{share(std::move(bytes)), d.id};
            if (target != nullptr) {
                tally(deliver(*target, e));
            } else {
                const bool all = audience == Audience::Everyone;
                for (auto kind : {ClientKind::User, ClientKind::Agent}) {
                    if (!all && kind != ClientKind::Agent) {
                        continue;
                    }
                    for (User* r : users_.online(kind)) {
                        if (r != &sender) {
                            tally(deliver(*r, e));
                        }
                    }
                    // Detached sessions buffer broadcasts; logged-out users get none.
                    for (User* r : users_.detached(kind)) {
                        tally(users_.storeOffline(*r, e, limits()) ? Outcome::Buffered
                                                                   : Outcome::None);
                    }
                }
            }
        }
        spdlog::debug("conn={} session={} {} id={} to='{}' delivered={} buffered={}", c.id,
                      sessionText(&sender), msgTypeName(static_cast<std::uint8_t>(d.type)), d.id,
                      d.to, delivered, buffered);
        if (want_ack) {
            send(c, share(msg::encode(msg::Ack{d.id, delivered, buffered}, seq)));
        }
    }

    bool checkRecipientName(Conn& c, std::uint16_t seq, std::string_view to) {
        if (!to.empty() && !isValidName(to)) {
            sendError(c, seq, ErrorCode::InvalidName, "invalid recipient name");
            return false;
        }
        return true;
    }

    void handleMessage(Conn& c, std::uint16_t seq, bool want_ack, ByteSpan payload) {
        msg::Message m;
        if (const char* why = msg::parse(payload, m)) {
            sendError(c, seq, ErrorCode::InvalidFormat, why);
            return;
        }
        if (!checkRecipientName(c, seq, m.to)) {
            return;
        }
        msg::Delivery d;
        d.type = MsgType::BroadcastMessage;
        d.to = m.to;
        d.text = m.text;
        route(c, seq, want_ack, d, Audience::Everyone);
    }

    void handleAgentCommand(Conn& c, std::uint16_t seq, bool want_ack, ByteSpan payload) {
        msg::AgentCommand m;
        if (const char* why = msg::parse(payload, m)) {
            sendError(c, seq, ErrorCode::InvalidFormat, why);
            return;
        }
        if (!checkRecipientName(c, seq, m.to)) {
            return;
        }
        msg::Delivery d;
        d.type = MsgType::BroadcastAgent;
        d.to = m.to;
        d.reply_to = m.reply_to;
        d.command = m.command;
        d.args = m.args;
        route(c, seq, want_ack, d, Audience::AgentsOnly);
    }

    void handleImage(Conn& c, std::uint16_t seq, bool want_ack, ByteSpan payload) {
        msg::Image m;
        if (const char* why = msg::parse(payload, m)) {
            sendError(c, seq, ErrorCode::InvalidFormat, why);
            return;
        }
        if (!checkRecipientName(c, seq, m.to)) {
            return;
        }
        msg::Delivery d;
        d.type = MsgType::Image;
        d.to = m.to;
        d.mime = m.mime;
        d.data = m.data;
        route(c, seq, want_ack, d, Audience::Everyone);
    }

    void handleListUsers(Conn& c, std::uint16_t seq, ByteSpan payload) {
        msg::ListUsers q;
        if (const char* why = msg::parse(payload, q)) {
            sendError(c, seq, ErrorCode::InvalidFormat, why);
            return;
        }
        // Collect only what fits one frame (count:u16, then name:str kind:u8 state:u8 each).
        msg::UserList list;
        std::size_t room = kMaxPayload - 2;
        bool full = false;
        users_.forEach([&](const User& u) {
            if (full || !std::string_view(u.name).starts_with(q.prefix)) {
                return;
            }
            std::size_t need = 2 + u.name.size() + 2;
            if (need > room || list.users.size() == UINT16_MAX) {
                full = true;
                return;
            }
            room -= need;
            list.users.push_back(msg::UserEntry{u.name, u.kind, u.state});
        });
        send(c, share(msg::encode(list, seq)));
    }

    // ---- timers -----------------------------------------------------------------------------

    void tick() {
        const std::int64_t t = now();
        conn_wheel_.advance(t, [&](ConnId id, std::int64_t) { onConnTimer(id, t); });
        session_wheel_.advance(
            t, [&](const Uuid& sid, std::int64_t deadline) { onSessionTimer(sid, deadline, t); });
    }

    /// ping_interval_ms <= 0 turns heartbeats off (no PINGs, nobody declared dead).
    bool heartbeatsOn() const { return cfg().ping_interval_ms > 0; }

    std::int64_t connDeadline(const Conn& c) const {
        return (c.awaiting_pong ? c.ping_sent_ms : c.last_activity_ms) + cfg().ping_interval_ms;
    }

    // Each open connection has exactly one wheel entry; it is re-filed here, never on traffic.
    void onConnTimer(ConnId id, std::int64_t t) {
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
            spdlog::info("conn={} session={} heartbeat timeout (silent {} ms)", id,
                         sessionText(c.user), t - c.last_activity_ms);
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

    void onSessionTimer(const Uuid& sid, std::int64_t deadline, std::int64_t t) {
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

    /// Re-files every deadline (after the intervals changed).
    void rebuildTimers() {
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

    // ---- shutdown and health --------------------------------------------------------------

    void shutdown(std::uint16_t retry_after_s) {
        msg::System s;
        s.event = SystemEvent::Shutdown;
        s.text = "server shutting down";
        s.retry_after_s = retry_after_s;
        SharedFrame frame = share(msg::encode(s, 0));
        spdlog::info("shutdown: telling {} connections to retry after {} s", conns_.size(),
                     retry_after_s);
        for (auto& [id, c] : conns_) {
            if (!c.closed) {
                send(c, frame);
                closeConn(c);
            }
        }
    }

    Gauges gauges() const {
        Gauges g;
        g.connections = live_conns_;
        g.sessions_online =
            users_.online(ClientKind::User).size() + users_.online(ClientKind::Agent).size();
        g.sessions_detached =
            users_.detached(ClientKind::User).size() + users_.detached(ClientKind::Agent).size();
        g.users_known = users_.size();
        g.buffered_messages = users_.offlineCount();
        g.window_messages = users_.windowCount();
        g.buffered_bytes = users_.storedBytes();
        g.latency_samples = latency_.samples();
        g.latency_p50_ms = latency_.percentile(50);
        g.latency_p99_ms = latency_.percentile(99);
        g.latency_max_ms = latency_.max();
        g.uptime_s = (now() - start_ms_) / 1000;
        return g;
    }

    std::string healthJson(ConnId asker) const {
        const Gauges g = gauges();
        const ServerStats st = server_stats_ ? server_stats_() : ServerStats{};
        const Metrics& m = self_.metrics_;
        JsonWriter w;
        w.beginObject();
        w.key("status").value("ok");
        w.key("version").value(std::string_view(cfg().software_version));
        w.key("protocol").value(static_cast<int>(kProtocolVersion));
        w.key("uptime_s").value(g.uptime_s);
        w.key("connections").value(g.connections);
        w.key("sessions").beginObject();
        w.key("online").value(g.sessions_online);
        w.key("detached").value(g.sessions_detached);
        w.endObject();
        w.key("users_known").value(g.users_known);
        w.key("messages").beginObject();
        w.key("in").value(m.messages_in_total);
        w.key("out").value(m.messages_out_total);
        w.key("buffered").value(g.buffered_messages);
        w.key("dropped").value(m.offline_dropped_total);
        w.endObject();
        w.key("bytes").beginObject();
        w.key("in").value(st.bytes_in);
        w.key("out").value(st.bytes_out);
        w.endObject();
        w.key("errors").beginObject();
        for (std::uint16_t code = 1; code <= kMaxErrorCode; ++code) {
            w.key(std::to_string(code)).value(m.errors_total[code]);
        }
        w.endObject();
        w.key("latency_ms").beginObject();
        w.key("samples").value(g.latency_samples);
        w.key("p50").value(g.latency_p50_ms);
        w.key("p99").value(g.latency_p99_ms);
        w.key("max").value(g.latency_max_ms);
        w.endObject();
        w.key("limits").beginObject();
        w.key("max_clients").value(static_cast<std::uint64_t>(cfg().max_clients));
        w.key("max_payload").value(static_cast<std::uint64_t>(cfg().max_payload));
        w.endObject();
        w.key("rss_bytes").value(st.rss_bytes);
        auto it = conns_.find(asker);
        if (it != conns_.end() && it->second.registered()) {
            const Conn& c = it->second;
            w.key("connection").beginObject();
            w.key("session").value(std::string_view(uuidToString(c.user->session)));
            w.key("name").value(std::string_view(c.user->name));
            w.key("connected_s").value((now() - c.connected_ms) / 1000);
            w.key("rtt_ms");
            if (c.rtt_ms >= 0) {
                w.value(static_cast<double>(c.rtt_ms));
            } else {
                w.null();
            }
            w.key("frames").beginObject();
            w.key("in").value(c.frames_in);
            w.key("out").value(c.frames_out);
            w.endObject();
            w.endObject();
        }
        w.endObject();
        return w.take();
    }

    // ---- state ------------------------------------------------------------------------------

    SessionManager& self_;
    Outbox& outbox_;
    const common::Clock& clock_;
    std::function<Uuid()> new_session_id_;
    std::function<ServerStats()> server_stats_;
    UserRegistry users_;
    std::unordered_map<ConnId, Conn> conns_;
    std::unordered_map<Uuid, User*, UuidHash> sessions_;  // online and detached sessions only
    DeadlineWheel<ConnId> conn_wheel_;
    DeadlineWheel<Uuid> session_wheel_;
    LatencyStats latency_;
    std::size_t live_conns_ = 0;  // counted toward max_clients
    std::int64_t start_ms_;
    std::uint64_t last_id_;
    std::uint64_t next_token_ = 1;
};

// ---- public wrappers ----------------------------------------------------------------------

SessionManager::SessionManager(CoreConfig config, Outbox& outbox, const common::Clock& clock,
                               std::function<Uuid()> new_session_id,
                               std::function<ServerStats()> server_stats)
    : config_(std::move(config)),
      impl_(std::make_unique<Impl>(*this, outbox, clock, std::move(new_session_id),
                                   std::move(server_stats))) {}

SessionManager::~SessionManager() = default;

void SessionManager::onConnect(ConnId conn) { impl_->onConnect(conn); }

void SessionManager::onFrame(ConnId conn, const FrameHeader& header, ByteSpan payload) {
    impl_->onFrame(conn, header, payload);
}

void SessionManager::onHeaderError(ConnId conn, std::uint16_t sequence, ErrorCode code,
                                   std::string_view why) {
    impl_->onHeaderError(conn, sequence, code, why);
}

void SessionManager::onDisconnect(ConnId conn, DisconnectReason reason,
                                  const std::vector<std::uint64_t>& unwritten) {
    impl_->onDisconnect(conn, reason, unwritten);
}

void SessionManager::tick() { impl_->tick(); }

std::int64_t SessionManager::tickIntervalMs() const { return kTickMs; }

void SessionManager::shutdown(std::uint16_t retry_after_s) { impl_->shutdown(retry_after_s); }

void SessionManager::reconfigure(const CoreConfig& config) {
    const bool timers_changed = config.ping_interval_ms != config_.ping_interval_ms ||
                                config.session_timeout_ms != config_.session_timeout_ms;
    config_ = config;
    if (timers_changed) {
        impl_->rebuildTimers();
    }
    impl_->users_.enforce(impl_->limits());
    spdlog::info(
        "core reconfigured (max_clients={} max_payload={} ping_interval={}ms "
        "session_timeout={}ms max_buffered={})",
        config_.max_clients, config_.max_payload, config_.ping_interval_ms,
        config_.session_timeout_ms, config_.max_buffered);
}

Gauges SessionManager::gauges() const { return impl_->gauges(); }

std::string SessionManager::healthJson(ConnId asker) const { return impl_->healthJson(asker); }

}  // namespace tundra::core
