// SPDX-License-Identifier: Apache-2.0
// TlsStream: the client side of TLS over the client's non-blocking socket (OpenSSL): the
// handshake with a deadline, certificate and host name checks, and read/write calls shaped
// like ::read/::send so the connection code keeps one path for both transports.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "client/socket_io.h"
#include "tundra/client.h"

struct ssl_st;
struct ssl_ctx_st;

namespace tundra::client {

/// The client SSL_CTX built from TlsOptions (CA file, verification, client certificate),
/// shared by every connection a Client makes.
class TlsClientContext {
public:
    static Result<std::shared_ptr<TlsClientContext>> create(const TlsOptions& options);
    ~TlsClientContext();
    TlsClientContext(const TlsClientContext&) = delete;
    TlsClientContext& operator=(const TlsClientContext&) = delete;
    [[nodiscard]] ssl_ctx_st* raw() const { return ctx_; }

private:
    explicit TlsClientContext(ssl_ctx_st* ctx) : ctx_(ctx) {}
    ssl_ctx_st* ctx_;
};

class TlsStream {
public:
    /// Runs the handshake on connected socket `fd` (not owned) until `deadline`. Errors have
    /// kind Connect (Timeout for the deadline) and read "TLS handshake with HOST:PORT failed:
    /// REASON".
    static Result<std::unique_ptr<TlsStream>> handshake(
        const std::shared_ptr<TlsClientContext>& ctx, int fd, const TlsOptions& options,
        const std::string& host, const std::string& endpoint, TimePoint deadline);
    ~TlsStream();
    TlsStream(const TlsStream&) = delete;
    TlsStream& operator=(const TlsStream&) = delete;

    /// Like ::read: > 0 bytes, 0 at the end of the stream, -1 with errno (EAGAIN: wait for
    /// waitEvents(), then call again).
    ssize_t read(void* buf, std::size_t n);
    /// Like ::send: > 0 bytes taken, -1 with errno (EAGAIN: wait for waitEvents(), then call
    /// again with the same bytes).
    ssize_t write(const void* buf, std::size_t n);
    /// Decrypted bytes waiting inside OpenSSL (poll() would not see them).
    [[nodiscard]] bool pending() const;
    /// POLLIN or POLLOUT: what the last EAGAIN waits for.
    [[nodiscard]] short waitEvents() const { return wait_events_; }
    /// The last failure's text (after -1 with errno EPROTO).
    [[nodiscard]] const std::string& lastError() const { return last_error_; }
    /// Sends close_notify (best effort, no waiting).
    void shutdown();

private:
    explicit TlsStream(ssl_st* ssl) : ssl_(ssl) {}
    ssize_t result(int r);
    ssl_st* ssl_;
    std::shared_ptr<TlsClientContext> ctx_;
    short wait_events_ = 0;
    std::string last_error_;
};

}  // namespace tundra::client
