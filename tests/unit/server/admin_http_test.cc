// SPDX-License-Identifier: Apache-2.0
// Admin HTTP over real loopback sockets: the endpoints, the error statuses, and that a slow or
// malformed client neither blocks another one nor lives past its deadline. The EventLoop runs
// in the test thread; raw non-blocking client sockets are registered on the same loop and the
// loop quits when every client has seen EOF (or a 5 s guard timer fails the test).
#include "server/admin_http.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace tundra::server {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// One HTTP client socket on the loop: connects, writes its request, reads until EOF.
class Client : public net::IoHandler {
public:
    /// From the loopback address `source` when given (e.g. "127.0.0.2": another address).
    Client(net::EventLoop& loop, std::uint16_t port, std::function<void(Client*)> on_eof,
           const char* source = nullptr)
        : loop_(loop), on_eof_(std::move(on_eof)) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (source != nullptr) {
            sockaddr_in from{};
            from.sin_family = AF_INET;
            ::inet_pton(AF_INET, source, &from.sin_addr);
            ::bind(fd_, reinterpret_cast<const sockaddr*>(&from), sizeof from);
        }
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        // A loopback connect completes in the kernel backlog, before the server accepts.
        connected_ = ::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
        ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
        loop_.add(fd_, EPOLLIN, this);
    }
    ~Client() override {
        if (!eof_) {
            loop_.remove(fd_, this);
        }
        ::close(fd_);
    }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    [[nodiscard]] bool connected() const { return connected_; }
    void write(const std::string& bytes) {
        ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL),
                  static_cast<ssize_t>(bytes.size()));
    }
    void onEvents(std::uint32_t) override {
        char buf[16384];
        while (true) {
            const ssize_t n = ::read(fd_, buf, sizeof buf);
            if (n > 0) {
                received_.append(buf, static_cast<std::size_t>(n));
                continue;
            }
            if (n < 0 && errno == EAGAIN) {
                return;
            }
            // EOF or an error (a reset counts as the end too).
            eof_ = true;
            loop_.remove(fd_, this);
            on_eof_(this);
            return;
        }
    }
    [[nodiscard]] bool eof() const { return eof_; }
    [[nodiscard]] const std::string& received() const { return received_; }
    [[nodiscard]] std::string statusLine() const {
        return received_.substr(0, received_.find("\r\n"));
    }
    [[nodiscard]] std::string body() const {
        const auto end = received_.find("\r\n\r\n");
        return end == std::string::npos ? std::string() : received_.substr(end + 4);
    }

private:
    net::EventLoop& loop_;
    std::function<void(Client*)> on_eof_;
    int fd_ = -1;
    bool connected_ = false;
    bool eof_ = false;
    std::string received_;
};

class AdminHttpTest : public ::testing::Test {
protected:
    void SetUp() override { start({}); }

    void start(AdminHttpOptions options) {
        admin_.reset();
        admin_ = std::make_unique<AdminHttp>(
            loop_, [this] { return ready_; }, [this] { return metrics_; }, options);
        std::string error;
        ASSERT_TRUE(admin_->start("127.0.0.1:0", error)) << error;
        ASSERT_NE(admin_->port(), 0);
    }

    Client& client(const char* source = nullptr) {
        clients_.push_back(std::make_unique<Client>(
            loop_, admin_->port(),
            [this](Client* c) {
                closed_order_.push_back(c);
                if (closed_order_.size() == clients_.size()) {
                    loop_.quit();
                }
            },
            source));
        EXPECT_TRUE(clients_.back()->connected());
        return *clients_.back();
    }

    // Runs the loop until every client saw EOF; fails the test after 5 s.
    void runUntilAllClosed() {
        bool timed_out = false;
        auto guard = loop_.addTimer(5000, [&] {
            timed_out = true;
            loop_.quit();
        });
        if (closed_order_.size() < clients_.size()) {
            loop_.run();
        }
        loop_.cancelTimer(guard);
        EXPECT_FALSE(timed_out) << "a client was still open after 5 s";
    }

    // One request on a fresh connection; returns the client after the server closed it.
    Client& exchange(const std::string& request) {
        Client& c = client();
        c.write(request);
        runUntilAllClosed();
        return c;
    }

    net::EventLoop loop_;
    bool ready_ = true;
    std::string metrics_ = "# HELP tundra_up x\n# TYPE tundra_up gauge\ntundra_up 1\n";
    std::unique_ptr<AdminHttp> admin_;
    std::vector<std::unique_ptr<Client>> clients_;
    std::vector<Client*> closed_order_;
};

