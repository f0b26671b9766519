// SPDX-License-Identifier: Apache-2.0
// Admin HTTP: a stateless request-head parser and a responder on a private TcpServer. Each
// connection carries one deadline timer; nothing here can block the loop or grow unbounded.
#include "server/admin_http.h"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <utility>

#include "server/config_file.h"
#include "server/prometheus.h"

namespace tundra::server {

namespace {

constexpr std::string_view kTextPlain = "text/plain; charset=utf-8";

// RFC 9110 tchar: the characters of a method or a header name.
bool isTokenChar(char ch) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= '0' && c <= '9') {
        return true;
    }
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
        return true;
    }
    return std::string_view("!#$%&'*+-.^_`|~").find(ch) != std::string_view::npos;
}

bool isToken(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), isTokenChar);
}

// A control character that may not appear in a request line or header line (TAB is allowed
// in header values and checked by the caller).
bool isControl(char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c < 0x20 || c == 0x7f;
}

// True when `bytes` holds a character that no line of a request head may contain (a CR is
// allowed: it may be the first half of a CRLF).
bool hasForbiddenByte(std::string_view bytes) {
    return std::any_of(bytes.begin(), bytes.end(), [](char ch) {
        return isControl(ch) && ch != '\r' && ch != '\n' && ch != '\t';
    });
}

const char* reasonPhrase(int status) {
    switch (status) {
        case 200:
            return "OK";
        case 400:
            return "Bad Request";
        case 401:
            return "Unauthorized";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 408:
            return "Request Timeout";
        case 414:
            return "URI Too Long";
        case 431:
            return "Request Header Fields Too Large";
        case 503:
            return "Service Unavailable";
        case 505:
            return "HTTP Version Not Supported";
        default:
            return "Error";
    }
}

HttpParse error(int status, std::string reason) {
    HttpParse r;
    r.state = HttpParse::State::Error;
    r.status = status;
    r.reason = std::move(reason);
    return r;
}

// "METHOD SP request-target SP HTTP-version" (RFC 9112 section 3).
HttpParse parseRequestLine(std::string_view line, HttpRequestHead& head) {
    const auto sp1 = line.find(' ');
    const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
        return error(400, "malformed request line");
    }
    const auto method = line.substr(0, sp1);
    const auto target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const auto version = line.substr(sp2 + 1);
    if (!isToken(method)) {
        return error(400, "malformed method");
    }
    if (target.empty() || target[0] != '/' ||
        std::any_of(target.begin(), target.end(), [](char ch) { return isControl(ch); })) {
        return error(400, "malformed request target");
    }
    if (version.size() != 8 || !version.starts_with("HTTP/") || version[6] != '.' ||
        version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9') {
        return error(400, "malformed HTTP version");
    }
    if (version[5] != '1') {
        return error(505, "only HTTP/1.x is supported");
    }
    head.method = std::string(method);
    head.target = std::string(target);
    head.path = std::string(target.substr(0, target.find('?')));
    head.minor_version = version[7] - '0';
    return {};
}

// "field-name: field-value"; no whitespace before the colon (RFC 9112 section 5.1).
bool isValidHeaderLine(std::string_view line) {
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || !isToken(line.substr(0, colon))) {
        return false;
    }
    const auto value = line.substr(colon + 1);
    return std::none_of(value.begin(), value.end(),
                        [](char ch) { return isControl(ch) && ch != '\t'; });
}

std::string response(int status, std::string_view content_type, std::string_view body,
                     bool head_only, std::string_view extra_headers) {
    std::string out = fmt::format(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n"
        "Connection: close\r\n{}\r\n",
        status, reasonPhrase(status), content_type, body.size(), extra_headers);
    if (!head_only) {
        out += body;
    }
    return out;
}

}  // namespace

