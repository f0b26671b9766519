// SPDX-License-Identifier: Apache-2.0
// The blocking client: one socket, poll() with deadlines, the v1 codec. Requests wait for the
// frame that carries their sequence number and queue everything else as events; a broken
// registered connection is re-established with backoff and the session resumed.
#include "tundra/client.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <deque>
#include <functional>
#include <initializer_list>
#include <utility>

#include "client/backoff.h"
#include "client/dedupe_window.h"
#include "client/socket_io.h"
#include "tundra/codec.h"
#include "tundra/messages.h"

namespace tundra::client {

namespace {

using std::chrono::milliseconds;

// A decoded frame with its own copy of the payload (the decoder's view dies on the next read).
struct OwnedFrame {
    FrameHeader header;
    Bytes payload;
    [[nodiscard]] MsgType type() const { return static_cast<MsgType>(header.type); }
    [[nodiscard]] ByteSpan span() const { return {payload.data(), payload.size()}; }
};

ClientError localError(ErrorKind kind, std::string text, ErrorCode code = ErrorCode{}) {
    return ClientError{kind, code, std::move(text)};
}

ClientError protocolError(const std::string& what) {
    return localError(ErrorKind::Protocol, "malformed " + what + " from the server");
}

Welcome toWelcome(const msg::Welcome& w) {
    Welcome out;
    out.session = w.session;
    out.resumed = w.resumed;
    out.pending = w.pending;
    out.heartbeat = std::chrono::seconds(w.heartbeat_s);
    out.session_timeout = std::chrono::seconds(w.session_timeout_s);
    out.max_payload = w.max_payload;
    return out;
}

Delivery toDelivery(const msg::Delivery& d, bool replayed) {
    Delivery out;
    out.type = d.type;
    out.id = d.id;
    out.time_ms = d.time_ms;
    out.from = d.from;
    out.to = d.to;
    out.text = d.text;
    out.reply_to = d.reply_to;
    out.command = d.command;
    out.args = d.args;
    out.mime = d.mime;
    out.data = d.data;
    out.replayed = replayed;
    return out;
}

// Errors after which a reconnect would only be refused again.
bool isPermanentRegisterError(const ClientError& e) {
    if (e.kind != ErrorKind::Server) {
        return e.kind == ErrorKind::Protocol;
    }
    switch (e.code) {
        case ErrorCode::UsernameTaken:
        case ErrorCode::InvalidName:
        case ErrorCode::InvalidFormat:
        case ErrorCode::AuthFailed:
        case ErrorCode::UnsupportedVersion:
        case ErrorCode::SessionExpired:
            return true;
        default:
            return false;
    }
}

}  // namespace

const char* errorKindName(ErrorKind kind) {
    switch (kind) {
        case ErrorKind::Server:
            return "server";
        case ErrorKind::InvalidArgument:
            return "invalid_argument";
        case ErrorKind::Connect:
            return "connect";
        case ErrorKind::Timeout:
            return "timeout";
        case ErrorKind::Disconnected:
            return "disconnected";
        case ErrorKind::Protocol:
            return "protocol";
        case ErrorKind::Closed:
            return "closed";
    }
    return "unknown";
}

std::string ClientError::message() const {
    if (kind != ErrorKind::Server) {
        return text;
    }
    std::string out = errorCodeName(code);
    out += " (" + std::to_string(static_cast<unsigned>(code)) + ")";
    if (!text.empty()) {
        out += ": " + text;
    }
    return out;
}

// ---- implementation ----------------------------------------------------------------------------

struct Client::Impl {
    explicit Impl(Options o) : opt(std::move(o)), dedupe(opt.dedupe_window), backoff(opt.backoff) {}
    ~Impl() { closeSocket(); }

