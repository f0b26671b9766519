// SPDX-License-Identifier: Apache-2.0
// Socket helpers for the blocking client.
#include "client/socket_io.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

namespace tundra::client {

namespace {

ClientError connectError(const std::string& host, std::uint16_t port, const std::string& why,
                         ErrorKind kind = ErrorKind::Connect) {
    return ClientError{kind, ErrorCode{},
                       "cannot connect to " + formatEndpoint(host, port) + ": " + why};
}

// Tries one address; returns the connected fd or -1 with `err` set.
int connectOne(const addrinfo* ai, TimePoint deadline, int& err) {
    int fd =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
        err = errno;
        return -1;
    }
    int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno != EINPROGRESS) {
        err = errno;
        ::close(fd);
        return -1;
    }
    if (rc != 0) {
        for (;;) {
            pollfd p{fd, POLLOUT, 0};
            int n = ::poll(&p, 1, pollTimeoutMs(deadline, SteadyClock::now()));
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                err = n == 0 ? ETIMEDOUT : errno;
                ::close(fd);
                return -1;
            }
            break;
        }
        int so_error = 0;
        socklen_t len = sizeof so_error;
        if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) {
            so_error = errno;
        }
        if (so_error != 0) {
            err = so_error;
            ::close(fd);
            return -1;
        }
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

}  // namespace

std::string formatEndpoint(const std::string& host, std::uint16_t port) {
    if (host.find(':') != std::string::npos) {
        return "[" + host + "]:" + std::to_string(port);
    }
    return host + ":" + std::to_string(port);
}

Result<int> connectTcp(const std::string& host, std::uint16_t port, TimePoint deadline) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* list = nullptr;
    const std::string service = std::to_string(port);
    int gai = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &list);
    if (gai != 0) {
        return connectError(host, port, ::gai_strerror(gai));
    }
    int err = ECONNREFUSED;
    int fd = -1;
    for (const addrinfo* ai = list; ai != nullptr && fd < 0; ai = ai->ai_next) {
        fd = connectOne(ai, deadline, err);
        if (SteadyClock::now() >= deadline) {
            break;
        }
    }
    ::freeaddrinfo(list);
    if (fd < 0) {
        if (err == ETIMEDOUT) {
            return connectError(host, port, "timed out", ErrorKind::Timeout);
        }
        return connectError(host, port, std::strerror(err));
    }
    return fd;
}

int pollTimeoutMs(TimePoint deadline, TimePoint now) {
    if (deadline <= now) {
        return 0;
    }
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(deadline - now).count();
    auto ms = (us + 999) / 1000;
    return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
}

void abortSocket(int fd) {
    if (fd < 0) {
        return;
    }
    linger lg{};
    lg.l_onoff = 1;
    lg.l_linger = 0;
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    ::close(fd);
}

}  // namespace tundra::client
