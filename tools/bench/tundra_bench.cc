// SPDX-License-Identifier: Apache-2.0
// tundra-bench: load generator for tundrad. One thread, one epoll set, non-blocking sockets,
// the project's codec. Scenarios: fanout (broadcast throughput and end-to-end latency),
// idle (server memory per idle registered connection), latency (PING round trips).
// Loopback or the operator's own hosts only; every run is bounded in count and time.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
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
#include <vector>

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
    int window = 32;  // broadcasts in flight before the sender waits
    int count = 1000;
    double timeout_s = 60;
    bool json = false;
};

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
    FrameDecoder decoder;
    Bytes out;
    std::size_t out_off = 0;
    bool welcomed = false;
    std::uint64_t received = 0;

    ~Conn() {
        if (fd >= 0) {
            ::close(fd);
        }
    }

    void queue(const Bytes& frame) { out.insert(out.end(), frame.begin(), frame.end()); }

    bool flush() {
        while (out_off < out.size()) {
            ssize_t n = ::send(fd, out.data() + out_off, out.size() - out_off, MSG_NOSIGNAL);
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
    return c;
}

void setNonBlocking(int fd) {
    int fl = ::fcntl(fd, F_GETFL);
    ::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

// Blocking read of the next frame on a still-blocking socket (setup and probes only).
std::optional<Bytes> readFrameBlocking(Conn& c, MsgType want) {
    for (;;) {
        auto r = c.decoder.next();
        if (r.status == DecodeStatus::Frame) {
            if (r.header.type == static_cast<std::uint8_t>(want)) {
                return Bytes(r.payload.begin(), r.payload.end());
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
        ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
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

void raiseFdLimit(int wanted) {
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    auto need = static_cast<rlim_t>(wanted + 64);
    if (lim.rlim_cur < need) {
        lim.rlim_cur = std::min(need, lim.rlim_max);
        ::setrlimit(RLIMIT_NOFILE, &lim);
    }
}

std::string uniqueName(const char* prefix, int i) {
    return std::string(prefix) + std::to_string(::getpid()) + "_" + std::to_string(i);
}

std::uint64_t healthRss(Conn& c) {
    sendBlocking(c, msg::encodeEmpty(MsgType::HealthCheck, 1));
    auto payload = readFrameBlocking(c, MsgType::HealthResult);
    std::string json(payload->begin(), payload->end());
    auto pos = json.find("\"rss_bytes\":");
    if (pos == std::string::npos) {
        die("health has no rss_bytes: " + json);
    }
    return std::strtoull(json.c_str() + pos + 12, nullptr, 10);
}

// Connects and registers `n` clients, pipelining the REGISTERs.
std::vector<std::unique_ptr<Conn>> registerMany(const Options& o, int n, const char* prefix) {
    socklen_t len = 0;
    auto addr = resolve(o, len);
    std::vector<std::unique_ptr<Conn>> conns;
    for (int i = 0; i < n; ++i) {
        conns.push_back(connectTo(addr, len));
        std::string name = uniqueName(prefix, i);
        msg::Register r;
        r.username = name;
        sendBlocking(*conns.back(), msg::encode(r, 1));
    }
    for (auto& c : conns) {
        readFrameBlocking(*c, MsgType::System);
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
int runFanout(const Options& o) {
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
            ssize_t got = ::recv(c.fd, buf, sizeof buf, 0);
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
                        latency_us.push_back(now - std::strtod(std::string(d.text.substr(0, 24)).c_str(), nullptr));
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
        std::printf("  end-to-end latency us: p50 %.1f  p99 %.1f  max %.1f\n", s.p50, s.p99,
                    s.max);
    }
    return delivered == expected ? 0 : 1;
}

// idle: registers N clients that then stay silent and reports the server's RSS growth.
int runIdle(const Options& o) {
    raiseFdLimit(o.clients + 1);
    auto probe = registerMany(o, 1, "probe");
    const std::uint64_t before = healthRss(*probe[0]);
    auto idle = registerMany(o, o.clients, "idle");
    const std::uint64_t after = healthRss(*probe[0]);
    const double per = (static_cast<double>(after) - static_cast<double>(before)) /
                       static_cast<double>(o.clients);
    if (o.json) {
        std::printf("{\"scenario\":\"idle\",\"clients\":%d,\"rss_before\":%llu,"
                    "\"rss_after\":%llu,\"bytes_per_connection\":%.0f}\n",
                    o.clients, static_cast<unsigned long long>(before),
                    static_cast<unsigned long long>(after), per);
    } else {
        std::printf("idle: %d registered idle connections\n", o.clients);
        std::printf("  server RSS %llu -> %llu bytes: %.0f bytes per connection\n",
                    static_cast<unsigned long long>(before),
                    static_cast<unsigned long long>(after), per);
    }
    return 0;
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
        std::printf("{\"scenario\":\"latency\",\"count\":%d,\"rtt_us\":{\"min\":%.1f,"
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
    "Usage: tundra-bench [--host H] [--port P] [--json] SCENARIO [options]\n"
    "Scenarios:\n"
    "  fanout   --clients N (1000) --messages M (200) --size BYTES (64) --window W (32)\n"
    "           N receivers, one sender broadcasting M messages; deliveries/s, latency\n"
    "  idle     --clients N (1000): server RSS growth per idle registered connection\n"
    "  latency  --count N (1000): PING round-trip times\n"
    "Every run stops after --timeout SECONDS (60). Point it at your own servers only.\n";

int parseIntArg(const char* flag, const char* v, int lo, int hi) {
    char* end = nullptr;
    long n = std::strtol(v, &end, 10);
    if (end == v || *end != '\0' || n < lo || n > hi) {
        std::fprintf(stderr, "tundra-bench: %s: '%s' is not a number from %d to %d\n", flag, v,
                     lo, hi);
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
        } else if (a == "--timeout") {
            o.timeout_s = parseIntArg("--timeout", value(), 1, 3600);
        } else if (a == "--json") {
            o.json = true;
        } else if (o.scenario.empty() && !a.starts_with("-")) {
            o.scenario = a;
        } else {
            std::fprintf(stderr, "tundra-bench: unknown argument '%s'\n%s", argv[i], kUsage);
            return 2;
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
    std::fprintf(stderr, "tundra-bench: choose a scenario\n%s", kUsage);
    return 2;
}
