// SPDX-License-Identifier: Apache-2.0
// tundrad as a service, end to end: the real binary with a TOML config file, --check-config,
// SIGHUP reload, SIGTERM drain, NOTIFY_SOCKET messages and the admin HTTP listener over real
// sockets on 127.0.0.1.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/raw_client.h"
#include "support/scratch_dir.h"
#include "support/tundrad_process.h"
#include "tundra/messages.h"

namespace tundra::testing {
namespace {

using namespace std::chrono_literals;

struct HttpReply {
    int status = 0;
    std::string head;
    std::string body;
};

// A TCP connection to 127.0.0.1:`port`, from `source` (another 127/8 address) if given; -1 if
// it cannot connect.
int connectLoopback(std::uint16_t port, const char* source = nullptr) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (source != nullptr) {
        sockaddr_in from{};
        from.sin_family = AF_INET;
        ::inet_pton(AF_INET, source, &from.sin_addr);
        if (::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) {
            ::close(fd);
            return -1;
        }
    }
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// Sends `request` as is to 127.0.0.1:`port` (from `source` if given) and reads until the server
// closes.
std::optional<HttpReply> httpExchange(std::uint16_t port, const std::string& request,
                                      std::chrono::milliseconds timeout = 5s,
                                      const char* source = nullptr) {
    const int fd = connectLoopback(port, source);
    if (fd < 0) {
        return std::nullopt;
    }
    ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    std::string all;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd p{fd, POLLIN, 0};
        if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
            ::close(fd);
            return std::nullopt;  // no complete answer in time
        }
        char buf[4096];
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
            break;
        }
        all.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    auto end = all.find("\r\n\r\n");
    if (all.size() < 12 || end == std::string::npos) {
        return std::nullopt;
    }
    HttpReply r;
    r.status = std::stoi(all.substr(9, 3));
    r.head = all.substr(0, end);
    r.body = all.substr(end + 4);
    return r;
}

std::optional<HttpReply> httpGet(std::uint16_t port, const std::string& path) {
    return httpExchange(port, "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n\r\n");
}

// The value of an unlabelled Prometheus sample "name value", or nullopt.
std::optional<double> metricValue(const std::string& page, const std::string& name) {
    std::string needle = "\n" + name + " ";
    auto pos = page.find(needle);
    if (pos == std::string::npos) {
        return std::nullopt;
    }
    return std::stod(page.substr(pos + needle.size()));
}

// The port of the "admin listening on ADDR:PORT" log line.
std::uint16_t adminPort(TundradProcess& server) {
    auto line = server.waitForLine("admin listening on", 5s);
    if (!line) {
        return 0;
    }
    return static_cast<std::uint16_t>(std::stoi(line->substr(line->rfind(':') + 1)));
}

// Runs tundrad with exactly `args` (no default --bind/--port) until it exits.
struct RunResult {
    std::optional<int> code;
    std::string output;
};
RunResult runToExit(std::vector<std::string> args) {
    TundradProcess p(std::move(args), 10s, /*default_bind=*/false);
    RunResult r;
    r.code = p.waitExit(10s);
    r.output = p.output();
    return r;
}

std::string bigText(std::size_t n) { return std::string(n, 'x'); }

// Sends a direct message with the ACK flag and waits for the ACK (other frames are skipped).
bool sendAcked(RawClient& c, std::string_view to, std::string_view text) {
    msg::Message m;
    m.to = to;
    m.text = text;
    c.send(msg::encode(m, c.nextSeq(), flags::kAck));
    return c.readUntil(MsgType::Ack, 10s).has_value();
}

// ---- --check-config -------------------------------------------------------------------------

TEST(CheckConfig, ValidFileExitsZeroAndSaysSo) {
    ScratchDir dir;
    auto conf = dir.write("tundra.conf",
                          "# comment\nport = 4243\nmax_clients = 10\nlog_level = \"debug\"\n"
                          "admin = \"127.0.0.1:9090\"\n");
    auto r = runToExit({"--check-config", conf});
    EXPECT_EQ(r.code, std::optional<int>(0)) << r.output;
    EXPECT_NE(r.output.find(conf + ": configuration is valid"), std::string::npos) << r.output;
}

struct BadConfigCase {
    const char* name;
    const char* text;
    const char* expect;  // after "FILE:"
};

class CheckConfigErrors : public ::testing::TestWithParam<BadConfigCase> {};

