// SPDX-License-Identifier: Apache-2.0
// tundra-bench: load generator for tundrad. One thread, one epoll set, non-blocking sockets,
// the project's codec. Scenarios: fanout (broadcast throughput and end-to-end latency),
// idle (server memory per idle registered connection, optionally also after traffic and after
// the heartbeat PONG that confirms it), latency (PING round trips), pairs (direct messages,
// closed or open loop, checked for loss/duplicates/order) and agents (request/reply trips).
// Loopback or the operator's own hosts only; every run is bounded in count and time.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "histogram.h"
#include "net/socket_ops.h"
#include "tundra/codec.h"
#include "tundra/messages.h"

namespace {

using namespace tundra;
using Clock = std::chrono::steady_clock;

struct Options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 4242;
    std::string scenario;
    int clients = 1000;
    int messages = 200;
    int size = 64;
    int window = -1;  // broadcasts in flight before the sender waits; -1 = fanout 32, idle 1
    int count = 1000;
    int warm = 0;       // idle: broadcasts each idle client reads before the second measurement
    int settle_s = -1;  // idle --warm: silence before the last measurement; -1 = 2 x heartbeat + 1
    int register_pause_ms = 0;  // idle: wait between the REGISTERs and reading the WELCOMEs
    int health = 0;   // idle: HEALTH_CHECK round trips timed while the idle clients are held
    int pairs = 100;  // pairs, agents: sender/receiver (requester/agent) pairs
    double rate = 0;  // pairs: messages per second in total, open loop; 0 = as fast as the window
    double timeout_s = 60;
    bool json = false;
    bool tls = false;       // --tls: to tundrad's TLS port
    std::string ca_file;    // --ca: verify the server certificate against it
    bool insecure = false;  // --insecure: accept any certificate
};

// The client TLS context of a --tls run (null: plain TCP).
SSL_CTX* g_tls = nullptr;

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "tundra-bench: %s\n", what.c_str());
    std::exit(1);
}

double nowUs() {
    return static_cast<double>(
               std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
                   .count()) /
           1000.0;
}

// A non-blocking client connection with its own decoder and pending output.
struct Conn {
    int fd = -1;
    SSL* ssl = nullptr;
    FrameDecoder decoder;
    Bytes out;
    std::size_t out_off = 0;
    bool welcomed = false;
    std::uint64_t received = 0;
    double last_tx_us = 0;   // when something was last queued to the server
    bool confirmed = false;  // idle --warm: answered a PING that followed all its deliveries

    ~Conn() {
        SSL_free(ssl);
        if (fd >= 0) {
            ::close(fd);
        }
    }

    void queue(const Bytes& frame) {
        out.insert(out.end(), frame.begin(), frame.end());
        last_tx_us = nowUs();
    }

    // ::recv over TCP or TLS. With TLS, records already decrypted inside OpenSSL (which epoll
    // cannot see) are read out too, so nothing waits for a wakeup that never comes.
    ssize_t rx(std::uint8_t* buf, std::size_t n) {
        if (ssl == nullptr) {
            return ::recv(fd, buf, n, 0);
        }
        std::size_t total = 0;
        while (total < n && (total == 0 || SSL_pending(ssl) > 0)) {
            const int r = SSL_read(ssl, buf + total, static_cast<int>(n - total));
            if (r > 0) {
                total += static_cast<std::size_t>(r);
                continue;
            }
            if (total > 0) {
                break;
            }
            const int err = SSL_get_error(ssl, r);
            if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
                errno = EAGAIN;
                return -1;
            }
            return err == SSL_ERROR_ZERO_RETURN ? 0 : -1;
        }
        return static_cast<ssize_t>(total);
    }

    // ::send over TCP or TLS (a TLS retry repeats the same bytes: the buffer only grows).
    ssize_t tx(const std::uint8_t* data, std::size_t n) {
        if (ssl == nullptr) {
            return ::send(fd, data, n, MSG_NOSIGNAL);
        }
        const int r = SSL_write(ssl, data, static_cast<int>(std::min<std::size_t>(n, 1U << 20)));
        if (r > 0) {
            return r;
        }
        const int err = SSL_get_error(ssl, r);
        errno = err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE ? EAGAIN : EPIPE;
        return -1;
    }

    bool flush() {
        while (out_off < out.size()) {
            ssize_t n = tx(out.data() + out_off, out.size() - out_off);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    return true;
                }
                return false;
            }
            out_off += static_cast<std::size_t>(n);
        }
        out.clear();
        out_off = 0;
        return true;
    }
};

sockaddr_storage resolve(const Options& o, socklen_t& len) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    std::string port = std::to_string(o.port);
    if (int rc = ::getaddrinfo(o.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
        die("cannot resolve " + o.host + ": " + ::gai_strerror(rc));
    }
    sockaddr_storage ss{};
    std::memcpy(&ss, res->ai_addr, res->ai_addrlen);
    len = res->ai_addrlen;
    ::freeaddrinfo(res);
    return ss;
}

std::unique_ptr<Conn> connectTo(const sockaddr_storage& addr, socklen_t len) {
    auto c = std::make_unique<Conn>();
    c->fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || ::connect(c->fd, reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
        die(std::string("cannot connect: ") + std::strerror(errno));
    }
    int one = 1;
    ::setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (g_tls != nullptr) {
        c->ssl = SSL_new(g_tls);
        SSL_set_fd(c->ssl, c->fd);
        if (SSL_connect(c->ssl) != 1) {  // the socket is still blocking here
            char buf[256] = "";
            ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
            die(std::string("TLS handshake failed: ") + buf);
        }
    }
    return c;
}

