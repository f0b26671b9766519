// SPDX-License-Identifier: Apache-2.0
// Internal state of tundra::client::Client (the Impl behind the public header), shared by the
// files that implement it: connection.cc (socket, reading, writing, keepalive, loss),
// session.cc (connect, register, resume, reconnect, logout), requests.cc (sequence matching and
// the request calls) and events.cc (frames nobody waits for, nextEvent()).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "client/backoff.h"
#include "client/dedupe_window.h"
#include "client/socket_io.h"
#include "client/tls_stream.h"
#include "tundra/client.h"
#include "tundra/codec.h"

namespace tundra::client {

// A decoded frame with its own copy of the payload (the decoder's view dies on the next read).
struct OwnedFrame {
    FrameHeader header;
    Bytes payload;
    [[nodiscard]] MsgType type() const { return static_cast<MsgType>(header.type); }
    [[nodiscard]] ByteSpan span() const { return {payload.data(), payload.size()}; }
};

inline ClientError localError(ErrorKind kind, std::string text, ErrorCode code = ErrorCode{}) {
    return ClientError{kind, code, std::move(text)};
}

inline ClientError protocolError(const std::string& what) {
    return localError(ErrorKind::Protocol, "malformed " + what + " from the server");
}

struct Client::Impl {
    explicit Impl(Options o) : opt(std::move(o)), dedupe(opt.dedupe_window), backoff(opt.backoff) {}
    ~Impl() { closeSocket(); }
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;

    Options opt;
    int fd = -1;
    std::shared_ptr<TlsClientContext> tls_ctx;  // made on the first TLS connect
    std::unique_ptr<TlsStream> tls;             // set while a TLS connection is open
    std::uint64_t rx_bytes = 0;                 // received on this connection (plain)
    FrameDecoder decoder{kMaxPayload};
    std::uint16_t next_seq = 1;
    std::deque<Event> events;
    std::uint64_t overflow_unreported = 0;  // events discarded since the last Overflow report
    std::uint64_t events_dropped = 0;       // all events discarded, for stats()
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

    [[nodiscard]] std::string endpoint() const { return formatEndpoint(opt.host, opt.port); }

    // Queues an event for nextEvent(). At opt.max_queued_events the oldest one is discarded
    // and counted; nextEvent() reports the count (ErrorEvent Overflow) before the rest.
    template <typename E>
    void queueEvent(E&& e) {
        if (opt.max_queued_events != 0 && events.size() >= opt.max_queued_events) {
            events.pop_front();
            ++overflow_unreported;
            ++events_dropped;
        }
        events.emplace_back(std::forward<E>(e));
    }

    // ---- connection.cc: the socket ------------------------------------------------------------

    void closeSocket();
    // Connects a new socket (closing any old one) and restarts the keepalive clock.
    Result<void> openSocket();
    // The connection failed under us. A registered client with auto_reconnect starts
    // reconnecting (first attempt at once); the caller learns of it through a ConnectionEvent.
    void connectionLost(const ClientError& reason);
    // No more reconnects: closes, forgets the identity, queues ConnectionEvent Closed.
    void giveUp(const ClientError& reason);
    // Writes a whole frame before `deadline`. A frame cut in the middle leaves the stream
    // unusable, so a timeout after the first byte drops the connection.
    Result<void> writeFrame(const Bytes& frame, TimePoint deadline);
    // When the keepalive wants attention: send a PING after one heartbeat of silence from the
    // server, give up on the connection after two (plus a second of slack).
    [[nodiscard]] std::optional<TimePoint> keepaliveWake() const;
    // Decodes the next frame, reading from the socket until `deadline`. Failed means the
    // connection was lost (connectionLost() already ran, `error` says why).
    ReadStatus readFrame(TimePoint deadline, OwnedFrame& out, ClientError& error);
    // A backoff pause (not synchronisation: nothing to wait for but time).
    static void waitUntil(TimePoint t);

    // ---- session.cc: registering and reconnecting ---------------------------------------------

    // One REGISTER round trip (plus a fresh-session retry on SESSION_EXPIRED when allowed).
    Result<Welcome> registerOnce(const Identity& id, Uuid session, TimePoint deadline);
    // One reconnect attempt: connect, REGISTER with the saved session and last id. On failure
    // schedules the next attempt, or gives up on a permanent refusal or too many attempts.
    void attemptReconnect();
    // Makes sure there is a socket for a request: connects a fresh client, or (while
    // reconnecting) makes the attempts that fall due before `deadline`.
    Result<void> ensureLink(TimePoint deadline);

    // ---- requests.cc: requests and their answers ----------------------------------------------

    // Reads until the frame answering `seq` arrives: ERROR or one of `types`. Everything else
    // is dispatched. EINTR is retried: a request has its own deadline.
    Result<OwnedFrame> waitReply(std::uint16_t seq, std::initializer_list<MsgType> types,
                                 TimePoint deadline);
    // Sends a request built by `build(seq)` and waits for its answer.
    Result<OwnedFrame> request(const std::function<Bytes(std::uint16_t)>& build,
                               std::initializer_list<MsgType> answers);
    // A payload over the server's limit would get TOO_LARGE and the connection closed; refuse
    // it here instead.
    [[nodiscard]] Result<void> checkSize(const Bytes& frame) const;
    Result<Ack> ackRequest(const std::function<Bytes(std::uint16_t)>& build);

    // ---- events.cc: frames nobody waits for ---------------------------------------------------

    // Handles a frame nobody is waiting for: PINGs are answered, deliveries deduplicated and
    // queued, SYSTEM and ERROR frames queued. Late answers to abandoned requests are dropped.
    void dispatch(const OwnedFrame& f);
};

}  // namespace tundra::client