TEST_P(CheckConfigErrors, ExitTwoWithFileLineMessage) {
    ScratchDir dir;
    auto conf = dir.write("tundra.conf", GetParam().text);
    auto r = runToExit({"--check-config", conf});
    EXPECT_EQ(r.code, std::optional<int>(2)) << r.output;
    EXPECT_NE(r.output.find(conf + ":" + GetParam().expect), std::string::npos) << r.output;
}

INSTANTIATE_TEST_SUITE_P(
    Ops, CheckConfigErrors,
    ::testing::Values(BadConfigCase{"unknown_key", "port = 1\nmax_clientz = 3\n", "2:"},
                      BadConfigCase{"wrong_type", "\n\nmax_clients = \"many\"\n", "3:"},
                      BadConfigCase{"out_of_range", "max_payload = 70000\n", "1:"},
                      BadConfigCase{"syntax", "port = = 3\n", "1:"},
                      BadConfigCase{"bad_admin", "admin = \"localhost\"\n", "1:"}),
    [](const auto& p) { return std::string(p.param.name); });

TEST(CheckConfig, MissingFileIsAClearError) {
    auto r = runToExit({"--check-config", "/nonexistent/tundra.conf"});
    EXPECT_EQ(r.code, std::optional<int>(2)) << r.output;
    EXPECT_NE(r.output.find("/nonexistent/tundra.conf"), std::string::npos) << r.output;
}

TEST(CheckConfig, StartWithInvalidFileRefusesToRun) {
    ScratchDir dir;
    auto conf = dir.write("tundra.conf", "max_clients = -1\n");
    auto r = runToExit({"--config", conf, "--port", "0"});
    EXPECT_EQ(r.code, std::optional<int>(2)) << r.output;
    EXPECT_NE(r.output.find(conf + ":1:"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("listening on"), std::string::npos) << r.output;
}

TEST(AdminFlag, BadValueIsExitTwo) {
    auto r = runToExit({"--port", "0", "--admin", "localhost:http"});
    EXPECT_EQ(r.code, std::optional<int>(2)) << r.output;
    EXPECT_NE(r.output.find("--admin"), std::string::npos) << r.output;
}

TEST(AdminFlag, PortInUseIsExitOneWithClearError) {
    TundradProcess first({"--admin", "127.0.0.1:0"});
    ASSERT_TRUE(first.started()) << first.output();
    auto taken = adminPort(first);
    ASSERT_NE(taken, 0);
    auto r = runToExit(
        {"--bind", "127.0.0.1", "--port", "0", "--admin", "127.0.0.1:" + std::to_string(taken)});
    EXPECT_EQ(r.code, std::optional<int>(1)) << r.output;
    EXPECT_NE(r.output.find("admin listener"), std::string::npos) << r.output;
    EXPECT_EQ(first.stop(), std::optional<int>(0));
}

// ---- config file + flags, admin HTTP -----------------------------------------------------

TEST(ConfigFile, FileSetsValuesAndFlagsOverrideThem) {
    ScratchDir dir;
    auto conf = dir.write("tundra.conf",
                          "max_clients = 3\nmax_payload = 1000\nadmin = \"127.0.0.1:0\"\n"
                          "presence = false\n");
    TundradProcess server({"--config", conf, "--max-clients", "4"});
    ASSERT_TRUE(server.started()) << server.output();
    auto admin = adminPort(server);
    ASSERT_NE(admin, 0) << server.output();
    auto page = httpGet(admin, "/metrics");
    ASSERT_TRUE(page);
    EXPECT_EQ(metricValue(page->body, "tundra_max_clients"), std::optional<double>(4));
    EXPECT_EQ(metricValue(page->body, "tundra_max_payload_bytes"), std::optional<double>(1000));

    // The file's max_payload is the one the chat listener enforces.
    RawClient a(server.port());
    ASSERT_TRUE(a.registerAs("alice"));
    const std::string too_big = bigText(1100);
    msg::Message m;
    m.text = too_big;
    a.send(msg::encode(m, a.nextSeq(), flags::kAck));
    auto err = a.readUntil(MsgType::Error);
    ASSERT_TRUE(err);
    msg::Error e;
    ASSERT_EQ(msg::parse(err->span(), e), nullptr);
    EXPECT_EQ(e.code, static_cast<std::uint16_t>(ErrorCode::TooLarge));
    EXPECT_EQ(server.stop(), std::optional<int>(0));
}

// The kernel's transparent huge page mode: "always", "madvise", "never" or "" (none).
std::string thpMode() {
    std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const auto open = text.find('[');
    const auto close = text.find(']');
    return open == std::string::npos || close == std::string::npos
               ? std::string()
               : text.substr(open + 1, close - open - 1);
}

// kB of anonymous memory on huge pages in process `pid`.
long anonHugeKb(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/smaps_rollup");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind("AnonHugePages:", 0) == 0) {
            return std::stol(line.substr(line.find(':') + 1));
        }
    }
    return -1;
}

