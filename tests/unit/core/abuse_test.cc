// SPDX-License-Identifier: Apache-2.0
// Issue #9 points 2, 4, 6 and 8 in the core: the REGISTER deadline, the caps on unregistered
// connections and connections per source, the REGISTER rate per source, detached sessions
// within max_users, JOINED/LEFT coalesced per tick and presence on demand, and the accounting
// of deliveries a replaced connection never wrote (delivered + DROPPED = accepted).
#include <set>

#include "core_fixture.h"

namespace tundra::testing {
namespace {

class AbuseTest : public CoreTest {
protected:
    void connectFrom(ConnId conn, std::string_view source) { sm().onConnect(conn, source); }

    bool refusedFull(ConnId conn) {
        auto frames = take(conn);
        return frames.size() == 1 && frames[0].type() == MsgType::Error &&
               asError(frames[0]).code == code(ErrorCode::ServerFull) && out.isClosing(conn);
    }
};

// ---- point 2: connections that never register -----------------------------------------------

TEST_F(AbuseTest, ConnectionWithoutRegisterIsClosedAtTheDeadline) {
    config.register_timeout_ms = 1000;
    connectFrom(1, "10.0.0.1");
    login(2, "alice");
    advance(900);
    EXPECT_FALSE(out.isClosing(1));
    feed(1, msg::encodePing(MsgType::Ping, 7, 0));  // PINGs do not extend the deadline
    take(1);
    advance(200);
    auto frames = take(1);
    ASSERT_EQ(frames.size(), 1U);
    EXPECT_EQ(asError(frames[0]).code, code(ErrorCode::NotRegistered));
    EXPECT_TRUE(out.isClosing(1));
    EXPECT_FALSE(out.isClosing(2)) << "a registered connection has no deadline";
    EXPECT_EQ(sm().metrics().register_timeouts_total, 1U);
    disconnect(1);
    EXPECT_EQ(sm().gauges().connections, 1U);
}

// The REGISTER deadline shares the connection's one timer entry with the heartbeat: it holds
// with heartbeats off, and a reload that lengthens it moves it.
TEST_F(AbuseTest, RegisterDeadlineHoldsWithoutHeartbeatsAndFollowsAReload) {
    config.register_timeout_ms = 1000;
    config.ping_interval_ms = 0;
    connectFrom(1, "10.0.0.1");
    advance(1100);
    ASSERT_EQ(take(1).size(), 1U);
    EXPECT_TRUE(out.isClosing(1));
    connectFrom(2, "10.0.0.2");
    auto c = config;
    c.register_timeout_ms = 5000;
    sm().reconfigure(c);
    advance(1100);
    EXPECT_FALSE(out.isClosing(2));
    advance(4000);
    EXPECT_TRUE(out.isClosing(2));
    EXPECT_EQ(sm().metrics().register_timeouts_total, 2U);
}

TEST_F(AbuseTest, RegisterDeadlineCanBeTurnedOff) {
    config.register_timeout_ms = 0;
    connect(1);
    advance(3'600'000);
    EXPECT_FALSE(out.isClosing(1));
    EXPECT_EQ(sm().metrics().register_timeouts_total, 0U);
}

TEST_F(AbuseTest, UnregisteredCapRefusesNewConnectionsWithServerFull) {
    config.max_unregistered = 2;
    connect(1);
    connect(2);
    connect(3);
    EXPECT_TRUE(refusedFull(3));
    EXPECT_EQ(sm().metrics().unregistered_refused_total, 1U);
    disconnect(3);
    feed(1, registerFrame("alice"));  // registered: no longer counts
    take(1);
    connect(4);
    EXPECT_FALSE(out.isClosing(4));
    disconnect(2);
    connect(5);
    EXPECT_FALSE(out.isClosing(5));
    EXPECT_EQ(sm().gauges().connections, 3U);
}

TEST_F(AbuseTest, ConnectionsPerSourceAreCapped) {
    config.max_connections_per_ip = 2;
    connectFrom(1, "10.0.0.1");
    connectFrom(2, "10.0.0.1");
    connectFrom(3, "10.0.0.1");
    EXPECT_TRUE(refusedFull(3));
    connectFrom(4, "10.0.0.2");
    EXPECT_FALSE(out.isClosing(4));
    connect(5);  // no source known: not counted per source
    EXPECT_FALSE(out.isClosing(5));
    EXPECT_EQ(sm().metrics().per_ip_refused_total, 1U);
    disconnect(3);
    disconnect(1);
    connectFrom(6, "10.0.0.1");
    EXPECT_FALSE(out.isClosing(6));
    connectFrom(7, "10.0.0.1");
    EXPECT_TRUE(refusedFull(7));
    EXPECT_EQ(sm().metrics().per_ip_refused_total, 2U);
}

// ---- point 8: REGISTER rate per source --------------------------------------------------------

TEST_F(AbuseTest, RegistrationsPerSourceAreRateLimitedAndTheConnectionStaysOpen) {
    config.register_rate = 1;
    config.register_burst = 2;
    ConnId next = 1;
    auto cycle = [&](std::string_view name) {
        ConnId c = next++;
        connectFrom(c, "10.0.0.1");
        feed(c, registerFrame(name));
        auto frames = take(c);
        EXPECT_FALSE(frames.empty());
        const bool ok = !frames.empty() && frames[0].type() == MsgType::System;
        disconnect(c);  // close-and-reconnect must not reset the bucket
        return ok ? 0 : asError(frames[0]).code;
    };
    EXPECT_EQ(cycle("a1"), 0);
    EXPECT_EQ(cycle("a2"), 0);
    EXPECT_EQ(cycle("a3"), code(ErrorCode::RateLimited));
    advance(1000);  // also runs the sweep: the half-empty bucket must be kept
    EXPECT_EQ(cycle("a4"), 0);
    EXPECT_EQ(cycle("a5"), code(ErrorCode::RateLimited));

    // Another source has its own bucket; a refused REGISTER leaves the connection open.
    connectFrom(50, "10.0.0.9");
    feed(50, registerFrame("b1"));
    feed(50, msg::encodeEmpty(MsgType::Logout, 2));
    take(50);
    disconnect(50);
    connectFrom(51, "10.0.0.1");
    EXPECT_EQ(errorFor(51, registerFrame("a6")), code(ErrorCode::RateLimited));
    EXPECT_FALSE(out.isClosing(51));
    advance(1000);
    feed(51, registerFrame("a6"));
    EXPECT_EQ(asSystem(one(51)).event, SystemEvent::Welcome);
    EXPECT_EQ(sm().metrics().register_rate_limited_total, 3U);
    EXPECT_EQ(sm().metrics().errors_total[code(ErrorCode::RateLimited)], 3U);
}

// ---- point 4: detached sessions count toward max_users ---------------------------------------

TEST_F(AbuseTest, ConnectRegisterCloseCyclesKeepUsersWithinMaxUsers) {
    config.max_users = 5;
    config.session_timeout_ms = 3'600'000;
    login(1, "alice");
    Uuid first{};
    for (ConnId c = 2; c < 200; ++c) {
        auto w = login(c, "u" + std::to_string(c));
        if (c == 2) {
            first = w.session;
        }
        disconnect(c);
        const auto g = sm().gauges();
        ASSERT_LE(g.users_known, 5U) << "after " << c << " cycles";
        ASSERT_LE(g.sessions_detached, 4U);
    }
    EXPECT_EQ(sm().gauges().sessions_online, 1U);
    EXPECT_GE(sm().metrics().detached_evicted_total, 190U);
    // The oldest detached session was the one ended: resuming it fails.
    connect(500);
    EXPECT_EQ(errorFor(500, registerFrame("u2", first)), code(ErrorCode::SessionExpired));
    // A broadcast now reaches alice's peers only among the users that are kept.
    auto ack = sayAck(1, "", "hi");
    EXPECT_LE(ack.buffered, 4U);
}

TEST_F(AbuseTest, ListUsersWalksNoMoreThanMaxUsers) {
    config.max_users = 3;
    login(1, "alice");
    for (ConnId c = 2; c < 20; ++c) {
        login(c, "u" + std::to_string(c));
        disconnect(c);
    }
    feed(1, msg::encode(msg::ListUsers{""}, 3));
    auto l = asUserList(one(1));
    EXPECT_LE(l.users.size(), 3U);
}

// ---- point 8: presence coalesced per tick, presence on demand -------------------------------

TEST_F(AbuseTest, JoinAndLeaveWithinOneTickSendNothing) {
    login(1, "alice");
    advance(100);
    take(1);
    for (ConnId c = 2; c < 12; ++c) {
        login(c, "cycler" + std::to_string(c));
        disconnect(c);  // the LEFT cancels the JOINED still queued for this tick
        advance(100);
    }
    EXPECT_TRUE(take(1).empty());
    EXPECT_EQ(sm().metrics().presence_coalesced_total, 10U);

    login(20, "bob");  // stays: JOINED goes out on the next tick, not before
    EXPECT_TRUE(take(1).empty());
    advance(100);
    auto frames = take(1);
    ASSERT_EQ(frames.size(), 1U);
    EXPECT_EQ(asSystem(frames[0]).event, SystemEvent::Joined);
    EXPECT_EQ(asSystem(frames[0]).name, "bob");
    EXPECT_TRUE(take(20).empty()) << "no JOINED about oneself";
}

TEST_F(AbuseTest, PresenceOnDemandSendsNoJoinedOrLeft) {
    config.presence_events = false;  // presence on demand
    login(1, "alice");
    login(2, "bob");
    advance(100);
    disconnect(2);
    advance(100);
    EXPECT_TRUE(take(1).empty());
    EXPECT_EQ(stateOf(1, "bob"), UserState::Detached);
}

// ---- point 6: nothing accepted vanishes uncounted on takeover, resume or expiry -------------

// Alice sends kSent messages to bob on connection 2, which never writes any (they are all
// "unwritten" when it dies); bob's window keeps only max_buffered of them.
class AccountingTest : public AbuseTest {
protected:
    static constexpr int kSent = 7;

