// SPDX-License-Identifier: Apache-2.0
// The glue's decode loop (server::feedFrames) over a real SessionManager and a RecordingOutbox:
// a header error or a close decided by the core ends the input, and every close is requested
// exactly once, by the core (a doubled request fails RecordingOutbox).
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "server/server.h"
#include "unit/core/core_fixture.h"

namespace tundra::testing {
namespace {

class FeedFramesTest : public CoreTest {
protected:
    std::size_t feedBytes(ConnId conn, const Bytes& bytes) {
        return server::feedFrames(sm(), conn, ByteSpan(bytes.data(), bytes.size()), kMaxPayload);
    }

    static Bytes concat(std::initializer_list<Bytes> parts) {
        Bytes out;
        for (const auto& p : parts) {
            out.insert(out.end(), p.begin(), p.end());
        }
        return out;
    }
};

TEST_F(FeedFramesTest, HeaderErrorIsAnsweredAndClosedExactlyOnce) {
    login(1, "alice");
    Bytes bad = msg::encodePing(MsgType::Ping, 1, 9);
    bad[0] = 0x02;  // unsupported version
    const Bytes in =
        concat({msg::encodePing(MsgType::Ping, 7, 3), bad, msg::encodePing(MsgType::Ping, 8, 4)});
    EXPECT_EQ(feedBytes(1, in), in.size());
    auto frames = take(1);
    ASSERT_EQ(frames.size(), 2U);  // the PONG of the frame before, then the ERROR; nothing after
    EXPECT_EQ(frames[0].type(), MsgType::Pong);
    EXPECT_EQ(asError(frames[1]).code, code(ErrorCode::UnsupportedVersion));
    EXPECT_EQ(frames[1].header.sequence, 9);
    EXPECT_EQ(out.closeCount(1), 1U);
    EXPECT_EQ(sm().metrics().frames_in_total, 2U);  // REGISTER and the PING
}

TEST_F(FeedFramesTest, HeaderErrorOnAnUnknownConnectionStillClosesItOnce) {
    const Bytes in{0x07};
    EXPECT_EQ(feedBytes(42, in), in.size());
    EXPECT_TRUE(take(42).empty());
    EXPECT_EQ(out.closeCount(42), 1U);
}

TEST_F(FeedFramesTest, NothingIsReadAfterTheCoreClosedTheConnection) {
    login(1, "alice");
    const Bytes in = concat({msg::encodeEmpty(MsgType::Logout, 2),
                             msg::encodePing(MsgType::Ping, 1, 3), Bytes{0x09, 0x09}});
    EXPECT_EQ(feedBytes(1, in), in.size());
    auto frames = take(1);
    ASSERT_EQ(frames.size(), 1U);
    EXPECT_EQ(asSystem(frames[0]).event, SystemEvent::Bye);
    EXPECT_EQ(out.closeCount(1), 1U);  // the garbage after LOGOUT is never decoded
    EXPECT_EQ(sm().metrics().frames_in_total, 2U);
}

TEST_F(FeedFramesTest, StopsBeforeAPartialFrame) {
    login(1, "alice");
    const Bytes ping = msg::encodePing(MsgType::Ping, 1, 3);
    const Bytes in = concat({ping, Bytes(ping.begin(), ping.begin() + 5)});
    EXPECT_EQ(feedBytes(1, in), ping.size());
    EXPECT_EQ(one(1).type(), MsgType::Pong);
    EXPECT_EQ(out.closeCount(1), 0U);
    EXPECT_EQ(feedBytes(1, Bytes{}), 0U);
}

// ---- broadcasts of one read wait for each other (SessionManager::beginInput) ---------------

/// One core with its own outbox and clock, so a scenario can run twice and be compared.
struct Core {
    core::CoreConfig config;
    FakeClock clock;
    RecordingOutbox out;
    std::uint32_t uuids = 0;
    core::SessionManager sm;

    Core() : sm(quiet(), out, clock, [this] { return testUuid(++uuids); }) {}