// huge_pages (huge_pages.h): turned on, with the kernel's mode "madvise", tundrad starts itself
// again with glibc.malloc.hugetlb=1, keeps its PID and serves; once it holds megabytes of
// messages its heap is on 2 MiB pages. Off (the default), or with the tunable set by the
// environment, it says so.
TEST(HugePages, TheHeapGrowsInHugePagesAndTheLogSaysWhatApplies) {
    ::unsetenv("GLIBC_TUNABLES");
    const std::string mode = thpMode();
    {
        TundradProcess server({"--huge-pages", "--no-presence", "--max-buffered", "1000",
                               "--user-buffer-bytes", "67108864", "--rate-messages-per-s", "0",
                               "--rate-bytes-per-s", "0"});
        ASSERT_TRUE(server.started()) << server.output();
        const char* expected = mode == "madvise"  ? "heap huge pages: on (GLIBC_TUNABLES sets "
                                                    "glibc.malloc.hugetlb=1)"
                               : mode == "always" ? "heap huge pages: on (the kernel gives"
                                                  : "heap huge pages: off (";
        EXPECT_TRUE(server.waitForLine(expected, 1s)) << mode << "\n" << server.output();
        // 16 MB of offline messages for bob, kept in the heap.
        RawClient bob(server.port());
        ASSERT_TRUE(bob.registerAs("bob"));
        bob.send(msg::encodeEmpty(MsgType::Logout, bob.nextSeq()));
        bob.waitClosed(5s);
        RawClient alice(server.port());
        ASSERT_TRUE(alice.registerAs("alice"));
        const std::string text = bigText(40000);
        for (int i = 0; i < 400; ++i) {
            alice.send(msg::encode(msg::Message{"bob", text}, alice.nextSeq(), flags::kAck));
            auto ack = alice.readUntil(MsgType::Ack, 5s);
            ASSERT_TRUE(ack) << i;
        }
#if !defined(__SANITIZE_ADDRESS__)  // ASan's allocator does not use glibc's heap
        if (mode == "madvise" || mode == "always") {
            EXPECT_GE(anonHugeKb(server.pid()), 2048) << mode;
        }
#endif
        EXPECT_EQ(server.stop(), std::optional<int>(0));
    }
    {
        TundradProcess server({"--no-presence"});  // off by default
        ASSERT_TRUE(server.started()) << server.output();
        EXPECT_TRUE(server.waitForLine("heap huge pages: off (huge_pages = false)", 1s))
            << server.output();
        EXPECT_EQ(server.stop(), std::optional<int>(0));
    }
    {
        ::setenv("GLIBC_TUNABLES", "glibc.malloc.hugetlb=0", 1);
        TundradProcess server({"--huge-pages"});
        ::unsetenv("GLIBC_TUNABLES");
        ASSERT_TRUE(server.started()) << server.output();
        EXPECT_TRUE(server.waitForLine(
            "heap huge pages: off (GLIBC_TUNABLES sets glibc.malloc.hugetlb=0)", 1s))
            << server.output();
        EXPECT_EQ(server.stop(), std::optional<int>(0));
    }
}

