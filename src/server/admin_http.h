// SPDX-License-Identifier: Apache-2.0
// The admin HTTP listener (/healthz, /readyz, /metrics) on the server's own reactor: a minimal
// HTTP/1.1 GET responder with a size cap and a per-connection deadline, one request per
// connection. It must never be able to slow the chat listener down.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "net/event_loop.h"
#include "net/tcp_server.h"
#include "net/tls_context.h"

namespace tundra::server {

struct AdminHttpOptions {
    std::size_t max_request_bytes = 8192;    ///< request line + headers; beyond: 414/431
    std::int64_t request_timeout_ms = 5000;  ///< whole exchange, from accept to last byte out
    std::size_t max_connections = 32;        ///< more are answered 503 and closed
    /// Open connections from one source address; more are answered 503 and closed. Below
    /// max_connections, so one source's idle connections (each dropped at request_timeout_ms)
    /// cannot fill the listener and make /healthz fail for every prober.
    std::size_t max_per_source = 8;
    /// File whose first line is the bearer token every path but /healthz and /readyz needs;
    /// "" = no token. Read by start() and reloadToken().
    std::string token_file;
    /// Serve HTTPS with this context (the chat listener's certificate); null = plain HTTP.
    std::shared_ptr<net::TlsContext> tls;
};

/// One parsed request head. Exposed for tests of the parser.
struct HttpRequestHead {
    std::string method;
    std::string target;  ///< origin-form, e.g. "/metrics?x=1"
    std::string path;    ///< target without the query
    int minor_version = 1;
    std::string authorization;  ///< the Authorization header's value ("" if absent)
};

/// Result of looking at the bytes received so far on an admin connection.
struct HttpParse {
    enum class State { NeedMore, Done, Error } state = State::NeedMore;
    int status = 0;        ///< Error: the HTTP status to answer (400, 414, 431, 505)
    std::string reason;    ///< Error: a short text for the body and the debug log
    HttpRequestHead head;  ///< Done
};

/// Parses the request line and headers of `bytes` (everything received so far). A request
/// line or header that is already malformed is an Error before the head is complete. Lines
/// end in CRLF (a bare LF is accepted); obsolete line folding is rejected. A body is ignored.
HttpParse parseHttpRequestHead(std::string_view bytes, std::size_t max_bytes);

/// True when `authorization` is "Bearer " + `token` (scheme case-insensitive), compared in
/// time that does not depend on where the two differ. An empty `token` matches nothing.
bool bearerMatches(std::string_view authorization, std::string_view token);

/// The token in a token file: its first line without surrounding whitespace. False with
/// `error` if the file cannot be read or the token is empty.
bool readTokenFile(const std::string& path, std::string& token, std::string& error);

/// Owns its own net::TcpServer on the given loop. Answers exactly one request per connection
/// with "Connection: close", then closes after the flush. A connection that has not finished
/// its request within request_timeout_ms gets 408 and is closed; one that does not read its
/// response in that time is dropped. Every callback runs on the loop thread.
class AdminHttp {
public:
    /// True while the server accepts new chat work; false (draining) makes /readyz 503.
    using ReadyCallback = std::function<bool()>;
    /// The /metrics body in Prometheus text format (see renderPrometheus).
    using MetricsCallback = std::function<std::string()>;

    AdminHttp(net::EventLoop& loop, ReadyCallback ready, MetricsCallback metrics,
              AdminHttpOptions options = {});
    ~AdminHttp();
    AdminHttp(const AdminHttp&) = delete;
    AdminHttp& operator=(const AdminHttp&) = delete;

    /// Listens on "ADDR:PORT" (IPv4, or "[IPv6]:PORT"; port 0 = the OS chooses) and logs
    /// "admin listening on ADDR:PORT" with the real port. False with `error` set on a
    /// malformed address or a bind failure. Call once.
    bool start(const std::string& addr_port, std::string& error);
    /// The bound port (0 before start()).
    [[nodiscard]] std::uint16_t port() const;
    /// "ADDR:PORT" with the bound port, as logged ("" before start()).
    [[nodiscard]] const std::string& address() const { return address_; }
    /// Stops accepting; connections in progress finish normally.
    void stopAccepting();
    /// The admin token file from now on (reloadToken() reads it).
    void setTokenFile(std::string path) { options_.token_file = std::move(path); }
    /// Re-reads the token file (SIGHUP). An unreadable or empty file keeps the running token
    /// and returns false with `error`; no file configured clears the token.
    bool reloadToken(std::string* error = nullptr);
    /// New HTTPS connections use `ctx` (SIGHUP reloaded the certificate). No-op without TLS.
    void setTlsContext(std::shared_ptr<net::TlsContext> ctx);
    /// Requests answered 401 for a missing or wrong bearer token.
    [[nodiscard]] std::uint64_t unauthorized() const { return unauthorized_; }

    [[nodiscard]] std::uint64_t requestsServed() const { return requests_; }
    [[nodiscard]] std::size_t connectionCount() const { return conns_.size(); }
    /// Connections refused by the global or the per-source cap.
    [[nodiscard]] std::uint64_t refused() const { return refused_; }

private:
    struct ConnState {
        net::TimerId deadline = 0;  // 0 once fired or cancelled
        std::size_t scanned = 0;    // input bytes already looked at
        bool answered = false;
        bool refused = false;  // answered 503 at accept: not counted against the caps
        std::string source;    // peer address without the port
    };

    void onConnect(net::ConnId id, const std::string& peer);
    std::size_t onData(net::ConnId id, std::span<const std::uint8_t> bytes);
    void onClose(net::ConnId id);
    void onDeadline(net::ConnId id);
    // Queues one response and closes after the flush.
    void respond(net::ConnId id, int status, std::string_view content_type, std::string_view body,
                 bool head_only = false, std::string_view extra_headers = {});
    void route(net::ConnId id, const HttpRequestHead& head);

    net::EventLoop& loop_;
    ReadyCallback ready_;
    MetricsCallback metrics_;
    AdminHttpOptions options_;
    std::unique_ptr<net::TcpServer> tcp_;
    std::unordered_map<net::ConnId, ConnState> conns_;
    std::string address_;
    std::uint64_t requests_ = 0;
    std::uint64_t refused_ = 0;
    std::size_t counted_ = 0;  // open connections that were not refused
    std::uint64_t unauthorized_ = 0;
    std::string token_;                                        // "" = no token required
    std::unordered_map<std::string, std::size_t> per_source_;  // counted ones per address
};

}  // namespace tundra::server
