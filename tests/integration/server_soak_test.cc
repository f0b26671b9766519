// SPDX-License-Identifier: Apache-2.0
// Issue #9, "Proof": a bounded soak against the real tundrad on loopback. Well-behaved users
// chat (direct messages and broadcasts with ACKs, some of them logging out and coming back for
// their REPLAYs) from 127.0.0.1 while every abuse of issue #9 runs at once from 127.0.0.2-8:
// a never-reading PING flooder, idle connections up to the per-address cap, connect/REGISTER/
// close cycles, messages parked in throwaway logged-out users, bad frames and garbage, a
// broadcast flooder and half-closed pipeliners. The abuse limits keep their defaults. At the end
// every message the good users got an ACK for has reached its recipients exactly once, in order
// per sender, nobody good got a DROPPED or an ERROR, the server answered HEALTH_CHECK in time
// throughout, and the abuse counters moved.
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "server_fixture.h"

namespace tundra::testing {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

constexpr int kGood = 6;  // good users; the last kCyclers of them log out twice
constexpr int kCyclers = 3;
constexpr int kMessagesPerGood = 150;  // per good user, a third of them broadcasts
constexpr auto kPace = 50ms;           // between two messages of one good user
constexpr auto kOffline = 700ms;       // how long a cycling good user stays logged out
constexpr auto kHardLimit = 60s;       // no abuse loop runs longer than this, whatever happens

std::int64_t jsonNumber(const std::string& json, const std::string& key) {
    const std::string needle = "\"" + key + "\":";
    const auto pos = json.find(needle);
    if (pos == std::string::npos) {
        ADD_FAILURE() << "no " << key << " in " << json;
        return -1;
    }
    return std::strtoll(json.c_str() + pos + needle.size(), nullptr, 10);
}

/// The value of an unlabelled Prometheus sample "name value" on the admin listener, or -1.
double metricValue(std::uint16_t port, const std::string& name) {
    RawClient http(port);
    if (!http.connected() ||
        !http.send(std::string_view("GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n"))) {
        return -1;
    }
    std::string page;
    const auto deadline = SteadyClock::now() + 5s;
    while (SteadyClock::now() < deadline) {
        pollfd p{http.fd(), POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) {
            continue;
        }
        char buf[8192];
        const ssize_t n = ::recv(http.fd(), buf, sizeof buf, 0);
        if (n <= 0) {
            break;
        }
        page.append(buf, static_cast<std::size_t>(n));
    }
    const std::string needle = "\n" + name + " ";
    const auto pos = page.find(needle);
    return pos == std::string::npos ? -1 : std::strtod(page.c_str() + pos + needle.size(), nullptr);
}

std::string healthJson(const RawFrame& f) {
    msg::HealthResult r;
    EXPECT_EQ(msg::parse(f.span(), r), nullptr);
    return std::string(r.json);
}

std::string goodName(int i) { return "good" + std::to_string(i); }

/// What one good user sent (with the ACK it got) and received.
struct GoodUser {
    struct Sent {
        std::string to;  // empty = broadcast
        int k = 0;
        std::uint32_t delivered = 0;
        std::uint32_t buffered = 0;
    };
    struct Got {
        int k = 0;
        bool replay = false;
    };
    std::string name;
    bool cycles = false;
    std::unique_ptr<RawClient> conn;
    std::vector<Sent> sent;
    std::map<std::string, std::vector<Got>> direct;     // by sender
    std::map<std::string, std::vector<Got>> broadcast;  // by sender (good senders only)
    std::set<std::string> done_from;
    std::vector<std::string> failures;
    int dropped_events = 0;
};

class SoakTest : public ServerTest {
protected:
    std::vector<std::string> serverArgs() override {
        // Only the total offline budget is lowered (from 256 MiB) so that the parker reaches
        // it within a bounded load; every abuse limit keeps its default.
        return {"--admin", "127.0.0.1:0", "--total-buffer-bytes", "16777216"};
    }

    std::unique_ptr<RawClient> connectFrom(const char* source, int rcvbuf = 0) {
        return std::make_unique<RawClient>(server_->port(), rcvbuf, "127.0.0.1", source);
    }

