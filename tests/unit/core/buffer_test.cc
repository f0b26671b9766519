// SPDX-License-Identifier: Apache-2.0
// Core unit tests: offline buffers (overflow, DROPPED, replay order and flags), the per-user
// delivery window (last_id replays), unwritten deliveries, and the byte budgets.
#include <gtest/gtest.h>

#include "unit/core/core_fixture.h"

namespace tundra::testing {

namespace {

class CoreBufferTest : public CoreTest {
protected:
    CoreBufferTest() { config.presence_events = false; }

    /// Registers `name` then logs it out, so it is known and offline.
    void knownOffline(ConnId conn, std::string_view name) {
        login(conn, name);
        feed(conn, msg::encodeEmpty(MsgType::Logout, 1));
        disconnect(conn);
        take(conn);
    }

    /// Sends `n` direct messages "m<i>" from `from` to `to`; returns their ids.
    std::vector<std::uint64_t> sendN(ConnId from, std::string_view to, int n, int first = 0) {
        std::vector<std::uint64_t> ids;
        for (int i = first; i < first + n; ++i) {
            ids.push_back(sayAck(from, to, "m" + std::to_string(i)).id);
        }
        return ids;
    }

    /// Registers `name` on `conn`; returns every frame it got (WELCOME first).
    std::vector<SentFrame> relogin(ConnId conn, std::string_view name, Uuid session = {},
                                   std::uint64_t last_id = 0) {
        connect(conn);
        feed(conn, registerFrame(name, session, ClientKind::User, last_id));
        return take(conn);
    }
};

TEST_F(CoreBufferTest, OverflowAt51DropsTheOldestAndReplaysFiftyInOrder) {
    knownOffline(2, "bob");
    login(1, "alice");
    auto ids = sendN(1, "bob", 51);
    EXPECT_EQ(sm().metrics().offline_dropped_total, 1U);
    EXPECT_EQ(sm().gauges().buffered_messages, 50U);
    clock.advance(5000);
    auto frames = relogin(3, "bob");
    ASSERT_EQ(frames.size(), 52U);  // WELCOME, DROPPED, 50 replays
    auto w = asSystem(frames[0]);
    ASSERT_EQ(w.event, SystemEvent::Welcome);
    EXPECT_EQ(w.welcome.pending, 50U);
    auto d = asSystem(frames[1]);
    EXPECT_EQ(d.event, SystemEvent::Dropped);
    EXPECT_EQ(d.dropped, 1U);
    EXPECT_EQ(frames[1].header.sequence, 0);
    for (std::size_t i = 0; i < 50; ++i) {
        const auto& f = frames[2 + i];
        EXPECT_TRUE(f.replay());
        EXPECT_EQ(f.header.flags, flags::kReplay);
        EXPECT_EQ(f.header.sequence, 0);
        auto dd = asDelivery(f);
        EXPECT_EQ(dd.id, ids[i + 1]);  // original id
        EXPECT_EQ(dd.text, "m" + std::to_string(i + 1));
        EXPECT_EQ(dd.time_ms, static_cast<std::uint64_t>(clock.wallMs() - 5000));  // original
    }
    EXPECT_EQ(sm().gauges().buffered_messages, 0U);
    // DROPPED is reported once: the next login has nothing pending.
    feed(3, msg::encodeEmpty(MsgType::Logout, 2));
    disconnect(3);
    frames = relogin(4, "bob");
    ASSERT_EQ(frames.size(), 1U);
    EXPECT_EQ(asSystem(frames[0]).welcome.pending, 0U);
}

TEST_F(CoreBufferTest, MaxBufferedIsConfigurable) {
    config.max_buffered = 3;
    knownOffline(2, "bob");
    login(1, "alice");
    auto ids = sendN(1, "bob", 5);
    auto frames = relogin(3, "bob");
    ASSERT_EQ(frames.size(), 5U);
    EXPECT_EQ(asSystem(frames[0]).welcome.pending, 3U);
    EXPECT_EQ(asSystem(frames[1]).dropped, 2U);
    EXPECT_EQ(asDelivery(frames[2]).id, ids[2]);
    EXPECT_EQ(asDelivery(frames[4]).id, ids[4]);
}

TEST_F(CoreBufferTest, DetachedSessionGetsBroadcastsAndDirectsOnResume) {
    login(1, "alice");
    auto w = login(2, "bob");
    disconnect(2);
    auto a = sayAck(1, "", "to all");
    auto b = sayAck(1, "bob", "to bob");
    EXPECT_EQ(a.buffered, 1U);
    EXPECT_EQ(b.buffered, 1U);
    auto frames = relogin(3, "bob", w.session);
    ASSERT_EQ(frames.size(), 3U);
    auto s = asSystem(frames[0]);
    EXPECT_TRUE(s.welcome.resumed);
    EXPECT_EQ(s.welcome.pending, 2U);
    EXPECT_EQ(asDelivery(frames[1]).id, a.id);
    EXPECT_EQ(asDelivery(frames[2]).id, b.id);
    EXPECT_TRUE(frames[1].replay());
    EXPECT_EQ(frames[1].delivery_id, a.id);  // replays are tracked like deliveries
}

TEST_F(CoreBufferTest, BufferOutlivesSessionExpiry) {
    login(1, "alice");
    login(2, "bob");
    disconnect(2);
    auto a = sayAck(1, "", "while detached");
    advance(config.session_timeout_ms);
    EXPECT_EQ(sm().metrics().sessions_expired_total, 1U);
    EXPECT_EQ(sayAck(1, "", "after expiry").buffered, 0U) << "offline: no broadcasts";
    auto b = sayAck(1, "bob", "direct after expiry");
    auto frames = relogin(3, "bob");
    ASSERT_EQ(frames.size(), 3U);
    EXPECT_FALSE(asSystem(frames[0]).welcome.resumed);
    EXPECT_EQ(asSystem(frames[0]).welcome.pending, 2U);
    EXPECT_EQ(asDelivery(frames[1]).id, a.id);
    EXPECT_EQ(asDelivery(frames[2]).id, b.id);
}

TEST_F(CoreBufferTest, ReplayIsACopyAndTheStoredFrameKeepsItsFlags) {
    login(1, "alice");
    login(2, "carol");
    auto w = login(3, "bob");
    disconnect(3);
    sayAck(1, "", "shared");
    auto live = one(2);
    EXPECT_EQ(live.header.flags, 0);
    auto frames = relogin(4, "bob", w.session);
    ASSERT_EQ(frames.size(), 2U);
    EXPECT_NE(frames[1].frame.get(), live.frame.get());
    EXPECT_EQ((*live.frame)[1], 0) << "the shared frame was not modified";
    Bytes a(live.frame->begin(), live.frame->end());
    Bytes b(frames[1].frame->begin(), frames[1].frame->end());
    b[1] = 0;
    EXPECT_EQ(a, b);
}

TEST_F(CoreBufferTest, WindowReplaysDeliveriesAboveLastId) {
    login(1, "alice");
    auto w = login(2, "bob");
    auto ids = sendN(1, "bob", 5);
    EXPECT_EQ(take(2).size(), 5U);
    EXPECT_EQ(sm().gauges().window_messages, 5U);
    // Takeover by a client that processed ids[1]: the three later ones come again.
    auto frames = relogin(3, "bob", w.session, ids[1]);
    ASSERT_EQ(frames.size(), 4U);
    EXPECT_EQ(asSystem(frames[0]).welcome.pending, 3U);
    for (int i = 0; i < 3; ++i) {
        EXPECT_TRUE(frames[1 + i].replay());
        EXPECT_EQ(asDelivery(frames[1 + i]).id, ids[2 + i]);
    }
    // last_id 0 replays only what was never written: nothing here.
    auto frames2 = relogin(4, "bob", w.session, 0);
    ASSERT_EQ(frames2.size(), 1U);
    EXPECT_EQ(asSystem(frames2[0]).welcome.pending, 0U);
    // A last_id the server never issued is just a number.
    auto frames3 = relogin(5, "bob", w.session, 1);
    EXPECT_EQ(asSystem(frames3[0]).welcome.pending, 5U);
}

TEST_F(CoreBufferTest, APongReleasesTheWindowQueuedBeforeItsPing) {
    login(1, "alice");
    auto w = login(2, "bob");
    auto before = sendN(1, "bob", 5);
    take(2);
    advance(config.ping_interval_ms);  // bob was silent: PING
    take(1);                           // (alice's own PING)
    auto ping = one(2);
    ASSERT_EQ(ping.type(), MsgType::Ping);
    auto after = sendN(1, "bob", 2, 5);  // queued behind the PING: not confirmed by its PONG
    take(2);
    EXPECT_EQ(sm().gauges().window_messages, 7U);
    feed(2, msg::encodePing(MsgType::Pong, asPing(ping).token + 1, 0));  // a stale token
    EXPECT_EQ(sm().gauges().window_messages, 7U);
    FrameWriter pong(MsgType::Pong, ping.header.sequence);
    pong.tail(ping.payload());
    feed(2, pong.finish());
    EXPECT_EQ(sm().gauges().window_messages, 2U);
    // A takeover with an old last_id replays only what the PONG did not confirm.
    auto frames = relogin(3, "bob", w.session, before[0]);
    ASSERT_EQ(frames.size(), 3U);
    EXPECT_EQ(asSystem(frames[0]).welcome.pending, 2U);
    EXPECT_EQ(asDelivery(frames[1]).id, after[0]);
    EXPECT_EQ(asDelivery(frames[2]).id, after[1]);
}

TEST_F(CoreBufferTest, WindowKeepsOnlyMaxBufferedDeliveries) {
    config.max_buffered = 4;
    login(1, "alice");
    auto w = login(2, "bob");
    auto ids = sendN(1, "bob", 10);
    take(2);
    auto frames = relogin(3, "bob", w.session, ids[0]);
    ASSERT_EQ(frames.size(), 5U);
    EXPECT_EQ(asSystem(frames[0]).welcome.pending, 4U);
    EXPECT_EQ(asDelivery(frames[1]).id, ids[6]);
    EXPECT_EQ(sm().metrics().offline_dropped_total, 0U) << "window aging is not a loss";
}

TEST_F(CoreBufferTest, WindowSurvivesLogoutAndExpiryAndComesBeforeOfflineEntries) {
    login(1, "alice");
    login(2, "bob");
    auto early = sendN(1, "bob", 3);  // written: window
    feed(2, msg::encodeEmpty(MsgType::Logout, 1));
    disconnect(2);
    auto late = sendN(1, "bob", 2, 3);  // offline
    // A new session of a client that remembers early[0].
    auto frames = relogin(3, "bob", {}, early[0]);
    ASSERT_EQ(frames.size(), 5U);
    EXPECT_EQ(asSystem(frames[0]).welcome.pending, 4U);
    std::vector<std::uint64_t> got;
    for (std::size_t i = 1; i < frames.size(); ++i) {
        EXPECT_TRUE(frames[i].replay());
        got.push_back(asDelivery(frames[i]).id);
    }
    EXPECT_EQ(got, (std::vector<std::uint64_t>{early[1], early[2], late[0], late[1]}));
}

TEST_F(CoreBufferTest, UnwrittenDeliveriesMoveToTheOfflineBufferOnce) {
    login(1, "alice");
    auto w = login(2, "bob");
    auto ids = sendN(1, "bob", 4);
    take(2);
    // The connection died with the last two still queued.
    disconnect(2, {ids[2], ids[3]}, DisconnectReason::SlowConsumer);
    EXPECT_EQ(sm().metrics().slow_consumer_disconnects_total, 1U);
    EXPECT_EQ(sm().gauges().buffered_messages, 2U);
    EXPECT_EQ(sm().gauges().window_messages, 2U);
    // last_id 0: only what was never written.
    auto frames = relogin(3, "bob", w.session, 0);
    ASSERT_EQ(frames.size(), 3U);
    EXPECT_EQ(asSystem(frames[0]).welcome.pending, 2U);
    EXPECT_EQ(asDelivery(frames[1]).id, ids[2]);
    EXPECT_EQ(asDelivery(frames[2]).id, ids[3]);
    EXPECT_EQ(sm().metrics().offline_dropped_total, 0U);
}

TEST_F(CoreBufferTest, UnwrittenWithLastIdIsNotReplayedTwice) {
    login(1, "alice");
    auto w = login(2, "bob");
    auto ids = sendN(1, "bob", 4);
    take(2);
    disconnect(2, {ids[3]});
    auto frames = relogin(3, "bob", w.session, ids[1]);
    // Window above ids[1]: ids[2]; offline: ids[3]. Each once.
    ASSERT_EQ(frames.size(), 3U);
    EXPECT_EQ(asSystem(frames[0]).welcome.pending, 2U);
    EXPECT_EQ(asDelivery(frames[1]).id, ids[2]);
    EXPECT_EQ(asDelivery(frames[2]).id, ids[3]);
}

TEST_F(CoreBufferTest, UnwrittenAlreadyOutOfTheWindowCountsAsDropped) {
    config.max_buffered = 2;
    login(1, "alice");
    auto w = login(2, "bob");
    auto ids = sendN(1, "bob", 4);
    take(2);
    disconnect(2, {ids[0], ids[1], ids[2], ids[3]});
    auto frames = relogin(3, "bob", w.session);
    ASSERT_EQ(frames.size(), 4U);
    EXPECT_EQ(asSystem(frames[0]).welcome.pending, 2U);
    EXPECT_EQ(asSystem(frames[1]).dropped, 2U);
    EXPECT_EQ(asDelivery(frames[2]).id, ids[2]);
    EXPECT_EQ(asDelivery(frames[3]).id, ids[3]);
}

TEST_F(CoreBufferTest, ReplayedDeliveriesThatWereNeverWrittenComeBackAgain) {
    knownOffline(2, "bob");
    login(1, "alice");
    auto ids = sendN(1, "bob", 2);
    auto frames = relogin(3, "bob");
    ASSERT_EQ(frames.size(), 3U);
    auto session = asSystem(frames[0]).welcome.session;
    disconnect(3, {frames[1].delivery_id, frames[2].delivery_id});
    frames = relogin(4, "bob", session);
    ASSERT_EQ(frames.size(), 3U);
    EXPECT_EQ(asDelivery(frames[1]).id, ids[0]);
    EXPECT_EQ(asDelivery(frames[2]).id, ids[1]);
}

TEST_F(CoreBufferTest, TakeoverResendsWhatTheOldConnectionNeverWrote) {
    login(1, "alice");
    auto w = login(2, "bob");
    auto ids = sendN(1, "bob", 3);
    take(2);
    // bob's new connection takes over without last_id...
    auto frames = relogin(3, "bob", w.session, 0);
    ASSERT_EQ(frames.size(), 1U);
    // ...then the old connection reports two deliveries it never wrote: they reach conn 3.
    disconnect(2, {ids[1], ids[2]});
    auto again = take(3);
    ASSERT_EQ(again.size(), 2U);
    EXPECT_TRUE(again[0].replay());
    EXPECT_EQ(asDelivery(again[0]).id, ids[1]);
    EXPECT_EQ(asDelivery(again[1]).id, ids[2]);
    EXPECT_EQ(sm().gauges().buffered_messages, 0U);
}

TEST_F(CoreBufferTest, TakeoverWithLastIdAlreadyCoveredTheUnwritten) {
    login(1, "alice");
    auto w = login(2, "bob");
    auto ids = sendN(1, "bob", 3);
    take(2);
    auto frames = relogin(3, "bob", w.session, ids[0]);
    ASSERT_EQ(frames.size(), 3U);
    disconnect(2, {ids[1], ids[2]});
    EXPECT_TRUE(take(3).empty());
}

TEST_F(CoreBufferTest, PerUserByteBudgetDropsTheUsersOldestEntries) {
    // Each delivery "mN" from alice to bob: 7 + 8 + 8 + 2 + 5 + 2 + 3 + 2 = 37 bytes.
    config.user_buffer_bytes = 37 * 3;
    knownOffline(2, "bob");
    login(1, "alice");
    auto ids = sendN(1, "bob", 5);
    EXPECT_EQ(sm().gauges().buffered_messages, 3U);
    EXPECT_EQ(sm().gauges().buffered_bytes, 37U * 3);
    EXPECT_EQ(sm().metrics().offline_dropped_total, 2U);
    auto frames = relogin(3, "bob");
    ASSERT_EQ(frames.size(), 5U);
    EXPECT_EQ(asSystem(frames[1]).dropped, 2U);
    EXPECT_EQ(asDelivery(frames[2]).id, ids[2]);
}

TEST_F(CoreBufferTest, WindowEntriesGoBeforeOfflineEntriesUnderTheByteBudget) {
    config.user_buffer_bytes = 37 * 3;
    login(1, "alice");
    auto w = login(2, "bob");
    sendN(1, "bob", 3);  // window full of budget
    take(2);
    disconnect(2);
    auto ids = sendN(1, "bob", 2, 3);  // offline: pushes two window entries out
    EXPECT_EQ(sm().gauges().window_messages, 1U);
    EXPECT_EQ(sm().gauges().buffered_messages, 2U);
    EXPECT_EQ(sm().metrics().offline_dropped_total, 0U);
    auto frames = relogin(3, "bob", w.session);
    ASSERT_EQ(frames.size(), 3U);
    EXPECT_EQ(asDelivery(frames[1]).id, ids[0]);
}

TEST_F(CoreBufferTest, AFrameLargerThanTheUserBudgetIsNotStored) {
    config.user_buffer_bytes = 100;
    knownOffline(2, "bob");
    login(1, "alice");
    sendN(1, "bob", 1);
    auto ack = sayAck(1, "bob", std::string(200, 'x'));
    EXPECT_EQ(ack.buffered, 0U);
    EXPECT_EQ(sm().gauges().buffered_messages, 1U) << "the earlier entry survives";
    EXPECT_EQ(sm().metrics().offline_dropped_total, 1U);
}

TEST_F(CoreBufferTest, TotalBudgetTakesFromTheHeaviestUserFirst) {
    config.total_buffer_bytes = 37 * 4;  // recipients with 3-letter names: 37 bytes each
    knownOffline(2, "bob");
    knownOffline(3, "cat");
    knownOffline(4, "dan");
    login(1, "alice");
    auto bob = sendN(1, "bob", 3);
    sendN(1, "cat", 1);
    EXPECT_EQ(sm().gauges().buffered_bytes, 37U * 4);
    // dan has nothing of his own: bob, the heaviest, gives his oldest (issue #9: the total is
    // not a first-come pool).
    auto d = sayAck(1, "dan", "m7");
    EXPECT_EQ(d.buffered, 1U);
    // cat (1 entry) still holds less than bob (2): bob gives again.
    auto c2 = sayAck(1, "cat", "m9");
    EXPECT_EQ(c2.buffered, 1U);
    // Now cat holds the most (2 against 1 and 1): it gives its own oldest.
    auto c3 = sayAck(1, "cat", "m8");
    EXPECT_EQ(c3.buffered, 1U);
    EXPECT_EQ(sm().gauges().buffered_messages, 4U);
    EXPECT_EQ(sm().metrics().offline_dropped_total, 3U);
    EXPECT_EQ(sm().metrics().budget_evictions_total, 2U);
    auto frames = relogin(5, "bob");
    ASSERT_EQ(frames.size(), 3U);  // WELCOME, DROPPED 2, his newest message
    EXPECT_EQ(asSystem(frames[0]).welcome.pending, 1U);
    EXPECT_EQ(asSystem(frames[1]).dropped, 2U);
    EXPECT_EQ(asDelivery(frames[2]).id, bob[2]);
    frames = relogin(6, "cat");
    ASSERT_EQ(frames.size(), 4U);  // WELCOME, DROPPED 1, m9, m8
    EXPECT_EQ(asSystem(frames[1]).dropped, 1U);
    EXPECT_EQ(asDelivery(frames[2]).id, c2.id);
    EXPECT_EQ(asDelivery(frames[3]).id, c3.id);
    frames = relogin(7, "dan");
    ASSERT_EQ(frames.size(), 2U);  // WELCOME, m7: nothing dropped
    EXPECT_EQ(asSystem(frames[0]).welcome.pending, 1U);
    EXPECT_EQ(asDelivery(frames[1]).id, d.id);
}

TEST_F(CoreBufferTest, ASlowConsumerCutMovesThousandsOfUnwrittenDeliveriesInOrder) {
    // Raised limits: 5000 deliveries queued to bob's connection, none written when it dies.
    config.max_buffered = 10'000;
    config.user_buffer_bytes = 64U << 20;
    config.rate_messages_per_s = 0;
    login(1, "alice");
    auto w = login(2, "bob");
    auto ids = sendN(1, "bob", 5000);
    take(2);
    disconnect(2, ids, DisconnectReason::SlowConsumer);
    EXPECT_EQ(sm().gauges().buffered_messages, 5000U);
    EXPECT_EQ(sm().gauges().window_messages, 0U);
    EXPECT_EQ(sm().metrics().offline_dropped_total, 0U);
    auto frames = relogin(3, "bob", w.session);
    ASSERT_EQ(frames.size(), 5001U);
    for (std::size_t i = 0; i < ids.size(); ++i) {
        ASSERT_EQ(asDelivery(frames[1 + i]).id, ids[i]);
    }
}

TEST_F(CoreBufferTest, ReconfigureShrinksWhatIsStored) {
    knownOffline(2, "bob");
    login(1, "alice");
    sendN(1, "bob", 10);
    core::CoreConfig c = config;
    c.max_buffered = 4;
    sm().reconfigure(c);
    EXPECT_EQ(sm().gauges().buffered_messages, 4U);
    EXPECT_EQ(sm().metrics().offline_dropped_total, 6U);
}

}  // namespace
}  // namespace tundra::testing
