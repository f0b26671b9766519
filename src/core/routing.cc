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
        users_.storeWindow(r, e, limits(), broadcast && r.bcast_since != 0);
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

    std::uint32_t delivered = 0;
    std::uint32_t buffered = 0;
    // With a store: whose buffer it went to (no allocation for a direct message's one).
    std::string buffered_first;
    std::vector<std::string> buffered_more;
    const bool hold = want_ack && storeOn();
    auto tally = [&](const User& r, Outcome o) {
        delivered += o == Outcome::Delivered ? 1U : 0U;
        if (o == Outcome::Buffered) {
            ++buffered;
            if (hold) {
                (buffered == 1 ? buffered_first : buffered_more.emplace_back()) = r.name;
            }
        }
    };
    const std::uint64_t evictions_before = metrics().budget_evictions_total;
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
            tally(*target, deliver(*target, e));
        } else {
            const bool all = audience == Audience::Everyone;
            if (storeOn()) {
                // Stored once: the windows of the online recipients refer to it by id.
                recorder_.putBroadcast(sender.name, e, !all);
                bcast_last_ = e.id;
            }
            for (auto kind : {ClientKind::User, ClientKind::Agent}) {
                if (!all && kind != ClientKind::Agent) {
                    continue;
                }
                const std::vector<User*>& online = users_.online(kind);
                const std::size_t n = online.size();
                for (std::size_t i = 0; i < n; ++i) {
                    // Every recipient's state is cold by the time a fan-out reaches it: fetch
                    // the users a few steps ahead, then their windows and connections.
                    if (i + kPrefetchUser < n) {
                        prefetch(online[i + kPrefetchUser]);
                    }
                    if (i + kPrefetchState < n) {
                        const User* ahead = online[i + kPrefetchState];
                        ahead->window.prefetchEnds();
                        prefetch(ahead->conn);
                    }
                    User* r = online[i];
                    if (r != &sender) {
                        tally(*r, deliver(*r, e, /*broadcast=*/true));
                    }
                }
                // Detached sessions buffer broadcasts; logged-out users get none.
                for (User* r : users_.detached(kind)) {
                    if (degraded_) {
                        break;  // nothing can be stored: only the online get it
                    }
                    tally(*r,
                          users_.storeOffline(*r, e, limits()) ? Outcome::Buffered : Outcome::None);
                }
            }
        }
    }
    noteBudgetEvictions(evictions_before);
    spdlog::debug("conn={} session={} {} id={} to='{}' delivered={} buffered={}", c.id,
                  sessionText(&sender), msgTypeName(static_cast<std::uint8_t>(d.type)), d.id, d.to,
                  delivered, buffered);
    if (want_ack) {
        if (hold && buffered > 0) {
            // "buffered" means stored: the ACK leaves once this iteration's batch commits.
            held_acks_.push_back(HeldAck{c.id, recorder_.openSeq(), seq, d.id, delivered, buffered,
                                         std::move(buffered_first), std::move(buffered_more)});
        } else {
            send(c, share(msg::encode(msg::Ack{d.id, delivered, buffered}, seq)));
        }
    }
}

bool SessionManager::Impl::checkRecipientName(Conn& c, std::uint16_t seq, std::string_view to) {
    if (!to.empty() && !isValidName(to)) {
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