    core::CoreConfig quiet() {
        config.ping_interval_ms = 3'600'000;
        config.register_timeout_ms = 0;
        config.presence_events = false;
        return config;
    }
    void feedOne(ConnId conn, const Bytes& frame) {
        auto r = decodeFrame(ByteSpan(frame.data(), frame.size()), kMaxPayload);
        ASSERT_EQ(r.status, DecodeStatus::Frame);
        sm.onFrame(conn, r.header, r.payload);
    }
    /// Connects and registers (resumes `session` if given); returns the WELCOME's session.
    Uuid login(ConnId conn, std::string_view name, ClientKind kind = ClientKind::User,
               Uuid session = {}) {
        sm.onConnect(conn);
        feedOne(conn, registerFrame(name, session, kind));
        const auto frames = out.framesFor(conn);
        return frames.empty() ? Uuid{} : asSystem(frames.front()).welcome.session;
    }
    Uuid dave{};
    /// Everything queued to `conn` so far, as the bytes on the wire (and forgets it).
    std::vector<Bytes> wire(ConnId conn) {
        std::vector<Bytes> frames;
        for (const auto& f : out.take(conn)) {
            frames.emplace_back(f.frame->begin(), f.frame->end());
        }
        return frames;
    }
};

Bytes concatAll(const std::vector<Bytes>& parts) {
    Bytes out;
    for (const auto& p : parts) {
        out.insert(out.end(), p.begin(), p.end());
    }
    return out;
}

/// alice (1) and bob (2) are users, carol (3) an agent, dave (4) a detached user.
void cast(Core& c) {
    c.login(1, "alice");
    c.login(2, "bob");
    c.login(3, "carol", ClientKind::Agent);
    c.dave = c.login(4, "dave");
    c.sm.onDisconnect(4, DisconnectReason::PeerClosed, {});
    for (ConnId id : {1U, 2U, 3U, 4U}) {
        c.wire(id);
    }
}

/// One read of alice's: broadcasts to everyone and to the agents, a direct message, frames
/// answered with an ERROR and a PONG in between.
std::vector<Bytes> mixedRead() {
    return {msg::encode(msg::Message{"", "b1"}, 10, flags::kAck),
            msg::encode(msg::AgentCommand{"", 7, "run", "x"}, 11, flags::kAck),
            msg::encode(msg::Message{"", "b3"}, 12),
            msg::encode(msg::Message{"bob", "direct"}, 13, flags::kAck),
            msg::encode(msg::Message{"", "b5"}, 14, flags::kAck),
            msg::encode(msg::Message{"no such one", "lost"}, 15, flags::kAck),
            msg::encode(msg::Message{"", "b7"}, 16, flags::kAck),
            msg::encodePing(MsgType::Ping, 99, 17),
            msg::encode(msg::Message{"", "b9"}, 18, flags::kAck)};
}

/// Feeds `frames` from alice as one read to one core and one by one to another, both set up by
/// cast() and then `setup`, and expects every connection (and dave's replay) to get the same.
void expectSameAsFrameByFrame(const std::vector<Bytes>& frames,
                              const std::function<void(Core&)>& setup = {}) {
    Core batched;
    Core single;
    for (Core* c : {&batched, &single}) {
        cast(*c);
        if (setup) {
            setup(*c);
        }
    }
    const Bytes in = concatAll(frames);
    EXPECT_EQ(server::feedFrames(batched.sm, 1, ByteSpan(in.data(), in.size()), kMaxPayload),
              in.size());
    for (const Bytes& f : frames) {
        single.feedOne(1, f);
    }
    for (ConnId id : {1U, 2U, 3U}) {
        EXPECT_EQ(batched.wire(id), single.wire(id)) << "conn " << id;
        EXPECT_EQ(batched.out.closeCount(id), single.out.closeCount(id)) << "conn " << id;
    }
    EXPECT_EQ(batched.sm.metrics().messages_out_total, single.sm.metrics().messages_out_total);
    // The detached dave's offline buffer took the same deliveries: his resume replays them.
    batched.login(5, "dave", ClientKind::User, batched.dave);
    single.login(5, "dave", ClientKind::User, single.dave);
    EXPECT_EQ(batched.wire(5), single.wire(5));
}

TEST(FeedFramesBatchTest, OneReadGivesEveryConnectionWhatFrameByFrameFeedingGives) {
    const std::vector<Bytes> frames = mixedRead();
    expectSameAsFrameByFrame(frames);
    // And what that is: bob got b1, b3, the direct message, b5, b7, b9; alice her answers in
    // order (ACK, ACK, ACK, ACK, ERROR, ACK, PONG, ACK); dave five broadcasts and his message.
    Core c;
    cast(c);
    const Bytes in = concatAll(frames);
    server::feedFrames(c.sm, 1, ByteSpan(in.data(), in.size()), kMaxPayload);
    std::vector<std::string> texts;
    for (const auto& f : c.out.take(2)) {
        texts.emplace_back(asDelivery(f).text);
    }
    EXPECT_EQ(texts, (std::vector<std::string>{"b1", "b3", "direct", "b5", "b7", "b9"}));
    std::vector<MsgType> answers;
    std::vector<std::uint16_t> seqs;
    for (const auto& f : c.out.take(1)) {
        answers.push_back(f.type());
        seqs.push_back(f.header.sequence);
    }
    EXPECT_EQ(answers,
              (std::vector<MsgType>{MsgType::Ack, MsgType::Ack, MsgType::Ack, MsgType::Ack,
                                    MsgType::Error, MsgType::Ack, MsgType::Pong, MsgType::Ack}));
    EXPECT_EQ(seqs, (std::vector<std::uint16_t>{10, 11, 13, 14, 15, 16, 17, 18}));
}

TEST(FeedFramesBatchTest, AckCountsTheDeliveriesOfEachBroadcast) {
    Core c;
    cast(c);
    const Bytes in = concatAll({msg::encode(msg::Message{"", "to all"}, 1, flags::kAck),
                                msg::encode(msg::AgentCommand{"", 0, "go", ""}, 2, flags::kAck)});
    server::feedFrames(c.sm, 1, ByteSpan(in.data(), in.size()), kMaxPayload);
    const auto acks = c.out.take(1);
    ASSERT_EQ(acks.size(), 2U);
    EXPECT_EQ(asAck(acks[0]).delivered, 2U);  // bob and carol
    EXPECT_EQ(asAck(acks[0]).buffered, 1U);   // the detached dave
    EXPECT_EQ(asAck(acks[1]).delivered, 1U);  // carol, the only agent
    EXPECT_EQ(asAck(acks[1]).buffered, 0U);
}

TEST(FeedFramesBatchTest, ARecipientThatRefusesMidReadIsBufferedLikeFrameByFrame) {
    // bob's connection takes nothing (as if the server had cut it): his share goes to his
    // offline buffer, and each ACK counts it as buffered.
    expectSameAsFrameByFrame(mixedRead(), [](Core& c) { c.out.refuse(2); });
}

TEST(FeedFramesBatchTest, ALogoutAfterBroadcastsComesAfterTheirAcks) {
    expectSameAsFrameByFrame({msg::encode(msg::Message{"", "one"}, 1, flags::kAck),
                              msg::encode(msg::Message{"dave", "direct"}, 2, flags::kAck),
                              msg::encode(msg::Message{"", "two"}, 3, flags::kAck),
                              msg::encodeEmpty(MsgType::Logout, 4),
                              msg::encode(msg::Message{"", "never"}, 5, flags::kAck)});
}

TEST(FeedFramesBatchTest, ABadFrameCloseComesAfterTheAcksBeforeIt) {
    // The second bad frame closes alice (max_bad_frames 2); the broadcasts before it are
    // delivered and acknowledged first, the one after it is ignored.
    const Bytes bad = rawFrame(0x7f, 0, 9);
    expectSameAsFrameByFrame({msg::encode(msg::Message{"", "one"}, 1, flags::kAck), bad,
                              msg::encode(msg::Message{"", "two"}, 2, flags::kAck), bad,
                              msg::encode(msg::Message{"", "three"}, 3, flags::kAck)},
                             [](Core& c) {
                                 c.config.max_bad_frames = 2;
                                 c.sm.reconfigure(c.config);
                             });
}

TEST(FeedFramesBatchTest, AHeaderErrorAfterBroadcastsComesAfterTheirAcks) {
    Core c;
    cast(c);
    Bytes bad = msg::encodePing(MsgType::Ping, 1, 9);
    bad[0] = 0x02;  // unsupported version
    const Bytes in = concatAll({msg::encode(msg::Message{"", "one"}, 1, flags::kAck), bad});
    server::feedFrames(c.sm, 1, ByteSpan(in.data(), in.size()), kMaxPayload);
    const auto frames = c.out.take(1);
    ASSERT_EQ(frames.size(), 2U);
    EXPECT_EQ(frames[0].type(), MsgType::Ack);
    EXPECT_EQ(frames[1].type(), MsgType::Error);
    EXPECT_EQ(c.out.take(2).size(), 1U);  // bob got the broadcast
    EXPECT_EQ(c.out.closeCount(1), 1U);
}

}  // namespace
}  // namespace tundra::testing