    void SetUp() override {
        config.max_buffered = 2;
        config.session_timeout_ms = 10'000;
        login(1, "alice");
        bob = login(2, "bob").session;
        advance(100);
        take(1);
        take(2);
        for (int i = 0; i < kSent; ++i) {
            auto ack = sayAck(1, "bob", "m" + std::to_string(i));
            ASSERT_EQ(ack.delivered, 1U);
            accepted.insert(ack.id);
        }
        unwritten = out.deliveryIdsFor(2);
        ASSERT_EQ(unwritten.size(), static_cast<std::size_t>(kSent));
        out.take(2);
    }

    /// What `conn` got: delivery ids added to `got`, DROPPED counts summed.
    std::uint64_t collect(ConnId conn) {
        std::uint64_t dropped = 0;
        for (const auto& f : take(conn)) {
            if (f.delivery_id != 0) {
                got.insert(f.delivery_id);
            } else if (f.type() == MsgType::System && asSystem(f).event == SystemEvent::Dropped) {
                dropped += asSystem(f).dropped;
            }
        }
        return dropped;
    }

    void expectAllAccountedFor(std::uint64_t dropped) {
        for (auto id : got) {
            EXPECT_TRUE(accepted.contains(id)) << "unknown id " << id;
        }
        EXPECT_EQ(got.size() + dropped, accepted.size())
            << "delivered " << got.size() << " + dropped " << dropped;
        EXPECT_EQ(sm().metrics().offline_dropped_total, dropped);
    }

