// SPDX-License-Identifier: Apache-2.0
// Accepts TCP connections and owns them: non-blocking sockets, bounded reads, output coalesced
// into one writev per connection per loop iteration with EPOLLOUT only after a partial write,
// shared (refcounted) output segments, close after flush, deferred destruction, the spare-fd
// EMFILE trick and an output cap. Moves bytes only. The listening socket is an Acceptor
// (acceptor.h), each connection a TcpServer::Connection (connection.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/log_throttle.h"
#include "common/slab_pool.h"
#include "net/event_loop.h"
#include "net/output_queue.h"

namespace tundra::net {

class Acceptor;
class TlsContext;

/// Never reused within a process; never an fd.
using ConnId = std::uint64_t;

enum class CloseReason : std::uint8_t {
    PeerClosed,    ///< EOF from the peer
    Error,         ///< read/write error (ECONNRESET, EPIPE...)
    SlowConsumer,  ///< output exceeded the cap
    Local,         ///< closeAfterFlush() / close() by the owner
    FlushTimeout,  ///< closeAfterFlush() could not drain in time
};
const char* closeReasonName(CloseReason r);

struct TcpServerOptions {
    std::string bind = "127.0.0.1";  ///< IPv4 or IPv6 literal ("::" for all v6+v4)
    std::uint16_t port = 0;          ///< 0 = the OS chooses
    /// Queued output (charged as OutputQueue::charge(): bytes + a per-segment overhead) beyond
    /// which a connection is closed as SlowConsumer.
    std::size_t output_cap = 8U << 20;
    /// Server-wide queued output (all connections' charges) above which reading stops on the
    /// connections with the largest queues, each until its queue has drained. 0 = off.
    std::size_t output_total_soft = 256U << 20;
    /// Server-wide queued output above which the largest queues are closed as SlowConsumer
    /// until the total is back under 7/8 of this. 0 = off.
    std::size_t output_total_hard = 512U << 20;
    int max_reads_per_wakeup = 4;
    std::int64_t flush_timeout_ms = 5000;  ///< closeAfterFlush() gives up after this
    int send_buffer_bytes = 0;             ///< SO_SNDBUF of accepted sockets; 0 = kernel autotuning
    /// A TLS handshake not finished after this is abandoned (closed, counted as a timeout).
    std::int64_t tls_handshake_timeout_ms = 10'000;
};

struct ConnInfo {
    std::string peer;         ///< "ip:port" / "[ip]:port"
    bool tls = false;         ///< accepted on the TLS listener, handshake completed
    std::string tls_version;  ///< "TLSv1.3"
    std::string tls_cipher;   ///< "TLS_AES_256_GCM_SHA384"
    /// mTLS: the subject CN of the client certificate the handshake verified ("" without one).
    std::string tls_peer_cn;
};

class TcpServer {
public:
    /// Called after accept (on the TLS listener: after the handshake completed). The connection
    /// is live; send() works.
    using ConnectCallback = std::function<void(ConnId, const ConnInfo&)>;
    /// Called with all unconsumed input (left-over partial bytes + new bytes). Returns how
    /// many bytes were consumed; the rest is kept and presented again with the next bytes.
    /// May call send(), closeAfterFlush() and close() for any connection.
    using DataCallback = std::function<std::size_t(ConnId, std::span<const std::uint8_t>)>;
    /// Called once per connection, at the end of the iteration in which it closed (never from
    /// inside another callback). `unwritten_tags` are the non-zero tags of segments that were
    /// not completely written, oldest first.
    using CloseCallback = std::function<void(ConnId, CloseReason, std::vector<std::uint64_t>)>;

    TcpServer(EventLoop& loop, TcpServerOptions options);
    /// Closes every connection without callbacks. Must not run inside one of its callbacks.
    ~TcpServer();
    TcpServer(const TcpServer&) = delete;
    TcpServer& operator=(const TcpServer&) = delete;

