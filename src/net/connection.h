// SPDX-License-Identifier: Apache-2.0
// TcpServer::Connection, internal to TcpServer: one accepted socket, its left-over input and its
// queued output, bounded reads and gathered writes. Only tcp_server.cc and connection.cc use it.
#pragma once

#include <sys/epoll.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "net/event_loop.h"
#include "net/output_queue.h"
#include "net/tcp_server.h"

struct ssl_st;  // SSL

namespace tundra::net {

// Reads are bounded per wakeup and go through the loop's shared scratch area; only a consumer's
// unconsumed tail is copied into `input_`. Output is a queue of shared segments. send() only
// queues and marks the connection (`flush_pending_`); the server flushes every marked
// connection once at the end of the loop iteration, so all the deliveries of one iteration
// leave in one writev. EPOLLOUT is on only after a partial write.
// Invariant: an Open connection with queued output is marked or has EPOLLOUT interest.
//
// The TcpServer drives the state (send, closeAfterFlush, scheduleClose, reap) through the
// public members; the connection reaches back into the server for the loop, the counters, the
// segment pool, the data callback and scheduleClose().
//
// Memory of an idle connection (x86-64, g++ 12): the object is 120 bytes (vptr, server ref,
// id, flush timer, empty InputBuffer 16, empty OutputQueue 40, fd, interest, state, reason,
// flush mark, the null TLS pointer), a 128-byte malloc chunk, plus its ConnTable slot (one
// pointer, 8 bytes). About 136 bytes of heap in total, with no input or output storage: both
// are released as soon as they become empty. heapBytes() reports 128 (no malloc rounding) and
// the tests hold it below 300. A TLS connection adds its TlsState and OpenSSL's
// SSL object (a few KiB; record buffers are released while idle, SSL_MODE_RELEASE_BUFFERS).
//
// A TLS connection (accepted on the TLS listener) also owns a TlsState (tls_, null for plain
// connections, so they pay one pointer): the SSL object and the handshake phase. While
// Handshaking the owner knows nothing of the connection (no ConnectCallback yet, no
// CloseCallback if it dies there); reads and writes go through SSL_read/SSL_write once it is
// Established. See "TLS" in docs/ARCHITECTURE.md.
/// A connection's unconsumed input: 16 bytes while empty (a std::vector is 24, and every idle
/// connection has one), grown by doubling, freed by release() once consumed. Bounded by the
/// largest frame the consumer waits for, far below its 32-bit size.
class InputBuffer {
public:
    [[nodiscard]] bool empty() const { return size_ == 0; }
    [[nodiscard]] std::size_t size() const { return size_; }
    [[nodiscard]] std::size_t capacity() const { return cap_; }
    [[nodiscard]] std::span<const std::uint8_t> bytes() const { return {data_.get(), size_}; }
    /// Appends [p, p+n).
    void append(const std::uint8_t* p, std::size_t n) {
        const std::size_t need = std::size_t{size_} + n;
        if (need > cap_) {
            if (need > UINT32_MAX) {
                throw std::length_error("connection input over 4 GiB");
            }
            const std::size_t grown = std::min<std::size_t>(
                UINT32_MAX, std::max<std::size_t>(need, std::size_t{cap_} * 2));
            auto fresh = std::make_unique_for_overwrite<std::uint8_t[]>(grown);
            if (size_ > 0) {
                std::memcpy(fresh.get(), data_.get(), size_);
            }
            data_ = std::move(fresh);
            cap_ = static_cast<std::uint32_t>(grown);
        }
        if (n > 0) {
            std::memcpy(data_.get() + size_, p, n);
        }
        size_ = static_cast<std::uint32_t>(need);
    }
    /// Drops the first `n` bytes (n < size()); the rest moves to the front.
    void consume(std::size_t n) {
        std::memmove(data_.get(), data_.get() + n, size_ - n);
        size_ -= static_cast<std::uint32_t>(n);
    }
    /// Forgets the contents and frees the storage.
    void release() {
        data_.reset();
        size_ = 0;
        cap_ = 0;
    }

private:
    std::unique_ptr<std::uint8_t[]> data_;
    std::uint32_t size_ = 0;
    std::uint32_t cap_ = 0;
};

class TcpServer::Connection final : public IoHandler {
public:
    enum class State : std::uint8_t {
        Open,      // reading and writing
        Flushing,  // closeAfterFlush(): no more reading, draining output
        Closed,    // removed from epoll, waiting in to_reap_
    };