TEST_F(AdminHttpTest, HealthzIsOk) {
    Client& c = exchange("GET /healthz HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\n\r\n");
    EXPECT_EQ(c.statusLine(), "HTTP/1.1 200 OK");
    EXPECT_THAT(c.received(), HasSubstr("\r\nContent-Length: 3\r\n"));
    EXPECT_THAT(c.received(), HasSubstr("\r\nConnection: close\r\n"));
    EXPECT_THAT(c.received(), HasSubstr("\r\nContent-Type: text/plain; charset=utf-8\r\n"));
    EXPECT_EQ(c.body(), "ok\n");
    EXPECT_EQ(admin_->requestsServed(), 1U);
    EXPECT_EQ(admin_->connectionCount(), 0U);
}

TEST_F(AdminHttpTest, ReadyzFollowsTheReadyCallback) {
    Client& up = exchange("GET /readyz HTTP/1.1\r\n\r\n");
    EXPECT_EQ(up.statusLine(), "HTTP/1.1 200 OK");
    EXPECT_EQ(up.body(), "ready\n");
    ready_ = false;
    Client& draining = exchange("GET /readyz HTTP/1.1\r\n\r\n");
    EXPECT_EQ(draining.statusLine(), "HTTP/1.1 503 Service Unavailable");
    EXPECT_EQ(draining.body(), "draining\n");
}