    /// Binds and listens; returns false with `error` set (e.g. "bind 127.0.0.1:80: Permission
    /// denied"). After success, port() is the real port.
    bool listen(std::string& error);
    [[nodiscard]] std::uint16_t port() const;
    /// A second listener on options.bind:`port` (0 = the OS chooses) whose connections speak
    /// TLS with the context set by setTlsContext() (which must be called first). Its
    /// connections are announced (ConnectCallback) only once their handshake has completed;
    /// one that fails or does not finish within tls_handshake_timeout_ms is closed and
    /// counted, never announced.
    bool listenTls(std::uint16_t port, std::string& error);
    [[nodiscard]] std::uint16_t tlsPort() const { return tls_port_; }
    /// The context for connections accepted from now on; established ones keep theirs.
    void setTlsContext(std::shared_ptr<TlsContext> ctx);
    /// Stops accepting (closes the listening sockets). Established connections stay; TLS
    /// connections still in their handshake are closed (they were never announced).
    void stopAccepting();

    void setConnectCallback(ConnectCallback cb) { on_connect_ = std::move(cb); }
    void setDataCallback(DataCallback cb) { on_data_ = std::move(cb); }
    void setCloseCallback(CloseCallback cb) { on_close_ = std::move(cb); }
    /// Reads the tags of kJoinedTag segments for unwritten_tags (none reported without one).
    void setJoinedTagReader(JoinedTagReader reader) { joined_tags_ = std::move(reader); }

    /// Queues `bytes` (shared, not copied) for `id` and marks the connection for the flush at
    /// the end of this loop iteration (a deferred callback), which offers everything queued in
    /// the iteration to the kernel with one writev; only a partial write turns on EPOLLOUT.
    /// Nothing is written inside send() itself, except when the queue would exceed output_cap
    /// before this iteration's flush: then it is flushed first, so the cap counts only what the
    /// kernel refused. `tag` (non-zero) is reported back in unwritten_tags if the connection
    /// closes before the segment is fully written (kJoinedTag: the tags of its messages, read
    /// by the JoinedTagReader). Returns false if the connection is unknown
    /// or closing. If queued output exceeds output_cap the connection is closed as
    /// SlowConsumer (still returns true: the segment was queued, and its tag will be reported).
    bool send(ConnId id, SharedBytes bytes, std::uint64_t tag = 0);
    /// Like send(), but a plaintext connection with nothing queued is written to at once
    /// instead of at the end of the iteration; only what the kernel does not take is queued
    /// (and then flushed, capped and reported like any output). For a frame that is its
    /// connection's only output in a while (a heartbeat PING): there is nothing to batch it
    /// with, and a burst of them (every idle connection pinged in one tick) then takes no
    /// queue storage at all. Queued output, and TLS output, keep the send() path and order.
    bool sendNow(ConnId id, SharedBytes bytes, std::uint64_t tag = 0);
    /// Stops reading, flushes queued output, then closes (Local, or FlushTimeout after
    /// flush_timeout_ms). From then on the connection counts as closing: send() returns false
    /// and no more input is delivered. Output of this iteration still waiting for its flush is
    /// written at once (nothing more can join it). No-op for unknown or closing connections.
    void closeAfterFlush(ConnId id);
    /// Closes now, discarding queued output (reason Local; the discarded segments' tags are
    /// reported). Output of this iteration still waiting for its flush is offered to the kernel
    /// once first (best effort: a peer that only half-closed still reads it). Any other close
    /// (peer EOF, read error) does the same. No-op for unknown or already closed connections.
    void close(ConnId id);

    /// Stops (true) or resumes reading from every connection, new ones included; output goes
    /// on. The owner's backpressure when it cannot take more input (a storage queue is full).
    void holdReads(bool held);
    [[nodiscard]] bool readsHeld() const { return reads_held_; }