TEST(AdminHttp, EndpointsAnswerOverRealHttp) {
    TundradProcess server({"--admin", "127.0.0.1:0", "--no-presence"});
    ASSERT_TRUE(server.started()) << server.output();
    auto admin = adminPort(server);
    ASSERT_NE(admin, 0) << server.output();

    auto health = httpGet(admin, "/healthz");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
    auto ready = httpGet(admin, "/readyz");
    ASSERT_TRUE(ready);
    EXPECT_EQ(ready->status, 200);
    auto missing = httpGet(admin, "/nope");
    ASSERT_TRUE(missing);
    EXPECT_EQ(missing->status, 404);

    // /metrics reflects live chat state: one registered client, one message in.
    RawClient a(server.port());
    ASSERT_TRUE(a.registerAs("alice"));
    ASSERT_TRUE(sendAcked(a, "", "hello"));
    auto page = httpGet(admin, "/metrics");
    ASSERT_TRUE(page);
    EXPECT_EQ(page->status, 200);
    EXPECT_NE(page->head.find("text/plain; version=0.0.4"), std::string::npos) << page->head;
    EXPECT_EQ(metricValue(page->body, "tundra_connections"), std::optional<double>(1));
    EXPECT_EQ(metricValue(page->body, "tundra_messages_in_total"), std::optional<double>(1));
    EXPECT_EQ(metricValue(page->body, "tundra_registrations_total"), std::optional<double>(1));
    EXPECT_NE(page->body.find("# TYPE tundra_messages_in_total counter"), std::string::npos);
    EXPECT_EQ(server.stop(), std::optional<int>(0));
}

TEST(AdminHttp, MalformedAndSilentHttpClientsDoNotHurtChat) {
    TundradProcess server({"--admin", "127.0.0.1:0", "--no-presence"});
    ASSERT_TRUE(server.started()) << server.output();
    auto admin = adminPort(server);
    ASSERT_NE(admin, 0);

    auto bad = httpExchange(admin, "BLAH\r\n\r\n");
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->status, 400);
    auto huge = httpExchange(admin, "GET /" + std::string(20000, 'a') + " HTTP/1.1\r\n\r\n");
    ASSERT_TRUE(huge);
    EXPECT_GE(huge->status, 400);

    // A client that connects to the admin port and says nothing holds no chat traffic up.
    int silent = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(admin);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(silent, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);

    RawClient a(server.port());
    RawClient b(server.port());
    ASSERT_TRUE(a.registerAs("alice"));
    ASSERT_TRUE(b.registerAs("bob"));
    ASSERT_TRUE(sendAcked(a, "bob", "still here"));
    auto d = b.readUntil(MsgType::BroadcastMessage);
    ASSERT_TRUE(d);
    msg::Delivery dv;
    ASSERT_EQ(msg::parse(d->type(), d->span(), dv), nullptr);
    EXPECT_EQ(dv.text, "still here");
    auto metrics = httpGet(admin, "/metrics");
    ASSERT_TRUE(metrics);
    EXPECT_EQ(metrics->status, 200);
    ::close(silent);
    EXPECT_EQ(server.stop(), std::optional<int>(0));
}

// ---- signals ------------------------------------------------------------------------------

TEST(Signals, SighupAppliesRuntimeSettingsAndReportsRestartOnes) {
    ScratchDir dir;
    auto conf =
        dir.write("tundra.conf", "max_clients = 2\nadmin = \"127.0.0.1:0\"\npresence = false\n");
    TundradProcess server({"--config", conf});
    ASSERT_TRUE(server.started()) << server.output();
    auto admin = adminPort(server);
    ASSERT_NE(admin, 0);

    RawClient a(server.port());
    RawClient b(server.port());
    ASSERT_TRUE(a.registerAs("alice"));
    ASSERT_TRUE(b.registerAs("bob"));
    {
        RawClient c(server.port());
        auto full = c.readUntil(MsgType::Error);  // max_clients = 2: refused
        ASSERT_TRUE(full) << server.output();
        msg::Error e;
        ASSERT_EQ(msg::parse(full->span(), e), nullptr);
        EXPECT_EQ(e.code, static_cast<std::uint16_t>(ErrorCode::ServerFull));
    }

    // Raise the limit and move the admin listener (which needs a restart).
    dir.write(
        "tundra.conf",
        "max_clients = 3\nadmin = \"127.0.0.1:1\"\npresence = false\nlog_level = \"debug\"\n");
    auto mark = server.lineCount();
    server.signal(SIGHUP);
    ASSERT_TRUE(server.waitForLine("reloaded " + conf, 5s, mark)) << server.output();
    EXPECT_TRUE(server.waitForLine("admin changed and needs a restart", 1s, mark))
        << server.output();
    auto page = httpGet(admin, "/metrics");  // still on the old admin port
    ASSERT_TRUE(page);
    EXPECT_EQ(metricValue(page->body, "tundra_max_clients"), std::optional<double>(3));
    RawClient c(server.port());
    auto welcome = c.registerAs("carol");
    ASSERT_TRUE(welcome);
    EXPECT_EQ(welcome->type(), MsgType::System) << server.output();

    // An invalid file is reported and changes nothing.
    dir.write("tundra.conf", "max_clients = \"lots\"\n");
    mark = server.lineCount();
    server.signal(SIGHUP);
    ASSERT_TRUE(server.waitForLine("reload failed", 5s, mark)) << server.output();
    EXPECT_TRUE(server.waitForLine(conf + ":1:", 1s, mark)) << server.output();
    page = httpGet(admin, "/metrics");
    ASSERT_TRUE(page);
    EXPECT_EQ(metricValue(page->body, "tundra_max_clients"), std::optional<double>(3));
    ASSERT_TRUE(sendAcked(a, "carol", "after a bad reload"));
    auto d = c.readUntil(MsgType::BroadcastMessage);
    ASSERT_TRUE(d);
    EXPECT_EQ(server.stop(), std::optional<int>(0));
}