    bool abuseGoesOn() const {
        return !stop_.load(std::memory_order_relaxed) && SteadyClock::now() < hard_end_;
    }

    // ---- the good side ---------------------------------------------------------------------

    /// Handles one frame a good user received (failures are recorded in `u`).
    static void onFrame(GoodUser& u, const RawFrame& f) {
        switch (f.type()) {
            case MsgType::BroadcastMessage: {
                msg::Delivery d;
                if (msg::parse(f.type(), f.span(), d) != nullptr) {
                    u.failures.push_back("unparsable delivery");
                    return;
                }
                const std::string text(d.text);
                const std::string from(d.from);
                const bool replay = (f.header.flags & flags::kReplay) != 0;
                if (from.rfind("good", 0) != 0) {
                    return;  // the blaster's broadcasts
                }
                if (text.rfind("done|", 0) == 0) {
                    u.done_from.insert(from);
                } else if (text.rfind("d|", 0) == 0) {
                    u.direct[from].push_back({std::atoi(text.c_str() + 2), replay});
                } else if (text.rfind("b|", 0) == 0) {
                    u.broadcast[from].push_back({std::atoi(text.c_str() + 2), replay});
                } else {
                    u.failures.push_back("unexpected text from " + from);
                }
                return;
            }
            case MsgType::System: {
                msg::System s;
                if (msg::parse(f.span(), s) == nullptr && s.event == SystemEvent::Dropped) {
                    ++u.dropped_events;
                }
                return;
            }
            case MsgType::Ping: {
                msg::Ping p;
                if (msg::parse(f.span(), p) == nullptr) {
                    u.conn->send(msg::encodePing(MsgType::Pong, p.token, 0));
                }
                return;
            }
            case MsgType::Error: {
                msg::Error e;
                (void)msg::parse(f.span(), e);
                u.failures.push_back("ERROR " + std::to_string(e.code) + " " + std::string(e.text));
                return;
            }
            default:
                return;
        }
    }

    /// Reads and handles frames until `until` (pacing by reading, never idle).
    static void readFor(GoodUser& u, SteadyClock::time_point until) {
        for (;;) {
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(until - SteadyClock::now());
            if (left.count() <= 0 || u.conn->eof()) {
                return;
            }
            auto f = u.conn->read(left);
            if (f) {
                onFrame(u, *f);
            }
        }
    }

    /// Sends one MESSAGE with ACK and handles frames until its ACK; false if none came.
    static bool send(GoodUser& u, const std::string& to, const std::string& text, int k) {
        const std::uint16_t seq = u.conn->nextSeq();
        u.conn->send(msg::encode(msg::Message{to, text}, seq, flags::kAck));
        const auto deadline = SteadyClock::now() + 10s;
        while (SteadyClock::now() < deadline) {
            auto f = u.conn->read(1s);
            if (!f) {
                if (u.conn->eof()) {
                    break;
                }
                continue;
            }
            if (f->type() == MsgType::Ack && f->header.sequence == seq) {
                msg::Ack a;
                EXPECT_EQ(msg::parse(f->span(), a), nullptr);
                u.sent.push_back({to, k, a.delivered, a.buffered});
                return true;
            }
            onFrame(u, *f);
        }
        u.failures.push_back("no ACK for message " + std::to_string(k) + " to '" + to + "'");
        return false;
    }

    std::unique_ptr<RawClient> loginGood(GoodUser& u) {
        auto c = std::make_unique<RawClient>(server_->port());
        auto w = c->registerAs(u.name);
        if (!w || w->type() != MsgType::System || asSystem(*w).event != SystemEvent::Welcome) {
            u.failures.push_back("no WELCOME for " + u.name);
        }
        return c;
    }

