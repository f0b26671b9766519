// SPDX-License-Identifier: Apache-2.0
// Inbound frames: the flag and type checks, the registration gate and the switch that hands
// each client message type to its handler; header errors; LIST_USERS.
#include <spdlog/spdlog.h>

#include "core/session_state.h"

namespace tundra::core {

bool SessionManager::Impl::onFrame(ConnId id, const FrameHeader& header, ByteSpan payload) {
    Conn* found = conns_.find(id);
    if (found == nullptr) {
        spdlog::warn("conn={} frame for an unknown connection ignored", id);
        return true;  // nothing to decide for it here (the server never reports one)
    }
    Conn& c = *found;  // stays valid: only onDisconnect() erases connections
    const auto t = static_cast<MsgType>(header.type);
    if (t != MsgType::Message && t != MsgType::AgentCommand && t != MsgType::Image) {
        flushBroadcasts();  // only broadcasts wait for each other (SessionManager::beginInput)
    }
    dispatch(c, header, payload);
    checkBadFrames(c);
    return !c.closed;
}

// Every frame costs one token of the frame bucket and its size (header + payload) of the byte
// bucket. A refused frame has no other effect; it is answered with ERROR RATE_LIMITED and its
// sequence, except a PONG (never answered; it still counted as a sign of life).
bool SessionManager::Impl::admitFrame(Conn& c, const FrameHeader& header,
                                      std::size_t payload_size) {
    const std::int64_t t = now();
    const bool ok = c.rate.take(
        {{{1, cfg().rate_messages_per_s, cfg().rate_messages_burst},
          {kHeaderSize + payload_size, cfg().rate_bytes_per_s, cfg().rate_bytes_burst}}},
        t);
    if (ok) {
        return true;
    }
    ++metrics().rate_limited_total;
    std::uint64_t held_back = 0;
    if (rate_log_.allow(t, held_back)) {
        spdlog::warn("conn={} session={} frame refused: rate limit ({} more refusals held back)",
                     c.id, sessionText(c.user), held_back);
    }
    if (header.type != static_cast<std::uint8_t>(MsgType::Pong)) {
        sendError(c, header.sequence, ErrorCode::RateLimited, "rate limited");
    }
    return false;
}

void SessionManager::Impl::checkBadFrames(Conn& c) {
    if (c.closed || cfg().max_bad_frames == 0 || c.bad_frames < cfg().max_bad_frames) {
        return;
    }
    ++metrics().bad_frame_closes_total;
    std::uint64_t held_back = 0;
    if (bad_frame_log_.allow(now(), held_back)) {
        spdlog::warn(
            "conn={} session={} closed after {} bad frames ({} more such closes held back)", c.id,
            sessionText(c.user), std::uint32_t{c.bad_frames}, held_back);
    }
    closeConn(c);
}

void SessionManager::Impl::dispatch(Conn& c, const FrameHeader& header, ByteSpan payload) {
    ++metrics().frames_in_total;
    ++c.frames_in;
    if (c.closed) {
        return;  // on its way out (LOGOUT, takeover, refusal, heartbeat): ignore the rest
    }
    c.last_activity_ms = now();  // any frame counts as life
    c.awaiting_pong = false;
    const std::uint16_t seq = header.sequence;
    if (!admitFrame(c, header, payload.size())) {
        return;
    }
    const std::uint8_t known = header.type == static_cast<std::uint8_t>(MsgType::Register)
                                   ? flags::kKnown | flags::kEphemeral
                                   : flags::kKnown;
    if ((header.flags & ~known) != 0) {
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
        case MsgType::HealthCheck: {
            const bool full = !auth_ || (c.registered() && (c.perms & perm::kHealthDetails) != 0);
            send(c, share(msg::encode(msg::HealthResult{healthJsonFor(c.id, full)}, seq)));
            return;
        }
        case MsgType::Register:
            handleRegister(c, seq, payload, (header.flags & flags::kEphemeral) != 0);
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
        case MsgType::AuthRefresh:
            handleAuthRefresh(c, seq, payload);
            return;
        default:
            sendError(c, seq, ErrorCode::UnknownType, "unknown type");
            return;
    }
}

void SessionManager::Impl::onHeaderError(ConnId id, std::uint16_t seq, ErrorCode code,
                                         std::string_view why) {
    Conn* found = conns_.find(id);
    if (found == nullptr) {
        // No state here to answer with, but the stream is still unreadable: the close is
        // requested all the same (the server relies on the core for it).
        outbox_.closeAfterFlush(id);
        return;
    }
    Conn& c = *found;
    if (c.closed) {
        return;
    }
    spdlog::info("conn={} session={} header error {}: {}", id, sessionText(c.user),
                 errorCodeName(code), why);
    sendError(c, seq, code, why);
    closeConn(c);
}

void SessionManager::Impl::handleListUsers(Conn& c, std::uint16_t seq, ByteSpan payload) {
    msg::ListUsers q;
    if (const char* why = msg::parse(payload, q)) {
        sendError(c, seq, ErrorCode::InvalidFormat, why);
        return;
    }
    if (!permitted(c, seq, perm::kListUsers, "not allowed to list users")) {
        return;
    }
    // Collect only what fits one frame (count:u16, then name:str kind:u8 state:u8 each).
    msg::UserList list;
    std::size_t room = kMaxPayload - 2;
    // Stops at the first user that does not fit: the walk is bounded by what one frame holds
    // and by max_users (detached sessions count toward it too).
    users_.forEachWhile([&](const User& u) {
        if (!std::string_view(u.name).starts_with(q.prefix)) {
            return true;
        }
        std::size_t need = 2 + u.name.size() + 2;
        if (need > room || list.users.size() == UINT16_MAX) {
            return false;
        }
        room -= need;
        list.users.push_back(msg::UserEntry{u.name, u.kind, u.state});
        return true;
    });
    send(c, share(msg::encode(list, seq)));
}

}  // namespace tundra::core
