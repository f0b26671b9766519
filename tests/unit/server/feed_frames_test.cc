// SPDX-License-Identifier: Apache-2.0
// The glue's decode loop (server::feedFrames) over a real SessionManager and a RecordingOutbox:
// a header error or a close decided by the core ends the input, and every close is requested
// exactly once, by the core (a doubled request fails RecordingOutbox).
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace tundra::testing
