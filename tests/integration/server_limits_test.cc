// SPDX-License-Identifier: Apache-2.0
// Issue #9 against the real tundrad: the shared offline budget cannot be drained by one sender
// (point 5), per-connection rate limits are on by default (point 9), and a connection that keeps
// sending bad frames is closed (point 9). Each case ends by checking that others still chat.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "integration/server_fixture.h"
#include "support/scratch_dir.h"

namespace tundra::testing {
namespace {

using namespace std::chrono_literals;

/// A number in the HEALTH_RESULT JSON (top-level key), or -1.
long long healthNumber(RawClient& c, const std::string& key) {
    c.send(msg::encodeEmpty(MsgType::HealthCheck, c.nextSeq()));
    auto f = c.readUntil(MsgType::HealthResult);
    if (!f) {
        return -1;
    }
    msg::HealthResult h;
    if (msg::parse(f->span(), h) != nullptr) {
        return -1;
    }
    const std::string json(h.json);
    const std::string needle = "\"" + key + "\":";
    const auto pos = json.find(needle);
    if (pos == std::string::npos) {
        return -1;
    }
    return std::stoll(json.substr(pos + needle.size()));
}

class BudgetTest : public ServerTest {
protected:
    // The smallest budgets the server accepts: 128 KiB per user, 256 KiB in total.
    std::vector<std::string> serverArgs() override {
        const std::string conf = dir_.write("tundra.conf",
                                            "user_buffer_bytes = 131072\n"
                                            "total_buffer_bytes = 262144\n");
        return {"--no-presence", "--config", conf};
    }

    /// Registers `name`, then logs it out: a known user, offline, with an empty buffer.
    void knownOffline(const std::string& name) {
        auto c = login(name);
        c->send(msg::encodeEmpty(MsgType::Logout, c->nextSeq()));
        ASSERT_TRUE(c->waitClosed());
    }

    ScratchDir dir_;
};

TEST_F(BudgetTest, ThrowawayUsersCannotDrainTheSharedOfflineBudget) {
    knownOffline("victim");
    for (int i = 0; i < 4; ++i) {
        knownOffline("throwaway" + std::to_string(i));
    }
    // The attack: 60 KB messages parked two by two in logged-out throwaway users fill the
    // 256 KiB total (each user stays under its own 128 KiB).
    auto mallory = login("mallory");
    const std::string big(60'000, 'x');
    for (int i = 0; i < 4; ++i) {
        for (int k = 0; k < 2; ++k) {
            auto ack = say(*mallory, "throwaway" + std::to_string(i), big);
            ASSERT_TRUE(ack);
            EXPECT_EQ(asAck(*ack).buffered, 1U);
        }
    }
    // A victim with nothing of its own to evict still gets its message stored...
    auto wendy = login("wendy");
    const std::string letter(30'000, 'w');
    auto ack = say(*wendy, "victim", letter);
    ASSERT_TRUE(ack);
    EXPECT_EQ(asAck(*ack).buffered, 1U) << "the victim's message was not stored";
    const auto id = asAck(*ack).id;
    // ...and delivered when it returns, with no DROPPED.
    auto v = connect();
    auto w = v->registerAs("victim");
    ASSERT_TRUE(w);
    auto welcome = asSystem(*w);
    ASSERT_EQ(welcome.event, SystemEvent::Welcome);
    EXPECT_EQ(welcome.welcome.pending, 1U);
    auto got = v->readUntil(MsgType::BroadcastMessage);
    ASSERT_TRUE(got);
    EXPECT_EQ(asDelivery(*got).id, id);
    EXPECT_EQ(asDelivery(*got).text, letter);
    for (const auto& f : v->skipped()) {
        if (f.type() == MsgType::System) {
            EXPECT_NE(asSystem(f).event, SystemEvent::Dropped);
        }
    }
    EXPECT_GT(healthNumber(*wendy, "budget_evictions"), 0);
    expectOthersStillChat();
}

class RateLimitTest : public ServerTest {};  // the default settings: limits are on

TEST_F(RateLimitTest, AFloodIsRefusedWithRateLimitedWhileOthersChat) {
    auto flood = login("flood");
    auto alice = login("alice");
    auto bob = login("bob");
    // 4000 MESSAGEs to itself (accepted, delivered to nobody) in one write: twice the default
    // burst of 2000 frames, far faster than 1000 a second.
    constexpr int kFrames = 4000;
    Bytes stream;
    for (int i = 0; i < kFrames; ++i) {
        auto f = msg::encode(msg::Message{"flood", "spam"}, flood->nextSeq(), flags::kAck);
        stream.insert(stream.end(), f.begin(), f.end());
    }
    ASSERT_TRUE(flood->send(stream));
    int acks = 0;
    int limited = 0;
    for (int i = 0; i < kFrames; ++i) {
        auto f = reply(*flood);
        ASSERT_TRUE(f) << "answer " << i;
        if (f->type() == MsgType::Ack) {
            ++acks;
        } else if (asError(*f).code == std::uint16_t(ErrorCode::RateLimited)) {
            ++limited;
        }
    }
    EXPECT_EQ(acks + limited, kFrames);
    EXPECT_GE(limited, 1000) << "acks " << acks;
    // The burst of 2000 less the token its REGISTER took; a refill of one token a millisecond
    // adds whatever the loop's clock moved on since then (often nothing).
    EXPECT_GE(acks, 1999);
    // The well-behaved clients on the same server are not affected.
    auto ack = say(*alice, "bob", "hello bob");
    ASSERT_TRUE(ack);
    EXPECT_EQ(asAck(*ack).delivered, 1U);
    auto got = bob->readUntil(MsgType::BroadcastMessage);
    ASSERT_TRUE(got);
    EXPECT_EQ(asDelivery(*got).text, "hello bob");
    EXPECT_GE(healthNumber(*alice, "rate_limited"), limited);
    expectOthersStillChat();
}

TEST_F(RateLimitTest, SixteenBadFramesCloseTheConnection) {
    auto c = connect();
    Bytes bad = msg::encodePing(MsgType::Ping, 1, 3);
    bad[1] = 0x04;  // a reserved flag bit: INVALID_FORMAT
    for (int i = 0; i < 16; ++i) {
        ASSERT_TRUE(c->send(bad));
        auto f = c->read();
        ASSERT_TRUE(f) << "bad frame " << i;
        EXPECT_EQ(asError(*f).code, std::uint16_t(ErrorCode::InvalidFormat));
    }
    EXPECT_TRUE(c->waitClosed());
    auto other = login("observer");
    EXPECT_EQ(healthNumber(*other, "bad_frame_closes"), 1);
    expectOthersStillChat();
}

}  // namespace
}  // namespace tundra::testing
