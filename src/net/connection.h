// SPDX-License-Identifier: Apache-2.0
// TcpServer::Connection, internal to TcpServer: one accepted socket, its left-over input and its
// queued output, bounded reads and gathered writes. Only tcp_server.cc and connection.cc use it.
#pragma once

#include <sys/epoll.h>

#include <cstddef>
#include <cstdint>
#include <memory>
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
// Memory of an idle connection (x86-64, g++ 12): the object is 128 bytes (vptr, server ref,
// id, flush timer, empty input vector 24, empty OutputQueue 40, fd, interest, state, reason,
// flush mark, the null TLS pointer), a 144-byte malloc chunk; the unordered_map node (next
// pointer + id + unique_ptr) is 24 bytes, a 32-byte chunk; plus one 8-byte bucket slot. About
// 185 bytes of heap in total, with no input or output storage: both are released as soon as
// they become empty. heapBytes() reports the same figure without malloc rounding (160) and the
// tests hold it below 300. A TLS connection adds its TlsState and OpenSSL's SSL object (a few
// KiB; record buffers are released while idle, SSL_MODE_RELEASE_BUFFERS).
//
// A TLS connection (accepted on the TLS listener) also owns a TlsState (tls_, null for plain
// connections, so they pay one pointer): the SSL object and the handshake phase. While
// Handshaking the owner knows nothing of the connection (no ConnectCallback yet, no
// CloseCallback if it dies there); reads and writes go through SSL_read/SSL_write once it is
// Established. See "TLS" in docs/ARCHITECTURE.md.
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
    std::vector<std::uint8_t> input_;  // unconsumed tail of earlier reads; capacity 0 if empty
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
    void releaseInput() { std::vector<std::uint8_t>().swap(input_); }
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