void setNonBlocking(int fd) {
    int fl = ::fcntl(fd, F_GETFL);
    ::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

void sendBlocking(Conn& c, const Bytes& frame);

// PONG for a server PING: the same sequence and the whole payload (the token) echoed.
Bytes pongFor(const DecodeResult& r) {
    FrameWriter w(MsgType::Pong, r.header.sequence);
    w.tail(r.payload);
    return w.finish();
}

// Blocking read of the next frame on a still-blocking socket (setup and probes only). Server
// PINGs met on the way are answered, other frames skipped.
std::optional<Bytes> readFrameBlocking(Conn& c, MsgType want) {
    for (;;) {
        auto r = c.decoder.next();
        if (r.status == DecodeStatus::Frame) {
            if (r.header.type == static_cast<std::uint8_t>(want)) {
                return Bytes(r.payload.begin(), r.payload.end());
            }
            if (r.header.type == static_cast<std::uint8_t>(MsgType::Ping)) {
                sendBlocking(c, pongFor(r));
                continue;
            }
            if (r.header.type == static_cast<std::uint8_t>(MsgType::Error)) {
                msg::Error e;
                (void)msg::parse(r.payload, e);
                die("server error " + std::to_string(e.code) + ": " + std::string(e.text));
            }
            continue;
        }
        if (r.status == DecodeStatus::Error) {
            die("bad frame from server");
        }
        std::uint8_t buf[65536];
        ssize_t n = c.rx(buf, sizeof buf);
        if (n <= 0) {
            die("server closed the connection");
        }
        c.decoder.append(ByteSpan(buf, static_cast<std::size_t>(n)));
    }
}

void sendBlocking(Conn& c, const Bytes& frame) {
    c.queue(frame);
    if (!c.flush()) {
        die("send failed");
    }
}

// `wanted` descriptors for the connections plus 64 for everything else.
void raiseFdLimit(int wanted) {
    net::sockets::raiseFdLimit(static_cast<std::uint64_t>(wanted) + 64);
}

std::string uniqueName(const char* prefix, int i) {
    return std::string(prefix) + std::to_string(::getpid()) + "_" + std::to_string(i);
}

std::uint64_t rssField(const std::string& json) {
    auto pos = json.find("\"rss_bytes\":");
    if (pos == std::string::npos) {
        die("health has no rss_bytes: " + json);
    }
    return std::strtoull(json.c_str() + pos + 12, nullptr, 10);
}

std::uint64_t healthRss(Conn& c) {
    sendBlocking(c, msg::encodeEmpty(MsgType::HealthCheck, 1));
    auto payload = readFrameBlocking(c, MsgType::HealthResult);
    return rssField(std::string(payload->begin(), payload->end()));
}

// Connects and registers `n` clients, pipelining the REGISTERs. `heartbeat_s`, when given,
// receives the WELCOME's heartbeat_s (the server's ping interval, whole seconds). `pause_ms`:
// a wait before the WELCOMEs are read, like a client slow to get there (thousands of
// registrations take seconds): the server's first PINGs may then arrive right behind them.
std::vector<std::unique_ptr<Conn>> registerMany(const Options& o, int n, const char* prefix,
                                                std::uint16_t* heartbeat_s = nullptr,
                                                ClientKind kind = ClientKind::User,
                                                int pause_ms = 0) {
    socklen_t len = 0;
    auto addr = resolve(o, len);
    std::vector<std::unique_ptr<Conn>> conns;
    for (int i = 0; i < n; ++i) {
        conns.push_back(connectTo(addr, len));
        std::string name = uniqueName(prefix, i);
        msg::Register r;
        r.username = name;
        r.kind = kind;
        sendBlocking(*conns.back(), msg::encode(r, 1));
    }
    if (pause_ms > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
    }
    for (auto& c : conns) {
        auto payload = readFrameBlocking(*c, MsgType::System);
        msg::System sys;
        if (heartbeat_s != nullptr && msg::parse(ByteSpan(*payload), sys) == nullptr &&
            sys.event == SystemEvent::Welcome) {
            *heartbeat_s = sys.welcome.heartbeat_s;
        }
    }
    return conns;
}

struct LatencySummary {
    double min = 0, avg = 0, p50 = 0, p99 = 0, max = 0;
};

LatencySummary summarize(std::vector<double>& us) {
    LatencySummary s;
    if (us.empty()) {
        return s;
    }
    std::sort(us.begin(), us.end());
    double sum = 0;
    for (double v : us) {
        sum += v;
    }
    auto at = [&](double p) {
        auto idx = static_cast<std::size_t>(p * static_cast<double>(us.size() - 1));
        return us[idx];
    };
    s.min = us.front();
    s.max = us.back();
    s.avg = sum / static_cast<double>(us.size());
    s.p50 = at(0.50);
    s.p99 = at(0.99);
    return s;
}

// fanout: N receivers, one sender broadcasting M messages of `size` bytes with at most
// `window` broadcasts in flight (a broadcast is "done" when its ACK returns). Each receiver
// timestamps arrival; the send time travels in the text.
int runFanout(const Options& opts) {
    Options o = opts;
    if (o.window < 0) {
        o.window = 32;
    }
    raiseFdLimit(o.clients + 1);
    auto receivers = registerMany(o, o.clients, "fan");
    auto senders = registerMany(o, 1, "src");
    Conn& sender = *senders[0];
    int ep = ::epoll_create1(EPOLL_CLOEXEC);
    for (std::size_t i = 0; i < receivers.size(); ++i) {
        setNonBlocking(receivers[i]->fd);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = i;
        ::epoll_ctl(ep, EPOLL_CTL_ADD, receivers[i]->fd, &ev);
    }
    setNonBlocking(sender.fd);
    epoll_event sev{};
    sev.events = EPOLLIN;
    sev.data.u64 = receivers.size();
    ::epoll_ctl(ep, EPOLL_CTL_ADD, sender.fd, &sev);

    const std::uint64_t expected =
        static_cast<std::uint64_t>(o.messages) * static_cast<std::uint64_t>(o.clients);
    std::uint64_t delivered = 0;
    int sent = 0;
    int acked = 0;
    std::vector<double> latency_us;
    latency_us.reserve(expected);
    std::string pad(static_cast<std::size_t>(std::max(o.size - 24, 0)), 'x');
    const auto start = Clock::now();
    const auto deadline = start + std::chrono::duration<double>(o.timeout_s);
    std::vector<epoll_event> events(1024);
    std::uint8_t buf[65536];
    while ((delivered < expected || acked < o.messages) && Clock::now() < deadline) {
        while (sent < o.messages && sent - acked < o.window) {
            char stamp[32];
            std::snprintf(stamp, sizeof stamp, "%.3f|", nowUs());
            std::string text = std::string(stamp) + pad;
            msg::Message m{"", text};
            ++sent;
            sender.queue(msg::encode(m, static_cast<std::uint16_t>(sent), flags::kAck));
        }
        if (!sender.flush()) {
            die("sender connection failed");
        }
        int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
        for (int k = 0; k < n; ++k) {
            auto idx = events[static_cast<std::size_t>(k)].data.u64;
            Conn& c = idx == receivers.size() ? sender : *receivers[idx];
            ssize_t got = c.rx(buf, sizeof buf);
            if (got <= 0) {
                if (got < 0 && errno == EAGAIN) {
                    continue;
                }
                die("server closed a connection during the run");
            }
            c.decoder.append(ByteSpan(buf, static_cast<std::size_t>(got)));
            const double now = nowUs();
            for (auto r = c.decoder.next(); r.status == DecodeStatus::Frame; r = c.decoder.next()) {
                auto type = static_cast<MsgType>(r.header.type);
                if (type == MsgType::Ack) {
                    ++acked;
                } else if (type == MsgType::BroadcastMessage) {
                    msg::Delivery d;
                    if (msg::parse(type, r.payload, d) == nullptr) {
                        latency_us.push_back(
                            now - std::strtod(std::string(d.text.substr(0, 24)).c_str(), nullptr));
                        ++delivered;
                    }
                } else if (type == MsgType::Ping) {
                    FrameWriter w(MsgType::Pong, r.header.sequence);
                    w.tail(r.payload);
                    c.queue(w.finish());
                    c.flush();
                }
            }
        }
    }
    const double secs = std::chrono::duration<double>(Clock::now() - start).count();
    ::close(ep);
    auto s = summarize(latency_us);
    const double rate = static_cast<double>(delivered) / secs;
    if (o.json) {
        std::printf(
            "{\"scenario\":\"fanout\",\"clients\":%d,\"messages\":%d,\"size\":%d,"
            "\"delivered\":%llu,\"expected\":%llu,\"seconds\":%.3f,\"deliveries_per_s\":%.0f,"
            "\"latency_us\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f}}\n",
            o.clients, o.messages, o.size, static_cast<unsigned long long>(delivered),
            static_cast<unsigned long long>(expected), secs, rate, s.p50, s.p99, s.max);
    } else {
        std::printf("fanout: %d receivers x %d broadcasts of %d bytes\n", o.clients, o.messages,
                    o.size);
        std::printf("  delivered %llu of %llu in %.3f s: %.0f deliveries/s\n",
                    static_cast<unsigned long long>(delivered),
                    static_cast<unsigned long long>(expected), secs, rate);
        std::printf("  end-to-end latency us: p50 %.1f  p99 %.1f  max %.1f\n", s.p50, s.p99, s.max);
    }
    return delivered == expected ? 0 : 1;
}

// idle --warm: every connection non-blocking in one epoll set. Server PINGs are always
// answered; with `keepalive` on, each connection also sends a PING of its own whenever it has
// sent nothing for a quarter of the heartbeat, so that the server, which pings only silent
// connections, sends none (its PONG would confirm the windows being measured).
struct WarmPump {
    std::vector<Conn*> conns;  // epoll data = index
    Conn* probe = nullptr;
    int ep = -1;
    bool keepalive = false;
    double keepalive_us = 0;
    bool traffic = false;  // between the first broadcast and the after-traffic measurement
    int warm = 0;          // deliveries each registered receiver gets
    std::uint64_t pings_in_traffic = 0;  // server PINGs read after a delivery, during `traffic`
    int acks = 0;
    Conn* sender = nullptr;  // broadcasts `to_send` MESSAGEs of `text`, `window` un-ACKed at most
    int to_send = 0;
    int sent = 0;
    int window = 1;
    std::string text;
    std::optional<std::string> health;
    std::uint64_t keepalive_token = 0;
    double last_scan_us = 0;

    explicit WarmPump(std::vector<Conn*> all, Conn* p) : conns(std::move(all)), probe(p) {
        ep = ::epoll_create1(EPOLL_CLOEXEC);
        for (std::size_t i = 0; i < conns.size(); ++i) {
            setNonBlocking(conns[i]->fd);
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.u64 = i;
            ::epoll_ctl(ep, EPOLL_CTL_ADD, conns[i]->fd, &ev);
        }
    }
    ~WarmPump() { ::close(ep); }
    WarmPump(const WarmPump&) = delete;
    WarmPump& operator=(const WarmPump&) = delete;

    void send(Conn& c, const Bytes& frame) {
        c.queue(frame);
        if (!c.flush()) {
            die("send failed");
        }
    }

    void onFrame(Conn& c, const DecodeResult& r) {
        switch (static_cast<MsgType>(r.header.type)) {
            case MsgType::Ping:
                if (traffic && c.received > 0) {
                    ++pings_in_traffic;
                }
                if (c.received >= static_cast<std::uint64_t>(warm)) {
                    c.confirmed = true;  // queued after its last delivery: confirms them all
                }
                send(c, pongFor(r));
                break;
            case MsgType::BroadcastMessage:
                ++c.received;
                break;
            case MsgType::Ack:
                ++acks;
                break;
            case MsgType::HealthResult:
                if (&c == probe) {
                    health = std::string(r.payload.begin(), r.payload.end());
                }
                break;
            case MsgType::Error: {
                msg::Error e;
                (void)msg::parse(r.payload, e);
                die("server error " + std::to_string(e.code) + ": " + std::string(e.text));
            }
            default:
                break;  // PONGs to the keepalives, SYSTEM notices
        }
    }

    // Reads and answers until `done()` or `deadline`; false on the deadline.
    template <typename Done>
    bool runUntil(Done done, Clock::time_point deadline) {
        std::vector<epoll_event> events(1024);
        std::uint8_t buf[65536];
        // Frames read before the pump took over (a PING that came in behind a WELCOME while
        // thousands of others registered) are answered first: epoll only reports new bytes.
        for (Conn* c : conns) {
            decodeBuffered(*c);
        }
        while (!done()) {
            if (Clock::now() >= deadline) {
                return false;
            }
            while (sender != nullptr && sent < to_send && sent - acks < window) {
                ++sent;
                msg::Message m{"", text};
                sender->queue(msg::encode(m, static_cast<std::uint16_t>(sent), flags::kAck));
            }
            for (Conn* c : conns) {
                if (!c->out.empty() && !c->flush()) {
                    die("send failed");
                }
            }
            const double now = nowUs();
            if (keepalive && now - last_scan_us >= 50'000) {
                last_scan_us = now;
                for (Conn* c : conns) {
                    if (now - c->last_tx_us >= keepalive_us) {
                        send(*c, msg::encodePing(MsgType::Ping, ++keepalive_token, 1));
                    }
                }
            }
            int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 20);
            for (int k = 0; k < n; ++k) {
                Conn& c = *conns[events[static_cast<std::size_t>(k)].data.u64];
                ssize_t got = c.rx(buf, sizeof buf);
                if (got <= 0) {
                    if (got < 0 && (errno == EAGAIN || errno == EINTR)) {
                        continue;
                    }
                    die("server closed a connection (heartbeat timeout? see the server log)");
                }
                c.decoder.append(ByteSpan(buf, static_cast<std::size_t>(got)));
                decodeBuffered(c);
            }
        }
        return true;
    }

    // Handles the whole frames already in `c`'s decoder.
    void decodeBuffered(Conn& c) {
        for (auto r = c.decoder.next();; r = c.decoder.next()) {
            if (r.status == DecodeStatus::Error) {
                die("bad frame from server");
            }
            if (r.status != DecodeStatus::Frame) {
                return;
            }
            onFrame(c, r);
        }
    }

    std::uint64_t rss(Clock::time_point deadline, const char* when) {
        health.reset();
        send(*probe, msg::encodeEmpty(MsgType::HealthCheck, 1));
        if (!runUntil([&] { return health.has_value(); }, deadline)) {
            die(std::string("timed out waiting for HEALTH_RESULT ") + when);
        }
        return rssField(*health);
    }
};

