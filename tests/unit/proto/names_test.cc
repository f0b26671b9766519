// SPDX-License-Identifier: Apache-2.0
// Tests of the protocol constant names, type classification and the UUID text form.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "tundra/protocol.h"

namespace tundra {
namespace {

TEST(MsgTypeNameTest, EveryKnownType) {
    const std::pair<MsgType, const char*> cases[] = {
        {MsgType::Register, "REGISTER"},
        {MsgType::Message, "MESSAGE"},
        {MsgType::AgentCommand, "AGENT_COMMAND"},
        {MsgType::Pong, "PONG"},
        {MsgType::HealthCheck, "HEALTH_CHECK"},
        {MsgType::ListUsers, "LIST_USERS"},
        {MsgType::Logout, "LOGOUT"},
        {MsgType::AuthRefresh, "AUTH_REFRESH"},
        {MsgType::System, "SYSTEM"},
        {MsgType::BroadcastMessage, "BROADCAST_MESSAGE"},
        {MsgType::BroadcastAgent, "BROADCAST_AGENT"},
        {MsgType::Image, "IMAGE"},
        {MsgType::Ping, "PING"},
        {MsgType::Error, "ERROR"},
        {MsgType::HealthResult, "HEALTH_RESULT"},
        {MsgType::Ack, "ACK"},
        {MsgType::UserList, "USER_LIST"},
    };
    for (const auto& [type, name] : cases) {
        EXPECT_STREQ(msgTypeName(static_cast<std::uint8_t>(type)), name);
    }
}

TEST(MsgTypeNameTest, UnknownCodes) {
    for (int t : {0x00, 0x09, 0x0f, 0x19, 0x7f, 0xff}) {
        EXPECT_STREQ(msgTypeName(static_cast<std::uint8_t>(t)), "UNKNOWN") << t;
    }
}

TEST(ErrorCodeNameTest, EveryCode) {
    const char* names[] = {
        "USERNAME_TAKEN", "INVALID_FORMAT",    "SESSION_EXPIRED",     "SERVER_ERROR",
        "NOT_REGISTERED", "UNKNOWN_RECIPIENT", "ALREADY_REGISTERED",  "INVALID_NAME",
        "TOO_LARGE",      "RATE_LIMITED",      "SERVER_FULL",         "UNSUPPORTED_VERSION",
        "UNKNOWN_TYPE",   "AUTH_FAILED",       "STORAGE_UNAVAILABLE", "FORBIDDEN"};
    static_assert(std::size(names) == kMaxErrorCode);
    for (std::uint16_t code = 1; code <= kMaxErrorCode; ++code) {
        EXPECT_STREQ(errorCodeName(static_cast<ErrorCode>(code)), names[code - 1]) << code;
    }
    EXPECT_STREQ(errorCodeName(static_cast<ErrorCode>(0)), "UNKNOWN");
    EXPECT_STREQ(errorCodeName(static_cast<ErrorCode>(kMaxErrorCode + 1)), "UNKNOWN");
    EXPECT_STREQ(errorCodeName(static_cast<ErrorCode>(0xffff)), "UNKNOWN");
}

TEST(TypeClassTest, ClientAndKnownTypesOverAllBytes) {
    const std::set<int> client = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x13, 0x14};
    const std::set<int> known = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x10,
                                 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18};
    for (int t = 0; t < 256; ++t) {
        const auto type = static_cast<std::uint8_t>(t);
        EXPECT_EQ(isClientType(type), client.count(t) == 1) << t;
        EXPECT_EQ(isKnownType(type), known.count(t) == 1) << t;
        EXPECT_EQ(std::string(msgTypeName(type)) != "UNKNOWN", known.count(t) == 1) << t;
    }
}

TEST(UuidTest, ToStringIsLowerCase8_4_4_4_12) {
    Uuid id{};
    for (std::size_t i = 0; i < id.size(); ++i) {
        id[i] = static_cast<std::uint8_t>(i * 0x11);
    }
    EXPECT_EQ(uuidToString(id), "00112233-4455-6677-8899-aabbccddeeff");
    EXPECT_EQ(uuidToString(Uuid{}), "00000000-0000-0000-0000-000000000000");
}

TEST(UuidTest, FromStringRoundTripsAndAcceptsUpperCase) {
    Uuid id{};
    ASSERT_TRUE(uuidFromString("00112233-4455-6677-8899-AABBCCDDEEFF", id));
    EXPECT_EQ(uuidToString(id), "00112233-4455-6677-8899-aabbccddeeff");
    Uuid again{};
    ASSERT_TRUE(uuidFromString(uuidToString(id), again));
    EXPECT_EQ(again, id);
    EXPECT_FALSE(isNil(id));
    EXPECT_TRUE(isNil(Uuid{}));
}

TEST(UuidTest, FromStringRejectsMalformedAndLeavesOutputAlone) {
    const char* bad[] = {
        "",
        "00112233-4455-6677-8899-aabbccddeef",    // 35 chars
        "00112233-4455-6677-8899-aabbccddeeff0",  // 37 chars
        "00112233x4455-6677-8899-aabbccddeeff",   // dash replaced
        "0011223-34455-6677-8899-aabbccddeeff",   // dash moved
        "00112233-4455-6677-8899-aabbccddeefg",   // non-hex
        "00112233-4455-6677-8899-aabbccddee f",   // space
        "001122334455667788990aabbccddeeff0000",  // no dashes, 37
    };
    for (const char* text : bad) {
        Uuid out{};
        out[0] = 0x42;
        EXPECT_FALSE(uuidFromString(text, out)) << text;
        EXPECT_EQ(out[0], 0x42) << text;
    }
}

}  // namespace
}  // namespace tundra