HttpParse parseHttpRequestHead(std::string_view bytes, std::size_t max_bytes) {
    HttpParse result;
    std::size_t pos = 0;
    bool first = true;
    while (true) {
        const auto nl = bytes.find('\n', pos);
        if (nl == std::string_view::npos) {
            // An incomplete line: reject what is already wrong, else wait within the cap.
            if (hasForbiddenByte(bytes.substr(pos))) {
                return error(400, "control character in request");
            }
            if (bytes.size() > max_bytes) {
                return first ? error(414, "request line too long")
                             : error(431, "request headers too large");
            }
            return result;
        }
        if (nl + 1 > max_bytes) {
            return first ? error(414, "request line too long")
                         : error(431, "request headers too large");
        }
        std::string_view line = bytes.substr(pos, nl - pos);
        if (line.ends_with('\r')) {
            line.remove_suffix(1);
        }
        if (line.find('\r') != std::string_view::npos) {
            return error(400, "bare CR in request");
        }
        pos = nl + 1;
        if (first) {
            auto r = parseRequestLine(line, result.head);
            if (r.state == HttpParse::State::Error) {
                return r;
            }
            first = false;
            continue;
        }
        if (line.empty()) {
            result.state = HttpParse::State::Done;
            return result;
        }
        if (line[0] == ' ' || line[0] == '\t') {
            return error(400, "obsolete header line folding");
        }
        if (!isValidHeaderLine(line)) {
            return error(400, "malformed header line");
        }
        const auto colon = line.find(':');
        std::string name(line.substr(0, colon));
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
        if (name == "authorization") {
            std::string_view value = line.substr(colon + 1);
            while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
                value.remove_prefix(1);
            }
            while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
                value.remove_suffix(1);
            }
            result.head.authorization = std::string(value);
        }
    }
}

bool bearerMatches(std::string_view authorization, std::string_view token) {
    constexpr std::string_view kScheme = "bearer ";
    if (token.empty() || authorization.size() < kScheme.size()) {
        return false;
    }
    for (std::size_t i = 0; i < kScheme.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) {
            return false;
        }
    }
    const std::string_view given = authorization.substr(kScheme.size());
    // The length is not secret (a token's length says nothing useful); the bytes are compared
    // with CRYPTO_memcmp, whose time does not depend on the first difference.
    return given.size() == token.size() &&
           CRYPTO_memcmp(given.data(), token.data(), token.size()) == 0;
}

bool readTokenFile(const std::string& path, std::string& token, std::string& error) {
    std::ifstream in(path);
    if (!in) {
        error = "admin_token_file " + path + ": cannot be read";
        return false;
    }
    std::string line;
    std::getline(in, line);
    const auto first = line.find_first_not_of(" \t\r");
    const auto last = line.find_last_not_of(" \t\r");
    if (first == std::string::npos) {
        error = "admin_token_file " + path + ": the first line is empty";
        return false;
    }
    token = line.substr(first, last - first + 1);
    return true;
}

AdminHttp::AdminHttp(net::EventLoop& loop, ReadyCallback ready, MetricsCallback metrics,
                     AdminHttpOptions options)
    : loop_(loop),
      ready_(std::move(ready)),
      metrics_(std::move(metrics)),
      options_(std::move(options)) {}

AdminHttp::~AdminHttp() {
    for (auto& [id, state] : conns_) {
        if (state.deadline != 0) {
            loop_.cancelTimer(state.deadline);
            state.deadline = 0;
        }
    }
    // The TcpServer goes first, while the callbacks it may still call can reach conns_.
    tcp_.reset();
}