TEST(Signals, SigtermDrainsQueuedOutputWhileReadyzSays503) {
    TundradProcess server({"--admin", "127.0.0.1:0", "--no-presence"});
    ASSERT_TRUE(server.started()) << server.output();
    auto admin = adminPort(server);
    ASSERT_NE(admin, 0);

    // `slow` has a tiny receive buffer and does not read, so output queues up in the server.
    RawClient slow(server.port(), /*rcvbuf=*/4096);
    RawClient fast(server.port());
    ASSERT_TRUE(slow.registerAs("slow"));
    ASSERT_TRUE(fast.registerAs("fast"));
    const std::string text = bigText(60000);
    for (int i = 0; i < 129; ++i) {
        msg::Message m;
        m.to = "slow";
        m.text = text;
        ASSERT_TRUE(fast.send(msg::encode(m, fast.nextSeq())));
    }
    ASSERT_TRUE(sendAcked(fast, "slow", "last"));  // everything above is queued by now

    auto mark = server.lineCount();
    server.signal(SIGTERM);
    ASSERT_TRUE(server.waitForLine("draining", 5s, mark)) << server.output();
    auto ready = httpGet(admin, "/readyz");
    ASSERT_TRUE(ready) << server.output();
    EXPECT_EQ(ready->status, 503);
    auto live = httpGet(admin, "/healthz");
    ASSERT_TRUE(live);
    EXPECT_EQ(live->status, 200);

    // `fast` was told to come back later; once `slow` reads everything, the server exits 0.
    auto shutdown = fast.readUntil(MsgType::System);
    ASSERT_TRUE(shutdown);
    msg::System s;
    ASSERT_EQ(msg::parse(shutdown->span(), s), nullptr);
    EXPECT_EQ(s.event, SystemEvent::Shutdown);
    EXPECT_GT(s.retry_after_s, 0);
    std::size_t deliveries = 0;
    while (auto f = slow.read(10s)) {
        if (f->type() == MsgType::BroadcastMessage) {
            ++deliveries;
        }
    }
    EXPECT_EQ(deliveries, 130U);  // nothing accepted was lost in the drain
    EXPECT_EQ(server.waitExit(10s), std::optional<int>(0)) << server.output();
}

// ---- systemd notify protocol ---------------------------------------------------------------

class NotifySocket {
public:
    explicit NotifySocket(const std::string& path) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
        bound_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    }
    ~NotifySocket() { ::close(fd_); }
    NotifySocket(const NotifySocket&) = delete;
    NotifySocket& operator=(const NotifySocket&) = delete;

    [[nodiscard]] bool bound() const { return bound_; }

    /// The next datagram that contains `needle`; the ones skipped are kept in `seen`.
    std::optional<std::string> waitFor(const std::string& needle,
                                       std::chrono::milliseconds timeout = 5s) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            pollfd p{fd_, POLLIN, 0};
            if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
                return std::nullopt;
            }
            char buf[4096];
            ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) {
                return std::nullopt;
            }
            std::string msg(buf, static_cast<std::size_t>(n));
            seen.push_back(msg);
            if (msg.find(needle) != std::string::npos) {
                return msg;
            }
        }
    }

    std::vector<std::string> seen;

private:
    int fd_ = -1;
    bool bound_ = false;
};

// Sets environment variables for the processes this test spawns, and restores them.
class ScopedEnv {
public:
    ScopedEnv(const char* name, const std::string& value) : name_(name) {
        ::setenv(name, value.c_str(), 1);
    }
    ~ScopedEnv() { ::unsetenv(name_); }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

private:
    const char* name_;
};