    void runGood(GoodUser& u, int index) {
        std::string pad(60, 'x');  // a realistic chat line
        for (int k = 0; k < kMessagesPerGood && u.failures.empty(); ++k) {
            if (u.cycles && (k == kMessagesPerGood / 3 || k == 2 * kMessagesPerGood / 3)) {
                // LOGOUT (what was queued before the BYE still arrives), stay away, come back:
                // what others sent meanwhile is replayed with the REPLAY flag.
                u.conn->send(msg::encodeEmpty(MsgType::Logout, u.conn->nextSeq()));
                bool bye = false;
                const auto deadline = SteadyClock::now() + 10s;
                while (!bye && SteadyClock::now() < deadline) {
                    auto f = u.conn->read(1s);
                    if (!f) {
                        if (u.conn->eof()) {
                            break;
                        }
                        continue;
                    }
                    if (f->type() == MsgType::System && asSystem(*f).event == SystemEvent::Bye) {
                        bye = true;
                    } else {
                        onFrame(u, *f);
                    }
                }
                if (!bye) {
                    u.failures.push_back("no BYE after LOGOUT");
                    return;
                }
                u.conn.reset();
                std::this_thread::sleep_for(kOffline);  // away: pacing, not synchronisation
                u.conn = loginGood(u);
            }
            if (k % 3 == 2) {
                send(u, "", "b|" + std::to_string(k) + "|" + pad, k);
            } else {
                const int to = (index + 1 + k % (kGood - 1)) % kGood;
                send(u, goodName(to), "d|" + std::to_string(k) + "|" + pad, k);
            }
            readFor(u, SteadyClock::now() + kPace);
        }
        // Online for good now: a last direct marker to everyone, then read until every other
        // good user's marker is in (per-sender order: all its earlier messages are in too).
        for (int j = 0; j < kGood; ++j) {
            if (j != index) {
                send(u, goodName(j), "done|", -1);
            }
        }
        const auto deadline = SteadyClock::now() + 30s;
        while (static_cast<int>(u.done_from.size()) < kGood - 1 && SteadyClock::now() < deadline &&
               !u.conn->eof()) {
            readFor(u, std::min(deadline, SteadyClock::now() + 100ms));
        }
        if (static_cast<int>(u.done_from.size()) != kGood - 1) {
            u.failures.push_back("only " + std::to_string(u.done_from.size()) + " done markers");
        }
    }

    // ---- the abusers -------------------------------------------------------------------------

    /// 127.0.0.2: PINGs in big batches, never reads, until the server cuts it off.
    void pingFlooder() {
        auto c = connectFrom("127.0.0.2", 4096);
        Bytes batch;
        for (int i = 0; i < 512; ++i) {
            auto p = msg::encodePing(MsgType::Ping, static_cast<std::uint64_t>(i), 1);
            batch.insert(batch.end(), p.begin(), p.end());
        }
        std::size_t off = 0;
        long frames = 0;
        while (abuseGoesOn() && frames < 2'000'000) {
            pollfd p{c->fd(), POLLOUT, 0};
            if (::poll(&p, 1, 50) < 0) {
                break;
            }
            if ((p.revents & (POLLERR | POLLHUP)) != 0) {
                ping_flooder_cut_ = true;
                break;
            }
            if ((p.revents & POLLOUT) == 0) {
                continue;  // the server reads it no faster
            }
            const ssize_t n = ::send(c->fd(), batch.data() + off, batch.size() - off,
                                     MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                ping_flooder_cut_ = true;
                break;
            }
            if (n > 0) {
                off += static_cast<std::size_t>(n);
                if (off == batch.size()) {
                    off = 0;
                    frames += 512;
                }
            }
        }
    }