// idle: registers N clients that then stay silent and reports the server's RSS growth. With
// --warm M, they then read M broadcasts (RSS "after traffic"), stay silent for --settle
// seconds answering the server's PINGs (RSS "after PONG").
int runIdle(const Options& o) {
    raiseFdLimit(o.clients + 3);
    const Clock::time_point deadline =
        Clock::now() +
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.timeout_s));
    std::uint16_t heartbeat_s = 0;
    auto probe = registerMany(o, 1, "probe", &heartbeat_s);
    std::vector<std::unique_ptr<Conn>> senders;
    if (o.warm > 0) {
        senders = registerMany(o, 1, "warm");  // before the baseline, like the probe
    }
    const std::uint64_t before = healthRss(*probe[0]);
    auto idle = registerMany(o, o.clients, "idle", nullptr, ClientKind::User, o.register_pause_ms);
    auto perConn = [&](std::uint64_t rss) {
        return (static_cast<double>(rss) - static_cast<double>(before)) /
               static_cast<double>(o.clients);
    };
    if (o.warm == 0) {
        const std::uint64_t after = healthRss(*probe[0]);
        const double per = perConn(after);
        // HEALTH_CHECK round trips, one at a time, while every idle connection is held.
        bench::LatencyHistogram health;
        for (int i = 0; i < o.health; ++i) {
            if (Clock::now() >= deadline) {
                die("timed out during the HEALTH_CHECK round trips");
            }
            const auto t0 = Clock::now();
            (void)healthRss(*probe[0]);
            health.record(static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count()));
        }
        auto ms = [&](double q) { return static_cast<double>(health.quantile(q)) / 1e6; };
        if (o.json) {
            std::printf(
                "{\"scenario\":\"idle\",\"clients\":%d,\"rss_before\":%llu,"
                "\"rss_after\":%llu,\"bytes_per_connection\":%.0f",
                o.clients, static_cast<unsigned long long>(before),
                static_cast<unsigned long long>(after), per);
            if (o.health > 0) {
                std::printf(
                    ",\"health_checks\":%d,\"health_p50_ms\":%.3f,\"health_p99_ms\":%.3f,"
                    "\"health_max_ms\":%.3f",
                    o.health, ms(0.5), ms(0.99), static_cast<double>(health.max()) / 1e6);
            }
            std::printf("}\n");
        } else {
            std::printf("idle: %d registered idle connections\n", o.clients);
            std::printf("  server RSS %llu -> %llu bytes: %.0f bytes per connection\n",
                        static_cast<unsigned long long>(before),
                        static_cast<unsigned long long>(after), per);
            if (o.health > 0) {
                std::printf(
                    "  %d HEALTH_CHECK round trips: p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
                    o.health, ms(0.5), ms(0.99), static_cast<double>(health.max()) / 1e6);
            }
        }
        return 0;
    }
    if (o.health > 0) {
        die("--health goes without --warm");
    }

    if (heartbeat_s == 0) {
        die("--warm needs server heartbeats (WELCOME heartbeat_s is 0: --ping-interval 0?)");
    }
    const int settle_s = o.settle_s >= 0 ? o.settle_s : 2 * heartbeat_s + 1;
    if (Clock::now() + std::chrono::seconds(2 * settle_s) >= deadline) {
        die("twice --settle " + std::to_string(settle_s) + " s does not fit in --timeout " +
            std::to_string(static_cast<int>(o.timeout_s)) + " s; raise --timeout");
    }
    Conn& sender = *senders[0];
    std::vector<Conn*> all{probe[0].get(), &sender};
    for (auto& c : idle) {
        all.push_back(c.get());
    }
    WarmPump pump(all, probe[0].get());
    pump.warm = o.warm;
    pump.keepalive_us = heartbeat_s * 1e6 / 4;

    // 1. Never used (server PINGs answered, nothing else sent): at once, and again after the
    // settle time (the server's periodic heap trim may give back what the burst of
    // registrations left free).
    const std::uint64_t after = pump.rss(deadline, "after registration");
    pump.runUntil(
        [] { return false; },
        std::min<Clock::time_point>(deadline, Clock::now() + std::chrono::seconds(settle_s)));
    const std::uint64_t after_settled =
        pump.rss(deadline, "after registration and the settle time");

    // 2. Traffic. Keepalives first, for long enough that every connection has spoken and any
    // server PING sent before them is answered; then the broadcasts.
    pump.keepalive = true;
    pump.runUntil(
        [] { return false; },
        std::min(deadline, Clock::now() + std::chrono::microseconds(static_cast<std::int64_t>(
                                              pump.keepalive_us + 100'000))));
    pump.traffic = true;
    pump.sender = &sender;
    pump.text.assign(static_cast<std::size_t>(o.size), 'x');
    pump.window = o.window < 0 ? 1 : o.window;
    pump.to_send = o.warm;
    const auto traffic_start = Clock::now();
    const auto want = static_cast<std::uint64_t>(o.warm);
    auto allRead = [&] {
        if (pump.acks < o.warm || probe[0]->received < want) {
            return false;
        }
        return std::all_of(idle.begin(), idle.end(),
                           [&](const auto& c) { return c->received >= want; });
    };
    if (!pump.runUntil(allRead, deadline)) {
        die("timed out before every idle client read its " + std::to_string(o.warm) +
            " deliveries");
    }
    const double traffic_s = std::chrono::duration<double>(Clock::now() - traffic_start).count();
    const std::uint64_t after_traffic = pump.rss(deadline, "after traffic");
    pump.traffic = false;

    // 3. Silence: only the server's PINGs, answered.
    pump.keepalive = false;
    pump.runUntil(
        [] { return false; },
        std::min<Clock::time_point>(deadline, Clock::now() + std::chrono::seconds(settle_s)));
    const std::uint64_t after_pong = pump.rss(deadline, "after the settle time");
    const auto confirmed =
        std::count_if(idle.begin(), idle.end(), [](const auto& c) { return c->confirmed; });

    if (o.json) {
        std::printf(
            "{\"scenario\":\"idle\",\"clients\":%d,\"rss_before\":%llu,\"rss_after\":%llu,"
            "\"bytes_per_connection\":%.0f,\"rss_settled\":%llu,"
            "\"bytes_per_connection_settled\":%.0f,\"warm\":%d,\"size\":%d,\"window\":%d,"
            "\"heartbeat_s\":%u,"
            "\"settle_s\":%d,\"traffic_seconds\":%.3f,\"rss_after_traffic\":%llu,"
            "\"bytes_per_connection_after_traffic\":%.0f,\"rss_after_pong\":%llu,"
            "\"bytes_per_connection_after_pong\":%.0f,\"clients_confirmed_by_pong\":%lld,"
            "\"server_pings_during_traffic\":%llu}\n",
            o.clients, static_cast<unsigned long long>(before),
            static_cast<unsigned long long>(after), perConn(after),
            static_cast<unsigned long long>(after_settled), perConn(after_settled), o.warm, o.size,
            pump.window, static_cast<unsigned>(heartbeat_s), settle_s, traffic_s,
            static_cast<unsigned long long>(after_traffic), perConn(after_traffic),
            static_cast<unsigned long long>(after_pong), perConn(after_pong),
            static_cast<long long>(confirmed),
            static_cast<unsigned long long>(pump.pings_in_traffic));
    } else {
        std::printf(
            "idle: %d registered idle connections, then %d broadcasts of %d bytes each "
            "(window %d)\n",
            o.clients, o.warm, o.size, pump.window);
        std::printf("  server RSS before %llu bytes\n", static_cast<unsigned long long>(before));
        std::printf("  never used:        RSS %llu bytes: %.0f bytes per connection\n",
                    static_cast<unsigned long long>(after), perConn(after));
        std::printf("  never used, %d s:  RSS %llu bytes: %.0f bytes per connection\n", settle_s,
                    static_cast<unsigned long long>(after_settled), perConn(after_settled));
        std::printf(
            "  after traffic:     RSS %llu bytes: %.0f bytes per connection "
            "(%d deliveries each, read in %.3f s)\n",
            static_cast<unsigned long long>(after_traffic), perConn(after_traffic), o.warm,
            traffic_s);
        std::printf(
            "  idle after PONG:   RSS %llu bytes: %.0f bytes per connection "
            "(%d s silent, heartbeat %u s; %lld of %d confirmed by a PONG)\n",
            static_cast<unsigned long long>(after_pong), perConn(after_pong), settle_s,
            static_cast<unsigned>(heartbeat_s), static_cast<long long>(confirmed), o.clients);
    }
    int rc = 0;
    if (pump.pings_in_traffic > 0) {
        std::fprintf(stderr,
                     "tundra-bench: %llu server PINGs arrived during the traffic phase: the "
                     "after-traffic figure may already have lost window entries\n",
                     static_cast<unsigned long long>(pump.pings_in_traffic));
        rc = 1;
    }
    if (confirmed < o.clients) {
        std::fprintf(stderr,
                     "tundra-bench: %lld idle clients got no PING after their deliveries within "
                     "the settle time: raise --settle\n",
                     static_cast<long long>(o.clients - confirmed));
        rc = 1;
    }
    return rc;
}

// ---- pairs and agents: one stream per pair, checked for loss, duplicates and order ----------

std::uint64_t nowNs() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
            .count());
}

// A benchmark text: "<seq>|<send time in ns of the steady clock>|" padded to `size` bytes.
std::string stampedText(std::uint64_t seq, std::uint64_t sent_ns, std::size_t size) {
    char head[48];
    const int n =
        std::snprintf(head, sizeof head, "%llu|%llu|", static_cast<unsigned long long>(seq),
                      static_cast<unsigned long long>(sent_ns));
    std::string text(head, static_cast<std::size_t>(n));
    if (text.size() < size) {
        text.append(size - text.size(), 'x');
    }
    return text;
}

bool parseStamp(std::string_view text, std::uint64_t& seq, std::uint64_t& sent_ns) {
    const auto bar = text.find('|');
    const auto bar2 = bar == std::string_view::npos ? bar : text.find('|', bar + 1);
    if (bar2 == std::string_view::npos) {
        return false;
    }
    const std::string a(text.substr(0, bar));
    const std::string b(text.substr(bar + 1, bar2 - bar - 1));
    char* end = nullptr;
    seq = std::strtoull(a.c_str(), &end, 10);
    if (a.empty() || *end != '\0') {
        return false;
    }
    sent_ns = std::strtoull(b.c_str(), &end, 10);
    return !b.empty() && *end == '\0';
}

// The receiving end of one stream: the server keeps each sender's order, so anything but
// 1, 2, 3, ... is a defect (a gap is a loss unless the missing number arrives later, which
// is then counted out of order).
struct StreamCheck {
    std::uint64_t next = 1;
    std::uint64_t delivered = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t out_of_order = 0;
    std::vector<bool> seen;  // by sequence number, sized to the count expected

    explicit StreamCheck(std::size_t expected = 0) : seen(expected + 1, false) {}

    void see(std::uint64_t seq) {
        if (seq == 0 || seq >= seen.size()) {
            ++out_of_order;  // a number never sent
            return;
        }
        if (seen[seq]) {
            ++duplicates;
            return;
        }
        seen[seq] = true;
        ++delivered;
        if (seq != next) {
            ++out_of_order;
        }
        next = seq + 1;
    }
};

struct StreamTotals {
    std::uint64_t delivered = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t out_of_order = 0;
    void add(const StreamCheck& c) {
        delivered += c.delivered;
        duplicates += c.duplicates;
        out_of_order += c.out_of_order;
    }
};

void printStreamResult(const Options& o, const char* scenario, const char* unit, int window,
                       std::uint64_t expected, const StreamTotals& t, double secs,
                       const bench::LatencyHistogram& h) {
    const double rate = secs > 0 ? static_cast<double>(t.delivered) / secs : 0;
    auto us = [&](double q) { return static_cast<double>(h.quantile(q)) / 1000.0; };
    const std::uint64_t lost = expected - std::min(expected, t.delivered);
    if (o.json) {
        std::printf(
            "{\"scenario\":\"%s\",\"pairs\":%d,\"messages\":%d,\"size\":%d,\"window\":%d,"
            "\"rate\":%.0f,\"expected\":%llu,\"delivered\":%llu,\"lost\":%llu,"
            "\"duplicates\":%llu,\"out_of_order\":%llu,\"seconds\":%.3f,\"%s_per_s\":%.0f,"
            "\"latency_us\":{\"min\":%.1f,\"mean\":%.1f,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,"
            "\"p999\":%.1f,\"max\":%.1f}}\n",
            scenario, o.pairs, o.messages, o.size, window, o.rate,
            static_cast<unsigned long long>(expected), static_cast<unsigned long long>(t.delivered),
            static_cast<unsigned long long>(lost), static_cast<unsigned long long>(t.duplicates),
            static_cast<unsigned long long>(t.out_of_order), secs, unit, rate,
            static_cast<double>(h.min()) / 1000.0, h.mean() / 1000.0, us(0.50), us(0.90), us(0.99),
            us(0.999), static_cast<double>(h.max()) / 1000.0);
    } else {
        std::printf("%s: %d pairs x %d messages of %d bytes, window %d", scenario, o.pairs,
                    o.messages, o.size, window);
        if (o.rate > 0) {
            std::printf(", %.0f/s offered", o.rate);
        }
        std::printf(
            "\n  %llu of %llu in %.3f s: %.0f %s/s; lost %llu, duplicates %llu, out of "
            "order %llu\n",
            static_cast<unsigned long long>(t.delivered), static_cast<unsigned long long>(expected),
            secs, rate, unit, static_cast<unsigned long long>(lost),
            static_cast<unsigned long long>(t.duplicates),
            static_cast<unsigned long long>(t.out_of_order));
        std::printf("  latency us: p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n", us(0.50),
                    us(0.90), us(0.99), us(0.999), static_cast<double>(h.max()) / 1000.0);
    }
}

// One epoll set over every connection; data.u64 is the index in `all`.
int watchAll(const std::vector<Conn*>& all) {
    int ep = ::epoll_create1(EPOLL_CLOEXEC);
    for (std::size_t i = 0; i < all.size(); ++i) {
        setNonBlocking(all[i]->fd);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = i;
        ::epoll_ctl(ep, EPOLL_CTL_ADD, all[i]->fd, &ev);
    }
    return ep;
}

// Reads what `c` has and calls on(frame) for each complete frame; answers server PINGs.
template <typename OnFrame>
void pump(Conn& c, OnFrame&& on) {
    std::uint8_t buf[65536];
    for (;;) {
        ssize_t got = ::recv(c.fd, buf, sizeof buf, 0);
        if (got < 0 && (errno == EAGAIN || errno == EINTR)) {
            return;
        }
        if (got <= 0) {
            die("server closed a connection during the run");
        }
        c.decoder.append(ByteSpan(buf, static_cast<std::size_t>(got)));
        for (auto r = c.decoder.next(); r.status == DecodeStatus::Frame; r = c.decoder.next()) {
            const auto type = static_cast<MsgType>(r.header.type);
            if (type == MsgType::Ping) {
                c.queue(pongFor(r));
            } else if (type == MsgType::Error) {
                msg::Error e;
                (void)msg::parse(r.payload, e);
                die("server error " + std::to_string(e.code) + ": " + std::string(e.text));
            } else {
                on(type, r);
            }
        }
        if (static_cast<std::size_t>(got) < sizeof buf) {
            return;
        }
    }
}

// pairs: sender i sends M direct MESSAGEs (ACK requested) to receiver i.
int runPairs(const Options& opts) {
    Options o = opts;
    const int window = o.window < 0 ? 16 : o.window;
    const auto n = static_cast<std::size_t>(o.pairs);
    const auto m = static_cast<std::uint64_t>(o.messages);
    raiseFdLimit(2 * o.pairs);
    auto senders = registerMany(o, o.pairs, "ps");
    auto receivers = registerMany(o, o.pairs, "pr");
    std::vector<std::string> to;
    std::vector<Conn*> all;
    for (std::size_t i = 0; i < n; ++i) {
        to.push_back(uniqueName("pr", static_cast<int>(i)));
        all.push_back(senders[i].get());
    }
    for (auto& r : receivers) {
        all.push_back(r.get());
    }
    const int ep = watchAll(all);
    std::vector<std::uint64_t> sent(n, 0);
    std::vector<std::uint64_t> acked(n, 0);
    std::vector<StreamCheck> check(n, StreamCheck(static_cast<std::size_t>(m)));
    bench::LatencyHistogram hist;
    const std::uint64_t expected = m * n;
    // Open loop: each sender has its own schedule, staggered so they do not fire together.
    const std::uint64_t interval_ns =
        o.rate > 0 ? static_cast<std::uint64_t>(1e9 * static_cast<double>(n) / o.rate) : 0;
    const std::uint64_t start_ns = nowNs();
    std::vector<std::uint64_t> due(n);
    for (std::size_t i = 0; i < n; ++i) {
        due[i] = start_ns + interval_ns * i / n;
    }
    const auto deadline = Clock::now() + std::chrono::duration<double>(o.timeout_s);
    std::uint64_t delivered = 0;
    std::uint64_t all_acked = 0;
    std::vector<epoll_event> events(1024);
    while ((delivered < expected || all_acked < expected) && Clock::now() < deadline) {
        const std::uint64_t now = nowNs();
        std::uint64_t next_due = UINT64_MAX;
        for (std::size_t i = 0; i < n; ++i) {
            Conn& c = *senders[i];
            while (sent[i] < m && sent[i] - acked[i] < static_cast<std::uint64_t>(window) &&
                   (interval_ns == 0 || due[i] <= now)) {
                const std::uint64_t stamp = interval_ns == 0 ? now : due[i];
                due[i] += interval_ns;
                ++sent[i];
                const std::string text =
                    stampedText(sent[i], stamp, static_cast<std::size_t>(o.size));
                c.queue(msg::encode(msg::Message{to[i], text}, static_cast<std::uint16_t>(sent[i]),
                                    flags::kAck));
            }
            if (sent[i] < m && interval_ns != 0) {
                next_due = std::min(next_due, due[i]);
            }
            if (!c.flush()) {
                die("sender connection failed");
            }
        }
        int wait_ms = 100;
        if (next_due != UINT64_MAX) {
            wait_ms = next_due <= now ? 0 : static_cast<int>((next_due - now) / 1000000);
        }
        const int got = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), wait_ms);
        for (int k = 0; k < got; ++k) {
            const auto idx = static_cast<std::size_t>(events[static_cast<std::size_t>(k)].data.u64);
            Conn& c = *all[idx];
            pump(c, [&](MsgType type, const DecodeResult& r) {
                if (idx < n && type == MsgType::Ack) {
                    ++acked[idx];
                    ++all_acked;
                } else if (idx >= n && type == MsgType::BroadcastMessage) {
                    msg::Delivery d;
                    std::uint64_t seq = 0;
                    std::uint64_t stamp = 0;
                    if (msg::parse(type, r.payload, d) == nullptr &&
                        parseStamp(d.text, seq, stamp)) {
                        const std::uint64_t t = nowNs();
                        hist.record(t > stamp ? t - stamp : 0);
                        const std::uint64_t before = check[idx - n].delivered;
                        check[idx - n].see(seq);
                        delivered += check[idx - n].delivered - before;
                    }
                }
            });
            if (!c.flush()) {
                die("connection failed");
            }
        }
    }
    const double secs = static_cast<double>(nowNs() - start_ns) / 1e9;
    ::close(ep);
    StreamTotals t;
    for (const auto& c : check) {
        t.add(c);
    }
    printStreamResult(o, "pairs", "deliveries", window, expected, t, secs, hist);
    return t.delivered == expected && t.duplicates == 0 && t.out_of_order == 0 ? 0 : 1;
}