    /// Announced connections not yet reaped (closing ones included until their CloseCallback
    /// runs; a connection no longer counts inside its own CloseCallback). TLS connections
    /// count from the end of their handshake.
    [[nodiscard]] std::size_t connectionCount() const;
    [[nodiscard]] std::size_t queuedBytes(ConnId id) const;
    /// Queued output of every open connection, as the caps charge it (bytes + overhead).
    [[nodiscard]] std::size_t queuedTotal() const { return queued_total_; }
    /// Times reading was paused on a connection because the total was over the soft cap.
    [[nodiscard]] std::uint64_t outputPauses() const { return output_pauses_; }
    /// Connections reading is paused on right now.
    [[nodiscard]] std::size_t outputPaused() const { return paused_; }
    /// Connections closed (SlowConsumer) because the total was over the hard cap.
    [[nodiscard]] std::uint64_t outputCuts() const { return output_cuts_; }
    /// Frees the spare output-queue storage not used since the previous call (see
    /// SegmentPool::trimUnused); returns how many spare vectors it freed. From a periodic timer.
    std::size_t trimIdleStorage() { return pool_.trimUnused(); }
    /// Spare output-queue vectors held for reuse right now (SegmentPool::spares).
    [[nodiscard]] std::size_t spareQueueStorage() const { return pool_.spares(); }
    /// Heap attributable to one connection: its object, its map node and bucket slot, and its
    /// input/output storage (malloc rounding not included); 0 if unknown. See connection.h
    /// for the idle figure.
    [[nodiscard]] std::size_t heapBytes(ConnId id) const;
    std::uint64_t bytesIn() const { return bytes_in_; }
    std::uint64_t bytesOut() const { return bytes_out_; }
    /// Write syscalls (sendmsg) made so far, successful or not: one per connection per loop
    /// iteration when the kernel takes everything offered.
    std::uint64_t writeCalls() const { return write_calls_; }
    /// Of those, the plaintext writes whose segments were first copied into one buffer (see
    /// TcpServer::Connection::writeQueued).
    std::uint64_t gatheredWrites() const { return gathered_writes_; }
    /// Accept failures, including connections shed with the spare-fd trick under EMFILE.
    [[nodiscard]] std::uint64_t acceptErrors() const;
    /// Connections shed at the fd limit (accepted and closed at once): one per real peer.
    [[nodiscard]] std::uint64_t acceptShed() const;
    /// TLS handshakes completed, failed (bad data, refused certificate), and abandoned at the
    /// deadline; established TLS connections open now.
    [[nodiscard]] std::uint64_t tlsHandshakes() const { return tls_handshakes_; }
    [[nodiscard]] std::uint64_t tlsHandshakeFailures() const { return tls_handshake_failures_; }
    [[nodiscard]] std::uint64_t tlsHandshakeTimeouts() const { return tls_handshake_timeouts_; }
    [[nodiscard]] std::size_t tlsOpen() const { return tls_open_; }

private:
    class Connection;
    bool onAccept(int fd, std::string peer, bool tls);
    void scheduleClose(Connection& c, CloseReason reason);
    void startFlushing(Connection& c, CloseReason drained);
    void peerClosed(Connection& c);
    void reap();
    void markForFlush(Connection& c);
    /// After `c`'s queue grew: the charge, the caps, and the flush mark.
    void queued(Connection& c);
    /// Brings queued_total_ up to date with `c`'s queue (after it grew or shrank).
    void recharge(Connection& c);
    void enforceTotalCaps(Connection& c);  // c: the connection whose queue just grew
    void pauseLargest();
    void cutLargest();
    void logCap(const char* what, std::size_t n);
    void flushMarked();

