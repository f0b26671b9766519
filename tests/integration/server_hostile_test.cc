// SPDX-License-Identifier: Apache-2.0
// Hostile and malformed input against the real tundrad. Every case ends by checking that other
// clients still chat.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "integration/server_fixture.h"

namespace tundra::testing {
namespace {

using namespace std::chrono_literals;

class HostileTest : public ServerTest {
protected:
    std::vector<std::string> serverArgs() override {
        // No frame rate limit: the slow-consumer case below sends thousands of messages as fast
        // as ACKs come back (the rate limits have their own tests in server_limits_test.cc).
        return {"--no-presence", "--max-payload",         "1024", "--output-cap",
                "131072",        "--rate-messages-per-s", "0"};
    }

    // Sends raw bytes on a fresh connection and returns the first frame back.
    std::optional<RawFrame> sendRaw(RawClient& c, const Bytes& bytes) {
        c.send(bytes);
        return c.read();
    }

    void expectPingWorks(RawClient& c) {
        c.send(msg::encodePing(MsgType::Ping, 11, 12));
        auto f = c.read();
        ASSERT_TRUE(f);
        EXPECT_EQ(f->type(), MsgType::Pong);
    }
};

TEST_F(HostileTest, GarbageGetsUnsupportedVersionAndClose) {
    auto c = connect();
    c->send(std::string_view("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto f = c->read();
    ASSERT_TRUE(f);
    EXPECT_EQ(asError(*f).code, uint16_t(ErrorCode::UnsupportedVersion));
    EXPECT_TRUE(c->waitClosed());
    expectOthersStillChat();
}

TEST_F(HostileTest, WrongVersionEchoesSequenceAndCloses) {
    auto c = connect();
    auto f = sendRaw(*c, Bytes{0x02, 0x00, 0x12, 0x34, 0x00, 0x01, 0x14});
    ASSERT_TRUE(f);
    EXPECT_EQ(asError(*f).code, uint16_t(ErrorCode::UnsupportedVersion));
    EXPECT_EQ(f->header.sequence, 0x1234);
    EXPECT_TRUE(c->waitClosed());
    expectOthersStillChat();
}

TEST_F(HostileTest, LengthZeroIsInvalidFormatAndCloses) {
    auto c = connect();
    auto f = sendRaw(*c, Bytes{0x01, 0x00, 0x00, 0x05, 0x00, 0x00, 0x05});
    ASSERT_TRUE(f);
    EXPECT_EQ(asError(*f).code, uint16_t(ErrorCode::InvalidFormat));
    EXPECT_EQ(f->header.sequence, 5);
    EXPECT_TRUE(c->waitClosed());
    expectOthersStillChat();
}

TEST_F(HostileTest, HugeLengthIsTooLargeBeforeAnyPayloadArrives) {
    auto c = connect();
    // Declares 0xFFFF (over --max-payload 1024) and sends no payload at all.
    auto f = sendRaw(*c, Bytes{0x01, 0x00, 0x00, 0x01, 0xFF, 0xFF, 0x02});
    ASSERT_TRUE(f);
    EXPECT_EQ(asError(*f).code, uint16_t(ErrorCode::TooLarge));
    EXPECT_TRUE(c->waitClosed());
    expectOthersStillChat();
}

TEST_F(HostileTest, ReservedFlagIsInvalidFormatButConnectionStays) {
    auto c = connect();
    Bytes ping = msg::encodePing(MsgType::Ping, 1, 3);
    ping[1] = 0x04;
    auto f = sendRaw(*c, ping);
    ASSERT_TRUE(f);
    EXPECT_EQ(asError(*f).code, uint16_t(ErrorCode::InvalidFormat));
    expectPingWorks(*c);
    expectOthersStillChat();
}

TEST_F(HostileTest, UnknownAndServerOnlyTypesAreUnknownType) {
    auto c = connect();
    auto f = sendRaw(*c, Bytes{0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x7F});
    ASSERT_TRUE(f);
    EXPECT_EQ(asError(*f).code, uint16_t(ErrorCode::UnknownType));
    ASSERT_TRUE(c->registerAs("mallory"));
    auto g = sendRaw(*c, Bytes{0x01, 0x00, 0x00, 0x02, 0x00, 0x01, 0x17});  // ACK from client
    ASSERT_TRUE(g);
    EXPECT_EQ(asError(*g).code, uint16_t(ErrorCode::UnknownType));
    expectPingWorks(*c);
    expectOthersStillChat();
}

TEST_F(HostileTest, TruncatedPayloadIsInvalidFormat) {
    auto c = connect();
    // REGISTER whose username claims 10 bytes but carries 3.
    auto f =
        sendRaw(*c, Bytes{0x01, 0x00, 0x00, 0x01, 0x00, 0x06, 0x01, 0x00, 0x0A, 'a', 'b', 'c'});
    ASSERT_TRUE(f);
    EXPECT_EQ(asError(*f).code, uint16_t(ErrorCode::InvalidFormat));
    auto g = c->registerAs("fine");
    ASSERT_TRUE(g);
    EXPECT_EQ(asSystem(*g).event, SystemEvent::Welcome);
    expectOthersStillChat();
}

TEST_F(HostileTest, InvalidUtf8IsInvalidFormatAndBadNameIsInvalidName) {
    auto c = connect();
    auto f = c->registerAs(std::string_view("\xC0\x80x", 3));
    ASSERT_TRUE(f);
    EXPECT_EQ(asError(*f).code, uint16_t(ErrorCode::InvalidFormat));
    auto g = c->registerAs("bad name!");
    ASSERT_TRUE(g);
    EXPECT_EQ(asError(*g).code, uint16_t(ErrorCode::InvalidName));
    auto h = c->registerAs(std::string(33, 'a'));
    ASSERT_TRUE(h);
    EXPECT_EQ(asError(*h).code, uint16_t(ErrorCode::InvalidName));
    ASSERT_TRUE(c->registerAs("good"));
    auto m = say(*c, "", std::string_view("\xED\xA0\x80", 3));  // a surrogate in the text
    ASSERT_TRUE(m);
    EXPECT_EQ(asError(*m).code, uint16_t(ErrorCode::InvalidFormat));
    expectOthersStillChat();
}

TEST_F(HostileTest, MessageOverMaxPayloadIsRefusedAndConnectionCloses) {
    auto a = login("alice");
    auto ack = say(*a, "", std::string(2000, 'x'));
    ASSERT_TRUE(ack);
    EXPECT_EQ(asError(*ack).code, uint16_t(ErrorCode::TooLarge));
    EXPECT_TRUE(a->waitClosed());
    expectOthersStillChat();
}

TEST_F(HostileTest, FramesSplitAtEveryByteAndCoalescedAreAllServed) {
    auto c = connect();
    Bytes stream;
    for (std::uint16_t i = 1; i <= 20; ++i) {
        auto p = msg::encodePing(MsgType::Ping, i, i);
        stream.insert(stream.end(), p.begin(), p.end());
    }
    // First half one byte per write, second half in one write.
    std::size_t half = stream.size() / 2;
    for (std::size_t i = 0; i < half; ++i) {
        ASSERT_TRUE(c->send(ByteSpan(&stream[i], 1)));
    }
    ASSERT_TRUE(c->send(ByteSpan(stream.data() + half, stream.size() - half)));
    for (std::uint16_t i = 1; i <= 20; ++i) {
        auto f = c->read();
        ASSERT_TRUE(f);
        EXPECT_EQ(f->type(), MsgType::Pong);
        EXPECT_EQ(f->header.sequence, i);
    }
    expectOthersStillChat();
}

TEST_F(HostileTest, ClientThatNeverReadsIsCutOffAndItsMessagesAreBuffered) {
    auto sink = std::make_unique<RawClient>(server_->port(), 4096);
    ASSERT_TRUE(sink->registerAs("sink"));
    auto a = login("alice");
    auto reader = login("reader");
    std::string big(1000, 'y');
    bool cut_off = false;
    // Direct messages to sink pile up in its output queue (cap 128 KiB) until it is cut off;
    // the reader keeps receiving broadcasts the whole time.
    for (int i = 0; i < 4000 && !cut_off; ++i) {
        auto ack = say(*a, "sink", big);
        ASSERT_TRUE(ack);
        auto am = asAck(*ack);
        cut_off = am.buffered == 1;
        auto b = say(*a, "", "tick");
        ASSERT_TRUE(b);
        ASSERT_TRUE(reader->readUntil(MsgType::BroadcastMessage));
    }
    EXPECT_TRUE(cut_off) << "sink was never disconnected";
    a->send(msg::encode(msg::ListUsers{"sink"}, 5));
    auto f = a->readUntil(MsgType::UserList);
    ASSERT_TRUE(f);
    msg::UserList list;
    ASSERT_EQ(msg::parse(f->span(), list), nullptr);
    ASSERT_EQ(list.users.size(), 1U);
    EXPECT_EQ(list.users[0].state, UserState::Detached);
    expectOthersStillChat();
}

// Broadcasts that arrive in one read reach each connection as one joined output segment
// (docs/ARCHITECTURE.md, "One loop iteration"): when a subscriber that never reads is cut off,
// the ids of every delivery of such a segment it did not receive still go back to its offline
// buffer.
class JoinedCutTest : public ServerTest {
protected:
    std::vector<std::string> serverArgs() override {
        return {"--no-presence",
                "--output-cap",
                "131072",
                "--max-buffered",
                "5000",
                "--rate-messages-per-s",
                "0",
                "--rate-bytes-per-s",
                "0",
                "--user-buffer-bytes",
                "67108864"};
    }
};

TEST_F(JoinedCutTest, ANeverReadingSubscriberCutMidBatchLosesNoBroadcast) {
    auto sink = std::make_unique<RawClient>(server_->port(), 4096);
    auto welcome = sink->registerAs("sink");
    ASSERT_TRUE(welcome);
    const Uuid session = asSystem(*welcome).welcome.session;
    auto a = login("alice");
    const std::string text(900, 'z');
    std::vector<std::uint64_t> ids;  // every broadcast accepted, in order
    bool cut_off = false;
    for (int round = 0; round < 400 && !cut_off; ++round) {
        Bytes batch;  // eight broadcasts in one write: one read, one joined segment
        for (std::uint16_t k = 0; k < 8; ++k) {
            const Bytes f = msg::encode(msg::Message{"", text}, k + 1, flags::kAck);
            batch.insert(batch.end(), f.begin(), f.end());
        }
        ASSERT_TRUE(a->send(batch));
        for (int k = 0; k < 8; ++k) {
            auto ack = a->readUntil(MsgType::Ack);
            ASSERT_TRUE(ack);
            const auto am = asAck(*ack);
            ids.push_back(am.id);
            cut_off = cut_off || am.buffered == 1;  // sink is detached: its share is buffered
        }
    }
    ASSERT_TRUE(cut_off) << "sink was never cut off";
    // What the server wrote before the cut is still in the sink's socket: read it to the end.
    auto idOf = [](const RawFrame& f) {
        msg::Delivery d;
        EXPECT_EQ(msg::parse(MsgType::BroadcastMessage, f.span(), d), nullptr);
        return d.id;
    };
    std::vector<std::uint64_t> got;
    while (auto f = sink->read()) {
        if (f->type() == MsgType::BroadcastMessage) {
            got.push_back(idOf(*f));
        }
    }
    EXPECT_TRUE(sink->eof());
    EXPECT_FALSE(got.empty()) << "some were written before the cut";
    // The sink comes back on its session: everything it did not receive is replayed, so what
    // it got and what is replayed are every accepted broadcast, once each, in order.
    auto back = std::make_unique<RawClient>(server_->port());
    auto w = back->registerAs("sink", ClientKind::User, session);
    ASSERT_TRUE(w);
    ASSERT_EQ(w->type(), MsgType::System);
    const auto wm = asSystem(*w).welcome;
    EXPECT_TRUE(wm.resumed);
    ASSERT_GT(wm.pending, 0U);
    for (std::uint32_t i = 0; i < wm.pending; ++i) {
        auto f = back->readUntil(MsgType::BroadcastMessage);
        ASSERT_TRUE(f);
        got.push_back(idOf(*f));
    }
    EXPECT_EQ(got, ids);
    expectOthersStillChat();
}

}  // namespace
}  // namespace tundra::testing
