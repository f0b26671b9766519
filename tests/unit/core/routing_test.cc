// SPDX-License-Identifier: Apache-2.0
// Core unit tests: routing of MESSAGE, AGENT_COMMAND and IMAGE (broadcast, direct, agents),
// ACK counts, shared delivery frames, TOO_LARGE and message ids.
#include <gtest/gtest.h>

#include <set>

#include "unit/core/core_fixture.h"

namespace tundra::testing {

namespace {

class CoreRoutingTest : public CoreTest {
protected:
    CoreRoutingTest() { config.presence_events = false; }
};

TEST_F(CoreRoutingTest, BroadcastReachesOnlineUsersAndAgentsButNotTheSender) {
    login(1, "alice");
    login(2, "bob");
    login(3, "bot", ClientKind::Agent);
    auto frames = say(1, "", "hello all", true, 42);
    ASSERT_EQ(frames.size(), 1U) << "the sender gets its ACK and nothing else";
    EXPECT_EQ(frames[0].header.sequence, 42);
    auto ack = asAck(frames[0]);
    EXPECT_EQ(ack.delivered, 2U);
    EXPECT_EQ(ack.buffered, 0U);
    std::set<const SharedFrame::Block*> objects;
    for (ConnId c : {2, 3}) {
        auto got = take(c);
        ASSERT_EQ(got.size(), 1U);
        const auto& f = got[0];
        EXPECT_EQ(f.type(), MsgType::BroadcastMessage);
        EXPECT_EQ(f.header.sequence, 0);
        EXPECT_EQ(f.header.flags, 0);
        EXPECT_EQ(f.delivery_id, ack.id);
        auto d = asDelivery(f);
        EXPECT_EQ(d.id, ack.id);
        EXPECT_EQ(d.time_ms, static_cast<std::uint64_t>(clock.wallMs()));
        EXPECT_EQ(d.from, "alice");
        EXPECT_EQ(d.to, "");
        EXPECT_EQ(d.text, "hello all");
        objects.insert(f.frame.get());
    }
    EXPECT_EQ(objects.size(), 1U) << "one encoded frame shared by every recipient";
    EXPECT_EQ(sm().metrics().messages_in_total, 1U);
    EXPECT_EQ(sm().metrics().messages_out_total, 2U);
}

TEST_F(CoreRoutingTest, BroadcastBuffersForDetachedButNotForLoggedOutUsers) {
    login(1, "alice");
    login(2, "det");
    login(3, "gone");
    disconnect(2);
    feed(3, msg::encodeEmpty(MsgType::Logout, 1));
    disconnect(3);
    auto ack = sayAck(1, "", "news");
    EXPECT_EQ(ack.delivered, 0U);
    EXPECT_EQ(ack.buffered, 1U);
    EXPECT_EQ(sm().gauges().buffered_messages, 1U);
    EXPECT_EQ(sm().metrics().offline_buffered_total, 1U);
    // A direct message does reach the logged-out user's buffer.
    EXPECT_EQ(sayAck(1, "gone", "psst").buffered, 1U);
}

TEST_F(CoreRoutingTest, DirectMessageReachesOnlyTheRecipient) {
    login(1, "alice");
    login(2, "bob");
    login(3, "carol");
    auto ack = sayAck(1, "bob", "psst");
    EXPECT_EQ(ack.delivered, 1U);
    auto got = take(2);
    ASSERT_EQ(got.size(), 1U);
    EXPECT_EQ(asDelivery(got[0]).to, "bob");
    EXPECT_TRUE(take(3).empty());
}

TEST_F(CoreRoutingTest, UnknownAndInvalidRecipients) {
    login(1, "alice");
    auto r = say(1, "nobody", "hi");
    ASSERT_EQ(r.size(), 1U);
    EXPECT_EQ(asError(r[0]).code, code(ErrorCode::UnknownRecipient));
    EXPECT_EQ(r[0].header.sequence, 5);
    r = say(1, "no body", "hi");
    ASSERT_EQ(r.size(), 1U);
    EXPECT_EQ(asError(r[0]).code, code(ErrorCode::InvalidName));
    // Field rules first: a `to` that is not UTF-8 is INVALID_FORMAT, not INVALID_NAME.
    r = say(1, "\xff", "hi");
    ASSERT_EQ(r.size(), 1U);
    EXPECT_EQ(asError(r[0]).code, code(ErrorCode::InvalidFormat));
    // Empty text is a field error too.
    r = say(1, "", "");
    ASSERT_EQ(r.size(), 1U);
    EXPECT_EQ(asError(r[0]).code, code(ErrorCode::InvalidFormat));
    EXPECT_EQ(sm().metrics().messages_in_total, 0U);
}

TEST_F(CoreRoutingTest, MessageToSelfIsAcceptedAndDeliveredToNobody) {
    login(1, "alice");
    login(2, "bob");
    auto ack = sayAck(1, "alice", "note to self");
    EXPECT_NE(ack.id, 0U);
    EXPECT_EQ(ack.delivered, 0U);
    EXPECT_EQ(ack.buffered, 0U);
    EXPECT_TRUE(take(2).empty());
}

TEST_F(CoreRoutingTest, AckOnlyWhenAsked) {
    login(1, "alice");
    login(2, "bob");
    EXPECT_TRUE(say(1, "bob", "quiet", false).empty());
    EXPECT_EQ(take(2).size(), 1U);
    // ACK on a type without ACK is ignored: LIST_USERS answers with USER_LIST only.
    Bytes lu = msg::encode(msg::ListUsers{""}, 8);
    lu[1] = flags::kAck;
    feed(1, lu);
    auto f = one(1);
    EXPECT_EQ(f.type(), MsgType::UserList);
}

TEST_F(CoreRoutingTest, AgentCommandBroadcastReachesAgentsOnly) {
    login(1, "alice");
    login(2, "bob");
    login(3, "bot1", ClientKind::Agent);
    login(4, "bot2", ClientKind::Agent);
    login(5, "bot3", ClientKind::Agent);
    disconnect(5);  // detached agent: buffered
    feed(1, msg::encode(msg::AgentCommand{"", 0, "summarize", "the channel"}, 6, flags::kAck));
    auto ack = asAck(one(1));
    EXPECT_EQ(ack.delivered, 2U);
    EXPECT_EQ(ack.buffered, 1U);
    EXPECT_TRUE(take(2).empty());
    const SharedFrame::Block* shared = nullptr;
    for (ConnId c : {3, 4}) {
        auto f = one(c);
        EXPECT_EQ(f.type(), MsgType::BroadcastAgent);
        auto d = asDelivery(f);
        EXPECT_EQ(d.from, "alice");
        EXPECT_EQ(d.command, "summarize");
        EXPECT_EQ(d.args, "the channel");
        EXPECT_EQ(d.reply_to, 0U);
        if (shared == nullptr) {
            shared = f.frame.get();
        }
        EXPECT_EQ(f.frame.get(), shared);
    }
    // An agent broadcasting does not get its own command.
    feed(3, msg::encode(msg::AgentCommand{"", 0, "ping", ""}, 1, flags::kAck));
    EXPECT_EQ(asAck(one(3)).delivered, 1U);
    EXPECT_EQ(take(4).size(), 1U);
}

TEST_F(CoreRoutingTest, DirectAgentCommandReachesAnyKnownName) {
    login(1, "alice");
    login(2, "bot", ClientKind::Agent);
    feed(2, msg::encode(msg::AgentCommand{"alice", 77, "result", "done"}, 3, flags::kAck));
    EXPECT_EQ(asAck(one(2)).delivered, 1U);
    auto d = asDelivery(one(1));
    EXPECT_EQ(d.reply_to, 77U);
    EXPECT_EQ(d.from, "bot");
    EXPECT_EQ(d.to, "alice");
    feed(2, msg::encode(msg::AgentCommand{"nobody", 0, "x", ""}, 4, flags::kAck));
    EXPECT_EQ(asError(one(2)).code, code(ErrorCode::UnknownRecipient));
}

TEST_F(CoreRoutingTest, ImageBroadcastAndDirect) {
    login(1, "alice");
    login(2, "bob");
    login(3, "bot", ClientKind::Agent);
    std::string png("\x89PNG\r\n\x1a\n\0\0binary", 16);
    feed(1, msg::encode(msg::Image{"", "Image/PNG", png}, 9, flags::kAck));
    EXPECT_EQ(asAck(one(1)).delivered, 2U);
    for (ConnId c : {2, 3}) {
        auto f = one(c);
        EXPECT_EQ(f.type(), MsgType::Image);
        auto d = asDelivery(f);
        EXPECT_EQ(d.mime, "Image/PNG");  // relayed as sent
        EXPECT_EQ(d.data, png);
    }
    feed(1, msg::encode(msg::Image{"bob", "image/gif", "GIF89a"}, 10, flags::kAck));
    EXPECT_EQ(asAck(one(1)).delivered, 1U);
    EXPECT_EQ(one(2).type(), MsgType::Image);
    feed(1, msg::encode(msg::Image{"bob", "text/plain", "x"}, 11, flags::kAck));
    EXPECT_EQ(asError(one(1)).code, code(ErrorCode::InvalidFormat));
    feed(1, msg::encode(msg::Image{"bob", "image/", "x"}, 12, flags::kAck));
    EXPECT_EQ(asError(one(1)).code, code(ErrorCode::InvalidFormat));
}

TEST_F(CoreRoutingTest, DeliveryThatWouldNotFitTheFrameIsTooLarge) {
    login(1, "alice");
    login(2, "bob");
    // MESSAGE payload: 2 + 3 ("bob") + text. Delivery: 8 + 8 + 2 + 5 + 2 + 3 + text.
    const std::size_t fits = kMaxPayload - (8 + 8 + 2 + 5 + 2 + 3);
    auto r = say(1, "bob", std::string(fits + 1, 'x'));
    ASSERT_EQ(r.size(), 1U);
    EXPECT_EQ(asError(r[0]).code, code(ErrorCode::TooLarge));
    EXPECT_TRUE(take(2).empty());
    // The connection stays usable, and the largest delivery that fits goes through.
    auto ack = sayAck(1, "bob", std::string(fits, 'x'));
    EXPECT_EQ(ack.delivered, 1U);
    auto f = one(2);
    EXPECT_EQ(f.frame->size(), kHeaderSize + kMaxPayload);
}

TEST_F(CoreRoutingTest, IdsStrictlyIncreaseFromTheClockAndNeverGoBack) {
    login(1, "alice");
    login(2, "bob");
    const auto base = static_cast<std::uint64_t>(clock.wallMs()) << 12;
    std::uint64_t prev = 0;
    for (int i = 0; i < 5; ++i) {
        auto ack = sayAck(1, "bob", "m");
        EXPECT_GT(ack.id, prev);
        EXPECT_GE(ack.id, base);
        prev = ack.id;
    }
    clock.setWall(clock.wallMs() - 3'600'000);  // the wall clock steps back an hour
    auto ack = sayAck(1, "bob", "after the step");
    EXPECT_GT(ack.id, prev);
    clock.setWall(clock.wallMs() + 7'200'000);  // and forward: ids jump with it
    EXPECT_GE(sayAck(1, "bob", "later").id, static_cast<std::uint64_t>(clock.wallMs()) << 12);
    // A failed message does not consume the next id's order either.
    say(1, "nobody", "x");
    EXPECT_GT(sayAck(1, "bob", "x").id, prev);
}

TEST_F(CoreRoutingTest, SendRefusedByTheOutboxBuffersInstead) {
    login(1, "alice");
    login(2, "bob");
    out.refuse(2);  // the server already dropped bob's connection but has not reported it yet
    auto ack = sayAck(1, "bob", "hold this");
    EXPECT_EQ(ack.delivered, 0U);
    EXPECT_EQ(ack.buffered, 1U);
    EXPECT_EQ(sm().gauges().buffered_messages, 1U);
}

TEST_F(CoreRoutingTest, DeliveriesCountAsFramesOut) {
    login(1, "alice");
    login(2, "bob");
    const auto before = sm().metrics().frames_out_total;
    sayAck(1, "bob", "x");
    EXPECT_EQ(sm().metrics().frames_out_total, before + 2);  // delivery + ACK
    EXPECT_GE(sm().metrics().frames_in_total, 3U);
}

}  // namespace
}  // namespace tundra::testing