    Options opt;
    int fd = -1;
    FrameDecoder decoder{kMaxPayload};
    std::uint16_t next_seq = 1;
    std::deque<Event> events;
    ConnectionState state = ConnectionState::Disconnected;
    std::optional<Identity> identity;  // set while registered: what a reconnect registers as
    Welcome welcome;
    std::uint16_t max_payload = static_cast<std::uint16_t>(kMaxPayload);
    DedupeWindow dedupe;
    Backoff backoff;
    TimePoint next_attempt{};
    unsigned attempts_this_outage = 0;
    std::chrono::seconds retry_hint{0};  // SHUTDOWN retry_after: the first delay after it
    TimePoint last_rx{};
    bool probe_sent = false;  // a keepalive PING is out since last_rx
    std::uint64_t reconnect_count = 0;
    std::uint64_t ping_token = 0;

    enum class ReadStatus { Frame, Timeout, Interrupted, Failed };

    std::uint16_t nextSeq() {
        std::uint16_t s = next_seq;
        next_seq = next_seq == 65535 ? 1 : static_cast<std::uint16_t>(next_seq + 1);
        return s;
    }

    std::string endpoint() const { return formatEndpoint(opt.host, opt.port); }

    void closeSocket() {
        if (fd >= 0) {
            ::close(fd);
            fd = -1;
        }
        decoder = FrameDecoder(kMaxPayload);
    }

    // The connection failed under us. A registered client with auto_reconnect starts
    // reconnecting (first attempt at once); the caller learns of it through a ConnectionEvent.
    void connectionLost(const ClientError& reason) {
        closeSocket();
        if (state == ConnectionState::Registered && opt.auto_reconnect && identity) {
            state = ConnectionState::Reconnecting;
            attempts_this_outage = 0;
            next_attempt = SteadyClock::now() + retry_hint;
            retry_hint = std::chrono::seconds(0);
            events.push_back(ConnectionEvent{ConnectionEvent::Kind::Lost, reason, {}, 0});
        } else if (state == ConnectionState::Registered) {
            state = ConnectionState::Closed;
            events.push_back(ConnectionEvent{ConnectionEvent::Kind::Closed, reason, {}, 0});
        } else if (state == ConnectionState::Connected) {
            state = ConnectionState::Disconnected;
        }
    }

    void giveUp(const ClientError& reason) {
        closeSocket();
        state = ConnectionState::Closed;
        identity.reset();
        events.push_back(ConnectionEvent{ConnectionEvent::Kind::Closed, reason, {}, 0});
    }

    // ---- writing --------------------------------------------------------------------------

