// SPDX-License-Identifier: Apache-2.0
// The client's events: frames nobody waits for (PINGs answered on the spot, deliveries
// deduplicated by id, SYSTEM and ERROR frames) become the queue nextEvent() returns from, in
// order with the connection changes; nextEvent() also makes the reconnect attempts that fall due.
#include "client/client_impl.h"
#include "tundra/messages.h"

namespace tundra::client {

namespace {

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

}  // namespace

void Client::Impl::dispatch(const OwnedFrame& f) {
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
                queueEvent(ErrorEvent{protocolError(msgTypeName(f.header.type)), 0});
                return;
            }
            const bool replayed = (f.header.flags & flags::kReplay) != 0;
            if (!dedupe.accept(d.id, !replayed)) {
                return;  // already returned (counted in stats().duplicates_dropped)
            }
            queueEvent(toDelivery(d, replayed));
            return;
        }
        case MsgType::System: {
            msg::System s;
            if (msg::parse(f.span(), s) != nullptr) {
                queueEvent(ErrorEvent{protocolError("SYSTEM"), 0});
                return;
            }
            if (s.event == SystemEvent::Welcome) {
                return;  // only meaningful as the answer to REGISTER
            }
            queueEvent(SystemNotice{s.event, std::string(s.text), std::string(s.name), s.dropped,
                                    s.retry_after_s});
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
                queueEvent(ErrorEvent{protocolError("ERROR"), f.header.sequence});
                return;
            }
            queueEvent(ErrorEvent{
                ClientError{ErrorKind::Server, static_cast<ErrorCode>(e.code), std::string(e.text)},
                f.header.sequence});
            return;
        }
        default:
            return;
    }
}

// ---- Client: events -----------------------------------------------------------------------

std::optional<Event> Client::nextEvent(std::chrono::milliseconds timeout) {
    Impl& m = *impl_;
    TimePoint deadline = SteadyClock::now() + timeout;
    OwnedFrame f;
    ClientError error;
    for (;;) {
        if (m.overflow_unreported != 0) {
            // The discarded events were the oldest: report them where they were.
            std::uint64_t n = m.overflow_unreported;
            m.overflow_unreported = 0;
            return ErrorEvent{localError(ErrorKind::Overflow,
                                         std::to_string(n) + " event(s) discarded: more than " +
                                             std::to_string(m.opt.max_queued_events) +
                                             " were waiting for nextEvent()"),
                              0, n};
        }
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

}  // namespace tundra::client
