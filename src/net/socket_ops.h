// SPDX-License-Identifier: Apache-2.0
// Thin syscall wrappers for the reactor: retry EINTR, capture errno at once and hand it back as a
// value (callers never read the global errno later). Also the one place for IP literals, the
// "host:port" text of an address and the process's fd limit. No policy and no logging here.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tundra::net::sockets {

/// `n` >= 0 on success; otherwise `n` == -1 and `err` holds the errno of the failed call.
struct IoResult {
    ssize_t n = 0;
    int err = 0;
};

/// A parsed IPv4 or IPv6 socket address.
struct Address {
    sockaddr_storage storage{};
    socklen_t len = 0;
};

/// Parses an IPv4 or IPv6 literal (no names, no brackets) plus a port.
std::optional<Address> parseAddress(std::string_view host, std::uint16_t port);
/// True if `host` is an IPv4 or IPv6 literal as parseAddress() takes it (also the settings'
/// check for bind and admin addresses).
bool isIpLiteral(std::string_view host);
/// "1.2.3.4:80", "[::1]:80"; IPv4-mapped IPv6 addresses are shown as IPv4.
std::string formatAddress(const sockaddr* addr);
/// "host:port" or "[host]:port" for a literal as given in the options. The server side's one
/// host:port formatter; the client library (no net) has its own, client::formatEndpoint.
std::string formatHostPort(std::string_view host, std::uint16_t port);
/// The text of an errno value ("Permission denied").
std::string errorText(int err);

/// Creates a non-blocking, close-on-exec listening socket with SO_REUSEADDR bound to
/// `host`:`port` ("::" also accepts IPv4). Returns the fd, or -1 with `error` set to
/// "<step> <host:port>: <strerror>".
int listenTcp(std::string_view host, std::uint16_t port, std::string& error);
/// The local port of a bound socket, 0 on failure.
std::uint16_t localPort(int fd);

struct AcceptResult {
    int fd = -1;
    int err = 0;
    std::string peer;  ///< formatAddress() of the peer when fd >= 0
};
/// accept4(SOCK_NONBLOCK | SOCK_CLOEXEC), retrying EINTR.
AcceptResult acceptPeer(int listen_fd);

/// EAGAIN or EWOULDBLOCK: a non-blocking socket has nothing more for now.
inline bool wouldBlock(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

IoResult readSome(int fd, void* buf, std::size_t len);
/// sendmsg(MSG_NOSIGNAL) of `count` iovecs (writev without SIGPIPE: a closed peer yields EPIPE).
IoResult sendVec(int fd, const iovec* iov, std::size_t count);

/// Turns TCP_NODELAY on; false on failure.
bool setNoDelay(int fd);
/// Sets SO_SNDBUF (which turns off the kernel's send buffer autotuning); false on failure.
bool setSendBuffer(int fd, int bytes);
/// close(2) that ignores EINTR (Linux always releases the fd) and -1.
void closeFd(int fd);

/// Raises the soft RLIMIT_NOFILE to `wanted`, or to the hard limit if that is lower; never
/// lowers it. Returns the soft limit in effect afterwards (RLIM_INFINITY as the largest value),
/// or 0 if it cannot be read.
std::uint64_t raiseFdLimit(std::uint64_t wanted);

}  // namespace tundra::net::sockets