    Uuid bob{};
    std::set<std::uint64_t> accepted;
    std::set<std::uint64_t> got;
    std::vector<std::uint64_t> unwritten;
};

TEST_F(AccountingTest, TakeoverWithoutLastId) {
    connect(3);
    feed(3, registerFrame("bob", bob));
    std::uint64_t dropped = collect(3);
    disconnect(2, unwritten);  // the replaced connection reports what it never wrote
    dropped += collect(3);
    expectAllAccountedFor(dropped);
}

TEST_F(AccountingTest, TakeoverWithLastId) {
    // The client read the first two before its connection stalled.
    std::vector<std::uint64_t> ids(accepted.begin(), accepted.end());
    got.insert(ids[0]);
    got.insert(ids[1]);
    std::vector<std::uint64_t> rest(ids.begin() + 2, ids.end());
    connect(3);
    feed(3, registerFrame("bob", bob, ClientKind::User, ids[1]));
    std::uint64_t dropped = collect(3);
    disconnect(2, rest);
    dropped += collect(3);
    expectAllAccountedFor(dropped);
}

TEST_F(AccountingTest, TakeoverThenMoreTrafficBeforeTheOldConnectionIsReported) {
    connect(3);
    feed(3, registerFrame("bob", bob));
    std::uint64_t dropped = collect(3);
    for (int i = 0; i < 3; ++i) {  // pushes the old entries out of the window
        accepted.insert(sayAck(1, "bob", "late").id);
    }
    dropped += collect(3);
    disconnect(2, unwritten);
    dropped += collect(3);
    expectAllAccountedFor(dropped);
}

TEST_F(AccountingTest, ResumeAfterDetach) {
    disconnect(2, unwritten);
    connect(3);
    feed(3, registerFrame("bob", bob));
    expectAllAccountedFor(collect(3));
}

TEST_F(AccountingTest, HeartbeatDeathThenResumeBeforeTheCloseIsReported) {
    config.ping_interval_ms = 1000;
    sm().reconfigure(config);
    advance(1000);  // PING to everyone
    feed(1, msg::encodePing(MsgType::Pong, 0, 0));
    advance(1000);  // bob never answered: closed and detached now
    ASSERT_TRUE(out.isClosing(2));
    take(2);
    connect(3);
    feed(3, registerFrame("bob", bob));
    std::uint64_t dropped = collect(3);
    disconnect(2, unwritten);
    dropped += collect(3);
    expectAllAccountedFor(dropped);
}

TEST_F(AccountingTest, TakeoverWhoseNewConnectionDiesToo) {
    connect(3);
    feed(3, registerFrame("bob", bob));
    std::uint64_t dropped = collect(3);
    sm().onHeaderError(3, 0, ErrorCode::InvalidFormat, "test");  // the core closes conn 3
    take(3);
    disconnect(2, unwritten);
    disconnect(3);
    connect(4);
    feed(4, registerFrame("bob", bob));
    dropped += collect(4);
    expectAllAccountedFor(dropped);
}

TEST_F(AccountingTest, ExpiryThenNewSession) {
    disconnect(2, unwritten);
    advance(10'100);  // the session expires; bob is offline with his buffer
    connect(3);
    feed(3, registerFrame("bob"));
    expectAllAccountedFor(collect(3));
}

}  // namespace
}  // namespace tundra::testing