    /// 127.0.0.5: idle connections beyond max_connections_per_ip (64); the extra ones are
    /// refused at once, the others are closed by the REGISTER deadline (10 s).
    void idleHolder() {
        std::vector<std::unique_ptr<RawClient>> idle;
        for (int i = 0; i < 70; ++i) {
            idle.push_back(connectFrom("127.0.0.5"));
        }
        const auto deadline = SteadyClock::now() + 20s;
        for (auto& c : idle) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - SteadyClock::now());
            if (left.count() > 0 && c->waitClosed(left)) {
                ++idle_closed_;
            }
        }
    }

    /// 127.0.0.3: connect / REGISTER a throwaway name / close, as fast as answers come.
    void registerCycler() {
        for (int i = 0; i < 2000 && abuseGoesOn(); ++i) {
            auto c = connectFrom("127.0.0.3");
            auto f = c->registerAs("cyc" + std::to_string(i));
            if (f && f->type() == MsgType::Error &&
                asError(*f).code == static_cast<std::uint16_t>(ErrorCode::RateLimited)) {
                ++cycler_limited_;
            }
            std::this_thread::sleep_for(2ms);  // pacing
        }
    }

    /// 127.0.0.4: parks large messages in throwaway logged-out users, round robin.
    void parker() {
        constexpr int kThrowaway = 24;
        for (int j = 0; j < kThrowaway; ++j) {
            auto c = connectFrom("127.0.0.4");
            c->registerAs("park" + std::to_string(j));
            c->send(msg::encodeEmpty(MsgType::Logout, c->nextSeq()));
            c->waitClosed(5s);
        }
        auto c = connectFrom("127.0.0.4");
        c->registerAs("parker");
        const std::string big(32000, 'p');
        for (int i = 0; i < 3000 && abuseGoesOn(); ++i) {
            const std::uint16_t seq = c->nextSeq();
            c->send(msg::encode(msg::Message{"park" + std::to_string(i % kThrowaway), big}, seq,
                                flags::kAck));
            for (;;) {  // until the answer to this one (ACK, or RATE_LIMITED)
                auto f = c->read(5s);
                if (!f || ((f->type() == MsgType::Ack || f->type() == MsgType::Error) &&
                           f->header.sequence == seq)) {
                    break;
                }
            }
            if (c->eof()) {
                return;
            }
        }
    }

    /// 127.0.0.6: malformed frames until the bad-frame limit closes the connection, and raw
    /// garbage.
    void garbage() {
        for (int i = 0; i < 40 && abuseGoesOn(); ++i) {
            auto c = connectFrom("127.0.0.6");
            Bytes frames;
            for (int n = 0; n < 20; ++n) {  // MESSAGE before REGISTER: NOT_REGISTERED, bad
                auto m = msg::encode(msg::Message{"", "hi"}, static_cast<std::uint16_t>(n + 1));
                frames.insert(frames.end(), m.begin(), m.end());
            }
            c->send(frames);
            bad_closed_ += c->waitClosed(5s) ? 1 : 0;
            auto g = connectFrom("127.0.0.6");
            g->send(std::string_view("GET / HTTP/1.1\r\nHost: tundra\r\n\r\n\xff\xfe garbage"));
            garbage_closed_ += g->waitClosed(5s) ? 1 : 0;
            std::this_thread::sleep_for(50ms);  // pacing
        }
    }

    /// 127.0.0.7: a registered user flooding broadcasts (no ACK) while draining its input.
    void blaster() {
        auto c = connectFrom("127.0.0.7");
        c->registerAs("blaster");
        Bytes batch;
        for (int i = 0; i < 50; ++i) {
            auto m = msg::encode(msg::Message{"", "blast"}, static_cast<std::uint16_t>(i + 1));
            batch.insert(batch.end(), m.begin(), m.end());
        }
        while (abuseGoesOn() && !c->eof()) {
            if (!c->send(batch)) {
                return;
            }
            const auto until = SteadyClock::now() + 10ms;
            while (SteadyClock::now() < until && c->read(2ms)) {  // drain, discard
            }
        }
    }

    /// 127.0.0.8: pipelines PINGs, half-closes, and must get every PONG before the EOF.
    void halfCloser() {
        for (int round = 0; round < 5 && abuseGoesOn(); ++round) {
            auto c = connectFrom("127.0.0.8");
            constexpr int kPings = 1500;  // within the default frame burst (2000)
            Bytes frames;
            for (int i = 0; i < kPings; ++i) {
                auto p = msg::encodePing(MsgType::Ping, static_cast<std::uint64_t>(i), 1);
                frames.insert(frames.end(), p.begin(), p.end());
            }
            c->send(frames);
            ::shutdown(c->fd(), SHUT_WR);
            int pongs = 0;
            while (auto f = c->read(5s)) {
                pongs += f->type() == MsgType::Pong ? 1 : 0;
            }
            if (pongs != kPings) {
                std::lock_guard lock(mu_);
                half_close_failures_.push_back(
                    "round " + std::to_string(round) + ": " + std::to_string(pongs) + " of " +
                    std::to_string(kPings) + " PONGs, eof " + std::to_string(c->eof()));
            }
            std::this_thread::sleep_for(200ms);  // pacing
        }
    }

    /// 127.0.0.1: a registered observer asking HEALTH_CHECK every 200 ms, timing the answers.
    void monitor(RawClient& c) {
        while (!stop_.load()) {
            const auto asked = SteadyClock::now();
            c.send(msg::encodeEmpty(MsgType::HealthCheck, c.nextSeq()));
            auto f = c.readUntil(MsgType::HealthResult, 3s);
            c.skipped().clear();
            const auto took = SteadyClock::now() - asked;
            std::lock_guard lock(mu_);
            ++health_checks_;
            if (!f) {
                ++health_failures_;
            } else {
                slowest_health_ = std::max(slowest_health_, took);
            }
            if (c.eof()) {
                return;
            }
            // pacing (reading meanwhile so the broadcasts do not pile up)
            const auto until = SteadyClock::now() + 200ms;
            while (SteadyClock::now() < until && c.read(20ms)) {
            }
        }
    }

    std::atomic<bool> stop_{false};
    SteadyClock::time_point hard_end_ = SteadyClock::now() + kHardLimit;
    std::atomic<bool> ping_flooder_cut_{false};
    std::atomic<int> idle_closed_{0};
    std::atomic<int> cycler_limited_{0};
    std::atomic<int> bad_closed_{0};
    std::atomic<int> garbage_closed_{0};
    std::mutex mu_;
    std::vector<std::string> half_close_failures_;
    int health_checks_ = 0;
    int health_failures_ = 0;
    SteadyClock::duration slowest_health_{};
};

