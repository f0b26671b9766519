// SPDX-License-Identifier: Apache-2.0
// The client's connection: opening and closing the socket, writing whole frames, reading and
// decoding with deadlines, the keepalive PING after a heartbeat of silence, and what happens
// when the connection breaks (reconnect scheduled, or closed for good).
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "client/client_impl.h"
#include "tundra/messages.h"

namespace tundra::client {

void Client::Impl::closeSocket() {
    if (tls) {
        tls->shutdown();
        tls.reset();
    }
    if (fd >= 0) {
        ::close(fd);
        fd = -1;
    }
    rx_bytes = 0;
    decoder = FrameDecoder(kMaxPayload);
}

Result<void> Client::Impl::openSocket() {
    closeSocket();
    const TimePoint deadline = SteadyClock::now() + opt.connect_timeout;
    auto r = connectTcp(opt.host, opt.port, deadline);
    if (!r) {
        return r.error();
    }
    if (opt.tls.enabled) {
        if (!tls_ctx) {
            auto ctx = TlsClientContext::create(opt.tls);
            if (!ctx) {
                ::close(*r);
                return ctx.error();
            }
            tls_ctx = std::move(*ctx);
        }
        auto stream = TlsStream::handshake(tls_ctx, *r, opt.tls, opt.host, endpoint(), deadline);
        if (!stream) {
            ::close(*r);
            return stream.error();
        }
        tls = std::move(*stream);
    }
    fd = *r;
    last_rx = SteadyClock::now();
    probe_sent = false;
    return {};
}

void Client::Impl::connectionLost(const ClientError& reason) {
    closeSocket();
    if (state == ConnectionState::Registered && opt.auto_reconnect && identity) {
        state = ConnectionState::Reconnecting;
        attempts_this_outage = 0;
        next_attempt = SteadyClock::now() + retry_hint;
        retry_hint = std::chrono::seconds(0);
        queueEvent(ConnectionEvent{ConnectionEvent::Kind::Lost, reason, {}, 0});
    } else if (state == ConnectionState::Registered) {
        state = ConnectionState::Closed;
        queueEvent(ConnectionEvent{ConnectionEvent::Kind::Closed, reason, {}, 0});
    } else if (state == ConnectionState::Connected) {
        state = ConnectionState::Disconnected;
    }
}

void Client::Impl::giveUp(const ClientError& reason) {
    closeSocket();
    state = ConnectionState::Closed;
    identity.reset();
    queueEvent(ConnectionEvent{ConnectionEvent::Kind::Closed, reason, {}, 0});
}

// ---- writing ----------------------------------------------------------------------------------

Result<void> Client::Impl::writeFrame(const Bytes& frame, TimePoint deadline) {
    if (fd < 0) {
        return localError(ErrorKind::Disconnected, "not connected to " + endpoint());
    }
    std::size_t off = 0;
    while (off < frame.size()) {
        ssize_t n = tls ? tls->write(frame.data() + off, frame.size() - off)
                        : ::send(fd, frame.data() + off, frame.size() - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += static_cast<std::size_t>(n);
            continue;
        }
        int err = errno;
        if (n < 0 && err == EINTR) {
            continue;
        }
        if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK)) {
            pollfd p{fd, tls ? tls->waitEvents() : static_cast<short>(POLLOUT), 0};
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
                            "connection to " + endpoint() + " lost: " +
                                (tls && err == EPROTO ? tls->lastError() : std::strerror(err)));
        connectionLost(e);
        return e;
    }
    return {};
}

// ---- reading ----------------------------------------------------------------------------------

std::optional<TimePoint> Client::Impl::keepaliveWake() const {
    if (state != ConnectionState::Registered || welcome.heartbeat.count() == 0) {
        return std::nullopt;
    }
    return probe_sent ? last_rx + 2 * welcome.heartbeat + std::chrono::seconds(1)
                      : last_rx + welcome.heartbeat;
}

Client::Impl::ReadStatus Client::Impl::readFrame(TimePoint deadline, OwnedFrame& out,
                                                 ClientError& error) {
    std::array<std::uint8_t, 65536> buf;
    bool tls_hint = false;  // a plain connection whose first bytes look like a TLS record
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
            if (tls_hint) {
                error = localError(ErrorKind::Connect,
                                   endpoint() +
                                       " answered with TLS: this is a TLS port (use "
                                       "the TLS option, tundra-cli --tls)");
            }
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
        if (tls && tls->waitEvents() == POLLOUT) {
            p.events = POLLIN | POLLOUT;
        }
        // Bytes already decrypted inside OpenSSL do not make the socket readable.
        int n = tls && tls->pending() ? 1 : ::poll(&p, 1, pollTimeoutMs(wake, now));
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
        ssize_t got = tls ? tls->read(buf.data(), buf.size()) : ::read(fd, buf.data(), buf.size());
        if (got > 0 && !tls && rx_bytes == 0 && got >= 3 && buf[0] >= 0x14 && buf[0] <= 0x17 &&
            buf[1] == 0x03) {
            tls_hint = true;  // a TLS record header (alert, handshake...) where a frame should be
        }
        if (got > 0) {
            rx_bytes += static_cast<std::uint64_t>(got);
            decoder.append(ByteSpan(buf.data(), static_cast<std::size_t>(got)));
            last_rx = SteadyClock::now();
            probe_sent = false;
            continue;
        }
        if (got < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) {
            continue;
        }
        const int err = errno;
        error = localError(
            ErrorKind::Disconnected,
            got == 0 ? endpoint() + " closed the connection"
                     : "connection to " + endpoint() + " lost: " +
                           (tls && err == EPROTO ? tls->lastError() : std::strerror(err)));
        connectionLost(error);
        return ReadStatus::Failed;
    }
}

void Client::Impl::waitUntil(TimePoint t) {
    int ms = pollTimeoutMs(t, SteadyClock::now());
    if (ms > 0) {
        ::poll(nullptr, 0, ms);
    }
}

}  // namespace tundra::client