    struct TlsState;

    Connection(TcpServer& server, ConnId id, int fd) : server_(server), id_(id), fd_(fd) {}
    ~Connection() override;
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    void onEvents(std::uint32_t events) override;

    void setInterest(std::uint32_t events);
    /// Offers the queued output to the kernel: writevs of up to kMaxIov segments, at most
    /// kMaxWritesPerWakeup of them, stopping as soon as the kernel takes less than offered.
    /// Clears the flush mark. Returns 0, or the errno of a failed write (EAGAIN is not a
    /// failure). No state or interest changes: the caller decides what follows.
    int writeQueued();
    /// Writes what the kernel takes, then keeps EPOLLOUT while output remains, closes a
    /// closeAfterFlush() connection once drained, and otherwise goes back to reading only.
    /// Never called on a Closed connection.
    void flush();

    TcpServer& server_;
    const ConnId id_;
    TimerId flush_timer_ = 0;
    InputBuffer input_;  // unconsumed tail of earlier reads; no storage while empty
    OutputQueue output_;
    const int fd_;
    std::uint32_t interest_ = EPOLLIN;
    State state_ = State::Open;
    CloseReason reason_ = CloseReason::Local;
    CloseReason drained_reason_ = CloseReason::Local;  // the close once Flushing has drained
    bool flush_pending_ = false;     // queued in server_.to_flush_ for this iteration's flush
    bool read_paused_ = false;       // over the server-wide soft cap: not read until drained
    std::size_t charged_ = 0;        // output_.charge() as counted in server_.queued_total_
    std::unique_ptr<TlsState> tls_;  // null: plain TCP

    /// False only for a TLS connection whose handshake has not completed: the owner was never
    /// told of it (no ConnectCallback), so it gets no CloseCallback either.
    [[nodiscard]] bool announced() const;
    /// Drives the server side of the handshake; on success announces the connection.
    void continueHandshake();
    /// Best-effort close_notify on an established TLS connection (no-op otherwise).
    void tlsShutdown();

    /// EPOLLIN while this connection is read (open, not paused, reads not held), else 0.
    [[nodiscard]] std::uint32_t readMask() const {
        return state_ == State::Open && !read_paused_ && !server_.reads_held_ ? EPOLLIN : 0U;
    }

    /// Plaintext already decrypted inside OpenSSL does not make the socket readable: if there
    /// is some, a deferred read in this iteration picks it up (unless paused, held or
    /// closing). No-op for plain TCP..
    void scheduleTlsRead();

private:
    void onReadable();
    void onReadableTls();
    int writeQueuedTls();
    void deliver(const std::uint8_t* data, std::size_t n);
    void releaseInput() { input_.release(); }
};

struct TcpServer::Connection::TlsState {
    enum class Phase : std::uint8_t { Handshaking, Established, Failed };
    TlsState(ssl_st* s, std::string p) : ssl(s), peer(std::move(p)) {}
    ~TlsState();
    TlsState(const TlsState&) = delete;
    TlsState& operator=(const TlsState&) = delete;

    ssl_st* ssl;
    std::string peer;  // kept for the ConnectCallback after the handshake and for logs
    TimerId handshake_timer = 0;
    Phase phase = Phase::Handshaking;
    bool read_wants_write = false;  // SSL_read needs the socket writable (a key update)
    bool write_wants_read = false;  // SSL_write needs the socket readable
    int retry_len = 0;  // an SSL_write that failed with WANT_*: repeat with this many bytes
};

}  // namespace tundra::net