    // Writes a whole frame before `deadline`. A frame cut in the middle leaves the stream
    // unusable, so a timeout after the first byte drops the connection.
    Result<void> writeFrame(const Bytes& frame, TimePoint deadline) {
        if (fd < 0) {
            return localError(ErrorKind::Disconnected, "not connected to " + endpoint());
        }
        std::size_t off = 0;
        while (off < frame.size()) {
            ssize_t n = ::send(fd, frame.data() + off, frame.size() - off, MSG_NOSIGNAL);
            if (n > 0) {
                off += static_cast<std::size_t>(n);
                continue;
            }
            int err = errno;
            if (n < 0 && err == EINTR) {
                continue;
            }
            if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK)) {
                pollfd p{fd, POLLOUT, 0};
                int ready = ::poll(&p, 1, pollTimeoutMs(deadline, SteadyClock::now()));
                if (ready > 0 || (ready < 0 && errno == EINTR)) {
                    continue;
                }
                auto e = localError(ErrorKind::Timeout, "timed out writing to " + endpoint());
                if (off > 0) {
                    connectionLost(e);
                }
                return e;
            }
            auto e = localError(ErrorKind::Disconnected,
                                "connection to " + endpoint() + " lost: " + std::strerror(err));
            connectionLost(e);
            return e;
        }
        return {};
    }

    // ---- reading --------------------------------------------------------------------------

    // When the keepalive wants attention: send a PING after one heartbeat of silence from the
    // server, give up on the connection after two (plus a second of slack).
    std::optional<TimePoint> keepaliveWake() const {
        if (state != ConnectionState::Registered || welcome.heartbeat.count() == 0) {
            return std::nullopt;
        }
        return probe_sent ? last_rx + 2 * welcome.heartbeat + std::chrono::seconds(1)
                          : last_rx + welcome.heartbeat;
    }

    // Decodes the next frame, reading from the socket until `deadline`. Failed means the
    // connection was lost (connectionLost() already ran, `error` says why).
    ReadStatus readFrame(TimePoint deadline, OwnedFrame& out, ClientError& error) {
        std::array<std::uint8_t, 65536> buf;
        for (;;) {
            if (fd < 0) {
                error = localError(ErrorKind::Disconnected, "not connected to " + endpoint());
                return ReadStatus::Failed;
            }
            DecodeResult r = decoder.next();
            if (r.status == DecodeStatus::Frame) {
                out.header = r.header;
                out.payload.assign(r.payload.begin(), r.payload.end());
                return ReadStatus::Frame;
            }
            if (r.status == DecodeStatus::Error) {
                error = localError(ErrorKind::Protocol,
                                   std::string("undecodable frame from the server: ") + r.reason);
                connectionLost(error);
                return ReadStatus::Failed;
            }
            TimePoint now = SteadyClock::now();
            TimePoint wake = deadline;
            auto keepalive = keepaliveWake();
            if (keepalive && *keepalive < wake) {
                wake = *keepalive;
            }
            pollfd p{fd, POLLIN, 0};
            int n = ::poll(&p, 1, pollTimeoutMs(wake, now));
            if (n < 0) {
                if (errno == EINTR) {
                    return ReadStatus::Interrupted;
                }
                error = localError(ErrorKind::Disconnected,
                                   std::string("poll failed: ") + std::strerror(errno));
                connectionLost(error);
                return ReadStatus::Failed;
            }
            if (n == 0) {
                now = SteadyClock::now();
                if (keepalive && now >= *keepalive) {
                    if (probe_sent) {
                        error = localError(ErrorKind::Disconnected,
                                           "no data from " + endpoint() + " for " +
                                               std::to_string(2 * welcome.heartbeat.count()) +
                                               " s (heartbeat)");
                        connectionLost(error);
                        return ReadStatus::Failed;
                    }
                    probe_sent = true;
                    auto w = writeFrame(msg::encodePing(MsgType::Ping, ++ping_token, nextSeq()),
                                        now + opt.request_timeout);
                    if (!w && fd < 0) {
                        error = w.error();
                        return ReadStatus::Failed;
                    }
                    continue;
                }
                if (now >= deadline) {
                    return ReadStatus::Timeout;
                }
                continue;
            }
            ssize_t got = ::read(fd, buf.data(), buf.size());
            if (got > 0) {
                decoder.append(ByteSpan(buf.data(), static_cast<std::size_t>(got)));
                last_rx = SteadyClock::now();
                probe_sent = false;
                continue;
            }
            if (got < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) {
                continue;
            }
            error = localError(ErrorKind::Disconnected, got == 0
                                                            ? endpoint() + " closed the connection"
                                                            : "connection to " + endpoint() +
                                                                  " lost: " + std::strerror(errno));
            connectionLost(error);
            return ReadStatus::Failed;
        }
    }

    // Handles a frame nobody is waiting for: PINGs are answered, deliveries deduplicated and
    // queued, SYSTEM and ERROR frames queued. Late answers to abandoned requests are dropped.
    void dispatch(const OwnedFrame& f) {
        switch (f.type()) {
            case MsgType::Ping: {
                // PONG echoes the whole payload and the sequence.
                Bytes pong = FrameWriter(MsgType::Pong, f.header.sequence).tail(f.span()).finish();
                (void)writeFrame(pong, SteadyClock::now() + opt.request_timeout);
                return;
            }
            case MsgType::BroadcastMessage:
            case MsgType::BroadcastAgent:
            case MsgType::Image: {
                msg::Delivery d;
                if (msg::parse(f.type(), f.span(), d) != nullptr) {
                    events.push_back(ErrorEvent{protocolError(msgTypeName(f.header.type)), 0});
                    return;
                }
                if (!dedupe.accept(d.id)) {
                    return;  // already returned before the reconnect
                }
                events.push_back(toDelivery(d, (f.header.flags & flags::kReplay) != 0));
                return;
            }
            case MsgType::System: {
                msg::System s;
                if (msg::parse(f.span(), s) != nullptr) {
                    events.push_back(ErrorEvent{protocolError("SYSTEM"), 0});
                    return;
                }
                if (s.event == SystemEvent::Welcome) {
                    return;  // only meaningful as the answer to REGISTER
                }
                events.push_back(SystemNotice{s.event, std::string(s.text), std::string(s.name),
                                              s.dropped, s.retry_after_s});
                if (s.event == SystemEvent::Shutdown) {
                    retry_hint = std::chrono::seconds(s.retry_after_s);
                } else if (s.event == SystemEvent::Bye) {
                    // Unasked BYE: another connection took the session over. Reconnecting
                    // would take it back, so stop here.
                    giveUp(localError(ErrorKind::Closed,
                                      "session closed by the server: " + std::string(s.text)));
                }
                return;
            }
            case MsgType::Error: {
                msg::Error e;
                if (msg::parse(f.span(), e) != nullptr) {
                    events.push_back(ErrorEvent{protocolError("ERROR"), f.header.sequence});
                    return;
                }
                events.push_back(
                    ErrorEvent{ClientError{ErrorKind::Server, static_cast<ErrorCode>(e.code),
                                           std::string(e.text)},
                               f.header.sequence});
                return;
            }
            default:
                return;
        }
    }

    // Reads until the frame answering `seq` arrives: ERROR or one of `types`. Everything else
    // is dispatched. EINTR is retried: a request has its own deadline.
    Result<OwnedFrame> waitReply(std::uint16_t seq, std::initializer_list<MsgType> types,
                                 TimePoint deadline) {
        OwnedFrame f;
        ClientError error;
        for (;;) {
            switch (readFrame(deadline, f, error)) {
                case ReadStatus::Frame:
                    break;
                case ReadStatus::Interrupted:
                    continue;
                case ReadStatus::Timeout:
                    return localError(ErrorKind::Timeout,
                                      "no answer from " + endpoint() + " within the timeout");
                case ReadStatus::Failed:
                    return error;
            }
            if (f.header.sequence == seq) {
                if (f.type() == MsgType::Error) {
                    msg::Error e;
                    if (msg::parse(f.span(), e) != nullptr) {
                        return protocolError("ERROR");
                    }
                    return ClientError{ErrorKind::Server, static_cast<ErrorCode>(e.code),
                                       std::string(e.text)};
                }
                if (std::find(types.begin(), types.end(), f.type()) != types.end()) {
                    return f;
                }
            }
            dispatch(f);
        }
    }

    // ---- connecting and registering -------------------------------------------------------

    Result<void> openSocket() {
        closeSocket();
        auto r = connectTcp(opt.host, opt.port, SteadyClock::now() + opt.connect_timeout);
        if (!r) {
            return r.error();
        }
        fd = *r;
        last_rx = SteadyClock::now();
        probe_sent = false;
        return {};
    }

    // One REGISTER round trip (plus a fresh-session retry on SESSION_EXPIRED when allowed).
    Result<Welcome> registerOnce(const Identity& id, Uuid session, TimePoint deadline) {
        std::uint16_t seq = nextSeq();
        msg::Register reg{id.name, session, id.kind, id.token, dedupe.highest()};
        Bytes frame = msg::encode(reg, seq);
        if (frame.empty()) {
            return localError(ErrorKind::InvalidArgument, "REGISTER does not fit in a frame",
                              ErrorCode::TooLarge);
        }
        if (auto w = writeFrame(frame, deadline); !w) {
            return w.error();
        }
        auto reply = waitReply(seq, {MsgType::System}, deadline);
        if (!reply) {
            const ClientError& e = reply.error();
            if (e.kind == ErrorKind::Server && e.code == ErrorCode::SessionExpired &&
                !isNil(session) && id.new_session_if_expired) {
                return registerOnce(id, Uuid{}, deadline);
            }
            return e;
        }
        msg::System s;
        if (msg::parse(reply->span(), s) != nullptr || s.event != SystemEvent::Welcome) {
            return protocolError("answer to REGISTER");
        }
        Welcome w = toWelcome(s.welcome);
        welcome = w;
        max_payload = w.max_payload == 0 ? static_cast<std::uint16_t>(kMaxPayload) : w.max_payload;
        state = ConnectionState::Registered;
        identity = id;
        identity->session = w.session;
        return w;
    }

    // One reconnect attempt: connect, REGISTER with the saved session and last id. On failure
    // schedules the next attempt, or gives up on a permanent refusal or too many attempts.
    void attemptReconnect() {
        ++attempts_this_outage;
        auto fail = [&](const ClientError& e) {
            closeSocket();
            if (isPermanentRegisterError(e)) {
                giveUp(e);
                return;
            }
            milliseconds delay = backoff.next();
            if (backoff.exhausted()) {
                giveUp(e);  // that was the last attempt allowed
                return;
            }
            state = ConnectionState::Reconnecting;
            next_attempt = SteadyClock::now() + std::max<milliseconds>(delay, retry_hint);
            retry_hint = std::chrono::seconds(0);
        };
        if (auto c = openSocket(); !c) {
            fail(c.error());
            return;
        }
        state = ConnectionState::Connected;
        Identity id = *identity;
        auto w = registerOnce(id, id.session, SteadyClock::now() + opt.request_timeout);
        if (!w) {
            fail(w.error());
            return;
        }
        backoff.reset();
        ++reconnect_count;
        events.push_back(ConnectionEvent{
            w->resumed ? ConnectionEvent::Kind::Resumed : ConnectionEvent::Kind::NewSession,
            {},
            *w,
            attempts_this_outage});
    }

    // Makes sure there is a socket for a request: connects a fresh client, or (while
    // reconnecting) makes the attempts that fall due before `deadline`.
    Result<void> ensureLink(TimePoint deadline) {
        for (;;) {
            switch (state) {
                case ConnectionState::Connected:
                case ConnectionState::Registered:
                    if (fd >= 0) {
                        return {};
                    }
                    break;
                case ConnectionState::Disconnected:
                    if (auto c = openSocket(); !c) {
                        return c.error();
                    }
                    state = ConnectionState::Connected;
                    return {};
                case ConnectionState::Closed:
                    return localError(ErrorKind::Closed,
                                      "the connection to " + endpoint() + " is closed");
                case ConnectionState::Reconnecting: {
                    TimePoint now = SteadyClock::now();
                    if (now >= deadline) {
                        return localError(ErrorKind::Disconnected,
                                          "still reconnecting to " + endpoint());
                    }
                    if (now < next_attempt) {
                        waitUntil(std::min(next_attempt, deadline));
                        continue;
                    }
                    attemptReconnect();
                    continue;
                }
            }
            return localError(ErrorKind::Disconnected, "not connected to " + endpoint());
        }
    }

    // A backoff pause (not synchronisation: nothing to wait for but time).
    static void waitUntil(TimePoint t) {
        int ms = pollTimeoutMs(t, SteadyClock::now());
        if (ms > 0) {
            ::poll(nullptr, 0, ms);
        }
    }

    // Sends a request built by `build(seq)` and waits for its answer.
    Result<OwnedFrame> request(const std::function<Bytes(std::uint16_t)>& build,
                               std::initializer_list<MsgType> answers) {
        TimePoint deadline = SteadyClock::now() + opt.request_timeout;
        if (auto l = ensureLink(deadline); !l) {
            return l.error();
        }
        std::uint16_t seq = nextSeq();
        Bytes frame = build(seq);
        if (auto c = checkSize(frame); !c) {
            return c.error();
        }
        if (auto w = writeFrame(frame, deadline); !w) {
            return w.error();
        }
        return waitReply(seq, answers, deadline);
    }

    // A payload over the server's limit would get TOO_LARGE and the connection closed; refuse
    // it here instead.
    Result<void> checkSize(const Bytes& frame) const {
        if (frame.empty()) {
            return localError(
                ErrorKind::InvalidArgument,
                "payload exceeds the protocol limit of " + std::to_string(kMaxPayload) + " bytes",
                ErrorCode::TooLarge);
        }
        std::size_t payload = frame.size() - kHeaderSize;
        if (payload > max_payload) {
            return localError(ErrorKind::InvalidArgument,
                              "payload of " + std::to_string(payload) +
                                  " bytes exceeds the server's limit of " +
                                  std::to_string(max_payload),
                              ErrorCode::TooLarge);
        }
        return {};
    }

    Result<Ack> ackRequest(const std::function<Bytes(std::uint16_t)>& build) {
        auto reply = request(build, {MsgType::Ack});
        if (!reply) {
            return reply.error();
        }
        msg::Ack a;
        if (msg::parse(reply->span(), a) != nullptr) {
            return protocolError("ACK");
        }
        return Ack{a.id, a.delivered, a.buffered};
    }
};

