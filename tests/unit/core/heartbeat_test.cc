// SPDX-License-Identifier: Apache-2.0
// Core unit tests: server PINGs after ping_interval of silence, death after another interval,
// any frame as life, RTT samples from PONGs, client PING/PONG, and timer precision.
#include <gtest/gtest.h>

#include "unit/core/core_fixture.h"

namespace tundra::testing {

namespace {

class CoreHeartbeatTest : public CoreTest {
protected:
    static constexpr std::int64_t kInterval = 30'000;
    CoreHeartbeatTest() { config.ping_interval_ms = kInterval; }

    /// Answers the single PING queued to `conn` with a PONG after `rtt_ms`.
    void answerPing(ConnId conn, std::int64_t rtt_ms) {
        auto f = one(conn);
        ASSERT_EQ(f.type(), MsgType::Ping);
        clock.advance(rtt_ms);
        FrameWriter w(MsgType::Pong, f.header.sequence);
        w.tail(f.payload());
        feed(conn, w.finish());
    }
};

TEST_F(CoreHeartbeatTest, TickIntervalIsAHundredMilliseconds) {
    EXPECT_EQ(sm().tickIntervalMs(), 100);
}

TEST_F(CoreHeartbeatTest, SilentConnectionIsPingedAtThePingInterval) {
    login(1, "alice");
    advance(kInterval - 1);
    EXPECT_TRUE(take(1).empty());
    advance(1);
    auto f = one(1);
    EXPECT_EQ(f.type(), MsgType::Ping);
    EXPECT_EQ(f.header.sequence, 0);
    EXPECT_EQ(f.payload().size(), 8U);
    EXPECT_NE(asPing(f).token, 0U);
    // Only one PING per silent period.
    advance(100);
    EXPECT_TRUE(take(1).empty());
}

TEST_F(CoreHeartbeatTest, AnyFrameCountsAsLife) {
    login(1, "alice");
    advance(20'000);
    feed(1, msg::encodeEmpty(MsgType::HealthCheck, 1));  // activity at 20 s
    take(1);
    advance(kInterval - 20'000);  // 30 s: the first deadline passes quietly
    EXPECT_TRUE(take(1).empty());
    advance(20'000 - 1);
    EXPECT_TRUE(take(1).empty());
    advance(1);  // 50 s = 20 s + interval
    EXPECT_EQ(one(1).type(), MsgType::Ping);
}

TEST_F(CoreHeartbeatTest, NoAnswerForAnotherIntervalIsDeath) {
    login(1, "alice");
    auto w = login(2, "bob");
    flushPresence();
    take(1);
    take(2);  // JOINED alice: both joined within one tick
    advance(kInterval);
    EXPECT_EQ(one(2).type(), MsgType::Ping);
    answerPing(1, 0);  // alice stays alive
    advance(kInterval - 1);
    EXPECT_FALSE(out.isClosing(2));
    advance(1);
    EXPECT_TRUE(out.isClosing(2));
    EXPECT_FALSE(out.isClosing(1));
    EXPECT_EQ(sm().metrics().heartbeat_timeouts_total, 1U);
    // Treated as a disconnect at once: LEFT, detached, resumable.
    auto left = take(1);
    ASSERT_FALSE(left.empty());
    bool saw_left = false;
    for (const auto& f : left) {
        if (f.type() == MsgType::System) {
            saw_left |= asSystem(f).event == SystemEvent::Left && asSystem(f).name == "bob";
        }
    }
    EXPECT_TRUE(saw_left);
    EXPECT_EQ(sm().gauges().sessions_detached, 1U);
    // The server reports the close later: nothing more happens.
    disconnect(2, {}, DisconnectReason::HeartbeatTimeout);
    EXPECT_TRUE(take(1).empty());
    EXPECT_EQ(sm().gauges().sessions_detached, 1U);
    connect(3);
    feed(3, registerFrame("bob", w.session));
    EXPECT_TRUE(asSystem(one(3)).welcome.resumed);
}

TEST_F(CoreHeartbeatTest, DeadConnectionsUnwrittenDeliveriesAreBuffered) {
    config.presence_events = false;
    login(1, "alice");
    auto w = login(2, "bob");
    advance(kInterval);
    take(1);
    take(2);  // PING, unanswered
    feed(1, msg::encode(msg::Message{"bob", "lost in the pipe"}, 2, flags::kAck));
    auto id = asAck(one(1)).id;
    advance(kInterval);  // alice is also silent: she dies too, that is fine
    EXPECT_TRUE(out.isClosing(2));
    disconnect(2, {id}, DisconnectReason::HeartbeatTimeout);
    connect(3);
    feed(3, registerFrame("bob", w.session));
    auto frames = take(3);
    ASSERT_EQ(frames.size(), 2U);
    EXPECT_EQ(asSystem(frames[0]).welcome.pending, 1U);
    EXPECT_EQ(asDelivery(frames[1]).id, id);
}

TEST_F(CoreHeartbeatTest, AFrameAfterThePingKeepsTheConnectionAlive) {
    login(1, "alice");
    advance(kInterval);
    take(1);
    advance(kInterval / 2);
    feed(1, msg::encodeEmpty(MsgType::HealthCheck, 3));  // not a PONG, but life
    take(1);
    advance(kInterval / 2);
    EXPECT_FALSE(out.isClosing(1));
    advance(kInterval / 2 - 1);
    EXPECT_TRUE(take(1).empty());
    advance(1);
    EXPECT_EQ(one(1).type(), MsgType::Ping);  // a new silent period
}

TEST_F(CoreHeartbeatTest, PongGivesAnRttSample) {
    login(1, "alice");
    advance(kInterval);
    answerPing(1, 42);
    EXPECT_EQ(sm().gauges().latency_samples, 1U);
    EXPECT_EQ(sm().gauges().latency_max_ms, 42.0);
    EXPECT_EQ(sm().gauges().latency_p50_ms, 42.0);
    feed(1, msg::encodeEmpty(MsgType::HealthCheck, 1));
    auto json = asJson(one(1));
    EXPECT_NE(json.find("\"rtt_ms\":42.000"), std::string::npos) << json;
    EXPECT_NE(json.find("\"samples\":1"), std::string::npos) << json;
}

TEST_F(CoreHeartbeatTest, RttHasMicrosecondResolution) {
    login(1, "alice");
    advance(kInterval);
    auto ping = one(1);
    ASSERT_EQ(ping.type(), MsgType::Ping);
    clock.advanceUs(1250);  // a LAN round trip: 1.25 ms, not rounded to whole milliseconds
    FrameWriter w(MsgType::Pong, ping.header.sequence);
    w.tail(ping.payload());
    feed(1, w.finish());
    EXPECT_EQ(sm().gauges().latency_max_ms, 1.25);
    feed(1, msg::encodeEmpty(MsgType::HealthCheck, 1));
    auto json = asJson(one(1));
    EXPECT_NE(json.find("\"rtt_ms\":1.250"), std::string::npos) << json;
}

TEST_F(CoreHeartbeatTest, UnsolicitedOrStalePongsGiveNoSample) {
    login(1, "alice");
    feed(1, msg::encodePing(MsgType::Pong, 12345, 1));
    EXPECT_TRUE(take(1).empty());
    advance(kInterval);
    auto ping = one(1);
    feed(1, msg::encodePing(MsgType::Pong, asPing(ping).token + 1, 0));  // wrong token
    EXPECT_EQ(sm().gauges().latency_samples, 0U);
    feed(1, msg::encodePing(MsgType::Pong, asPing(ping).token, 0));
    feed(1, msg::encodePing(MsgType::Pong, asPing(ping).token, 0));  // a duplicate
    EXPECT_EQ(sm().gauges().latency_samples, 1U);
    // A PONG too short for its token is a field error.
    feed(1, rawFrame(0x04, 0, 9, Bytes{1, 2, 3}));
    EXPECT_EQ(asError(one(1)).code, code(ErrorCode::InvalidFormat));
}

// Connections pinged in the same tick share one PING frame (one allocation for thousands of
// idle connections) and its token; each one's PONG with it still counts, and the next round's
// PING has a new token, so a PONG of the old round is stale.
TEST_F(CoreHeartbeatTest, OneTicksPingsShareOneFrameAndToken) {
    login(1, "alice");
    login(2, "bob");
    login(3, "carol");
    advance(100);  // one tick: the JOINED events go out
    for (ConnId c : {1, 2, 3}) {
        take(c);  // what registering sent
    }
    advance(kInterval - 100);
    const auto first = out.framesFor(1);
    ASSERT_EQ(first.size(), 1U);
    for (ConnId c : {2, 3}) {
        const auto frames = out.framesFor(c);
        ASSERT_EQ(frames.size(), 1U) << c;
        EXPECT_EQ(frames[0].frame.get(), first[0].frame.get()) << "one frame for the tick: " << c;
    }
    const std::uint64_t token = asPing(one(1)).token;
    EXPECT_EQ(asPing(one(2)).token, token);
    EXPECT_EQ(asPing(one(3)).token, token);
    for (ConnId c : {1, 2, 3}) {
        feed(c, msg::encodePing(MsgType::Pong, token, 0));
    }
    EXPECT_EQ(sm().gauges().latency_samples, 3U);

    advance(kInterval);
    const std::uint64_t next = asPing(one(1)).token;
    EXPECT_NE(next, token);
    feed(1, msg::encodePing(MsgType::Pong, token, 0));  // the previous round's: stale
    EXPECT_EQ(sm().gauges().latency_samples, 3U);
    feed(1, msg::encodePing(MsgType::Pong, next, 0));
    EXPECT_EQ(sm().gauges().latency_samples, 4U);
}

// A PING is an idle connection's only output: it goes through Outbox::sendNow (written at
// once, no queue held until the flush); everything else through send().
TEST_F(CoreHeartbeatTest, PingsAreSentNowAndOtherFramesAreQueued) {
    login(1, "alice");
    for (const SentFrame& f : out.framesFor(1)) {
        EXPECT_FALSE(f.now) << "registering's answers are queued: " << static_cast<int>(f.type());
    }
    take(1);
    advance(kInterval);
    const SentFrame ping = one(1);
    EXPECT_EQ(ping.type(), MsgType::Ping);
    EXPECT_TRUE(ping.now);
}

TEST_F(CoreHeartbeatTest, UnregisteredConnectionsArePingedAndDropped) {
    connect(1);
    advance(kInterval);
    EXPECT_EQ(one(1).type(), MsgType::Ping);
    advance(kInterval);
    EXPECT_TRUE(out.isClosing(1));
    disconnect(1, {}, DisconnectReason::HeartbeatTimeout);
    EXPECT_EQ(sm().gauges().connections, 0U);
}

TEST_F(CoreHeartbeatTest, ClientPingGetsPongEchoingTheWholePayloadAndSequence) {
    connect(1);                                         // allowed before REGISTER
    Bytes payload{1, 2, 3, 4, 5, 6, 7, 8, 0xde, 0xad};  // trailing bytes included
    feed(1, rawFrame(0x14, 0, 4242, payload));
    auto f = one(1);
    EXPECT_EQ(f.type(), MsgType::Pong);
    EXPECT_EQ(f.header.sequence, 4242);
    EXPECT_EQ(Bytes(f.payload().begin(), f.payload().end()), payload);
    feed(1, rawFrame(0x14, 0, 4243, Bytes{1, 2}));
    EXPECT_EQ(asError(one(1)).code, code(ErrorCode::InvalidFormat));
}

TEST_F(CoreHeartbeatTest, ManyConnectionsAfterALongJumpAreAllHandled) {
    for (ConnId c = 1; c <= 200; ++c) {
        connect(c);
    }
    advance(10 * kInterval);  // longer than a wheel revolution
    for (ConnId c = 1; c <= 200; ++c) {
        EXPECT_EQ(one(c).type(), MsgType::Ping) << c;
    }
    advance(kInterval);
    for (ConnId c = 1; c <= 200; ++c) {
        EXPECT_TRUE(out.isClosing(c)) << c;
    }
}

TEST_F(CoreHeartbeatTest, PingFiresWithinOneTickOffTheGrid) {
    config.ping_interval_ms = 500;
    clock.advance(37);
    connect(1);
    for (int i = 0; i < 4; ++i) {
        advance(100);
    }
    EXPECT_TRUE(take(1).empty());  // 400 ms
    advance(100);                  // 500 ms
    EXPECT_EQ(one(1).type(), MsgType::Ping);
}

TEST_F(CoreHeartbeatTest, ReconfigureShortensThePingInterval) {
    connect(1);
    advance(1000);
    core::CoreConfig c = config;
    c.ping_interval_ms = 2000;
    sm().reconfigure(c);
    advance(999);
    EXPECT_TRUE(take(1).empty());
    advance(1);
    EXPECT_EQ(one(1).type(), MsgType::Ping);
}

TEST_F(CoreHeartbeatTest, ZeroPingIntervalTurnsHeartbeatsOff) {
    config.ping_interval_ms = 0;
    auto w = login(1, "alice");
    EXPECT_EQ(w.heartbeat_s, 0);
    advance(3'600'000);
    EXPECT_TRUE(take(1).empty());
    EXPECT_FALSE(out.isClosing(1));
}

}  // namespace
}  // namespace tundra::testing