bool AdminHttp::start(const std::string& addr_port, std::string& error_out) {
    std::string host;
    std::uint16_t port = 0;
    if (!parseHostPort(addr_port, host, port)) {
        error_out = fmt::format(
            "admin: '{}' is not ADDR:PORT with a numeric address (e.g. 127.0.0.1:9090)", addr_port);
        return false;
    }
    if (!options_.token_file.empty()) {
        std::string token_error;
        if (!readTokenFile(options_.token_file, token_, token_error)) {
            error_out = token_error;
            return false;
        }
    }
    net::TcpServerOptions o;
    o.bind = host;
    o.port = port;
    o.output_cap = 1U << 20;
    o.max_reads_per_wakeup = 1;
    o.flush_timeout_ms = options_.request_timeout_ms;
    auto tcp = std::make_unique<net::TcpServer>(loop_, o);
    tcp->setConnectCallback(
        [this](net::ConnId id, const net::ConnInfo& info) { onConnect(id, info.peer); });
    tcp->setDataCallback(
        [this](net::ConnId id, std::span<const std::uint8_t> bytes) { return onData(id, bytes); });
    tcp->setCloseCallback([this](net::ConnId id, net::CloseReason,
                                 const std::vector<std::uint64_t>&) { onClose(id); });
    std::string listen_error;
    if (options_.tls) {
        tcp->setTlsContext(options_.tls);
        if (!tcp->listenTls(port, listen_error)) {
            error_out = "admin: " + listen_error;
            return false;
        }
    } else if (!tcp->listen(listen_error)) {
        error_out = "admin: " + listen_error;
        return false;
    }
    tcp_ = std::move(tcp);
    const bool v6 = host.find(':') != std::string::npos;
    address_ =
        v6 ? fmt::format("[{}]:{}", host, this->port()) : fmt::format("{}:{}", host, this->port());
    spdlog::info("admin listening on {}{}{}", address_, options_.tls ? " (https)" : "",
                 token_.empty() ? "" : " (bearer token required)");
    return true;
}

std::uint16_t AdminHttp::port() const {
    if (!tcp_) {
        return 0;
    }
    return options_.tls ? tcp_->tlsPort() : tcp_->port();
}

bool AdminHttp::reloadToken(std::string* error) {
    if (options_.token_file.empty()) {
        token_.clear();
        return true;
    }
    std::string token;
    std::string why;
    if (!readTokenFile(options_.token_file, token, why)) {
        spdlog::error("reload: {}; keeping the running admin token", why);
        if (error != nullptr) {
            *error = why;
        }
        return false;
    }
    token_ = std::move(token);
    return true;
}

void AdminHttp::setTlsContext(std::shared_ptr<net::TlsContext> ctx) {
    if (options_.tls && tcp_) {
        options_.tls = ctx;
        tcp_->setTlsContext(std::move(ctx));
    }
}

void AdminHttp::stopAccepting() {
    if (tcp_) {
        tcp_->stopAccepting();
    }
}

namespace {
// "1.2.3.4:80" -> "1.2.3.4", "[::1]:80" -> "::1".
std::string sourceOf(const std::string& peer) {
    const auto colon = peer.rfind(':');
    std::string host = colon == std::string::npos ? peer : peer.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    return host;
}
}  // namespace

// A refused connection is answered 503 and closed at once, so it does not count against the
// caps: a burst of refused ones accepted in the same loop iteration as a probe from another
// address (and not reaped yet) must not make that probe look over the global cap.
void AdminHttp::onConnect(net::ConnId id, const std::string& peer) {
    auto& state = conns_[id];
    state.source = sourceOf(peer);
    state.deadline = loop_.addTimer(options_.request_timeout_ms, [this, id] { onDeadline(id); });
    const bool full = counted_ >= options_.max_connections;
    auto src = per_source_.find(state.source);
    const std::size_t from_source = src == per_source_.end() ? 0 : src->second;
    if (full || from_source >= options_.max_per_source) {
        ++refused_;
        state.refused = true;
        spdlog::debug("admin conn={} refused: {} connections open, {} from {}", id, counted_,
                      from_source, state.source);
        respond(id, 503, kTextPlain,
                full ? "too many admin connections\n" : "too many admin connections from here\n");
        return;
    }
    ++counted_;
    ++per_source_[state.source];
}