// ---- Client ------------------------------------------------------------------------------------

Client::Client(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Client::~Client() = default;
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;

Result<void> Client::connect() {
    if (impl_->fd >= 0) {
        return {};
    }
    if (auto r = impl_->openSocket(); !r) {
        return r;
    }
    impl_->state = ConnectionState::Connected;
    return {};
}

Result<Welcome> Client::registerAs(const Identity& identity) {
    Impl& m = *impl_;
    if (m.state == ConnectionState::Reconnecting || m.state == ConnectionState::Closed) {
        m.closeSocket();
        m.state = ConnectionState::Disconnected;
    }
    TimePoint deadline = SteadyClock::now() + m.opt.request_timeout;
    if (auto l = m.ensureLink(deadline); !l) {
        return l.error();
    }
    m.dedupe.raiseFloor(identity.last_id);
    m.backoff.reset();
    return m.registerOnce(identity, identity.session, deadline);
}

Result<Ack> Client::sendMessage(std::string_view to, std::string_view text) {
    return impl_->ackRequest([&](std::uint16_t seq) {
        return msg::encode(msg::Message{to, text}, seq, flags::kAck);
    });
}

Result<std::uint16_t> Client::postMessage(std::string_view to, std::string_view text) {
    Impl& m = *impl_;
    TimePoint deadline = SteadyClock::now() + m.opt.request_timeout;
    if (auto l = m.ensureLink(deadline); !l) {
        return l.error();
    }
    std::uint16_t seq = m.nextSeq();
    Bytes frame = msg::encode(msg::Message{to, text}, seq);
    if (auto c = m.checkSize(frame); !c) {
        return c.error();
    }
    if (auto w = m.writeFrame(frame, deadline); !w) {
        return w.error();
    }
    return seq;
}

Result<Ack> Client::sendAgentCommand(std::string_view to, std::string_view command,
                                     std::string_view args, std::uint64_t reply_to) {
    return impl_->ackRequest([&](std::uint16_t seq) {
        return msg::encode(msg::AgentCommand{to, reply_to, command, args}, seq, flags::kAck);
    });
}

Result<Ack> Client::reply(const Delivery& request, std::string_view command,
                          std::string_view args) {
    return sendAgentCommand(request.from, command, args, request.id);
}

Result<Ack> Client::sendImage(std::string_view to, std::string_view mime, std::string_view data) {
    return impl_->ackRequest([&](std::uint16_t seq) {
        return msg::encode(msg::Image{to, mime, data}, seq, flags::kAck);
    });
}

Result<std::chrono::microseconds> Client::ping() {
    Impl& m = *impl_;
    std::uint64_t token = ++m.ping_token;
    TimePoint sent{};
    auto reply = m.request(
        [&](std::uint16_t seq) {
            sent = SteadyClock::now();
            return msg::encodePing(MsgType::Ping, token, seq);
        },
        {MsgType::Pong});
    TimePoint received = SteadyClock::now();
    if (!reply) {
        return reply.error();
    }
    msg::Ping p;
    if (msg::parse(reply->span(), p) != nullptr || p.token != token) {
        return protocolError("PONG");
    }
    return std::chrono::duration_cast<std::chrono::microseconds>(received - sent);
}

Result<std::string> Client::health() {
    auto reply = impl_->request(
        [](std::uint16_t seq) { return msg::encodeEmpty(MsgType::HealthCheck, seq); },
        {MsgType::HealthResult});
    if (!reply) {
        return reply.error();
    }
    msg::HealthResult h;
    if (msg::parse(reply->span(), h) != nullptr) {
        return protocolError("HEALTH_RESULT");
    }
    return std::string(h.json);
}

Result<std::vector<UserInfo>> Client::listUsers(std::string_view prefix) {
    auto reply =
        impl_->request([&](std::uint16_t seq) { return msg::encode(msg::ListUsers{prefix}, seq); },
                       {MsgType::UserList});
    if (!reply) {
        return reply.error();
    }
    msg::UserList list;
    if (msg::parse(reply->span(), list) != nullptr) {
        return protocolError("USER_LIST");
    }
    std::vector<UserInfo> out;
    out.reserve(list.users.size());
    for (const auto& u : list.users) {
        out.push_back(UserInfo{std::string(u.name), u.kind, u.state});
    }
    return out;
}

Result<void> Client::logout() {
    Impl& m = *impl_;
    if (m.state != ConnectionState::Registered && m.state != ConnectionState::Reconnecting) {
        return localError(ErrorKind::Closed, "not registered");
    }
    auto reply = m.request([](std::uint16_t seq) { return msg::encodeEmpty(MsgType::Logout, seq); },
                           {MsgType::System});
    if (!reply) {
        return reply.error();
    }
    m.closeSocket();
    m.identity.reset();
    m.state = ConnectionState::Closed;
    return {};
}

void Client::close() {
    impl_->closeSocket();
    impl_->identity.reset();
    impl_->state = ConnectionState::Disconnected;
}

std::optional<Event> Client::nextEvent(std::chrono::milliseconds timeout) {
    Impl& m = *impl_;
    TimePoint deadline = SteadyClock::now() + timeout;
    OwnedFrame f;
    ClientError error;
    for (;;) {
        if (!m.events.empty()) {
            Event e = std::move(m.events.front());
            m.events.pop_front();
            return e;
        }
        if (m.state == ConnectionState::Reconnecting) {
            TimePoint now = SteadyClock::now();
            if (now >= m.next_attempt) {
                m.attemptReconnect();
                if (m.events.empty() && m.state == ConnectionState::Reconnecting &&
                    SteadyClock::now() >= deadline) {
                    return std::nullopt;
                }
                continue;
            }
            if (now >= deadline) {
                return std::nullopt;
            }
            Impl::waitUntil(std::min(m.next_attempt, deadline));
            continue;
        }
        if (m.fd < 0) {
            return std::nullopt;
        }
        switch (m.readFrame(deadline, f, error)) {
            case Impl::ReadStatus::Frame:
                m.dispatch(f);
                break;
            case Impl::ReadStatus::Timeout:
            case Impl::ReadStatus::Interrupted:
                if (m.events.empty()) {
                    return std::nullopt;
                }
                break;
            case Impl::ReadStatus::Failed:
                break;  // connectionLost() queued what happened
        }
    }
}

bool Client::hasQueuedEvents() const { return !impl_->events.empty(); }
ConnectionState Client::state() const { return impl_->state; }
int Client::fd() const { return impl_->fd; }
const Welcome& Client::welcome() const { return impl_->welcome; }
std::uint64_t Client::lastId() const { return impl_->dedupe.highest(); }
std::uint64_t Client::reconnects() const { return impl_->reconnect_count; }
const Options& Client::options() const { return impl_->opt; }
std::string Client::endpoint() const { return impl_->endpoint(); }

void Client::dropConnectionForTesting() {
    Impl& m = *impl_;
    if (m.fd < 0) {
        return;
    }
    abortSocket(m.fd);
    m.fd = -1;
    m.connectionLost(localError(ErrorKind::Disconnected, "connection dropped for testing"));
}

}  // namespace tundra::client
