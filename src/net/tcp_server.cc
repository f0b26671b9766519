// SPDX-License-Identifier: Apache-2.0
// TcpServer: owns the Acceptor and the connections; queues output and flushes it once per loop
// iteration, closes (at once or after flushing) and reaps. Moves bytes between sockets and the
// owner's callbacks; never interprets them.
#include "net/tcp_server.h"

#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>

#include <algorithm>
#include <cassert>
#include <functional>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "net/acceptor.h"
#include "net/connection.h"
#include "net/socket_ops.h"
#include "net/tls_context.h"

namespace tundra::net {

namespace {
// Looking for the largest queues walks every connection: at most this often.
constexpr std::int64_t kPauseScanIntervalMs = 100;
}  // namespace

const char* closeReasonName(CloseReason r) {
    switch (r) {
        case CloseReason::PeerClosed:
            return "peer closed";
        case CloseReason::Error:
            return "error";
        case CloseReason::SlowConsumer:
            return "slow consumer";
        case CloseReason::Local:
            return "local";
        case CloseReason::FlushTimeout:
            return "flush timeout";
    }
    return "?";
}

TcpServer::TcpServer(EventLoop& loop, TcpServerOptions options)
    : loop_(loop), options_(std::move(options)) {}

TcpServer::~TcpServer() {
    conns_.forEach([this](Connection& conn) {
        if (conn.state_ != Connection::State::Closed) {
            if (conn.flush_pending_) {
                (void)conn.writeQueued();  // best effort: this iteration's output is not lost
            }
            loop_.remove(conn.fd_, &conn);
        }
    });
    conns_.clear();
    acceptor_.reset();
}

bool TcpServer::listen(std::string& error) {
    if (acceptor_) {
        error = "listen " + sockets::formatHostPort(options_.bind, options_.port) +
                ": already listening";
        return false;
    }
    const int fd = sockets::listenTcp(options_.bind, options_.port, error);
    if (fd < 0) {
        return false;
    }
    port_ = sockets::localPort(fd);
    acceptor_ = std::make_unique<Acceptor>(loop_, fd, [this](int conn_fd, std::string peer) {
        return onAccept(conn_fd, std::move(peer), false);
    });
    spdlog::debug("listening on {}", sockets::formatHostPort(options_.bind, port_));
    return true;
}

bool TcpServer::listenTls(std::uint16_t port, std::string& error) {
    if (tls_acceptor_ || !tls_ctx_) {
        error = "tls listen " + sockets::formatHostPort(options_.bind, port) +
                (tls_ctx_ ? ": already listening" : ": no TLS context");
        return false;
    }
    const int fd = sockets::listenTcp(options_.bind, port, error);
    if (fd < 0) {
        return false;
    }
    tls_port_ = sockets::localPort(fd);
    tls_acceptor_ = std::make_unique<Acceptor>(loop_, fd, [this](int conn_fd, std::string peer) {
        return onAccept(conn_fd, std::move(peer), true);
    });
    return true;
}

void TcpServer::setTlsContext(std::shared_ptr<TlsContext> ctx) { tls_ctx_ = std::move(ctx); }

std::uint16_t TcpServer::port() const { return port_; }

void TcpServer::stopAccepting() {
    // Not reset: this may run inside an acceptor's own callback.
    if (acceptor_) {
        acceptor_->stop();
    }
    if (tls_acceptor_) {
        tls_acceptor_->stop();
    }
    conns_.forEach([this](Connection& conn) {
        if (!conn.announced() && conn.state_ != Connection::State::Closed) {
            scheduleClose(conn, CloseReason::Error);
        }
    });
}

bool TcpServer::onAccept(int fd, std::string peer, bool tls) {
    ConnInfo info;
    info.peer = std::move(peer);
    if (!sockets::setNoDelay(fd)) {
        spdlog::debug("setsockopt(TCP_NODELAY) failed for {}", info.peer);
    }
    if (options_.send_buffer_bytes > 0 && !sockets::setSendBuffer(fd, options_.send_buffer_bytes)) {
        spdlog::debug("setsockopt(SO_SNDBUF) failed for {}", info.peer);
    }
    const ConnId id = conns_.reserve();
    auto conn = conns_.make(*this, id, fd);
    int err = 0;
    if (!loop_.tryAdd(fd, EPOLLIN, conn.get(), err)) {
        spdlog::warn("epoll_ctl(ADD) for a new connection from {}: {}", info.peer,
                     sockets::errorText(err));
        conns_.release(id);
        return false;  // ~Connection closes the fd; the Acceptor counts the error
    }
    if (reads_held_) {  // a TLS handshake waits too: it ends in reading
        conn->setInterest(conn->readMask());
    }
    if (tls) {
        SSL* ssl = SSL_new(tls_ctx_->raw());  // holds its own reference to the context
        if (ssl == nullptr || SSL_set_fd(ssl, fd) != 1) {
            spdlog::warn("SSL_new for a connection from {}: {}", info.peer, tlsErrorText());
            SSL_free(ssl);
            loop_.remove(fd, conn.get());
            conns_.release(id);
            return false;
        }
        SSL_set_accept_state(ssl);
        conn->tls_ = std::make_unique<Connection::TlsState>(ssl, info.peer);
        std::weak_ptr<int> alive = alive_;
        conn->tls_->handshake_timer =
            loop_.addTimer(options_.tls_handshake_timeout_ms, [this, alive, id] {
                if (alive.expired()) {
                    return;
                }
                Connection* found = conns_.find(id);
                if (found == nullptr || !found->tls_) {
                    return;
                }
                Connection& c = *found;
                c.tls_->handshake_timer = 0;
                if (c.tls_->phase != Connection::TlsState::Phase::Handshaking ||
                    c.state_ == Connection::State::Closed) {
                    return;
                }
                ++tls_handshake_timeouts_;
                std::uint64_t held = 0;
                if (tls_timeout_log_.allow(loop_.nowMs(), held)) {
                    spdlog::warn(
                        "tls handshake from {} not finished after {} ms: closed ({} more "
                        "since the last line)",
                        c.tls_->peer, options_.tls_handshake_timeout_ms, held);
                }
                c.tls_->phase = Connection::TlsState::Phase::Failed;
                scheduleClose(c, CloseReason::Error);
            });
        conns_.put(id, std::move(conn));
        ++unannounced_;
        spdlog::debug("conn={} accepted fd={} peer={} (tls handshake)", id, fd, info.peer);
        return true;  // announced when the handshake completes
    }
    conns_.put(id, std::move(conn));
    spdlog::debug("conn={} accepted fd={} peer={}", id, fd, info.peer);
    if (on_connect_) {
        on_connect_(id, info);
    }
    return true;
}

bool TcpServer::send(ConnId id, SharedBytes bytes, std::uint64_t tag) {
    Connection* found = conns_.find(id);
    if (found == nullptr || found->state_ != Connection::State::Open) {
        return false;
    }
    Connection& c = *found;
    if (!bytes || bytes->empty()) {
        return true;
    }
    c.output_.push(std::move(bytes), 0, tag, &pool_);
    queued(c);
    return true;
}

bool TcpServer::sendNow(ConnId id, SharedBytes bytes, std::uint64_t tag) {
    Connection* c = conns_.find(id);
    if (c == nullptr || c->state_ != Connection::State::Open || c->tls_ || !c->output_.empty() ||
        !bytes || bytes->empty()) {
        // Refused, nothing to write, behind queued output (order), or through SSL_write: the
        // send() path, whose flush at the end of the iteration writes it.
        return send(id, std::move(bytes), tag);
    }
    ++write_calls_;
    const iovec one{const_cast<std::uint8_t*>(bytes->data()), bytes->size()};
    const sockets::IoResult r = sockets::sendVec(c->fd_, &one, 1);
    const std::size_t written = r.n > 0 ? static_cast<std::size_t>(r.n) : 0;
    bytes_out_ += written;
    if (written == bytes->size()) {
        return true;  // nothing queued: no queue storage taken
    }
    // The kernel took part or none of it (a full buffer, or an error the flush will meet
    // again and close on, reporting the tag): the rest waits in the queue like any output.
    c->output_.push(std::move(bytes), written, tag, &pool_);
    queued(*c);
    return true;
}

void TcpServer::queued(Connection& c) {
    recharge(c);
    if (c.output_.charge() > options_.output_cap && c.flush_pending_) {
        // This iteration's output has not been offered to the kernel yet; the cap is for what
        // the peer leaves unread, so offer it before judging.
        c.flush();
        if (c.state_ == Connection::State::Closed) {
            return;  // write error; the tags are reported
        }
    }
    if (c.output_.charge() > options_.output_cap) {
        spdlog::debug("conn={} output {} bytes ({} segments) over the cap of {}", c.id_,
                      c.output_.bytes(), c.output_.segments(), options_.output_cap);
        scheduleClose(c, CloseReason::SlowConsumer);
        return;
    }
    enforceTotalCaps(c);
    if (c.state_ == Connection::State::Closed) {
        return;  // cut by the hard cap; the tags are reported
    }
    // With EPOLLOUT on, the kernel buffer is full: the writable event flushes, not a writev now.
    if (!c.flush_pending_ && (c.interest_ & EPOLLOUT) == 0 && !c.output_.empty()) {
        markForFlush(c);
    }
}

void TcpServer::recharge(Connection& c) {
    const std::size_t now = c.state_ == Connection::State::Closed ? 0 : c.output_.charge();
    queued_total_ = queued_total_ - c.charged_ + now;
    c.charged_ = now;
}

// The server-wide caps on queued output, checked after a queue grew. Soft: stop reading from
// the connections with the largest queues (those are the senders whose own answers pile up,
// a PING flooder that never reads for one) until each has drained. Hard: close the largest
// queues as slow consumers. Both pick by size, so a modest queue is never the one to go.
void TcpServer::enforceTotalCaps(Connection& c) {
    if (options_.output_total_hard > 0 && queued_total_ > options_.output_total_hard) {
        cutLargest();
    }
    if (options_.output_total_soft > 0 && queued_total_ > options_.output_total_soft) {
        // The connection whose queue just grew stops being read at once when it holds a large
        // share (a client that makes its own output, as a never-reading PING flooder does,
        // would otherwise add megabytes before the next scan); the scan below pauses others.
        if (c.state_ == Connection::State::Open && !c.read_paused_ &&
            c.charged_ >= std::max<std::size_t>(options_.output_total_soft / 16, 65536)) {
            c.read_paused_ = true;
            c.setInterest(c.readMask() | (c.interest_ & EPOLLOUT));
            ++paused_;
            ++output_pauses_;
            logCap("over the soft cap", 1);
        }
        const std::int64_t now = loop_.nowMs();
        if (now - last_pause_scan_ms_ >= kPauseScanIntervalMs) {  // a scan walks every conn
            last_pause_scan_ms_ = now;
            pauseLargest();
        }
    }
}

namespace {
// Open connections with queued output, largest charge first.
template <typename Table>
std::vector<std::pair<std::size_t, ConnId>> largestQueues(const Table& conns, bool skip_paused) {
    std::vector<std::pair<std::size_t, ConnId>> v;
    conns.forEach([&](const auto& c) {
        if (c.charged_ > 0 && !(skip_paused && c.read_paused_)) {
            v.emplace_back(c.charged_, c.id_);
        }
    });
    std::sort(v.begin(), v.end(), std::greater<>());
    return v;
}
}  // namespace

void TcpServer::holdReads(bool held) {
    if (held == reads_held_) {
        return;
    }
    reads_held_ = held;
    conns_.forEach([held](Connection& c) {
        if (c.state_ == Connection::State::Open) {
            c.setInterest(c.readMask() | (c.interest_ & EPOLLOUT));
            if (!held) {
                c.scheduleTlsRead();  // plaintext held inside OpenSSL does not wake epoll
            }
        }
    });
}

void TcpServer::pauseLargest() {
    // Pause until the paused queues, once drained, would bring the total under 3/4 of the cap.
    const std::size_t low = options_.output_total_soft / 4 * 3;
    std::size_t paused_charge = 0;
    conns_.forEach([&paused_charge](const Connection& c) {
        if (c.read_paused_) {
            paused_charge += c.charged_;
        }
    });
    if (queued_total_ <= low + paused_charge) {
        return;  // the queues already paused are enough once they drain
    }
    std::size_t excess = queued_total_ - low - paused_charge;
    std::size_t newly = 0;
    for (const auto& [charge, id] : largestQueues(conns_, true)) {
        Connection& c = *conns_.find(id);  // listed just above: present
        if (c.state_ == Connection::State::Open) {
            c.read_paused_ = true;
            c.setInterest(c.readMask() | (c.interest_ & EPOLLOUT));
            ++paused_;
            ++output_pauses_;
            ++newly;
        }
        if (charge >= excess) {
            break;
        }
        excess -= charge;
    }
    logCap("over the soft cap", newly);
}

void TcpServer::cutLargest() {
    const std::size_t target = options_.output_total_hard / 8 * 7;
    std::size_t cut = 0;
    for (const auto& [charge, id] : largestQueues(conns_, false)) {
        if (queued_total_ <= target) {
            break;
        }
        Connection& c = *conns_.find(id);  // listed just above: present
        if (c.state_ != Connection::State::Closed) {
            scheduleClose(c, CloseReason::SlowConsumer);  // uncharges it
            ++output_cuts_;
            ++cut;
        }
    }
    logCap("over the hard cap", cut);
}

void TcpServer::logCap(const char* what, std::size_t n) {
    const std::int64_t now = loop_.nowMs();
    if (now - last_cap_log_ms_ < 1000) {
        return;  // at most one line a second
    }
    last_cap_log_ms_ = now;
    spdlog::warn("queued output {} bytes {} (soft {}, hard {}): {} {}; {} paused so far, {} cut",
                 queued_total_, what, options_.output_total_soft, options_.output_total_hard,
                 std::string_view(what) == "over the hard cap" ? "closed" : "paused reading on", n,
                 output_pauses_, output_cuts_);
}

void TcpServer::markForFlush(Connection& c) {
    c.flush_pending_ = true;
    to_flush_.push_back(c.id_);  // no allocation once the vector has grown to the fan-out
    if (to_flush_.size() == 1) {
        std::weak_ptr<int> alive = alive_;
        loop_.defer([this, alive] {
            if (!alive.expired()) {
                flushMarked();
            }
        });
    }
}

// The once-per-iteration flush, a deferred callback: one writev (more only past kMaxIov
// segments) per marked connection. A connection closed since it was marked is skipped (its
// close already offered the output once, see scheduleClose); one reaped is no longer found.
// Nothing in here marks a connection (if something did, the loop bound would still reach the
// new entry). Sends made by later deferred callbacks of this iteration (close callbacks, for
// instance) mark again and defer another flush, which runDeferred runs in a later round of
// the same iteration, or the loop runs next without blocking in epoll_wait.
void TcpServer::flushMarked() {
    // By index: a flush can append to to_flush_, which would invalidate a range-for's iterators.
    for (std::size_t i = 0; i < to_flush_.size(); ++i) {  // NOLINT(modernize-loop-convert)
        const ConnId id = to_flush_[i];                   // a copy, not a reference into the vector
        Connection* found = conns_.find(id);
        if (found == nullptr) {
            continue;
        }
        Connection& c = *found;
        if (c.flush_pending_ && c.state_ != Connection::State::Closed) {
            c.flush();
        }
    }
    to_flush_.clear();  // keeps its capacity for the next iteration
}

void TcpServer::closeAfterFlush(ConnId id) {
    Connection* found = conns_.find(id);
    if (found == nullptr || found->state_ != Connection::State::Open) {
        return;
    }
    startFlushing(*found, CloseReason::Local);
}

// Stops reading, writes what is queued, and closes with `drained` once it is all written (or
// FlushTimeout after flush_timeout_ms).
void TcpServer::startFlushing(Connection& c, CloseReason drained) {
    c.state_ = Connection::State::Flushing;
    c.drained_reason_ = drained;
    if (c.flush_pending_) {
        c.flush();  // nothing can join this output any more: write it now (may close)
        if (c.state_ == Connection::State::Closed) {
            return;
        }
    }
    if (c.output_.empty()) {
        scheduleClose(c, drained);
        return;
    }
    c.setInterest(EPOLLOUT);
    std::weak_ptr<int> alive = alive_;
    const ConnId id = c.id_;
    c.flush_timer_ = loop_.addTimer(options_.flush_timeout_ms, [this, alive, id] {
        if (alive.expired()) {
            return;
        }
        Connection* found = conns_.find(id);
        if (found != nullptr) {
            found->flush_timer_ = 0;  // this timer has fired: nothing to cancel
            scheduleClose(*found, CloseReason::FlushTimeout);
        }
    });
}

// The peer half-closed (EOF): everything it sent has been read and answered, and it may still
// be reading (`nc -N`, shutdown(SHUT_WR) after pipelining), so its answers are written before
// the close, bounded by the flush timeout, instead of being cut after one round of writes.
void TcpServer::peerClosed(Connection& c) {
    if (c.state_ != Connection::State::Open) {
        return;
    }
    startFlushing(c, CloseReason::PeerClosed);
}

void TcpServer::close(ConnId id) {
    Connection* found = conns_.find(id);
    if (found != nullptr) {
        scheduleClose(*found, CloseReason::Local);
    }
}

std::uint64_t TcpServer::acceptErrors() const {
    return (acceptor_ ? acceptor_->errors() : 0) + (tls_acceptor_ ? tls_acceptor_->errors() : 0);
}

std::uint64_t TcpServer::acceptShed() const {
    return (acceptor_ ? acceptor_->shed() : 0) + (tls_acceptor_ ? tls_acceptor_->shed() : 0);
}

std::size_t TcpServer::connectionCount() const { return conns_.size() - unannounced_; }

std::size_t TcpServer::queuedBytes(ConnId id) const {
    const Connection* found = conns_.find(id);
    return found == nullptr ? 0 : found->output_.bytes();
}

std::size_t TcpServer::heapBytes(ConnId id) const {
    const Connection* found = conns_.find(id);
    if (found == nullptr) {
        return 0;
    }
    const Connection& c = *found;
    return sizeof(Connection) + ConnTable::kSlotBytes + c.input_.capacity() + c.output_.heapBytes();
}

// Marks `c` closed (once), takes it out of epoll so no later event of this batch reaches it,
// and queues it for reap() at the end of the iteration. Output still waiting for this
// iteration's flush is offered to the kernel once first; what it does not take is discarded
// and its tags reported. The object and its fd stay valid until then, so this is safe from
// inside any callback, the connection's own included.
void TcpServer::scheduleClose(Connection& c, CloseReason reason) {
    if (c.state_ == Connection::State::Closed) {
        return;
    }
    if (c.flush_pending_) {
        // Output of this iteration not yet offered to the kernel: offer it once (a peer that
        // only half-closed still reads it).
        const int err = c.writeQueued();
        if (err != 0) {
            spdlog::debug("conn={} write: {}", c.id_, sockets::errorText(err));
        }
    }
    if (reason != CloseReason::Error) {
        c.tlsShutdown();
    }
    c.state_ = Connection::State::Closed;
    c.reason_ = reason;
    recharge(c);  // what it still holds is discarded at reap: no longer counted
    if (c.read_paused_) {
        c.read_paused_ = false;
        --paused_;
    }
    loop_.remove(c.fd_, &c);
    loop_.cancelTimer(c.flush_timer_);
    c.flush_timer_ = 0;
    spdlog::debug("conn={} closing: {} ({} bytes unwritten)", c.id_, closeReasonName(reason),
                  c.output_.bytes());
    to_reap_.push_back(c.id_);
    if (to_reap_.size() == 1) {
        std::weak_ptr<int> alive = alive_;
        loop_.defer([this, alive] {
            if (!alive.expired()) {
                reap();
            }
        });
    }
}

// Destroys the connections closed during this iteration, then tells the owner. A CloseCallback
// that closes further connections queues them for another deferred reap.
void TcpServer::reap() {
    std::vector<ConnId> ids;
    ids.swap(to_reap_);
    for (ConnId id : ids) {
        ConnTable::Ptr conn = conns_.take(id);
        if (!conn) {
            continue;
        }
        const CloseReason reason = conn->reason_;
        const bool announced = conn->announced();
        if (conn->tls_ && announced) {
            --tls_open_;
        } else if (!announced) {
            --unannounced_;
        }
        std::vector<std::uint64_t> unwritten = conn->output_.unwrittenTags(&joined_tags_);
        conn.reset();  // closes the fd
        if (on_close_ && announced) {
            on_close_(id, reason, std::move(unwritten));
        }
    }
}

// ---- ConnTable ------------------------------------------------------------------------------

TcpServer::ConnTable::ConnTable() : pool_(sizeof(Connection), alignof(Connection)) {}

ConnId TcpServer::ConnTable::reserve() {
    std::uint32_t slot = 0;
    if (!free_.empty()) {
        slot = free_.back();
        free_.pop_back();
    } else {
        if (slots_.size() > kSlotMask) {
            throw std::length_error("too many connections for the connection table");
        }
        slot = static_cast<std::uint32_t>(slots_.size());
        slots_.emplace_back();
    }
    return (++issued_ << kSlotBits) | slot;
}

void TcpServer::ConnTable::put(ConnId id, Ptr c) {
    const auto slot = static_cast<std::size_t>(id & kSlotMask);
    assert(slot < slots_.size() && !slots_[slot] && c->id_ == id);
    slots_[slot] = std::move(c);
    ++size_;
}

void TcpServer::ConnTable::release(ConnId id) {
    const auto slot = static_cast<std::size_t>(id & kSlotMask);
    assert(slot < slots_.size() && !slots_[slot]);
    free_.push_back(static_cast<std::uint32_t>(slot));
}

TcpServer::Connection* TcpServer::ConnTable::find(ConnId id) const {
    const auto slot = static_cast<std::size_t>(id & kSlotMask);
    if (slot >= slots_.size()) {
        return nullptr;
    }
    Connection* c = slots_[slot].get();
    return c != nullptr && c->id_ == id ? c : nullptr;
}

TcpServer::ConnTable::Ptr TcpServer::ConnTable::take(ConnId id) {
    if (find(id) == nullptr) {
        return nullptr;
    }
    const auto slot = static_cast<std::size_t>(id & kSlotMask);
    Ptr c = std::move(slots_[slot]);
    --size_;
    free_.push_back(static_cast<std::uint32_t>(slot));
    return c;
}

void TcpServer::ConnTable::clear() {
    slots_.clear();
    free_.clear();
    size_ = 0;
}

}  // namespace tundra::net
