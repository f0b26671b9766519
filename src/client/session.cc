// SPDX-License-Identifier: Apache-2.0
// The client's session: connect, REGISTER (resuming a saved session, or a new one when it has
// expired), reconnecting with backoff after a registered connection breaks, logout and close.
#include <algorithm>

#include "client/client_impl.h"
#include "tundra/messages.h"

namespace tundra::client {

namespace {

using std::chrono::milliseconds;

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

Result<Welcome> Client::Impl::registerOnce(const Identity& id, Uuid session, TimePoint deadline) {
    std::uint16_t seq = nextSeq();
    msg::Register reg{id.name, session, id.kind, id.token, dedupe.highest()};
    Bytes frame = msg::encode(reg, seq, id.ephemeral ? flags::kEphemeral : 0);
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
        if (e.kind == ErrorKind::Server && e.code == ErrorCode::SessionExpired && !isNil(session) &&
            id.new_session_if_expired) {
            return registerOnce(id, Uuid{}, deadline);
        }
        return e;
    }
    msg::System s;
    if (msg::parse(reply->span(), s) != nullptr || s.event != SystemEvent::Welcome) {
        return protocolError("answer to REGISTER");
    }
    Welcome w = toWelcome(s.welcome);
    if (!w.resumed) {
        // A new session: perhaps a new server process, whose ids may restart lower than those
        // seen so far if its wall clock stepped back. Do not let the floor swallow them.
        dedupe.newSession();
    }
    welcome = w;
    max_payload = w.max_payload == 0 ? static_cast<std::uint16_t>(kMaxPayload) : w.max_payload;
    state = ConnectionState::Registered;
    identity = id;
    identity->session = w.session;
    return w;
}

void Client::Impl::attemptReconnect() {
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
    // Constructed in place: moving a temporary Event here trips a GCC 12 false
    // -Wmaybe-uninitialized once this function is compiled apart from the rest of the client.
    queueEvent(ConnectionEvent{
        w->resumed ? ConnectionEvent::Kind::Resumed : ConnectionEvent::Kind::NewSession,
        {},
        *w,
        attempts_this_outage});
}

Result<void> Client::Impl::ensureLink(TimePoint deadline) {
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

// ---- Client: connecting and the session ---------------------------------------------------

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

Result<void> Client::refreshToken(std::string_view token) {
    Impl& m = *impl_;
    if (m.state != ConnectionState::Registered || !m.identity) {
        return localError(ErrorKind::Closed, "not registered");
    }
    auto reply =
        m.request([&](std::uint16_t seq) { return msg::encode(msg::AuthRefresh{token}, seq); },
                  {MsgType::Ack});
    if (!reply) {
        return reply.error();
    }
    m.identity->token = std::string(token);
    return {};
}

void Client::close() {
    impl_->closeSocket();
    impl_->identity.reset();
    impl_->state = ConnectionState::Disconnected;
}

void Client::dropConnectionForTesting() {
    Impl& m = *impl_;
    if (m.fd < 0) {
        return;
    }
    m.tls.reset();
    abortSocket(m.fd);
    m.fd = -1;
    m.connectionLost(localError(ErrorKind::Disconnected, "connection dropped for testing"));
}

}  // namespace tundra::client