// mailbox: receiver i registers and logs out (it stays known), then sender i sends M direct
// MESSAGEs (ACK requested, at most W un-ACKed) to it, so each is stored in its offline buffer
// and its ACK says buffered = 1 (with the SQLite store: after its group commit). Measured:
// stored messages/s and the send-to-ACK latency. Then every receiver registers again and must
// get its M messages as REPLAY deliveries, each once and in order (the server needs
// --max-buffered >= M).
int runMailbox(const Options& opts) {
    Options o = opts;
    const int window = o.window < 0 ? 16 : o.window;
    const auto n = static_cast<std::size_t>(o.pairs);
    const auto m = static_cast<std::uint64_t>(o.messages);
    raiseFdLimit(2 * o.pairs + 16);
    {
        auto receivers = registerMany(o, o.pairs, "mr");
        for (auto& r : receivers) {
            sendBlocking(*r, FrameWriter(MsgType::Logout, 2).finish());
        }
        for (auto& r : receivers) {  // the server closes each after its LOGOUT
            std::uint8_t buf[4096];
            while (r->rx(buf, sizeof buf) > 0) {
            }
        }
    }
    auto senders = registerMany(o, o.pairs, "ms");
    std::vector<std::string> to;
    std::vector<Conn*> all;
    for (std::size_t i = 0; i < n; ++i) {
        to.push_back(uniqueName("mr", static_cast<int>(i)));
        all.push_back(senders[i].get());
    }
    int ep = watchAll(all);
    std::vector<std::uint64_t> sent(n, 0);
    std::vector<std::uint64_t> acked(n, 0);
    std::vector<std::vector<std::uint64_t>> sent_ns(n, std::vector<std::uint64_t>(65536, 0));
    bench::LatencyHistogram hist;
    const std::uint64_t expected = m * n;
    std::uint64_t all_acked = 0;
    std::uint64_t not_stored = 0;  // ACKs that did not say buffered = 1
    const std::uint64_t start_ns = nowNs();
    const auto deadline = Clock::now() + std::chrono::duration<double>(o.timeout_s);
    std::vector<epoll_event> events(1024);
    while (all_acked < expected && Clock::now() < deadline) {
        const std::uint64_t now = nowNs();
        for (std::size_t i = 0; i < n; ++i) {
            Conn& c = *senders[i];
            while (sent[i] < m && sent[i] - acked[i] < static_cast<std::uint64_t>(window)) {
                ++sent[i];
                const auto seq = static_cast<std::uint16_t>(sent[i]);
                sent_ns[i][seq] = now;
                c.queue(msg::encode(
                    msg::Message{to[i],
                                 stampedText(sent[i], now, static_cast<std::size_t>(o.size))},
                    seq, flags::kAck));
            }
            if (!c.flush()) {
                die("sender connection failed");
            }
        }
        const int got = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
        for (int k = 0; k < got; ++k) {
            const auto idx = static_cast<std::size_t>(events[static_cast<std::size_t>(k)].data.u64);
            Conn& c = *all[idx];
            pump(c, [&](MsgType type, const DecodeResult& r) {
                msg::Ack a;
                if (type != MsgType::Ack || msg::parse(r.payload, a) != nullptr) {
                    return;
                }
                const std::uint64_t t = nowNs();
                const std::uint64_t at = sent_ns[idx][r.header.sequence];
                hist.record(t > at ? t - at : 0);
                ++acked[idx];
                ++all_acked;
                not_stored += a.buffered == 1 ? 0 : 1;
            });
            if (!c.flush()) {
                die("connection failed");
            }
        }
    }
    const double secs = static_cast<double>(nowNs() - start_ns) / 1e9;
    ::close(ep);
    if (not_stored > 0) {
        std::fprintf(stderr, "tundra-bench: %llu ACKs did not report the message stored\n",
                     static_cast<unsigned long long>(not_stored));
    }

    // The receivers come back: every stored message is replayed, once, in order.
    socklen_t len = 0;
    const auto addr = resolve(o, len);
    std::vector<std::unique_ptr<Conn>> back;
    all.clear();
    for (std::size_t i = 0; i < n; ++i) {
        back.push_back(connectTo(addr, len));
        msg::Register reg;
        reg.username = to[i];
        sendBlocking(*back.back(), msg::encode(reg, 1));
        all.push_back(back.back().get());
    }
    ep = watchAll(all);
    std::vector<StreamCheck> check(n, StreamCheck(static_cast<std::size_t>(m)));
    std::uint64_t replayed = 0;
    const auto replay_deadline = Clock::now() + std::chrono::duration<double>(o.timeout_s);
    while (replayed < all_acked && Clock::now() < replay_deadline) {
        const int got = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
        for (int k = 0; k < got; ++k) {
            const auto idx = static_cast<std::size_t>(events[static_cast<std::size_t>(k)].data.u64);
            pump(*all[idx], [&](MsgType type, const DecodeResult& r) {
                msg::Delivery d;
                std::uint64_t seq = 0;
                std::uint64_t stamp = 0;
                if (type == MsgType::BroadcastMessage && (r.header.flags & flags::kReplay) != 0 &&
                    msg::parse(type, r.payload, d) == nullptr && parseStamp(d.text, seq, stamp)) {
                    const std::uint64_t before = check[idx].delivered;
                    check[idx].see(seq);
                    replayed += check[idx].delivered - before;
                }
            });
            if (!all[idx]->flush()) {
                die("connection failed");
            }
        }
    }
    ::close(ep);
    StreamTotals t;
    for (const auto& c : check) {
        t.add(c);
    }
    printStreamResult(o, "mailbox", "stored", window, expected, t, secs, hist);
    return t.delivered == expected && t.duplicates == 0 && t.out_of_order == 0 && not_stored == 0
               ? 0
               : 1;
}

