// SPDX-License-Identifier: Apache-2.0
// Thin socket helpers for the blocking client: connect with a deadline, endpoint text, and
// poll() timeouts from steady-clock deadlines. Every errno is captured where it happens.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "tundra/client.h"

namespace tundra::client {

using SteadyClock = std::chrono::steady_clock;
using TimePoint = SteadyClock::time_point;

/// "host:port", with brackets around an IPv6 literal. The one copy on the client side of the
/// layering (the client library links proto only); the server side uses
/// net::sockets::formatHostPort, which the client cannot link.
std::string formatEndpoint(const std::string& host, std::uint16_t port);

/// Resolves `host` and connects to the first address that answers before `deadline`. The
/// socket is non-blocking, close-on-exec, with TCP_NODELAY. Errors have kind Connect (or
/// Timeout) and read "cannot connect to HOST:PORT: REASON".
Result<int> connectTcp(const std::string& host, std::uint16_t port, TimePoint deadline);

/// Milliseconds from now until `deadline`, rounded up, clamped to [0, INT_MAX], for poll().
int pollTimeoutMs(TimePoint deadline, TimePoint now);

/// Closes `fd` with an RST instead of a FIN (SO_LINGER 0): a connection that dies unannounced.
void abortSocket(int fd);

}  // namespace tundra::client