TEST_F(AdminHttpTest, MetricsServesTheCallbackInPrometheusFormat) {
    Client& c = exchange("GET /metrics?name[]=x HTTP/1.0\r\nAccept: text/plain\r\n\r\n");
    EXPECT_EQ(c.statusLine(), "HTTP/1.1 200 OK");
    EXPECT_THAT(c.received(),
                HasSubstr("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    EXPECT_EQ(c.body(), metrics_);
}

TEST_F(AdminHttpTest, HeadHasHeadersButNoBody) {
    Client& c = exchange("HEAD /healthz HTTP/1.1\r\n\r\n");
    EXPECT_EQ(c.statusLine(), "HTTP/1.1 200 OK");
    EXPECT_THAT(c.received(), HasSubstr("\r\nContent-Length: 3\r\n"));
    EXPECT_EQ(c.body(), "");
}

TEST_F(AdminHttpTest, UnknownPathIs404) {
    Client& c = exchange("GET /admin/shutdown HTTP/1.1\r\n\r\n");
    EXPECT_EQ(c.statusLine(), "HTTP/1.1 404 Not Found");
}

TEST_F(AdminHttpTest, OtherMethodsAre405) {
    Client& c = exchange("POST /healthz HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi");
    EXPECT_EQ(c.statusLine(), "HTTP/1.1 405 Method Not Allowed");
    EXPECT_THAT(c.received(), HasSubstr("\r\nAllow: GET, HEAD\r\n"));
}

TEST_F(AdminHttpTest, MalformedRequestsAre400) {
    for (const char* bad : {"BLAH\r\n\r\n", "GET /healthz\r\n\r\n", "GET healthz HTTP/1.1\r\n\r\n",
                            "GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n",
                            "GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n",
                            "GET /healthz HTTP/1.1\r\nX: a\r\n folded\r\n\r\n"}) {
        Client& c = exchange(bad);
        EXPECT_EQ(c.statusLine(), "HTTP/1.1 400 Bad Request") << bad;
    }
}

// A TLS ClientHello (binary) is refused at once, without waiting for a line end.
TEST_F(AdminHttpTest, BinaryGarbageIsRefusedImmediately) {
    Client& c = exchange(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11));
    EXPECT_EQ(c.statusLine(), "HTTP/1.1 400 Bad Request");
}

TEST_F(AdminHttpTest, Http2IsNotSupported) {
    Client& c = exchange("GET /healthz HTTP/2.0\r\n\r\n");
    EXPECT_EQ(c.statusLine(), "HTTP/1.1 505 HTTP Version Not Supported");
}

TEST_F(AdminHttpTest, OversizedHeadersAre431AndLongTargetsAre414) {
    Client& headers =
        exchange("GET /healthz HTTP/1.1\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n");
    EXPECT_EQ(headers.statusLine(), "HTTP/1.1 431 Request Header Fields Too Large");
    Client& target = exchange("GET /" + std::string(9000, 'a') + " HTTP/1.1\r\n\r\n");
    EXPECT_EQ(target.statusLine(), "HTTP/1.1 414 URI Too Long");
    // Never terminated, but over the cap: answered without waiting for the deadline.
    Client& endless = exchange("GET /healthz HTTP/1.1\r\nX: " + std::string(9000, 'a'));
    EXPECT_EQ(endless.statusLine(), "HTTP/1.1 431 Request Header Fields Too Large");
}

TEST_F(AdminHttpTest, OnlyTheFirstOfPipelinedRequestsIsAnswered) {
    Client& c = exchange("GET /healthz HTTP/1.1\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n");
    EXPECT_EQ(c.body(), "ok\n");
    EXPECT_EQ(admin_->requestsServed(), 1U);
}

TEST_F(AdminHttpTest, BareLineFeedsAreAccepted) {
    Client& c = exchange("GET /healthz HTTP/1.0\n\n");
    EXPECT_EQ(c.statusLine(), "HTTP/1.1 200 OK");
}

// A client that sends half a request and stalls does not delay another client; it is answered
// 408 and closed when its own deadline passes.
TEST_F(AdminHttpTest, AStalledClientDoesNotBlockOthersAndTimesOut) {
    AdminHttpOptions options;
    options.request_timeout_ms = 300;
    start(options);
    Client& slow = client();
    slow.write("GET /heal");
    Client& fast = client();
    fast.write("GET /healthz HTTP/1.1\r\n\r\n");
    runUntilAllClosed();
    ASSERT_EQ(closed_order_.size(), 2U);
    EXPECT_EQ(closed_order_[0], &fast);
    EXPECT_EQ(fast.statusLine(), "HTTP/1.1 200 OK");
    EXPECT_EQ(slow.statusLine(), "HTTP/1.1 408 Request Timeout");
    EXPECT_EQ(admin_->connectionCount(), 0U);
}

// A client that connects and says nothing is closed by its deadline too.
TEST_F(AdminHttpTest, ASilentClientIsClosedByItsDeadline) {
    AdminHttpOptions options;
    options.request_timeout_ms = 100;
    start(options);
    Client& silent = client();
    runUntilAllClosed();
    EXPECT_TRUE(silent.eof());
    EXPECT_EQ(silent.statusLine(), "HTTP/1.1 408 Request Timeout");
}

TEST_F(AdminHttpTest, ConnectionsBeyondTheLimitGet503) {
    AdminHttpOptions options;
    options.max_connections = 1;
    options.request_timeout_ms = 300;
    start(options);
    Client& first = client();
    first.write("GET /");  // holds the only slot until its deadline
    Client& second = client();
    second.write("GET /healthz HTTP/1.1\r\n\r\n");
    runUntilAllClosed();
    EXPECT_EQ(second.statusLine(), "HTTP/1.1 503 Service Unavailable");
    EXPECT_EQ(first.statusLine(), "HTTP/1.1 408 Request Timeout");
}

// Connections over the per-source cap are refused with 503 and do not count against the
// global cap: a probe from another address accepted in the same burst (before the refused
// ones are reaped) is still served.
TEST_F(AdminHttpTest, RefusedConnectionsFromOneSourceDoNotFillTheListener) {
    AdminHttpOptions options;
    options.max_connections = 3;
    options.max_per_source = 1;
    options.request_timeout_ms = 300;
    start(options);
    Client& idle = client();
    idle.write("GET /");  // holds its source's only slot until its deadline
    std::vector<Client*> extra;
    for (int i = 0; i < 4; ++i) {
        extra.push_back(&client());
        extra.back()->write("GET /healthz HTTP/1.1\r\n\r\n");
    }
    Client& other = client("127.0.0.2");
    other.write("GET /healthz HTTP/1.1\r\n\r\n");
    runUntilAllClosed();
    for (Client* c : extra) {
        EXPECT_EQ(c->statusLine(), "HTTP/1.1 503 Service Unavailable");
        EXPECT_EQ(c->body(), "too many admin connections from here\n");
    }
    EXPECT_EQ(other.statusLine(), "HTTP/1.1 200 OK");
    EXPECT_EQ(idle.statusLine(), "HTTP/1.1 408 Request Timeout");
    EXPECT_EQ(admin_->refused(), 4U);
    EXPECT_EQ(admin_->connectionCount(), 0U);
}

TEST_F(AdminHttpTest, StartReportsBadAddressesAndBindFailures) {
    AdminHttp other(loop_, {}, {});
    std::string error;
    EXPECT_FALSE(other.start("localhost:9090", error));
    EXPECT_THAT(error, HasSubstr("'localhost:9090'"));
    error.clear();
    EXPECT_FALSE(other.start("127.0.0.1:" + std::to_string(admin_->port()), error));
    EXPECT_THAT(error, StartsWith("admin: "));
    EXPECT_EQ(other.port(), 0);
    EXPECT_EQ(admin_->address(), "127.0.0.1:" + std::to_string(admin_->port()));
}

// The parser on its own: every proper prefix of a valid head needs more; the whole is Done.
TEST(HttpRequestHead, EveryPrefixNeedsMoreUntilTheBlankLine) {
    const std::string request = "GET /metrics?x=1 HTTP/1.1\r\nHost: example\r\nAccept: */*\r\n\r\n";
    for (std::size_t n = 0; n < request.size(); ++n) {
        auto r = parseHttpRequestHead(std::string_view(request).substr(0, n), 8192);
        EXPECT_EQ(r.state, HttpParse::State::NeedMore) << n;
    }
    auto r = parseHttpRequestHead(request, 8192);
    ASSERT_EQ(r.state, HttpParse::State::Done);
    EXPECT_EQ(r.head.method, "GET");
    EXPECT_EQ(r.head.target, "/metrics?x=1");
    EXPECT_EQ(r.head.path, "/metrics");
    EXPECT_EQ(r.head.minor_version, 1);
}

TEST(HttpRequestHead, ErrorsAreFoundAsSoonAsTheLineIsComplete) {
    auto r = parseHttpRequestHead("GARBAGE\r\n", 8192);
    EXPECT_EQ(r.state, HttpParse::State::Error);
    EXPECT_EQ(r.status, 400);
    r = parseHttpRequestHead("GET / HTTP/1.1\r\nBad Header\r\n", 8192);
    EXPECT_EQ(r.state, HttpParse::State::Error);
    r = parseHttpRequestHead("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 8192);
    EXPECT_EQ(r.state, HttpParse::State::Error);
    r = parseHttpRequestHead("GET / HTTP/1.1\r\nX: \x01\r\n\r\n", 8192);
    EXPECT_EQ(r.state, HttpParse::State::Error);
    r = parseHttpRequestHead("GET / HTTP/1.1\r\nX: tab\tok\r\n\r\n", 8192);
    EXPECT_EQ(r.state, HttpParse::State::Done);
}

TEST(HttpRequestHead, TheCapCountsTheWholeHead) {
    const std::string head = "GET / HTTP/1.1\r\nX: 12345\r\n\r\n";  // 29 bytes
    EXPECT_EQ(parseHttpRequestHead(head, head.size()).state, HttpParse::State::Done);
    auto r = parseHttpRequestHead(head, head.size() - 1);
    EXPECT_EQ(r.state, HttpParse::State::Error);
    EXPECT_EQ(r.status, 431);
    r = parseHttpRequestHead("GET /abcdef", 8);
    EXPECT_EQ(r.status, 414);
}

// ---- bearer token (admin_token_file) --------------------------------------------------------

TEST(AdminToken, BearerMatchesOnlyTheExactToken) {
    EXPECT_TRUE(bearerMatches("Bearer s3cret", "s3cret"));
    EXPECT_TRUE(bearerMatches("bearer s3cret", "s3cret"));  // the scheme is case-insensitive
    EXPECT_FALSE(bearerMatches("Bearer s3cre", "s3cret"));
    EXPECT_FALSE(bearerMatches("Bearer s3cret2", "s3cret"));
    EXPECT_FALSE(bearerMatches("Bearer S3CRET", "s3cret"));  // the token is not
    EXPECT_FALSE(bearerMatches("Basic s3cret", "s3cret"));
    EXPECT_FALSE(bearerMatches("s3cret", "s3cret"));
    EXPECT_FALSE(bearerMatches("", "s3cret"));
    EXPECT_FALSE(bearerMatches("Bearer ", ""));  // no token configured matches nothing
}

TEST(AdminToken, TheParserKeepsTheAuthorizationHeader) {
    auto p = parseHttpRequestHead(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nauthorization:   Bearer abc  \r\n\r\n", 8192);
    ASSERT_EQ(p.state, HttpParse::State::Done);
    EXPECT_EQ(p.head.authorization, "Bearer abc");
    p = parseHttpRequestHead("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 8192);
    ASSERT_EQ(p.state, HttpParse::State::Done);
    EXPECT_EQ(p.head.authorization, "");
}

TEST(AdminToken, TheTokenFileIsItsFirstLineTrimmed) {
    char tmpl[] = "/tmp/tundra-token-XXXXXX";
    const int fd = ::mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    const std::string text = "  tok-123 \nsecond line\n";
    ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    ::close(fd);
    std::string token;
    std::string error;
    ASSERT_TRUE(readTokenFile(tmpl, token, error)) << error;
    EXPECT_EQ(token, "tok-123");
    std::FILE* f = std::fopen(tmpl, "w");
    ASSERT_NE(f, nullptr);
    std::fputs("\n", f);
    std::fclose(f);
    EXPECT_FALSE(readTokenFile(tmpl, token, error));
    EXPECT_THAT(error, HasSubstr("empty"));
    ::unlink(tmpl);
    EXPECT_FALSE(readTokenFile(tmpl, token, error));
    EXPECT_THAT(error, HasSubstr("cannot be read"));
}

}  // namespace
}  // namespace tundra::server