// agents: user i sends M AGENT_COMMAND requests to agent i, which answers each with an
// AGENT_COMMAND whose reply_to is the request's id; a round trip ends at the reply.
int runAgents(const Options& opts) {
    Options o = opts;
    const int window = o.window < 0 ? 1 : o.window;
    const auto n = static_cast<std::size_t>(o.pairs);
    const auto m = static_cast<std::uint64_t>(o.messages);
    raiseFdLimit(2 * o.pairs);
    auto users = registerMany(o, o.pairs, "rq");
    auto agents = registerMany(o, o.pairs, "ag", nullptr, ClientKind::Agent);
    std::vector<std::string> agent_name;
    std::vector<Conn*> all;
    for (std::size_t i = 0; i < n; ++i) {
        agent_name.push_back(uniqueName("ag", static_cast<int>(i)));
        all.push_back(users[i].get());
    }
    for (auto& a : agents) {
        all.push_back(a.get());
    }
    const int ep = watchAll(all);
    std::vector<std::uint64_t> sent(n, 0);
    std::vector<StreamCheck> check(n, StreamCheck(static_cast<std::size_t>(m)));
    bench::LatencyHistogram hist;
    const std::uint64_t expected = m * n;
    std::uint64_t replies = 0;
    const std::uint64_t start_ns = nowNs();
    const auto deadline = Clock::now() + std::chrono::duration<double>(o.timeout_s);
    std::vector<epoll_event> events(1024);
    while (replies < expected && Clock::now() < deadline) {
        const std::uint64_t now = nowNs();
        for (std::size_t i = 0; i < n; ++i) {
            Conn& c = *users[i];
            while (sent[i] < m &&
                   sent[i] - check[i].delivered < static_cast<std::uint64_t>(window)) {
                ++sent[i];
                const std::string args =
                    stampedText(sent[i], now, static_cast<std::size_t>(o.size));
                c.queue(msg::encode(msg::AgentCommand{agent_name[i], 0, "bench", args},
                                    static_cast<std::uint16_t>(sent[i])));
            }
            if (!c.flush()) {
                die("user connection failed");
            }
        }
        const int got = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
        for (int k = 0; k < got; ++k) {
            const auto idx = static_cast<std::size_t>(events[static_cast<std::size_t>(k)].data.u64);
            Conn& c = *all[idx];
            pump(c, [&](MsgType type, const DecodeResult& r) {
                msg::Delivery d;
                if (type != MsgType::BroadcastAgent || msg::parse(type, r.payload, d) != nullptr) {
                    return;
                }
                if (idx >= n && d.reply_to == 0) {  // the agent answers the request
                    c.queue(msg::encode(msg::AgentCommand{d.from, d.id, "reply", d.args}, 1));
                } else if (idx < n && d.reply_to != 0) {
                    std::uint64_t seq = 0;
                    std::uint64_t stamp = 0;
                    if (parseStamp(d.args, seq, stamp)) {
                        const std::uint64_t t = nowNs();
                        hist.record(t > stamp ? t - stamp : 0);
                        const std::uint64_t before = check[idx].delivered;
                        check[idx].see(seq);
                        replies += check[idx].delivered - before;
                    }
                }
            });
            if (!c.flush()) {
                die("connection failed");
            }
        }
    }
    const double secs = static_cast<double>(nowNs() - start_ns) / 1e9;
    ::close(ep);
    StreamTotals t;
    for (const auto& c : check) {
        t.add(c);
    }
    printStreamResult(o, "agents", "round_trips", window, expected, t, secs, hist);
    return t.delivered == expected && t.duplicates == 0 && t.out_of_order == 0 ? 0 : 1;
}

