// SPDX-License-Identifier: Apache-2.0
// TcpServer::Connection: the read path (bounded reads, delivery of left-over plus new input)
// and the write path (gathered sendmsg of the queued segments, EPOLLOUT after a partial write).
#include "net/connection.h"

#include <spdlog/spdlog.h>
#include <sys/uio.h>

#include <algorithm>
#include <span>

#include "net/socket_ops.h"

namespace tundra::net {

namespace {

// Segments gathered by one sendmsg (well below IOV_MAX = 1024).
constexpr std::size_t kMaxIov = 64;
// sendmsg calls per flush (end-of-iteration or EPOLLOUT wakeup) while the kernel keeps taking
// everything offered.
constexpr int kMaxWritesPerWakeup = 16;

}  // namespace

TcpServer::Connection::~Connection() {
    server_.loop_.cancelTimer(flush_timer_);
    sockets::closeFd(fd_);
}

void TcpServer::Connection::onEvents(std::uint32_t events) {
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0 && state_ == State::Open) {
        onReadable();
    }
    // Re-check: the read path (or the owner's callback) may have closed this connection.
    if (state_ == State::Closed) {
        return;
    }
    if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0 && !output_.empty()) {
        flush();
    }
    if (state_ != State::Open && state_ != State::Closed && (events & (EPOLLHUP | EPOLLERR)) != 0) {
        // Not reading, so no read will report the hang-up; do not spin on it.
        server_.scheduleClose(
            *this, (events & EPOLLERR) != 0 ? CloseReason::Error : CloseReason::PeerClosed);
    }
}

void TcpServer::Connection::setInterest(std::uint32_t events) {
    if (events != interest_) {
        interest_ = events;
        server_.loop_.modify(fd_, events, this);
    }
}

int TcpServer::Connection::writeQueued() {
    flush_pending_ = false;
    iovec iov[kMaxIov];
    for (int i = 0; i < kMaxWritesPerWakeup && !output_.empty(); ++i) {
        const std::size_t count = output_.fillIov(iov, kMaxIov);
        std::size_t offered = 0;
        for (std::size_t k = 0; k < count; ++k) {
            offered += iov[k].iov_len;
        }
        ++server_.write_calls_;
        auto r = sockets::sendVec(fd_, iov, count);
        if (r.n < 0) {
            return sockets::wouldBlock(r.err) ? 0 : r.err;
        }
        const auto n = static_cast<std::size_t>(r.n);
        server_.bytes_out_ += n;
        output_.consume(n, &server_.pool_);
        server_.recharge(*this);
        if (n < offered) {
            break;  // the kernel buffer is full
        }
    }
    return 0;
}

void TcpServer::Connection::flush() {
    const int err = writeQueued();
    if (err != 0) {
        spdlog::debug("conn={} write: {}", id_, sockets::errorText(err));
        server_.scheduleClose(*this, CloseReason::Error);
        return;
    }
    if (!output_.empty()) {
        setInterest(readMask() | EPOLLOUT);
        return;
    }
    if (state_ == State::Flushing) {
        server_.scheduleClose(*this, drained_reason_);
        return;
    }
    if (read_paused_) {  // drained: read again
        read_paused_ = false;
        --server_.paused_;
    }
    setInterest(readMask());
}

void TcpServer::Connection::onReadable() {
    std::vector<std::uint8_t>& scratch = server_.loop_.scratch();
    const int max_reads = std::max(server_.options_.max_reads_per_wakeup, 1);
    for (int i = 0; i < max_reads; ++i) {
        auto r = sockets::readSome(fd_, scratch.data(), scratch.size());
        if (r.n > 0) {
            const auto n = static_cast<std::size_t>(r.n);
            server_.bytes_in_ += n;
            deliver(scratch.data(), n);
            if (state_ != State::Open || read_paused_ || server_.reads_held_ ||
                n < scratch.size()) {
                return;  // closing, paused, or the socket is (very likely) drained
            }
            continue;
        }
        if (r.n == 0) {
            server_.peerClosed(*this);  // flushes what is queued first, then closes
        } else if (!sockets::wouldBlock(r.err)) {
            spdlog::debug("conn={} read: {}", id_, sockets::errorText(r.err));
            server_.scheduleClose(*this, CloseReason::Error);
        }
        return;
    }
}

// Presents [data, data+n) after any left-over input. Without left-overs the scratch bytes are
// presented in place and only what the consumer leaves is copied.
void TcpServer::Connection::deliver(const std::uint8_t* data, std::size_t n) {
    if (!server_.on_data_) {
        return;
    }
    if (input_.empty()) {
        std::size_t used = server_.on_data_(id_, std::span<const std::uint8_t>(data, n));
        if (state_ != State::Open) {
            return;  // closing: the rest is dropped
        }
        used = std::min(used, n);
        if (used < n) {
            input_.assign(data + used, data + n);
        }
        return;
    }
    input_.insert(input_.end(), data, data + n);
    std::size_t used = server_.on_data_(id_, std::span<const std::uint8_t>(input_));
    if (state_ != State::Open) {
        releaseInput();  // the callback has returned: its span is dead
        return;
    }
    if (used >= input_.size()) {
        releaseInput();
    } else if (used > 0) {
        input_.erase(input_.begin(), input_.begin() + static_cast<std::ptrdiff_t>(used));
    }
}

}  // namespace tundra::net
