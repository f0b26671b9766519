// SPDX-License-Identifier: Apache-2.0
// Test support: a blocking loopback client that sends raw bytes and reads decoded frames with
// deadlines, so integration tests can check exact reply bytes and hostile input.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tundra/codec.h"
#include "tundra/messages.h"

namespace tundra::testing {

struct RawFrame {
    FrameHeader header;
    Bytes payload;
    [[nodiscard]] MsgType type() const { return static_cast<MsgType>(header.type); }
    [[nodiscard]] ByteSpan span() const { return {payload.data(), payload.size()}; }
};

class RawClient {
public:
    /// Connects to `host` (an IPv4 or IPv6 literal, loopback by default) on `port`, from the
    /// IPv4 address `source` if given (e.g. "127.0.0.2": another source on loopback).
    explicit RawClient(std::uint16_t port, int rcvbuf = 0, const char* host = "127.0.0.1",
                       const char* source = nullptr) {
        sockaddr_storage addr{};
        socklen_t len = 0;
        auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
        auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
        if (::inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
            v4->sin_family = AF_INET;
            v4->sin_port = htons(port);
            len = sizeof *v4;
        } else if (::inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
            v6->sin6_family = AF_INET6;
            v6->sin6_port = htons(port);
            len = sizeof *v6;
        } else {
            return;
        }
        fd_ = ::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (rcvbuf > 0) {
            ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        }
        if (source != nullptr) {
            sockaddr_in from{};
            from.sin_family = AF_INET;
            if (::inet_pton(AF_INET, source, &from.sin_addr) != 1 ||
                ::bind(fd_, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) {
                return;
            }
        }
        connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), len) == 0;
        int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    ~RawClient() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    RawClient(const RawClient&) = delete;
    RawClient& operator=(const RawClient&) = delete;

    [[nodiscard]] bool connected() const { return connected_; }
    [[nodiscard]] int fd() const { return fd_; }

    bool send(ByteSpan bytes) {
        std::size_t off = 0;
        while (off < bytes.size()) {
            ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
            if (n <= 0) {
                return false;
            }
            off += static_cast<std::size_t>(n);
        }
        return true;
    }
    bool send(const Bytes& bytes) { return send(ByteSpan(bytes.data(), bytes.size())); }
    bool send(std::string_view bytes) {
        return send(ByteSpan(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
    }

    /// Next frame within `timeout`; nullopt on timeout, EOF or a decode error.
    std::optional<RawFrame> read(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            auto r = decoder_.next();
            if (r.status == DecodeStatus::Frame) {
                return RawFrame{r.header, Bytes(r.payload.begin(), r.payload.end())};
            }
            if (r.status == DecodeStatus::Error || !fill(deadline)) {
                return std::nullopt;
            }
        }
    }

    /// Reads frames until one of `type` arrives (others are kept in skipped()).
    std::optional<RawFrame> readUntil(MsgType type,
                                      std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                return std::nullopt;
            }
            auto f = read(left);
            if (!f) {
                return std::nullopt;
            }
            if (f->type() == type) {
                return f;
            }
            skipped_.push_back(std::move(*f));
        }
    }

    /// True if the server closes the connection within `timeout` (frames before EOF are
    /// discarded).
    bool waitClosed(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (fill(deadline)) {
            while (decoder_.next().status == DecodeStatus::Frame) {
            }
        }
        return eof_;
    }

    std::vector<RawFrame>& skipped() { return skipped_; }
    [[nodiscard]] bool eof() const { return eof_; }

    // ---- conveniences ----
    std::uint16_t nextSeq() { return ++seq_ == 0 ? ++seq_ : seq_; }

    /// REGISTER and wait for the WELCOME (or ERROR), at most `timeout`; returns the answer frame.
    std::optional<RawFrame> registerAs(
        std::string_view name, ClientKind kind = ClientKind::User, Uuid session = {},
        std::uint64_t last_id = 0, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        msg::Register r;
        r.username = name;
        r.kind = kind;
        r.session = session;
        r.last_id = last_id;
        send(msg::encode(r, nextSeq()));
        return read(timeout);
    }

private:
    bool fill(std::chrono::steady_clock::time_point deadline) {
        if (eof_) {
            return false;
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() < 0) {
            return false;
        }
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
            return false;
        }
        std::uint8_t buf[65536];
        ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) {
            eof_ = true;
            return false;
        }
        decoder_.append(ByteSpan(buf, static_cast<std::size_t>(n)));
        return true;
    }

    int fd_ = -1;
    bool connected_ = false;
    bool eof_ = false;
    std::uint16_t seq_ = 0;
    FrameDecoder decoder_;
    std::vector<RawFrame> skipped_;
};

}  // namespace tundra::testing
