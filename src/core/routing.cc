// SPDX-License-Identifier: Apache-2.0
// Routing: MESSAGE, AGENT_COMMAND and IMAGE to one user, everyone or the agents; live
// delivery with its window, offline buffering, replays (REPLAY flag), unwritten deliveries of a
// dead connection (requeueUnwritten, in registration.cc); JOINED/LEFT presence is queued and
// flushed per tick (heartbeat.cc).
#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/session_state.h"

namespace tundra::core {

namespace {
// How far ahead a fan-out prefetches: the User objects, then (once those have arrived) the
// window slots and connection they point to.
constexpr std::size_t kPrefetchUser = 8;
constexpr std::size_t kPrefetchState = 4;
}  // namespace

// To one recipient: its live connection if it has one that takes the frame, else its
// offline buffer.
SessionManager::Impl::Outcome SessionManager::Impl::deliver(User& r, const StoredFrame& e,
                                                            bool broadcast) {
    if (r.state == UserState::Online && r.conn != nullptr && !r.conn->closed &&
        send(*r.conn, e.frame, e.id)) {
        ++metrics().messages_out_total;
        users_.storeNewestWindow(r, e, limits(), broadcast && r.bcast_since != 0);
        return Outcome::Delivered;
    }
    if (degraded_) {
        return Outcome::None;  // it could not be stored: refused (direct) or skipped (broadcast)
    }
    return users_.storeOffline(r, e, limits()) ? Outcome::Buffered : Outcome::None;
}

// Common path of MESSAGE, AGENT_COMMAND and IMAGE once the fields and names are valid.
void SessionManager::Impl::route(Conn& c, std::uint16_t seq, bool want_ack, msg::Delivery& d,
                                 Audience audience) {
    // Authorization (docs/PROTOCOL.md, "Authorization"): to everyone needs broadcast, to one
    // name direct; AGENT_COMMAND and IMAGE need their own permission as well.
    std::uint32_t need = d.to.empty() ? perm::kBroadcast : perm::kDirect;
    if (d.type == MsgType::BroadcastAgent) {
        need |= perm::kAgentCommand;
    } else if (d.type == MsgType::Image) {
        need |= perm::kImage;
    }
    if (!permitted(c, seq, need, "not allowed to send this")) {
        return;
    }
    User& sender = *c.user;
    d.from = sender.name;
    const std::size_t payload = msg::deliveryPayloadSize(d);
    if (payload > kMaxPayload) {
        sendError(c, seq, ErrorCode::TooLarge, "the delivery would exceed the frame limit");
        return;
    }
    User* target = nullptr;
    if (!d.to.empty()) {
        flushBroadcasts();  // a direct message goes after the broadcasts accepted before it
        target = users_.find(d.to);
        if (target == nullptr) {
            sendError(c, seq, ErrorCode::UnknownRecipient, "unknown recipient");
            return;
        }
        target->window.prefetchEnds();  // stored into (and popped) once the frame is encoded
    }
    if (degraded_ && target != nullptr && target != &sender &&
        !(target->state == UserState::Online && target->conn != nullptr && !target->conn->closed)) {
        // Writes fail: only what needs no storing is accepted (docs/PROTOCOL.md, ERROR 15).
        sendError(c, seq, ErrorCode::StorageUnavailable,
                  "the server cannot store messages right now; the recipient is offline");
        return;
    }
    d.id = nextId();
    d.time_ms = static_cast<std::uint64_t>(clock_.wallMs());
    ++metrics().messages_in_total;

    if (target == &sender) {  // a message to oneself is accepted and delivered to nobody
        spdlog::debug("conn={} session={} {} id={} to itself", c.id, sessionText(&sender),
                      msgTypeName(static_cast<std::uint8_t>(d.type)), d.id);
        if (want_ack) {
            send(c, share(msg::encode(msg::Ack{d.id, 0, 0}, seq)));
        }
        return;
    }
    // One frame for every recipient, encoded straight into its shared buffer: the same
    // SharedFrame goes to every outbox queue, window and offline buffer.
    std::uint8_t* at = nullptr;
    StoredFrame e{SharedFrame::allocate(kHeaderSize + payload, at), d.id};
    if (!msg::encodeInto(d, std::span(at, kHeaderSize + payload))) {
        sendError(c, seq, ErrorCode::ServerError, "could not encode the delivery");
        return;
    }
    if (target == nullptr) {
        if (storeOn()) {
            // Stored once: the windows of the online recipients refer to it by id.
            recorder_.putBroadcast(sender.name, e, audience == Audience::AgentsOnly);
            bcast_last_ = e.id;
        }
        PendingBroadcast& p = pending_bcasts_.emplace_back();
        p.e = std::move(e);
        p.from = &c;
        p.sender = &sender;
        p.seq = seq;
        p.want_ack = want_ack;
        p.all = audience == Audience::Everyone;
        p.type = d.type;
        if (!batching_) {
            flushBroadcasts();  // one at a time (tests, and the core driven frame by frame)
        }
        return;
    }
    const std::uint64_t evictions_before = metrics().budget_evictions_total;
    const Outcome o = deliver(*target, e);
    noteBudgetEvictions(evictions_before);
    const std::uint32_t delivered = o == Outcome::Delivered ? 1U : 0U;
    const std::uint32_t buffered = o == Outcome::Buffered ? 1U : 0U;
    if (spdlog::should_log(spdlog::level::debug)) {  // once per message: not even the call
        spdlog::debug("conn={} session={} {} id={} to='{}' delivered={} buffered={}", c.id,
                      sessionText(&sender), msgTypeName(static_cast<std::uint8_t>(d.type)), d.id,
                      d.to, delivered, buffered);
    }
    if (!want_ack) {
        return;
    }
    if (storeOn() && buffered > 0) {
        // "buffered" means stored: the ACK leaves once this iteration's batch commits.
        held_acks_.push_back(HeldAck{c.id,
                                     recorder_.openSeq(),
                                     seq,
                                     d.id,
                                     delivered,
                                     buffered,
                                     std::string(target->name),
                                     {}});
    } else {
        send(c, share(msg::encode(msg::Ack{d.id, delivered, buffered}, seq)));
    }
}

// Recipient-major fan-out: every recipient's cold state (user, window, connection, output
// queue) is fetched once for all pending broadcasts, not once per broadcast.
void SessionManager::Impl::flushBroadcasts() {
    if (pending_bcasts_.empty() || flushing_bcasts_) {
        return;
    }
    flushing_bcasts_ = true;
    const std::uint64_t evictions_before = metrics().budget_evictions_total;
    std::size_t all_count = 0;
    User* sole_sender = pending_bcasts_.front().sender;
    for (const PendingBroadcast& p : pending_bcasts_) {
        all_count += p.all ? 1U : 0U;
        sole_sender = p.sender == sole_sender ? sole_sender : nullptr;
    }
    // Two or more for the same recipients: one joined copy of their frames goes to each
    // connection as one output segment (agents get every pending broadcast, users those to
    // everyone).
    SharedFrame joined_all;
    SharedFrame joined_users;
    if (sole_sender != nullptr && pending_bcasts_.size() >= 2) {
        joined_all = joinFrames(false);
        joined_users = all_count == pending_bcasts_.size() ? joined_all
                       : all_count >= 2                    ? joinFrames(true)
                                                           : nullptr;
    }
    for (auto kind : {ClientKind::User, ClientKind::Agent}) {
        if (all_count == 0 && kind != ClientKind::Agent) {
            continue;  // agents-only broadcasts: users get none of them
        }
        const std::vector<User*>& online = users_.online(kind);
        const std::size_t n = online.size();
        for (std::size_t i = 0; i < n; ++i) {
            // Every recipient's state is cold by the time a fan-out reaches it: fetch the users
            // a few steps ahead, then their windows and connections.
            if (i + kPrefetchUser < n) {
                prefetch(online[i + kPrefetchUser]);
            }
            if (i + kPrefetchState < n) {
                const User* ahead = online[i + kPrefetchState];
                ahead->window.prefetchEnds();
                prefetch(ahead->conn);
            }
            User& r = *online[i];
            const SharedFrame& joined = kind == ClientKind::Agent ? joined_all : joined_users;
            if (!joined || &r == sole_sender || !deliverJoined(r, kind, joined)) {
                fanOutTo(r, kind);
            }
        }
        // Detached sessions buffer broadcasts; logged-out users get none.
        if (!degraded_) {  // nothing can be stored: only the online get it
            for (User* r : users_.detached(kind)) {
                fanOutTo(*r, kind);
            }
        }
    }
    noteBudgetEvictions(evictions_before);
    const bool hold = storeOn();
    const bool log = spdlog::should_log(spdlog::level::debug);
    for (PendingBroadcast& p : pending_bcasts_) {
        if (log) {
            spdlog::debug("conn={} session={} {} id={} to='' delivered={} buffered={}", p.from->id,
                          sessionText(p.sender), msgTypeName(static_cast<std::uint8_t>(p.type)),
                          p.e.id, p.delivered, p.buffered);
        }
        if (!p.want_ack) {
            continue;
        }
        if (hold && p.buffered > 0) {
            // "buffered" means stored: the ACK leaves once this iteration's batch commits.
            held_acks_.push_back(HeldAck{p.from->id, recorder_.openSeq(), p.seq, p.e.id,
                                         p.delivered, p.buffered, std::move(p.buffered_first),
                                         std::move(p.buffered_more)});
        } else {
            send(*p.from, share(msg::encode(msg::Ack{p.e.id, p.delivered, p.buffered}, p.seq)));
        }
    }
    pending_bcasts_.clear();
    flushing_bcasts_ = false;
}

SharedFrame SessionManager::Impl::joinFrames(bool everyone_only) const {
    std::size_t size = 0;
    for (const PendingBroadcast& p : pending_bcasts_) {
        size += everyone_only && !p.all ? 0 : p.e.bytes();
    }
    std::uint8_t* at = nullptr;
    SharedFrame joined = SharedFrame::allocate(size, at);
    for (const PendingBroadcast& p : pending_bcasts_) {
        if (!everyone_only || p.all) {
            std::memcpy(at, p.e.frame->data(), p.e.frame->size());
            at += p.e.frame->size();
        }
    }
    return joined;
}

bool SessionManager::Impl::deliverJoined(User& r, ClientKind kind, const SharedFrame& joined) {
    if (r.conn == nullptr || r.conn->closed || !outbox_.sendJoined(r.conn->id, joined)) {
        return false;  // one by one: each goes to the offline buffer
    }
    std::uint32_t n = 0;
    const bool ranged = r.bcast_since != 0;
    const BufferLimits lim = limits();
    for (PendingBroadcast& p : pending_bcasts_) {
        if (p.all || kind == ClientKind::Agent) {
            users_.storeNewestWindow(r, p.e, lim, ranged);
            ++p.delivered;
            ++n;
        }
    }
    r.conn->frames_out += n;
    metrics().frames_out_total += n;
    metrics().messages_out_total += n;
    return true;
}

void SessionManager::Impl::fanOutTo(User& r, ClientKind kind) {
    const bool online = r.state == UserState::Online;
    for (PendingBroadcast& p : pending_bcasts_) {
        if (&r == p.sender || (!p.all && kind != ClientKind::Agent)) {
            continue;
        }
        Outcome o = Outcome::None;
        if (online) {
            o = deliver(r, p.e, /*broadcast=*/true);
        } else if (!degraded_ && users_.storeOffline(r, p.e, limits())) {
            o = Outcome::Buffered;
        }
        if (o == Outcome::Delivered) {
            ++p.delivered;
        } else if (o == Outcome::Buffered) {
            ++p.buffered;
            if (p.want_ack && storeOn()) {
                (p.buffered == 1 ? p.buffered_first : p.buffered_more.emplace_back()) = r.name;
            }
        }
    }
}

bool SessionManager::Impl::checkRecipientName(Conn& c, std::uint16_t seq, std::string_view to) {
    // A remembered user's name was checked when it registered: an exact match needs no second
    // look at every character (route() finds it again through the registry's last-hit cache).
    if (!to.empty() && users_.find(to) == nullptr && !isValidName(to)) {
        sendError(c, seq, ErrorCode::InvalidName, "invalid recipient name");
        return false;
    }
    return true;
}

void SessionManager::Impl::handleMessage(Conn& c, std::uint16_t seq, bool want_ack,
                                         ByteSpan payload) {
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

void SessionManager::Impl::handleAgentCommand(Conn& c, std::uint16_t seq, bool want_ack,
                                              ByteSpan payload) {
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

void SessionManager::Impl::handleImage(Conn& c, std::uint16_t seq, bool want_ack,
                                       ByteSpan payload) {
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

// Sends a stored delivery again, flagged REPLAY (a copy: the stored frame is shared).
bool SessionManager::Impl::replay(Conn& c, const StoredFrame& e) {
    if (!send(c, withFlags(*e.frame, flags::kReplay), e.id)) {
        return false;
    }
    ++metrics().messages_out_total;
    return true;
}

// A throttled log line when storing took entries from the heaviest user (fair share).
void SessionManager::Impl::noteBudgetEvictions(std::uint64_t before) {
    const std::uint64_t n = metrics().budget_evictions_total - before;
    std::uint64_t held_back = 0;
    if (n > 0 && budget_log_.allow(now(), held_back)) {
        spdlog::warn(
            "total_buffer_bytes reached: {} stored entries taken from the heaviest users "
            "({} more such events held back)",
            n, held_back);
    }
}

}  // namespace tundra::core