std::size_t AdminHttp::onData(net::ConnId id, std::span<const std::uint8_t> bytes) {
    auto it = conns_.find(id);
    if (it == conns_.end() || it->second.answered) {
        return bytes.size();  // one request per connection: anything after it is ignored
    }
    const std::string_view all(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    // Nothing is consumed until the head is complete, so `all` grows with each read. Re-parse
    // only when a line was completed, the cap was crossed or a bad byte arrived: a client
    // dribbling one byte at a time then costs O(n), not O(n^2).
    const std::string_view fresh = all.substr(std::min(it->second.scanned, all.size()));
    it->second.scanned = all.size();
    if (fresh.find('\n') == std::string_view::npos && all.size() <= options_.max_request_bytes &&
        !hasForbiddenByte(fresh)) {
        return 0;
    }
    auto parsed = parseHttpRequestHead(all, options_.max_request_bytes);
    switch (parsed.state) {
        case HttpParse::State::NeedMore:
            return 0;
        case HttpParse::State::Error:
            spdlog::debug("admin conn={} bad request: {}", id, parsed.reason);
            respond(id, parsed.status, kTextPlain, parsed.reason + "\n");
            return bytes.size();
        case HttpParse::State::Done:
            route(id, parsed.head);
            return bytes.size();
    }
    return bytes.size();
}

void AdminHttp::route(net::ConnId id, const HttpRequestHead& head) {
    const bool head_only = head.method == "HEAD";
    if (head.method != "GET" && !head_only) {
        respond(id, 405, kTextPlain, "only GET and HEAD are supported\n", false,
                "Allow: GET, HEAD\r\n");
    } else if (!token_.empty() && head.path != "/healthz" && head.path != "/readyz" &&
               !bearerMatches(head.authorization, token_)) {
        ++unauthorized_;
        respond(id, 401, kTextPlain, "a bearer token is required\n", head_only,
                "WWW-Authenticate: Bearer realm=\"tundra-admin\"\r\n");
    } else if (head.path == "/healthz") {
        respond(id, 200, kTextPlain, "ok\n", head_only);
    } else if (head.path == "/readyz") {
        const bool ready = !ready_ || ready_();
        respond(id, ready ? 200 : 503, kTextPlain, ready ? "ready\n" : "draining\n", head_only);
    } else if (head.path == "/metrics") {
        respond(id, 200, kPrometheusContentType, metrics_ ? metrics_() : std::string(), head_only);
    } else {
        respond(id, 404, kTextPlain, "not found; try /healthz, /readyz or /metrics\n", head_only);
    }
    spdlog::debug("admin conn={} {} {}", id, head.method, head.target);
}

void AdminHttp::respond(net::ConnId id, int status, std::string_view content_type,
                        std::string_view body, bool head_only, std::string_view extra_headers) {
    auto it = conns_.find(id);
    if (it == conns_.end() || it->second.answered) {
        return;
    }
    it->second.answered = true;
    ++requests_;
    const std::string text = response(status, content_type, body, head_only, extra_headers);
    tcp_->send(id, net::SharedBytes::copyOf(text));
    tcp_->closeAfterFlush(id);
}

void AdminHttp::onDeadline(net::ConnId id) {
    auto it = conns_.find(id);
    if (it == conns_.end()) {
        return;
    }
    it->second.deadline = 0;  // fired: nothing to cancel any more
    if (it->second.answered) {
        // The response is still unread after the whole budget: drop the connection.
        tcp_->close(id);
        return;
    }
    spdlog::debug("admin conn={} request timed out", id);
    respond(id, 408, kTextPlain, "request timeout\n");
}

void AdminHttp::onClose(net::ConnId id) {
    auto it = conns_.find(id);
    if (it == conns_.end()) {
        return;
    }
    if (it->second.deadline != 0) {
        loop_.cancelTimer(it->second.deadline);
    }
    if (!it->second.refused) {
        --counted_;
        auto src = per_source_.find(it->second.source);
        if (src != per_source_.end() && --src->second == 0) {
            per_source_.erase(src);
        }
    }
    conns_.erase(it);
}

}  // namespace tundra::server