TEST(Notify, ReadyStatusWatchdogReloadingStoppingInOrder) {
    ScratchDir dir;
    auto conf = dir.write("tundra.conf", "presence = false\n");
    NotifySocket notify(dir.file("notify.sock"));
    ASSERT_TRUE(notify.bound());
    std::unique_ptr<TundradProcess> server;
    {
        ScopedEnv socket_env("NOTIFY_SOCKET", dir.file("notify.sock"));
        ScopedEnv watchdog_env("WATCHDOG_USEC", "200000");  // ping every 100 ms
        server = std::make_unique<TundradProcess>(std::vector<std::string>{"--config", conf});
    }
    ASSERT_TRUE(server->started()) << server->output();

    auto ready = notify.waitFor("READY=1");
    ASSERT_TRUE(ready) << server->output();
    EXPECT_NE(ready->find("STATUS=0 connections, 0 sessions online"), std::string::npos) << *ready;
    EXPECT_TRUE(notify.waitFor("WATCHDOG=1"));

    server->signal(SIGHUP);
    auto reloading = notify.waitFor("RELOADING=1");
    ASSERT_TRUE(reloading);
    EXPECT_NE(reloading->find("MONOTONIC_USEC="), std::string::npos) << *reloading;
    EXPECT_TRUE(notify.waitFor("READY=1"));

    server->signal(SIGTERM);
    EXPECT_TRUE(notify.waitFor("STOPPING=1"));
    EXPECT_EQ(server->waitExit(10s), std::optional<int>(0));

    // The lifecycle messages came in this order, with watchdog pings in between.
    std::vector<std::string> lifecycle;
    for (const auto& m : notify.seen) {
        for (const char* key : {"READY=1", "RELOADING=1", "STOPPING=1"}) {
            if (m.find(key) != std::string::npos) {
                lifecycle.emplace_back(key);
            }
        }
    }
    EXPECT_EQ(lifecycle,
              (std::vector<std::string>{"READY=1", "RELOADING=1", "READY=1", "STOPPING=1"}));
}

// ---- admin listener: per-source cap and read deadline (issue 9 point 13) ------------------

// Idle connections from one address used to fill the global cap of 32, so /healthz answered 503
// for everyone and a liveness probe would restart the service.
TEST(AdminHttp, OneSourcesIdleConnectionsCannotMakeHealthzFailForOthers) {
    TundradProcess server({"--admin", "127.0.0.1:0", "--admin-max-per-source", "3"});
    ASSERT_TRUE(server.started()) << server.output();
    const auto admin = adminPort(server);
    ASSERT_NE(admin, 0) << server.output();
    std::vector<int> idle;
    for (int i = 0; i < 3; ++i) {
        const int fd = connectLoopback(admin, "127.0.0.1");
        ASSERT_GE(fd, 0);
        idle.push_back(fd);
    }
    // A fourth connection from the same address is answered 503 and closed...
    auto refused = httpExchange(admin, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 5s, "127.0.0.1");
    ASSERT_TRUE(refused.has_value());
    EXPECT_EQ(refused->status, 503);
    EXPECT_NE(refused->body.find("from here"), std::string::npos) << refused->body;
    // ...while another address is served, and the refusal is counted.
    auto other = httpExchange(admin, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 5s, "127.0.0.2");
    ASSERT_TRUE(other.has_value());
    EXPECT_EQ(other->status, 200);
    auto metrics = httpExchange(admin, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 5s, "127.0.0.3");
    ASSERT_TRUE(metrics.has_value());
    EXPECT_EQ(metricValue(metrics->body, "tundra_admin_refused_total"), 1.0) << metrics->body;
    // An idle connection is not a request for ever: the read deadline (5 s) drops each of them.
    for (int fd : idle) {
        pollfd p{fd, POLLIN, 0};
        ASSERT_EQ(::poll(&p, 1, 10000), 1) << "an idle admin connection outlived its deadline";
        char buf[512];
        while (::recv(fd, buf, sizeof buf, 0) > 0) {
        }
        ::close(fd);
    }
    // Then the first address is served again.
    auto again = httpExchange(admin, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 5s, "127.0.0.1");
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(again->status, 200);
}

}  // namespace
}  // namespace tundra::testing
