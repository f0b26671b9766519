// SPDX-License-Identifier: Apache-2.0
// Core unit tests for the per-connection limits: the token bucket, frames refused with
// RATE_LIMITED (on by default), and the connection closed after max_bad_frames bad frames.
#include "core/rate_limit.h"

#include <gtest/gtest.h>

#include "unit/core/core_fixture.h"

namespace tundra::testing {
namespace {

/// One bucket, through TokenBuckets<1>: takes `cost` tokens if it holds them.
class OneBucket {
public:
    bool take(std::uint64_t cost, std::uint64_t rate_per_s, std::uint64_t burst,
              std::int64_t now_ms) {
        return b_.take({{{cost, rate_per_s, burst}}}, now_ms);
    }

private:
    core::TokenBuckets<1> b_;
};

TEST(TokenBucket, StartsFullRefillsAtTheRateAndCapsAtTheBurst) {
    OneBucket b;
    const std::int64_t t0 = 5000;
    for (int i = 0; i < 10; ++i) {
        EXPECT_TRUE(b.take(1, 1000, 10, t0)) << i;
    }
    EXPECT_FALSE(b.take(1, 1000, 10, t0));
    EXPECT_TRUE(b.take(1, 1000, 10, t0 + 1));  // 1000/s: one token a millisecond
    EXPECT_FALSE(b.take(1, 1000, 10, t0 + 1));
    EXPECT_TRUE(b.take(10, 1000, 10, t0 + 1'000'000));  // long idle: full, never more
    EXPECT_FALSE(b.take(1, 1000, 10, t0 + 1'000'000));
}

TEST(TokenBucket, RefusedTakesCostNothingAndRateZeroIsUnlimited) {
    OneBucket b;
    EXPECT_TRUE(b.take(6, 10, 10, 0));
    EXPECT_FALSE(b.take(6, 10, 10, 0));  // 4 left: refused, still 4
    EXPECT_TRUE(b.take(4, 10, 10, 0));
    OneBucket off;
    for (int i = 0; i < 100'000; ++i) {
        ASSERT_TRUE(off.take(1'000'000, 0, 1, 0));
    }
}

TEST(TokenBucket, SlowRatesRefillInFractions) {
    OneBucket b;
    EXPECT_TRUE(b.take(1, 3, 1, 0));     // 3 tokens a second: one per 333.3 ms
    EXPECT_FALSE(b.take(1, 3, 1, 333));  // 0.999 tokens
    EXPECT_TRUE(b.take(1, 3, 1, 334));
}

// A connection's frame and byte buckets share one timestamp, and a frame takes from both or
// from neither: a frame refused for its size costs no frame token.
TEST(TokenBuckets, TakeFromEveryBucketOrFromNone) {
    core::TokenBuckets<2> b;
    using T = core::TokenBuckets<2>::Take;
    EXPECT_TRUE(b.take({T{1, 10, 3}, T{60, 100, 100}}, 0));
    EXPECT_FALSE(b.take({T{1, 10, 3}, T{60, 100, 100}}, 0));  // 40 bytes left: refused
    EXPECT_TRUE(b.take({T{1, 10, 3}, T{40, 100, 100}}, 0));
    EXPECT_TRUE(b.take({T{1, 10, 3}, T{0, 100, 100}}, 0));     // the refused one took no token
    EXPECT_FALSE(b.take({T{1, 10, 3}, T{0, 100, 100}}, 0));    // 3 frames: all taken
    EXPECT_TRUE(b.take({T{1, 10, 3}, T{10, 100, 100}}, 100));  // 100 ms: 1 frame, 10 bytes
    EXPECT_FALSE(b.take({T{0, 10, 3}, T{1, 100, 100}}, 100));
    EXPECT_EQ(sizeof(b), 24U);
}

TEST(TokenBuckets, ABucketGivenARateLaterStartsFull) {
    core::TokenBuckets<2> b;
    using T = core::TokenBuckets<2>::Take;
    for (int i = 0; i < 100; ++i) {
        ASSERT_TRUE(b.take({T{1, 1, 100}, T{1'000'000, 0, 1}}, 5));  // bytes unlimited
    }
    EXPECT_FALSE(b.take({T{1, 1, 100}, T{0, 0, 1}}, 5));
    // A reload limits the bytes: that bucket starts with its whole burst.
    EXPECT_TRUE(b.take({T{0, 1, 100}, T{500, 1, 500}}, 5));
    EXPECT_FALSE(b.take({T{0, 1, 100}, T{1, 1, 500}}, 5));
}

class CoreRateLimitTest : public CoreTest {
protected:
    CoreRateLimitTest() { config.presence_events = false; }

