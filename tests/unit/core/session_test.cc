// SPDX-License-Identifier: Apache-2.0
// Core unit tests: registration, name conflicts, detach/resume, expiry, takeover, LOGOUT,
// presence, max_clients, max_users and shutdown.
#include <gtest/gtest.h>

#include "unit/core/core_fixture.h"

namespace tundra::testing {
namespace {

TEST_F(CoreTest, RegisterGetsWelcomeWithNewV4SessionAndLimits) {
    config = core::CoreConfig{};  // the defaults
    connect(1);
    feed(1, registerFrame("alice", {}, ClientKind::User, 0, 77));
    auto f = one(1);
    EXPECT_EQ(f.header.sequence, 77);  // echoes the REGISTER
    auto s = asSystem(f);
    ASSERT_EQ(s.event, SystemEvent::Welcome);
    EXPECT_EQ(s.welcome.session, testUuid(1));
    EXPECT_EQ(s.welcome.session[6] >> 4, 4);
    EXPECT_FALSE(s.welcome.resumed);
    EXPECT_EQ(s.welcome.pending, 0U);
    EXPECT_EQ(s.welcome.heartbeat_s, 30);
    EXPECT_EQ(s.welcome.session_timeout_s, 120);
    EXPECT_EQ(s.welcome.max_payload, 65534);
    EXPECT_EQ(sm().metrics().registrations_total, 1U);
    EXPECT_EQ(sm().gauges().sessions_online, 1U);
}

TEST_F(CoreTest, WelcomeRoundsThePingIntervalUpAndShowsConfiguredLimits) {
    config.ping_interval_ms = 1500;
    config.session_timeout_ms = 10'000;
    config.max_payload = 4096;
    auto w = login(1, "alice");
    EXPECT_EQ(w.heartbeat_s, 2);
    EXPECT_EQ(w.session_timeout_s, 10);
    EXPECT_EQ(w.max_payload, 4096);
}

TEST_F(CoreTest, NameOnlineOrDetachedIsTakenAndConnectionStaysUsable) {
    login(1, "alice");
    connect(2);
    EXPECT_EQ(errorFor(2, registerFrame("alice")), code(ErrorCode::UsernameTaken));
    disconnect(1);  // detached: still reserved
    EXPECT_EQ(errorFor(2, registerFrame("alice")), code(ErrorCode::UsernameTaken));
    feed(2, registerFrame("alice2"));
    EXPECT_EQ(asSystem(one(2)).event, SystemEvent::Welcome);
}

TEST_F(CoreTest, NamesAreCaseSensitive) {
    login(1, "alice");
    auto w = login(2, "Alice");
    EXPECT_EQ(w.session, testUuid(2));
}

TEST_F(CoreTest, RegisterTwiceIsAlreadyRegistered) {
    login(1, "alice");
    EXPECT_EQ(errorFor(1, registerFrame("other")), code(ErrorCode::AlreadyRegistered));
    EXPECT_EQ(errorFor(1, registerFrame("alice")), code(ErrorCode::AlreadyRegistered));
    EXPECT_EQ(sm().gauges().sessions_online, 1U);
}

TEST_F(CoreTest, RegisterFieldRulesComeBeforeNameRules) {
    connect(1);
    EXPECT_EQ(errorFor(1, registerFrame("bad name")), code(ErrorCode::InvalidName));
    EXPECT_EQ(errorFor(1, registerFrame(std::string(33, 'a'))), code(ErrorCode::InvalidName));
    EXPECT_EQ(errorFor(1, registerFrame("")), code(ErrorCode::InvalidName));
    // Not UTF-8: a field rule, so INVALID_FORMAT although it is also a bad name.
    EXPECT_EQ(errorFor(1, registerFrame("\xc3\x28")), code(ErrorCode::InvalidFormat));
    // kind 2.
    Bytes bad = registerFrame("alice");
    bad[kHeaderSize + 2 + 5 + 16] = 2;
    EXPECT_EQ(errorFor(1, bad), code(ErrorCode::InvalidFormat));
    // Truncated payload.
    Bytes shortp = rawFrame(0x01, 0, 4, Bytes{0, 5, 'a'});
    EXPECT_EQ(errorFor(1, shortp), code(ErrorCode::InvalidFormat));
    // Every failure left the connection open: a valid REGISTER works.
    feed(1, registerFrame("alice", {}, ClientKind::Agent));
    EXPECT_EQ(asSystem(one(1)).event, SystemEvent::Welcome);
}

TEST_F(CoreTest, TokenIsIgnored) {
    connect(1);
    feed(1, msg::encode(msg::Register{"alice", {}, ClientKind::User, "secret", 0}, 1));
    EXPECT_EQ(asSystem(one(1)).event, SystemEvent::Welcome);
}

TEST_F(CoreTest, DetachAndResumeWithinTimeout) {
    login(1, "alice");
    auto w = login(2, "bob");
    flushPresence();
    take(1);  // JOINED bob
    take(2);  // JOINED alice: both joined within one tick
    disconnect(2);
    flushPresence();  // presence goes out on the next tick
    auto left = take(1);
    ASSERT_EQ(left.size(), 1U);
    auto ls = asSystem(left[0]);
    EXPECT_EQ(ls.event, SystemEvent::Left);
    EXPECT_EQ(ls.name, "bob");
    EXPECT_EQ(left[0].header.sequence, 0);
    EXPECT_EQ(sm().gauges().sessions_detached, 1U);
    EXPECT_EQ(stateOf(1, "bob"), UserState::Detached);

    advance(config.session_timeout_ms - 1);
    connect(3);
    feed(3, registerFrame("bob", w.session, ClientKind::User, 0, 9));
    auto f = one(3);
    EXPECT_EQ(f.header.sequence, 9);
    auto s = asSystem(f);
    ASSERT_EQ(s.event, SystemEvent::Welcome);
    EXPECT_TRUE(s.welcome.resumed);
    EXPECT_EQ(s.welcome.session, w.session);
    EXPECT_EQ(sm().metrics().resumes_total, 1U);
    // A resume announces JOINED again.
    flushPresence();
    auto joined = take(1);
    ASSERT_EQ(joined.size(), 1U);
    EXPECT_EQ(asSystem(joined[0]).event, SystemEvent::Joined);
    EXPECT_EQ(asSystem(joined[0]).name, "bob");
    EXPECT_EQ(stateOf(1, "bob"), UserState::Online);
    // The resumed session does not expire at the old deadline.
    advance(10);
    EXPECT_EQ(stateOf(1, "bob"), UserState::Online);
}

TEST_F(CoreTest, ResumeWithUnknownUuidOrAnotherNameIsSessionExpired) {
    auto w = login(1, "alice");
    login(2, "bob");
    disconnect(1);
    connect(3);
    EXPECT_EQ(errorFor(3, registerFrame("bob", w.session)), code(ErrorCode::SessionExpired));
    EXPECT_EQ(errorFor(3, registerFrame("alice", testUuid(999))), code(ErrorCode::SessionExpired));
    // The right pair still resumes.
    feed(3, registerFrame("alice", w.session));
    EXPECT_TRUE(asSystem(one(3)).welcome.resumed);
}

TEST_F(CoreTest, DetachedSessionExpiresAtTheDeadlineAndNotBefore) {
    login(1, "watch");
    auto w = login(2, "bob");
    take(1);
    disconnect(2);
    take(1);  // LEFT
    advance(config.session_timeout_ms - 1);
    EXPECT_EQ(sm().gauges().sessions_detached, 1U);
    EXPECT_EQ(sm().metrics().sessions_expired_total, 0U);
    advance(1);
    EXPECT_EQ(sm().gauges().sessions_detached, 0U);
    EXPECT_EQ(sm().metrics().sessions_expired_total, 1U);
    EXPECT_TRUE(take(1).empty()) << "expiry sends no second LEFT";
    EXPECT_EQ(stateOf(1, "bob"), UserState::Offline);
    connect(3);
    EXPECT_EQ(errorFor(3, registerFrame("bob", w.session)), code(ErrorCode::SessionExpired));
    feed(3, registerFrame("bob"));  // the name is free
    auto s = asSystem(one(3));
    EXPECT_EQ(s.event, SystemEvent::Welcome);
    EXPECT_FALSE(s.welcome.resumed);
    EXPECT_NE(s.welcome.session, w.session);
}

TEST_F(CoreTest, ExpiryIsExactForRegisterEvenBetweenTicks) {
    auto w = login(1, "bob");
    disconnect(1);
    clock.advance(config.session_timeout_ms);  // no tick
    connect(2);
    EXPECT_EQ(errorFor(2, registerFrame("bob", w.session)), code(ErrorCode::SessionExpired));
    EXPECT_EQ(sm().metrics().sessions_expired_total, 1U);
    feed(2, registerFrame("bob"));
    EXPECT_EQ(asSystem(one(2)).event, SystemEvent::Welcome);
}

TEST_F(CoreTest, ExpiryFiresWithinOneTickOfTheDeadline) {
    config.session_timeout_ms = 1'000;
    login(1, "bob");
    clock.advance(37);  // detach off the tick grid
    disconnect(1);
    for (int i = 0; i < 9; ++i) {
        advance(100);
    }
    EXPECT_EQ(sm().metrics().sessions_expired_total, 0U);  // 900 ms
    advance(100);                                          // 1000 ms: due
    EXPECT_EQ(sm().metrics().sessions_expired_total, 1U);
}

TEST_F(CoreTest, TakeoverClosesOldConnectionWithByeAndAnnouncesNothing) {
    login(1, "alice");
    auto w = login(2, "bob");
    take(1);  // JOINED bob
    connect(3);
    feed(3, registerFrame("bob", w.session, ClientKind::User, 0, 4));
    auto f = one(3);
    auto s = asSystem(f);
    ASSERT_EQ(s.event, SystemEvent::Welcome);
    EXPECT_TRUE(s.welcome.resumed);
    EXPECT_EQ(s.welcome.session, w.session);
    EXPECT_EQ(f.header.sequence, 4);
    auto bye = one(2);
    EXPECT_EQ(bye.header.sequence, 0);
    EXPECT_EQ(asSystem(bye).event, SystemEvent::Bye);
    EXPECT_EQ(asSystem(bye).text, "taken over");
    EXPECT_TRUE(out.isClosing(2));
    EXPECT_TRUE(take(1).empty()) << "no LEFT or JOINED on takeover";
    // The old connection's close later changes nothing: bob stays online on conn 3.
    disconnect(2);
    EXPECT_TRUE(take(1).empty());
    EXPECT_EQ(stateOf(1, "bob"), UserState::Online);
    auto ack = sayAck(1, "bob", "hi");
    EXPECT_EQ(ack.delivered, 1U);
    auto got = take(3);
    ASSERT_EQ(got.size(), 1U);
    EXPECT_EQ(asDelivery(got[0]).text, "hi");
}

TEST_F(CoreTest, LogoutSaysByeEndsSessionAndSendsOneLeft) {
    login(1, "alice");
    auto w = login(2, "bob");
    flushPresence();
    take(1);
    take(2);  // JOINED alice: both joined within one tick
    feed(2, msg::encodeEmpty(MsgType::Logout, 31));
    auto bye = one(2);
    EXPECT_EQ(bye.header.sequence, 31);
    EXPECT_EQ(asSystem(bye).event, SystemEvent::Bye);
    EXPECT_TRUE(out.isClosing(2));
    flushPresence();
    auto left = take(1);
    ASSERT_EQ(left.size(), 1U);
    EXPECT_EQ(asSystem(left[0]).event, SystemEvent::Left);
    // Frames that still arrive before the close are ignored.
    feed(2, msg::encode(msg::Message{"", "late"}, 32));
    EXPECT_TRUE(take(1).empty());
    disconnect(2);
    flushPresence();
    EXPECT_TRUE(take(1).empty()) << "no second LEFT";
    EXPECT_EQ(stateOf(1, "bob"), UserState::Offline);
    EXPECT_EQ(sm().gauges().sessions_detached, 0U);
    // The UUID is dead, the name is free.
    connect(3);
    EXPECT_EQ(errorFor(3, registerFrame("bob", w.session)), code(ErrorCode::SessionExpired));
    feed(3, registerFrame("bob"));
    EXPECT_FALSE(asSystem(one(3)).welcome.resumed);
}

TEST_F(CoreTest, PresenceGoesToEveryOnlineUserAndAgentButTheJoiner) {
    login(1, "alice");
    flushPresence();
    EXPECT_TRUE(take(1).empty());
    login(2, "bot", ClientKind::Agent);
    flushPresence();
    auto j = take(1);
    ASSERT_EQ(j.size(), 1U);
    EXPECT_EQ(asSystem(j[0]).name, "bot");
    EXPECT_EQ(j[0].header.sequence, 0);
    connect(3);
    feed(3, registerFrame("carol"));
    flushPresence();
    auto mine = take(3);
    ASSERT_EQ(mine.size(), 1U) << "the joiner gets only its WELCOME";
    for (ConnId c : {1, 2}) {
        auto f = take(c);
        ASSERT_EQ(f.size(), 1U) << c;
        EXPECT_EQ(asSystem(f[0]).event, SystemEvent::Joined);
        EXPECT_EQ(asSystem(f[0]).name, "carol");
    }
    // The JOINED frame is built once and shared.
    disconnect(3);
    flushPresence();
    auto l1 = take(1);
    auto l2 = take(2);
    ASSERT_EQ(l1.size(), 1U);
    ASSERT_EQ(l2.size(), 1U);
    EXPECT_EQ(l1[0].frame.get(), l2[0].frame.get());
    // Unregistered connections get no presence.
    connect(4);
    login(5, "dave");
    EXPECT_TRUE(take(4).empty());
}

TEST_F(CoreTest, PresenceEventsCanBeTurnedOff) {
    config.presence_events = false;
    login(1, "alice");
    login(2, "bob");
    disconnect(2);
    feed(1, msg::encodeEmpty(MsgType::Logout, 1));
    auto frames = take(1);
    ASSERT_EQ(frames.size(), 1U);
    EXPECT_EQ(asSystem(frames[0]).event, SystemEvent::Bye);
}

TEST_F(CoreTest, ConnectionsBeyondMaxClientsGetServerFull) {
    config.max_clients = 2;
    login(1, "alice");
    connect(2);
    connect(3);
    auto f = one(3);
    EXPECT_EQ(f.header.sequence, 0);
    EXPECT_EQ(asError(f).code, code(ErrorCode::ServerFull));
    EXPECT_TRUE(out.isClosing(3));
    EXPECT_EQ(sm().gauges().connections, 2U);
    EXPECT_EQ(sm().metrics().errors_total[11], 1U);
    feed(3, registerFrame("carol"));  // ignored: it is closing
    EXPECT_TRUE(take(3).empty());
    disconnect(3);
    EXPECT_EQ(sm().gauges().connections, 2U);
    disconnect(2);
    connect(4);
    EXPECT_TRUE(take(4).empty());
    EXPECT_EQ(sm().gauges().connections, 2U);
}

TEST_F(CoreTest, MaxUsersForgetsLeastRecentlySeenOfflineUserWithEmptyBufferFirst) {
    config.max_users = 4;
    config.presence_events = false;
    login(1, "keep");  // stays online: never forgotten
    // a, b, c go offline in that order; b has a message waiting.
    ConnId conn = 10;
    for (const char* name : {"a", "b", "c"}) {
        login(conn, name);
        feed(conn, msg::encodeEmpty(MsgType::Logout, 1));
        disconnect(conn);
        ++conn;
        clock.advance(1000);
    }
    EXPECT_EQ(sayAck(1, "b", "wait for me").buffered, 1U);
    EXPECT_EQ(sm().gauges().users_known, 4U);
    login(20, "d");  // forgets a: offline longest with an empty buffer
    EXPECT_EQ(sm().gauges().users_known, 4U);
    auto r = say(1, "a", "x");
    ASSERT_EQ(r.size(), 1U);
    EXPECT_EQ(asError(r[0]).code, code(ErrorCode::UnknownRecipient));
    login(21, "e");  // forgets c, not b (older, but it has a message waiting)
    EXPECT_EQ(asError(say(1, "c", "x").at(0)).code, code(ErrorCode::UnknownRecipient));
    EXPECT_EQ(sayAck(1, "b", "still known").buffered, 1U);
    // Only b is offline now: with nothing clean left, it goes (and its buffer with it).
    login(22, "f");
    EXPECT_EQ(asError(say(1, "b", "x").at(0)).code, code(ErrorCode::UnknownRecipient));
    EXPECT_EQ(sm().metrics().offline_dropped_total, 2U);
    // Everyone left is online: the registry grows past the limit instead of refusing.
    login(23, "g");
    EXPECT_EQ(sm().gauges().users_known, 5U);
}

TEST_F(CoreTest, ShutdownTellsEveryConnectionAndClosesIt) {
    login(1, "alice");
    connect(2);  // unregistered too
    sm().shutdown(7);
    for (ConnId c : {1, 2}) {
        auto f = one(c);
        auto s = asSystem(f);
        EXPECT_EQ(s.event, SystemEvent::Shutdown);
        EXPECT_EQ(s.retry_after_s, 7);
        EXPECT_EQ(f.header.sequence, 0);
        EXPECT_TRUE(out.isClosing(c));
    }
    disconnect(1, {}, DisconnectReason::Shutdown);
    disconnect(2, {}, DisconnectReason::Shutdown);
    EXPECT_EQ(sm().gauges().connections, 0U);
    EXPECT_EQ(sm().gauges().sessions_detached, 1U);  // resumable after a restart
}

TEST_F(CoreTest, ResumeMayChangeKind) {
    login(9, "obs");
    auto w = login(1, "bot", ClientKind::User);
    disconnect(1);
    connect(2);
    feed(2, registerFrame("bot", w.session, ClientKind::Agent));
    EXPECT_TRUE(asSystem(one(2)).welcome.resumed);
    feed(9, msg::encode(msg::ListUsers{"bot"}, 1));
    auto l = take(9);
    auto list = asUserList(l.back());
    ASSERT_EQ(list.users.size(), 1U);
    EXPECT_EQ(list.users[0].kind, ClientKind::Agent);
}

TEST_F(CoreTest, ReconfigureAppliesNewTimeouts) {
    login(1, "bob");
    disconnect(1);
    core::CoreConfig c = config;
    c.session_timeout_ms = 5'000;
    sm().reconfigure(c);
    EXPECT_EQ(sm().config().session_timeout_ms, 5'000);
    advance(5'000);
    EXPECT_EQ(sm().metrics().sessions_expired_total, 1U);
}

}  // namespace
}  // namespace tundra::testing
