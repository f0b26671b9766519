// SPDX-License-Identifier: Apache-2.0
// Helpers for the reactor tests: drive a real EventLoop until a condition holds (with a
// deadline instead of sleeps), and loopback clients that are themselves driven by that loop.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "net/event_loop.h"
#include "net/output_queue.h"
#include "net/socket_ops.h"

namespace tundra::net::test {

// Runs loop iterations until `pred()` holds or `timeout_ms` passed; returns pred(). The
// deadline is a loop timer, so epoll_wait never blocks past it.
inline bool runUntil(EventLoop& loop, const std::function<bool()>& pred,
                     std::int64_t timeout_ms = 3000) {
    bool timed_out = false;
    const TimerId deadline = loop.addTimer(timeout_ms, [&timed_out] { timed_out = true; });
    while (!pred() && !timed_out) {
        loop.runOnce();
    }
    loop.cancelTimer(deadline);
    return pred();
}

inline SharedBytes bytesOf(std::string_view s) { return SharedBytes::copyOf(s); }

// `n` bytes of a position-dependent pattern, so reordering or loss shows up in a compare.
inline std::string pattern(std::size_t n, std::size_t start = 0) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t k = start + i;
        s[i] = static_cast<char>((k * 131 + k / 251) & 0xff);
    }
    return s;
}

// A loopback TCP client. Connects with a blocking connect (loopback completes it from the
// listen backlog without the server's help), then turns non-blocking. Reads only while
// registered with the loop (startReading), which is how tests make the server's writes back up.
class LoopClient : public IoHandler {
public:
    LoopClient(EventLoop& loop, const std::string& host, std::uint16_t port, int rcvbuf = 0)
        : loop_(loop) {
        auto addr = sockets::parseAddress(host, port);
        EXPECT_TRUE(addr.has_value()) << host;
        if (!addr) {
            return;
        }
        fd_ = ::socket(addr->storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        EXPECT_GE(fd_, 0) << std::strerror(errno);
        if (rcvbuf > 0) {
            EXPECT_EQ(::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
        }
        connected_ =
            ::connect(fd_, reinterpret_cast<const sockaddr*>(&addr->storage), addr->len) == 0;
        connect_errno_ = connected_ ? 0 : errno;
        ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
    }
    ~LoopClient() override {
        stopReading();
        sockets::closeFd(fd_);
    }
    LoopClient(const LoopClient&) = delete;
    LoopClient& operator=(const LoopClient&) = delete;

    void startReading() {
        if (!reading_ && fd_ >= 0) {
            loop_.add(fd_, EPOLLIN, this);
            reading_ = true;
        }
    }
    void stopReading() {
        if (reading_) {
            loop_.remove(fd_, this);
            reading_ = false;
        }
    }

    void onEvents(std::uint32_t /*events*/) override {
        char buf[65536];
        for (;;) {
            const ssize_t n = ::read(fd_, buf, sizeof(buf));
            if (n > 0) {
                received_.append(buf, static_cast<std::size_t>(n));
                continue;
            }
            if (n == 0) {
                eof_ = true;
                stopReading();
            } else if (errno != EAGAIN && errno != EINTR) {
                read_errno_ = errno;
                stopReading();
            }
            return;
        }
    }

    // Non-blocking send; returns how many bytes the kernel took.
    std::size_t sendSome(std::string_view data) {
        const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
        return n > 0 ? static_cast<std::size_t>(n) : 0;
    }
    // For small messages that always fit the socket buffers.
    void sendAll(std::string_view data) { ASSERT_EQ(sendSome(data), data.size()); }

    // close() with SO_LINGER 0: the server sees ECONNRESET.
    /// shutdown(SHUT_WR): the server reads EOF, this end can still read.
    void shutdownWrite() { ASSERT_EQ(::shutdown(fd_, SHUT_WR), 0); }
    void reset() {
        linger lg{1, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        closeNow();
    }
    void closeNow() {
        stopReading();
        sockets::closeFd(fd_);
        fd_ = -1;
    }

    [[nodiscard]] bool connected() const { return connected_; }
    [[nodiscard]] int connectErrno() const { return connect_errno_; }
    [[nodiscard]] const std::string& received() const { return received_; }
    [[nodiscard]] bool eof() const { return eof_; }
    [[nodiscard]] int readErrno() const { return read_errno_; }
    [[nodiscard]] int fd() const { return fd_; }

private:
    EventLoop& loop_;
    int fd_ = -1;
    bool connected_ = false;
    int connect_errno_ = 0;
    bool reading_ = false;
    bool eof_ = false;
    int read_errno_ = 0;
    std::string received_;
};

}  // namespace tundra::net::test
