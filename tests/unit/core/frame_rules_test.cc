// SPDX-License-Identifier: Apache-2.0
// Core unit tests: frame-level rules (flags, types, registration state, header errors), reply
// sequences, and every error code the core can produce, each counted in errors_total.
#include <gtest/gtest.h>

#include "unit/core/core_fixture.h"

namespace tundra::testing {

namespace {

class CoreFrameRulesTest : public CoreTest {
protected:
    CoreFrameRulesTest() { config.presence_events = false; }
};

TEST_F(CoreFrameRulesTest, ReservedFlagBitIsInvalidFormatAndTheFrameIsDiscarded) {
    login(1, "alice");
    login(2, "bob");
    Bytes m = msg::encode(msg::Message{"bob", "hi"}, 7, flags::kAck);
    m[1] |= 0x04;
    auto f = (feed(1, m), one(1));
    EXPECT_EQ(asError(f).code, code(ErrorCode::InvalidFormat));
    EXPECT_EQ(f.header.sequence, 7);
    EXPECT_TRUE(take(2).empty()) << "discarded";
    EXPECT_FALSE(out.isClosing(1));
    EXPECT_EQ(sayAck(1, "bob", "again").delivered, 1U);
    // Also before REGISTER, and on any type.
    connect(3);
    EXPECT_EQ(errorFor(3, rawFrame(0x05, 0x80, 1)), code(ErrorCode::InvalidFormat));
}

TEST_F(CoreFrameRulesTest, ClientReplayBitIsIgnored) {
    login(1, "alice");
    login(2, "bob");
    feed(1, msg::encode(msg::Message{"bob", "hi"}, 7, flags::kAck | flags::kReplay));
    EXPECT_EQ(asAck(one(1)).delivered, 1U);
    EXPECT_EQ(one(2).header.flags, 0) << "the delivery does not inherit it";
}

TEST_F(CoreFrameRulesTest, ServerOnlyAndUnknownTypesAreUnknownType) {
    connect(1);
    EXPECT_EQ(errorFor(1, rawFrame(0x7f, 0, 1)), code(ErrorCode::UnknownType));  // before REGISTER
    EXPECT_EQ(errorFor(1, rawFrame(0x00, 0, 1)), code(ErrorCode::UnknownType));
    EXPECT_EQ(errorFor(1, rawFrame(0x11, 0, 1)), code(ErrorCode::UnknownType));
    feed(1, registerFrame("alice"));
    take(1);
    for (int t : {0x10, 0x11, 0x12, 0x15, 0x16, 0x17, 0x18, 0x09, 0xff}) {
        EXPECT_EQ(errorFor(1, rawFrame(static_cast<std::uint8_t>(t), 0, 2)),
                  code(ErrorCode::UnknownType))
            << t;
    }
    EXPECT_FALSE(out.isClosing(1));
    EXPECT_EQ(sm().metrics().errors_total[13], 12U);
}

TEST_F(CoreFrameRulesTest, BeforeRegisterOnlyHealthPingAndPongAreServed) {
    connect(1);
    EXPECT_EQ(errorFor(1, msg::encode(msg::Message{"", "hi"}, 1)), code(ErrorCode::NotRegistered));
    EXPECT_EQ(errorFor(1, msg::encode(msg::AgentCommand{"", 0, "c", ""}, 2)),
              code(ErrorCode::NotRegistered));
    EXPECT_EQ(errorFor(1, msg::encode(msg::Image{"", "image/png", "x"}, 3)),
              code(ErrorCode::NotRegistered));
    EXPECT_EQ(errorFor(1, msg::encode(msg::ListUsers{""}, 4)), code(ErrorCode::NotRegistered));
    EXPECT_EQ(errorFor(1, msg::encodeEmpty(MsgType::Logout, 5)), code(ErrorCode::NotRegistered));
    // Even a malformed MESSAGE: registration state is checked first.
    EXPECT_EQ(errorFor(1, rawFrame(0x02, 0, 6, Bytes{0})), code(ErrorCode::NotRegistered));
    feed(1, msg::encodeEmpty(MsgType::HealthCheck, 6));
    EXPECT_EQ(one(1).type(), MsgType::HealthResult);
    feed(1, msg::encodePing(MsgType::Ping, 1, 7));
    EXPECT_EQ(one(1).type(), MsgType::Pong);
    feed(1, msg::encodePing(MsgType::Pong, 1, 8));
    EXPECT_TRUE(take(1).empty());
    EXPECT_FALSE(out.isClosing(1));
}

TEST_F(CoreFrameRulesTest, HeaderErrorIsReportedWithItsSequenceThenClosed) {
    login(1, "alice");
    login(2, "bob");
    sm().onHeaderError(2, 0xBEEF, ErrorCode::UnsupportedVersion, "version 2");
    auto f = one(2);
    EXPECT_EQ(f.header.sequence, 0xBEEF);
    EXPECT_EQ(asError(f).code, code(ErrorCode::UnsupportedVersion));
    EXPECT_TRUE(out.isClosing(2));
    // Until the close is reported, bob's messages are buffered rather than lost.
    EXPECT_EQ(sayAck(1, "bob", "x").buffered, 1U);
    disconnect(2);
    EXPECT_EQ(sm().gauges().sessions_detached, 1U);
    sm().onHeaderError(3, 1, ErrorCode::TooLarge, "unknown conn");  // ignored
    EXPECT_TRUE(take(3).empty());
}

TEST_F(CoreFrameRulesTest, EveryErrorCodeTheCoreProducesIsCounted) {
    config.max_clients = 3;
    login(1, "alice");
    login(2, "bob");
    struct Case {
        ErrorCode code;
        Bytes frame;
    };
    const Case cases[] = {
        {ErrorCode::UsernameTaken, registerFrame("bob")},
        {ErrorCode::InvalidFormat, rawFrame(0x01, 0, 1, Bytes{0xff})},
        {ErrorCode::SessionExpired, registerFrame("zed", testUuid(4040))},
        {ErrorCode::NotRegistered, msg::encode(msg::ListUsers{""}, 1)},
        {ErrorCode::InvalidName, registerFrame("a b")},
        {ErrorCode::UnknownType, rawFrame(0x42, 0, 1)},
    };
    connect(3);
    for (const auto& c : cases) {
        EXPECT_EQ(errorFor(3, c.frame), code(c.code)) << errorCodeName(c.code);
    }
    EXPECT_EQ(errorFor(1, msg::encode(msg::Message{"nobody", "x"}, 1)),
              code(ErrorCode::UnknownRecipient));
    EXPECT_EQ(errorFor(1, registerFrame("alice")), code(ErrorCode::AlreadyRegistered));
    EXPECT_EQ(errorFor(1, msg::encode(msg::Message{"bob", std::string(kMaxPayload - 20, 'x')}, 1)),
              code(ErrorCode::TooLarge));
    connect(4);
    EXPECT_EQ(asError(one(4)).code, code(ErrorCode::ServerFull));
    sm().onHeaderError(2, 1, ErrorCode::UnsupportedVersion, "v9");
    EXPECT_EQ(asError(one(2)).code, code(ErrorCode::UnsupportedVersion));
    fail_uuids = true;  // the session id source is broken
    disconnect(4);
    EXPECT_EQ(errorFor(3, registerFrame("carol")), code(ErrorCode::ServerError));
    const auto& e = sm().metrics().errors_total;
    for (auto c : {ErrorCode::UsernameTaken, ErrorCode::InvalidFormat, ErrorCode::SessionExpired,
                   ErrorCode::ServerError, ErrorCode::NotRegistered, ErrorCode::UnknownRecipient,
                   ErrorCode::AlreadyRegistered, ErrorCode::InvalidName, ErrorCode::TooLarge,
                   ErrorCode::ServerFull, ErrorCode::UnsupportedVersion, ErrorCode::UnknownType}) {
        EXPECT_EQ(e[code(c)], 1U) << errorCodeName(c);
    }
    EXPECT_EQ(e[code(ErrorCode::RateLimited)], 0U);
    EXPECT_EQ(e[code(ErrorCode::AuthFailed)], 0U);
}

TEST_F(CoreFrameRulesTest, RepliesEchoTheRequestSequenceIncludingZero) {
    connect(1);
    feed(1, registerFrame("alice", {}, ClientKind::User, 0, 0));
    EXPECT_EQ(one(1).header.sequence, 0);
    feed(1, msg::encode(msg::ListUsers{""}, 65535));
    EXPECT_EQ(one(1).header.sequence, 65535);
    feed(1, msg::encodeEmpty(MsgType::HealthCheck, 65535));  // repeats are fine
    EXPECT_EQ(one(1).header.sequence, 65535);
}

TEST_F(CoreFrameRulesTest, ExtraTrailingBytesAreIgnored) {
    login(1, "alice");
    Bytes lu = msg::encode(msg::ListUsers{"al"}, 3);
    lu.push_back(0x99);
    lu[4] = 0;
    lu[5] = static_cast<std::uint8_t>(lu.size() - kHeaderSize + 1);
    feed(1, lu);
    EXPECT_EQ(asUserList(one(1)).users.size(), 1U);
}

TEST_F(CoreFrameRulesTest, FramesForUnknownConnectionsAreIgnored) {
    feed(99, msg::encodeEmpty(MsgType::HealthCheck, 1));
    EXPECT_TRUE(out.sent.empty());
    disconnect(99);  // also harmless
    EXPECT_EQ(sm().gauges().connections, 0U);
}

TEST_F(CoreFrameRulesTest, DisconnectIsIdempotent) {
    login(1, "alice");
    disconnect(1);
    disconnect(1);
    EXPECT_EQ(sm().gauges().connections, 0U);
    EXPECT_EQ(sm().gauges().sessions_detached, 1U);
}

}  // namespace
}  // namespace tundra::testing
