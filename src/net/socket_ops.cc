// SPDX-License-Identifier: Apache-2.0
// Syscall wrappers used by the reactor, address parsing and formatting, the fd limit (see
// socket_ops.h); they report errno as a value.
#include "net/socket_ops.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace tundra::net::sockets {

namespace {

bool isV4Mapped(const in6_addr& a) { return IN6_IS_ADDR_V4MAPPED(&a) != 0; }

template <typename T>
const T* as(const sockaddr* addr) {
    return reinterpret_cast<const T*>(addr);
}

}  // namespace

std::optional<Address> parseAddress(std::string_view host, std::uint16_t port) {
    std::string h(host);
    Address out;
    in_addr v4{};
    in6_addr v6{};
    if (::inet_pton(AF_INET, h.c_str(), &v4) == 1) {
        auto* sin = reinterpret_cast<sockaddr_in*>(&out.storage);
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        sin->sin_addr = v4;
        out.len = sizeof(sockaddr_in);
        return out;
    }
    if (::inet_pton(AF_INET6, h.c_str(), &v6) == 1) {
        auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        sin6->sin6_addr = v6;
        out.len = sizeof(sockaddr_in6);
        return out;
    }
    return std::nullopt;
}

bool isIpLiteral(std::string_view host) { return parseAddress(host, 0).has_value(); }

std::string formatAddress(const sockaddr* addr) {
    char text[INET6_ADDRSTRLEN] = {};
    if (addr->sa_family == AF_INET) {
        const auto* sin = as<sockaddr_in>(addr);
        ::inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
        return std::string(text) + ":" + std::to_string(ntohs(sin->sin_port));
    }
    if (addr->sa_family == AF_INET6) {
        const auto* sin6 = as<sockaddr_in6>(addr);
        if (isV4Mapped(sin6->sin6_addr)) {
            // A v4 client of a dual-stack "::" listener: show it as the v4 address it is.
            ::inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], text, sizeof(text));
            return std::string(text) + ":" + std::to_string(ntohs(sin6->sin6_port));
        }
        ::inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
        return "[" + std::string(text) + "]:" + std::to_string(ntohs(sin6->sin6_port));
    }
    return "?";
}

std::string formatHostPort(std::string_view host, std::uint16_t port) {
    if (host.find(':') != std::string_view::npos) {
        return "[" + std::string(host) + "]:" + std::to_string(port);
    }
    return std::string(host) + ":" + std::to_string(port);
}

std::string errorText(int err) { return std::system_category().message(err); }

int listenTcp(std::string_view host, std::uint16_t port, std::string& error) {
    const std::string where = formatHostPort(host, port);
    auto addr = parseAddress(host, port);
    if (!addr) {
        error = "invalid bind address '" + std::string(host) + "' (want an IPv4 or IPv6 literal)";
        return -1;
    }
    const int family = addr->storage.ss_family;
    int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error = "socket " + where + ": " + errorText(errno);
        return -1;
    }
    auto fail = [&](const char* step) {
        const int err = errno;
        closeFd(fd);
        error = std::string(step) + " " + where + ": " + errorText(err);
        return -1;
    };
    int one = 1;
    if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
        return fail("setsockopt(SO_REUSEADDR)");
    }
    if (family == AF_INET6) {
        // "::" means every address, v4 included, whatever net.ipv6.bindv6only says; a specific
        // v6 address is v6 only anyway.
        int v6only = 0;
        if (::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) != 0) {
            return fail("setsockopt(IPV6_V6ONLY)");
        }
    }
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr->storage), addr->len) != 0) {
        return fail("bind");
    }
    if (::listen(fd, SOMAXCONN) != 0) {
        return fail("listen");
    }
    return fd;
}

std::uint16_t localPort(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
        return 0;
    }
    if (ss.ss_family == AF_INET) {
        return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
    }
    if (ss.ss_family == AF_INET6) {
        return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
    }
    return 0;
}

AcceptResult acceptPeer(int listen_fd) {
    AcceptResult r;
    sockaddr_storage ss{};
    for (;;) {
        socklen_t len = sizeof(ss);
        r.fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&ss), &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (r.fd >= 0) {
            r.peer = formatAddress(reinterpret_cast<const sockaddr*>(&ss));
            return r;
        }
        r.err = errno;
        if (r.err != EINTR) {
            return r;
        }
    }
}

IoResult readSome(int fd, void* buf, std::size_t len) {
    for (;;) {
        const ssize_t n = ::read(fd, buf, len);
        if (n >= 0) {
            return {n, 0};
        }
        if (errno != EINTR) {
            return {-1, errno};
        }
    }
}

IoResult sendVec(int fd, const iovec* iov, std::size_t count) {
    msghdr msg{};
    msg.msg_iov = const_cast<iovec*>(iov);  // sendmsg does not write through it
    msg.msg_iovlen = count;
    for (;;) {
        const ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (n >= 0) {
            return {n, 0};
        }
        if (errno != EINTR) {
            return {-1, errno};
        }
    }
}

bool setNoDelay(int fd) {
    int one = 1;
    return ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0;
}

bool setSendBuffer(int fd, int bytes) {
    return ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes)) == 0;
}

void closeFd(int fd) {
    if (fd >= 0) {
        ::close(fd);
    }
}

std::uint64_t raiseFdLimit(std::uint64_t wanted) {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) {
        return 0;
    }
    const auto want = static_cast<rlim_t>(wanted);
    if (lim.rlim_cur < want) {
        const rlim_t old = lim.rlim_cur;
        lim.rlim_cur = std::min(want, lim.rlim_max);  // RLIM_INFINITY is the largest rlim_t
        if (lim.rlim_cur > old && ::setrlimit(RLIMIT_NOFILE, &lim) != 0) {
            lim.rlim_cur = old;
        }
    }
    return static_cast<std::uint64_t>(lim.rlim_cur);
}

}  // namespace tundra::net::sockets