// latency: sequential PING round trips on one connection.
int runLatency(const Options& o) {
    socklen_t len = 0;
    auto addr = resolve(o, len);
    auto c = connectTo(addr, len);
    std::vector<double> rtt;
    for (int i = 1; i <= o.count; ++i) {
        const double t0 = nowUs();
        sendBlocking(*c, msg::encodePing(MsgType::Ping, static_cast<std::uint64_t>(i),
                                         static_cast<std::uint16_t>(i)));
        readFrameBlocking(*c, MsgType::Pong);
        rtt.push_back(nowUs() - t0);
    }
    auto s = summarize(rtt);
    if (o.json) {
        std::printf(
            "{\"scenario\":\"latency\",\"count\":%d,\"rtt_us\":{\"min\":%.1f,"
            "\"avg\":%.1f,\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f}}\n",
            o.count, s.min, s.avg, s.p50, s.p99, s.max);
    } else {
        std::printf("latency: %d PING round trips\n", o.count);
        std::printf("  rtt us: min %.1f  avg %.1f  p50 %.1f  p99 %.1f  max %.1f\n", s.min, s.avg,
                    s.p50, s.p99, s.max);
    }
    return 0;
}

const char* kUsage =
    "Usage: tundra-bench [--host H] [--port P] [--json] [--tls [--ca FILE | --insecure]]\n"
    "                    SCENARIO [options]\n"
    "  --tls            connect with TLS (to tundrad's --tls-port), system CAs\n"
    "  --ca FILE        verify the server certificate against FILE (implies --tls)\n"
    "  --insecure       accept any server certificate (implies --tls)\n"
    "Scenarios:\n"
    "  fanout   --clients N (1000) --messages M (200) --size BYTES (64) --window W (32)\n"
    "           N receivers, one sender broadcasting M messages; deliveries/s, latency\n"
    "  idle     --clients N (1000): server RSS growth per idle registered connection\n"
    "           --warm M: the idle clients first answer the server's PINGs for --settle\n"
    "           SECONDS (2 x WELCOME heartbeat_s + 1): RSS never used, settled; then one\n"
    "           more client broadcasts M messages of --size BYTES (64) text (--window W\n"
    "           (1) un-ACKed at most) that every idle client reads: RSS after traffic;\n"
    "           then all stay silent for --settle SECONDS again, answering the PINGs,\n"
    "           whose PONGs free the delivery windows: RSS idle after PONG\n"
    "           --health K (without --warm): then K HEALTH_CHECK round trips, one at a\n"
    "           time, while the idle connections are held: p50, p99, max\n"
    "           --register-pause-ms MS: wait MS between sending the idle clients'\n"
    "           REGISTERs and reading their WELCOMEs (slow clients)\n"
    "  latency  --count N (1000): PING round-trip times\n"
    "  pairs    --pairs N (100) --messages M (200 per pair) --size BYTES (64) --window W (16)\n"
    "           [--rate R]: N senders each sending M direct messages to its own receiver,\n"
    "           at most W un-ACKed; with --rate, R messages/s in total on a fixed schedule\n"
    "           (open loop, latency from the scheduled time). Checks loss, duplicates and\n"
    "           order per pair; deliveries/s and a latency histogram (p50..p99.9)\n"
    "  agents   --pairs N (100) --messages M (200) --window W (1): N users each sending M\n"
    "           AGENT_COMMAND requests to its own agent, which replies (reply_to): round\n"
    "           trips/s and round-trip latency, with the same checks\n"
    "Every run stops after --timeout SECONDS (60). Point it at your own servers only.\n";