    EventLoop& loop_;
    TcpServerOptions options_;
    std::unique_ptr<Acceptor> acceptor_;
    std::unique_ptr<Acceptor> tls_acceptor_;
    std::shared_ptr<TlsContext> tls_ctx_;
    // Output staged for one write, shared by every connection (writes are synchronous on the
    // loop thread): the plaintext of one SSL_write (at most one 16 KiB record with partial
    // writes), or a plaintext queue of small segments gathered into one buffer.
    static constexpr std::size_t kStageBytes = 16U << 10;
    std::vector<std::uint8_t> stage_ = std::vector<std::uint8_t>(kStageBytes);
    common::LogThrottle tls_fail_log_;
    common::LogThrottle tls_timeout_log_;
    // Segment storage of drained output queues, reused by the next ones (no allocation per
    // send while traffic is steady). Declared before conns_: it outlives the queues.
    SegmentPool pool_;
    // Connections by id, in a slot vector indexed by the id's low kSlotBits bits: a lookup is
    // one index and one compare against the connection's own id, no hashing (a fan-out looks up
    // every recipient), and a connection costs one pointer here instead of a hash node and
    // bucket. The high bits count connections, so an id is never reused: a stale id finds its
    // slot empty or holding a newer connection (another id), and gets nothing. A reserved slot
    // (reserve() to put(), within one onAccept) is empty and out of the free list.
    class ConnTable {
    public:
        static constexpr unsigned kSlotBits = 24;  // 16 M connections at once
        using Ptr = std::unique_ptr<Connection, common::SlabDelete>;
        ConnTable();
        /// A new id; its slot stays empty (find() gives null) until put(), or release() it.
        ConnId reserve();
        /// A new connection in the table's slab pool (no malloc header), to be put() or dropped.
        template <class... Args>
        Ptr make(Args&&... args) {
            return Ptr(pool_.make<Connection>(std::forward<Args>(args)...));
        }
        void put(ConnId id, Ptr c);
        /// Frees the slot of `id` (which must be empty, reserved or taken).
        void release(ConnId id);
        [[nodiscard]] Connection* find(ConnId id) const;
        /// Removes the connection with `id` and frees its slot; null if there is none.
        Ptr take(ConnId id);
        [[nodiscard]] std::size_t size() const { return size_; }
        template <class F>
        void forEach(F&& f) const {
            for (const auto& c : slots_) {
                if (c) {
                    f(*c);
                }
            }
        }
        void clear();
        /// Heap per connection held: its slot.
        static constexpr std::size_t kSlotBytes = sizeof(Ptr);

    private:
        static constexpr ConnId kSlotMask = (ConnId{1} << kSlotBits) - 1;
        common::SlabPool pool_;  // before slots_: it outlives the connections
        std::vector<Ptr> slots_;
        std::vector<std::uint32_t> free_;  // empty slots, reused last-freed first
        std::uint64_t issued_ = 0;
        std::size_t size_ = 0;
    };
    ConnTable conns_;
    std::vector<ConnId> to_reap_;
    // Connections whose output waits for this iteration's flush (ids, not pointers: one may be
    // closed and reaped first). A deferred flushMarked() is pending exactly while non-empty;
    // cleared, not freed, after each flush, so marking does not allocate in the steady state.
    std::vector<ConnId> to_flush_;
    // Deferred callbacks and flush timers hold a weak_ptr to this: they may outlive the server.
    std::shared_ptr<int> alive_ = std::make_shared<int>(0);
    std::uint16_t port_ = 0;
    std::uint16_t tls_port_ = 0;
    std::uint64_t tls_handshakes_ = 0;
    std::uint64_t tls_handshake_failures_ = 0;
    std::uint64_t tls_handshake_timeouts_ = 0;
    std::size_t tls_open_ = 0;
    std::size_t unannounced_ = 0;  // TLS connections in conns_ whose handshake never completed
    std::uint64_t bytes_in_ = 0;
    std::uint64_t bytes_out_ = 0;
    std::uint64_t write_calls_ = 0;
    std::uint64_t gathered_writes_ = 0;
    std::size_t queued_total_ = 0;  // sum of every connection's charged_
    std::size_t paused_ = 0;
    bool reads_held_ = false;  // holdReads(): no connection is read
    std::uint64_t output_pauses_ = 0;
    std::uint64_t output_cuts_ = 0;
    std::int64_t last_pause_scan_ms_ = -1'000'000;
    std::int64_t last_cap_log_ms_ = -1'000'000;
    ConnectCallback on_connect_;
    DataCallback on_data_;
    CloseCallback on_close_;
    JoinedTagReader joined_tags_;
};

}  // namespace tundra::net