    /// Feeds `n` PINGs from `conn` at the current time; returns how many got RATE_LIMITED.
    int pings(ConnId conn, int n) {
        for (int i = 0; i < n; ++i) {
            feed(conn, msg::encodePing(MsgType::Ping, 7, static_cast<std::uint16_t>(i + 1)));
        }
        int limited = 0;
        for (const auto& f : take(conn)) {
            if (f.type() == MsgType::Error) {
                EXPECT_EQ(asError(f).code, code(ErrorCode::RateLimited));
                ++limited;
            } else {
                EXPECT_EQ(f.type(), MsgType::Pong);
            }
        }
        return limited;
    }
};

TEST_F(CoreRateLimitTest, OnByDefaultBeyondTheBurstFramesAreRefused) {
    ASSERT_EQ(config.rate_messages_per_s, 1000U);
    ASSERT_EQ(config.rate_messages_burst, 2000U);
    connect(1);
    EXPECT_EQ(pings(1, 2000), 0);
    EXPECT_EQ(pings(1, 5), 5);
    EXPECT_EQ(sm().metrics().rate_limited_total, 5U);
    EXPECT_EQ(sm().metrics().errors_total[code(ErrorCode::RateLimited)], 5U);
    clock.advance(10);  // 10 ms at 1000/s: 10 more
    EXPECT_EQ(pings(1, 12), 2);
    EXPECT_FALSE(out.isClosing(1)) << "refusals are not bad frames";
    // Another connection has its own bucket.
    connect(2);
    EXPECT_EQ(pings(2, 100), 0);
}

TEST_F(CoreRateLimitTest, ARefusedMessageIsNotRoutedAndCarriesItsSequence) {
    config.rate_messages_per_s = 1;
    config.rate_messages_burst = 2;  // alice's REGISTER and one MESSAGE
    login(1, "alice");
    login(2, "bob");
    auto ok = sayAck(1, "bob", "hi");
    EXPECT_EQ(ok.delivered, 1U);
    take(2);
    auto frames = say(1, "bob", "again", true, 77);
    ASSERT_EQ(frames.size(), 1U);
    EXPECT_EQ(asError(frames[0]).code, code(ErrorCode::RateLimited));
    EXPECT_EQ(frames[0].header.sequence, 77);
    EXPECT_TRUE(take(2).empty()) << "the refused message reached nobody";
    EXPECT_EQ(sm().metrics().messages_in_total, 1U);
    clock.advance(1000);
    EXPECT_EQ(sayAck(1, "bob", "later").delivered, 1U);
}

TEST_F(CoreRateLimitTest, TheByteBucketCountsHeaderAndPayload) {
    config.rate_messages_per_s = 0;  // frames unlimited: only bytes count here
    config.rate_bytes_per_s = 1000;
    config.rate_bytes_burst = 15 * 10;  // ten PINGs of 7 + 8 bytes
    connect(1);
    EXPECT_EQ(pings(1, 10), 0);
    EXPECT_EQ(pings(1, 1), 1);
    clock.advance(15);  // 15 bytes back
    EXPECT_EQ(pings(1, 2), 1);
}

TEST_F(CoreRateLimitTest, ARefusedPongIsNotAnswered) {
    config.rate_messages_per_s = 1;
    config.rate_messages_burst = 1;
    connect(1);
    EXPECT_EQ(pings(1, 1), 0);
    feed(1, msg::encodePing(MsgType::Pong, 1, 9));
    EXPECT_TRUE(take(1).empty());
    EXPECT_EQ(sm().metrics().rate_limited_total, 1U);
}

TEST_F(CoreRateLimitTest, ReconfigureAppliesAtOnceAndZeroTurnsItOff) {
    config.rate_messages_burst = 10;
    connect(1);
    EXPECT_EQ(pings(1, 12), 2);
    core::CoreConfig c = config;
    c.rate_messages_per_s = 0;
    sm().reconfigure(c);
    EXPECT_EQ(pings(1, 5000), 0);
}

TEST_F(CoreRateLimitTest, TheSixteenthBadFrameClosesTheConnection) {
    ASSERT_EQ(config.max_bad_frames, 16U);
    connect(1);
    Bytes bad = msg::encodePing(MsgType::Ping, 1, 3);
    bad[1] = 0x04;  // a reserved flag bit: INVALID_FORMAT, connection stays
    for (int i = 0; i < 15; ++i) {
        EXPECT_EQ(errorFor(1, bad), code(ErrorCode::InvalidFormat));
    }
    EXPECT_FALSE(out.isClosing(1));
    EXPECT_EQ(errorFor(1, rawFrame(0x7F, 0, 4)), code(ErrorCode::UnknownType));
    EXPECT_TRUE(out.isClosing(1));
    EXPECT_EQ(out.closeCount(1), 1U);
    EXPECT_EQ(sm().metrics().bad_frame_closes_total, 1U);
    // Application errors (an unknown recipient) are not bad frames.
    login(2, "alice");
    for (int i = 0; i < 40; ++i) {
        auto frames = say(2, "nobody", "x");
        ASSERT_EQ(frames.size(), 1U);
        EXPECT_EQ(asError(frames[0]).code, code(ErrorCode::UnknownRecipient));
    }
    EXPECT_FALSE(out.isClosing(2));
}

TEST_F(CoreRateLimitTest, MaxBadFramesZeroNeverCloses) {
    config.max_bad_frames = 0;
    connect(1);
    for (int i = 0; i < 100; ++i) {
        EXPECT_EQ(errorFor(1, rawFrame(0x7F, 0, 4)), code(ErrorCode::UnknownType));
    }
    EXPECT_FALSE(out.isClosing(1));
    EXPECT_EQ(sm().metrics().bad_frame_closes_total, 0U);
}

}  // namespace
}  // namespace tundra::testing