int parseIntArg(const char* flag, const char* v, int lo, int hi) {
    char* end = nullptr;
    long n = std::strtol(v, &end, 10);
    if (end == v || *end != '\0' || n < lo || n > hi) {
        std::fprintf(stderr, "tundra-bench: %s: '%s' is not a number from %d to %d\n", flag, v, lo,
                     hi);
        std::exit(2);
    }
    return static_cast<int>(n);
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "tundra-bench: %s needs a value\n", argv[i]);
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--help" || a == "-h") {
            std::fputs(kUsage, stdout);
            return 0;
        } else if (a == "--host") {
            o.host = value();
        } else if (a == "--port") {
            o.port = static_cast<std::uint16_t>(parseIntArg("--port", value(), 1, 65535));
        } else if (a == "--clients") {
            o.clients = parseIntArg("--clients", value(), 1, 100000);
        } else if (a == "--messages") {
            o.messages = parseIntArg("--messages", value(), 1, 10000000);
        } else if (a == "--size") {
            o.size = parseIntArg("--size", value(), 24, 60000);
        } else if (a == "--window") {
            o.window = parseIntArg("--window", value(), 1, 100000);
        } else if (a == "--count") {
            o.count = parseIntArg("--count", value(), 1, 10000000);
        } else if (a == "--warm") {
            o.warm = parseIntArg("--warm", value(), 1, 10000);
        } else if (a == "--health") {
            o.health = parseIntArg("--health", value(), 1, 1000000);
        } else if (a == "--register-pause-ms") {
            o.register_pause_ms = parseIntArg("--register-pause-ms", value(), 0, 600000);
        } else if (a == "--settle") {
            o.settle_s = parseIntArg("--settle", value(), 0, 3600);
        } else if (a == "--timeout") {
            o.timeout_s = parseIntArg("--timeout", value(), 1, 3600);
        } else if (a == "--pairs") {
            o.pairs = parseIntArg("--pairs", value(), 1, 9000);
        } else if (a == "--rate") {
            o.rate = parseIntArg("--rate", value(), 1, 100000000);
        } else if (a == "--json") {
            o.json = true;
        } else if (a == "--tls") {
            o.tls = true;
        } else if (a == "--ca") {
            o.ca_file = value();
            o.tls = true;
        } else if (a == "--insecure") {
            o.insecure = true;
            o.tls = true;
        } else if (o.scenario.empty() && !a.starts_with("-")) {
            o.scenario = a;
        } else {
            std::fprintf(stderr, "tundra-bench: unknown argument '%s'\n%s", argv[i], kUsage);
            return 2;
        }
    }
    if (o.tls) {
        g_tls = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_min_proto_version(g_tls, TLS1_2_VERSION);
        SSL_CTX_set_mode(g_tls,
                         SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        if (!o.insecure) {
            SSL_CTX_set_verify(g_tls, SSL_VERIFY_PEER, nullptr);
            if ((o.ca_file.empty()
                     ? SSL_CTX_set_default_verify_paths(g_tls)
                     : SSL_CTX_load_verify_locations(g_tls, o.ca_file.c_str(), nullptr)) != 1) {
                die("cannot load the CA file " + o.ca_file);
            }
        }
    }
    if (o.scenario == "fanout") {
        return runFanout(o);
    }
    if (o.scenario == "idle") {
        return runIdle(o);
    }
    if (o.scenario == "latency") {
        return runLatency(o);
    }
    if (o.scenario == "pairs") {
        return runPairs(o);
    }
    if (o.scenario == "agents") {
        return runAgents(o);
    }
    if (o.scenario == "mailbox") {
        return runMailbox(o);
    }
    std::fprintf(stderr, "tundra-bench: choose a scenario\n%s", kUsage);
    return 2;
}