TEST_F(SoakTest, GoodUsersLoseNothingWhileEveryAbuseRunsAtOnce) {
    const auto line = server_->waitForLine("admin listening on", 5s);
    ASSERT_TRUE(line) << server_->output();
    const auto admin = static_cast<std::uint16_t>(std::stoi(line->substr(line->rfind(':') + 1)));

    auto observer = std::make_unique<RawClient>(server_->port());
    ASSERT_EQ(asSystem(*observer->registerAs("monitor")).event, SystemEvent::Welcome);

    std::vector<GoodUser> good(kGood);
    for (int i = 0; i < kGood; ++i) {
        good[i].name = goodName(i);
        good[i].cycles = i >= kGood - kCyclers;
        good[i].conn = loginGood(good[i]);
        ASSERT_TRUE(good[i].failures.empty()) << good[i].failures.front();
    }

    std::vector<std::thread> abusers;
    abusers.emplace_back([this] { pingFlooder(); });
    abusers.emplace_back([this] { idleHolder(); });
    abusers.emplace_back([this] { registerCycler(); });
    abusers.emplace_back([this] { parker(); });
    abusers.emplace_back([this] { garbage(); });
    abusers.emplace_back([this] { blaster(); });
    abusers.emplace_back([this] { halfCloser(); });
    std::thread watcher([this, &observer] { monitor(*observer); });

    std::vector<std::thread> chatters;
    for (int i = 0; i < kGood; ++i) {
        chatters.emplace_back([this, &good, i] { runGood(good[i], i); });
    }
    for (auto& t : chatters) {
        t.join();
    }
    stop_ = true;
    for (auto& t : abusers) {
        t.join();
    }
    watcher.join();

    // ---- the good users: nothing lost, nothing twice, in order, no DROPPED, no ERROR ------
    for (const auto& u : good) {
        for (const auto& f : u.failures) {
            ADD_FAILURE() << u.name << ": " << f;
        }
        EXPECT_EQ(u.dropped_events, 0) << u.name << " got SYSTEM DROPPED";
    }
    std::map<std::string, GoodUser*> by_name;
    for (auto& u : good) {
        by_name[u.name] = &u;
    }
    int replayed = 0;
    int acked = 0;
    for (const auto& s : good) {
        acked += static_cast<int>(s.sent.size());
        std::map<std::string, std::vector<int>> expected_direct;
        std::vector<int> broadcasts;
        std::map<std::pair<std::string, int>, bool> buffered;  // (to, k) -> ACK said buffered
        for (const auto& m : s.sent) {
            if (m.k < 0) {
                continue;  // the done markers
            }
            if (m.to.empty()) {
                broadcasts.push_back(m.k);
                continue;
            }
            EXPECT_EQ(m.delivered + m.buffered, 1U)
                << s.name << " -> " << m.to << " #" << m.k << " was neither delivered nor buffered";
            expected_direct[m.to].push_back(m.k);
            buffered[{m.to, m.k}] = m.buffered == 1;
        }
        for (const auto& [to, ks] : expected_direct) {
            const auto& got = by_name[to]->direct[s.name];
            std::vector<int> got_k;
            for (const auto& g : got) {
                got_k.push_back(g.k);
                if (buffered[{to, g.k}]) {
                    EXPECT_TRUE(g.replay) << s.name << " -> " << to << " #" << g.k
                                          << " was buffered but came without REPLAY";
                    ++replayed;
                }
            }
            EXPECT_EQ(got_k, ks) << s.name << " -> " << to
                                 << ": direct messages lost, doubled or out of order";
        }
        for (const auto& r : good) {
            if (r.name == s.name) {
                continue;
            }
            std::vector<int> got_k;
            const auto it = r.broadcast.find(s.name);
            if (it != r.broadcast.end()) {
                for (const auto& g : it->second) {
                    got_k.push_back(g.k);
                }
            }
            if (!r.cycles) {  // online throughout: every broadcast, once, in order
                EXPECT_EQ(got_k, broadcasts) << s.name << " broadcasts seen by " << r.name;
            } else {  // offline (logged out) users get no broadcasts: a subsequence
                EXPECT_TRUE(std::is_sorted(got_k.begin(), got_k.end()) &&
                            std::adjacent_find(got_k.begin(), got_k.end()) == got_k.end())
                    << s.name << " broadcasts seen by " << r.name << " doubled or out of order";
                EXPECT_TRUE(std::includes(broadcasts.begin(), broadcasts.end(), got_k.begin(),
                                          got_k.end()));
            }
        }
    }
    EXPECT_GT(replayed, 0) << "no message to a logged-out good user was ever buffered";

    // ---- the server stayed alive and answered within the deadline ---------------------------
    {
        std::lock_guard lock(mu_);
        EXPECT_EQ(health_failures_, 0) << "of " << health_checks_ << " HEALTH_CHECKs";
        EXPECT_GT(health_checks_, 5);
        EXPECT_LT(slowest_health_, 2s);
        for (const auto& f : half_close_failures_) {
            ADD_FAILURE() << "half-closed pipeliner: " << f;
        }
    }

    // ---- the abuse was met by the limits (defaults) --------------------------------------------
    observer->send(msg::encodeEmpty(MsgType::HealthCheck, observer->nextSeq()));
    auto f = observer->readUntil(MsgType::HealthResult, 5s);
    ASSERT_TRUE(f) << "no final HEALTH_RESULT";
    const std::string h = healthJson(*f);
    std::printf(
        "soak: %d good messages ACKed (%d replayed), %d HEALTH_CHECKs (slowest %lld ms), "
        "%d register-rate refusals seen by the cycler\nfinal health: %s\n",
        acked, replayed, health_checks_,
        static_cast<long long>(
            std::chrono::duration_cast<std::chrono::milliseconds>(slowest_health_).count()),
        cycler_limited_.load(), h.c_str());
    EXPECT_GT(jsonNumber(h, "rate_limited"), 0) << h;
    EXPECT_GT(jsonNumber(h, "register_rate_limited"), 0) << h;
    EXPECT_EQ(jsonNumber(h, "per_ip_refused"), 6) << h;
    EXPECT_GE(jsonNumber(h, "register_timeouts"), 64) << h;
    EXPECT_GT(jsonNumber(h, "bad_frame_closes"), 0) << h;
    EXPECT_GT(jsonNumber(h, "budget_evictions"), 0) << h;
    EXPECT_GE(metricValue(admin, "tundra_slow_consumer_disconnects_total"), 1.0);
    EXPECT_TRUE(ping_flooder_cut_) << "the never-reading PING flooder was never cut off";
    EXPECT_EQ(idle_closed_, 70) << "idle connections still open";
    EXPECT_GT(cycler_limited_, 0);
    EXPECT_GT(bad_closed_, 0);
    EXPECT_GT(garbage_closed_, 0);
}

}  // namespace
}  // namespace tundra::testing
