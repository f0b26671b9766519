// SPDX-License-Identifier: Apache-2.0
// Byte vectors for every v1 message (encode -> exact bytes -> parse -> re-encode), and the field
// rules each parser enforces: truncation, UTF-8, NUL, kind, mime, empty text and data.
#include "tundra/messages.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <type_traits>

#include "unit/proto/test_bytes.h"

namespace tundra::msg {
namespace {

using test::hex;
using test::hexBytes;
using test::span;
using test::toHex;

Uuid sampleUuid() {
    Uuid id{};
    for (std::size_t i = 0; i < id.size(); ++i) {
        id[i] = static_cast<std::uint8_t>(i * 0x11);
    }
    return id;
}

// Decodes `frame` (exactly one frame) and returns its payload.
ByteSpan payloadOf(const Bytes& frame, FrameHeader* header = nullptr) {
    const DecodeResult r = decodeFrame(frame, kMaxPayload);
    EXPECT_EQ(r.status, DecodeStatus::Frame);
    EXPECT_EQ(r.consumed, frame.size());
    if (header != nullptr) {
        *header = r.header;
    }
    return r.payload;
}

// Parses the payload as T and encodes it again with the frame's own sequence and flags.
template <typename T>
Bytes reencode(const Bytes& frame) {
    FrameHeader h;
    const ByteSpan p = payloadOf(frame, &h);
    T m;
    const char* err = parse(p, m);
    EXPECT_EQ(err, nullptr) << err;
    if constexpr (std::is_same_v<T, ListUsers> || std::is_same_v<T, System> ||
                  std::is_same_v<T, Error> || std::is_same_v<T, Ack> ||
                  std::is_same_v<T, UserList> || std::is_same_v<T, HealthResult> ||
                  std::is_same_v<T, AuthRefresh>) {
        return encode(m, h.sequence);
    } else {
        return encode(m, h.sequence, h.flags);
    }
}

Bytes reencodePing(const Bytes& frame) {
    FrameHeader h;
    Ping m;
    EXPECT_EQ(parse(payloadOf(frame, &h), m), nullptr);
    return encodePing(static_cast<MsgType>(h.type), m.token, h.sequence);
}

Bytes reencodeDelivery(const Bytes& frame) {
    FrameHeader h;
    const ByteSpan p = payloadOf(frame, &h);
    Delivery m;
    const char* err = parse(static_cast<MsgType>(h.type), p, m);
    EXPECT_EQ(err, nullptr) << err;
    return encode(m, h.sequence, h.flags);
}

Bytes reencodeEmpty(const Bytes& frame) {
    FrameHeader h;
    EXPECT_TRUE(payloadOf(frame, &h).empty());
    return encodeEmpty(static_cast<MsgType>(h.type), h.sequence);
}

struct Vector {
    const char* name;
    Bytes frame;
    const char* expected;
    std::function<Bytes(const Bytes&)> reencode;
};

std::vector<Vector> vectors() {
    const Uuid uuid = sampleUuid();
    System welcome;
    welcome.event = SystemEvent::Welcome;
    welcome.text = "welcome";
    welcome.welcome = {uuid, true, 3, 30, 120, 65534};
    System joined;
    joined.event = SystemEvent::Joined;
    joined.name = "bob";
    System left;
    left.event = SystemEvent::Left;
    left.name = "bob";
    System dropped;
    dropped.event = SystemEvent::Dropped;
    dropped.dropped = 5;
    System shutdown;
    shutdown.event = SystemEvent::Shutdown;
    shutdown.text = "bye";
    shutdown.retry_after_s = 10;
    System notice;
    notice.event = SystemEvent::Notice;
    notice.text = "hi";
    System bye;
    bye.event = SystemEvent::Bye;

    Delivery bmsg;
    bmsg.type = MsgType::BroadcastMessage;
    bmsg.id = 1;
    bmsg.time_ms = 2;
    bmsg.from = "alice";
    bmsg.text = "hi";
    Delivery bagent;
    bagent.type = MsgType::BroadcastAgent;
    bagent.id = 3;
    bagent.time_ms = 4;
    bagent.from = "bob";
    bagent.to = "bot";
    bagent.reply_to = 5;
    bagent.command = "go";
    Delivery bimage;
    bimage.type = MsgType::Image;
    bimage.id = 6;
    bimage.time_ms = 7;
    bimage.from = "a";
    bimage.to = "b";
    bimage.mime = "image/gif";
    bimage.data = "GIF8";

    UserList list;
    list.users = {{"alice", ClientKind::User, UserState::Online},
                  {"bot", ClientKind::Agent, UserState::Detached}};

    return {
        {"REGISTER alice, new session",
         encode(Register{"alice", Uuid{}, ClientKind::User, "", 0}, 1),
         "01 00 00 01 00 23 01  00 05 61 6c 69 63 65  00000000000000000000000000000000  00"
         "  00 00  00 00 00 00 00 00 00 00",
         reencode<Register>},
        {"REGISTER agent resume with token and last_id",
         encode(Register{"alice", uuid, ClientKind::Agent, "tk", 0x0102030405060708ULL}, 0x0102),
         "01 00 01 02 00 25 01  00 05 61 6c 69 63 65  00112233445566778899aabbccddeeff  01"
         "  00 02 74 6b  01 02 03 04 05 06 07 08",
         reencode<Register>},
        {"MESSAGE broadcast with ACK flag", encode(Message{"", "hi"}, 2, flags::kAck),
         "01 01 00 02 00 05 02  00 00  68 69", reencode<Message>},
        {"MESSAGE direct", encode(Message{"bob", "yo"}, 3),
         "01 00 00 03 00 08 02  00 03 62 6f 62  79 6f", reencode<Message>},
        {"AGENT_COMMAND", encode(AgentCommand{"bot", 7, "run", "x y"}, 4, flags::kAck),
         "01 01 00 04 00 16 03  00 03 62 6f 74  00 00 00 00 00 00 00 07  00 03 72 75 6e"
         "  78 20 79",
         reencode<AgentCommand>},
        {"IMAGE from a client", encode(Image{"", "image/png", "\x89PNG"}, 5),
         "01 00 00 05 00 12 13  00 00  00 09 69 6d 61 67 65 2f 70 6e 67  89 50 4e 47",
         reencode<Image>},
        {"LIST_USERS", encode(ListUsers{"al"}, 6), "01 00 00 06 00 05 06  00 02 61 6c",
         reencode<ListUsers>},
        {"PING", encodePing(MsgType::Ping, 0x1122334455667788ULL, 0),
         "01 00 00 00 00 09 14  11 22 33 44 55 66 77 88", reencodePing},
        {"PONG", encodePing(MsgType::Pong, 0x1122334455667788ULL, 9),
         "01 00 00 09 00 09 04  11 22 33 44 55 66 77 88", reencodePing},
        {"HEALTH_CHECK", encodeEmpty(MsgType::HealthCheck, 3), "01 00 00 03 00 01 05",
         reencodeEmpty},
        {"LOGOUT", encodeEmpty(MsgType::Logout, 4), "01 00 00 04 00 01 07", reencodeEmpty},
        {"SYSTEM WELCOME", encode(welcome, 1),
         "01 00 00 01 00 26 10  01  00 07 77 65 6c 63 6f 6d 65"
         "  00112233445566778899aabbccddeeff  01  00 00 00 03  00 1e  00 78  ff fe",
         reencode<System>},
        {"SYSTEM JOINED", encode(joined, 0), "01 00 00 00 00 09 10  02  00 00  00 03 62 6f 62",
         reencode<System>},
        {"SYSTEM LEFT", encode(left, 0), "01 00 00 00 00 09 10  03  00 00  00 03 62 6f 62",
         reencode<System>},
        {"SYSTEM DROPPED", encode(dropped, 0), "01 00 00 00 00 08 10  04  00 00  00 00 00 05",
         reencode<System>},
        {"SYSTEM SHUTDOWN", encode(shutdown, 0), "01 00 00 00 00 09 10  05  00 03 62 79 65  00 0a",
         reencode<System>},
        {"SYSTEM NOTICE", encode(notice, 0), "01 00 00 00 00 06 10  06  00 02 68 69",
         reencode<System>},
        {"SYSTEM BYE", encode(bye, 8), "01 00 00 08 00 04 10  07  00 00", reencode<System>},
        {"BROADCAST_MESSAGE replayed", encode(bmsg, 0, flags::kReplay),
         "01 02 00 00 00 1c 11  00 00 00 00 00 00 00 01  00 00 00 00 00 00 00 02"
         "  00 05 61 6c 69 63 65  00 00  68 69",
         reencodeDelivery},
        {"BROADCAST_AGENT", encode(bagent),
         "01 00 00 00 00 27 12  00 00 00 00 00 00 00 03  00 00 00 00 00 00 00 04"
         "  00 03 62 6f 62  00 03 62 6f 74  00 00 00 00 00 00 00 05  00 02 67 6f",
         reencodeDelivery},
        {"IMAGE delivery", encode(bimage),
         "01 00 00 00 00 26 13  00 00 00 00 00 00 00 06  00 00 00 00 00 00 00 07"
         "  00 01 61  00 01 62  00 09 69 6d 61 67 65 2f 67 69 66  47 49 46 38",
         reencodeDelivery},
        {"ERROR USERNAME_TAKEN",
         encode(Error{static_cast<std::uint16_t>(ErrorCode::UsernameTaken), "taken"}, 1),
         "01 00 00 01 00 0a 15  00 01  00 05 74 61 6b 65 6e", reencode<Error>},
        {"ACK", encode(Ack{42, 2, 1}, 2),
         "01 00 00 02 00 11 17  00 00 00 00 00 00 00 2a  00 00 00 02  00 00 00 01", reencode<Ack>},
        {"USER_LIST", encode(list, 6),
         "01 00 00 06 00 13 18  00 02  00 05 61 6c 69 63 65 00 01  00 03 62 6f 74 01 02",
         reencode<UserList>},
        {"AUTH_REFRESH", encode(AuthRefresh{"abc"}, 9), "01 00 00 09 00 06 08  00 03 61 62 63",
         reencode<AuthRefresh>},
        {"REGISTER EPHEMERAL",
         encode(Register{"a", {}, ClientKind::User, "", 0}, 1, flags::kEphemeral),
         "01 04 00 01 00 1f 01  00 01 61  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  00"
         "  00 00  00 00 00 00 00 00 00 00",
         reencode<Register>},
        {"HEALTH_RESULT", encode(HealthResult{R"({"status":"ok"})"}, 3),
         "01 00 00 03 00 10 16  7b 22 73 74 61 74 75 73 22 3a 22 6f 6b 22 7d",
         reencode<HealthResult>},
    };
}

TEST(MessageVectorsTest, EncodeGivesExactBytesAndParseRoundTrips) {
    for (const auto& v : vectors()) {
        SCOPED_TRACE(v.name);
        EXPECT_EQ(toHex(v.frame), hex(v.expected));
        EXPECT_EQ(toHex(v.reencode(v.frame)), toHex(v.frame));
    }
}

TEST(MessageVectorsTest, EveryErrorCode) {
    // ERROR <code> with the code's name as text, answering sequence 0x0102.
    for (std::uint16_t code = 1; code <= kMaxErrorCode; ++code) {
        const std::string_view name = errorCodeName(static_cast<ErrorCode>(code));
        SCOPED_TRACE(name);
        const Bytes frame = encode(Error{code, name}, 0x0102);
        Bytes expected = {0x01,
                          0x00,
                          0x01,
                          0x02,
                          0x00,
                          static_cast<std::uint8_t>(5 + name.size()),
                          0x15,
                          0x00,
                          static_cast<std::uint8_t>(code),
                          0x00,
                          static_cast<std::uint8_t>(name.size())};
        expected.insert(expected.end(), name.begin(), name.end());
        EXPECT_EQ(toHex(frame), toHex(expected));
        Error back;
        const ByteSpan p = payloadOf(frame);
        ASSERT_EQ(parse(p, back), nullptr);
        EXPECT_EQ(back.code, code);
        EXPECT_EQ(back.text, name);
    }
}

TEST(MessageVectorsTest, EveryTruncationOfAPayloadWithFixedFieldsFails) {
    // Every strict prefix of these payloads is missing a field (their last field is not a tail).
    for (const auto& v : vectors()) {
        FrameHeader h;
        const ByteSpan p = payloadOf(v.frame, &h);
        for (std::size_t n = 0; n < p.size(); ++n) {
            const ByteSpan cut = p.first(n);
            const char* err = "";
            switch (static_cast<MsgType>(h.type)) {
                case MsgType::Register: {
                    Register m;
                    err = parse(cut, m);
                    break;
                }
                case MsgType::ListUsers: {
                    ListUsers m;
                    err = parse(cut, m);
                    break;
                }
                case MsgType::Ping:
                case MsgType::Pong: {
                    Ping m;
                    err = parse(cut, m);
                    break;
                }
                case MsgType::System: {
                    System m;
                    err = parse(cut, m);
                    break;
                }
                case MsgType::Error: {
                    Error m;
                    err = parse(cut, m);
                    break;
                }
                case MsgType::Ack: {
                    Ack m;
                    err = parse(cut, m);
                    break;
                }
                case MsgType::UserList: {
                    UserList m;
                    err = parse(cut, m);
                    break;
                }
                default:
                    continue;  // ends with a tail: covered by the tests below
            }
            ASSERT_NE(err, nullptr) << v.name << " cut at " << n;
            EXPECT_STREQ(err, "truncated") << v.name << " cut at " << n;
        }
    }
}

// ---- parse: field values and rules ---------------------------------------------------------

TEST(RegisterParseTest, Fields) {
    const Bytes frame = encode(Register{"alice", sampleUuid(), ClientKind::Agent, "tk", 77}, 1);
    Register m;
    ASSERT_EQ(parse(payloadOf(frame), m), nullptr);
    EXPECT_EQ(m.username, "alice");
    EXPECT_EQ(m.session, sampleUuid());
    EXPECT_EQ(m.kind, ClientKind::Agent);
    EXPECT_EQ(m.token, "tk");
    EXPECT_EQ(m.last_id, 77U);
}

TEST(RegisterParseTest, KindMustBe0Or1) {
    for (int kind : {2, 3, 0x80, 0xff}) {
        Bytes p =
            hexBytes("00 01 61  00000000000000000000000000000000  00  00 00  0000000000000000");
        p[3 + 16] = static_cast<std::uint8_t>(kind);
        Register m;
        EXPECT_STREQ(parse(p, m), "kind must be 0 or 1") << kind;
    }
}

TEST(RegisterParseTest, StringRulesComeFirst) {
    Register m;
    EXPECT_STREQ(parse(hexBytes("00 02 c0 80  00000000000000000000000000000000  00  00 00"
                                "  0000000000000000"),
                       m),
                 "invalid UTF-8");
    EXPECT_STREQ(parse(hexBytes("00 02 61 00  00000000000000000000000000000000  00  00 00"
                                "  0000000000000000"),
                       m),
                 "NUL in string");
    EXPECT_STREQ(parse(hexBytes("00 01 61  00000000000000000000000000000000  00  00 01 ff"
                                "  0000000000000000"),
                       m),
                 "invalid UTF-8");
}

TEST(RegisterParseTest, TrailingBytesAreIgnored) {
    Register m;
    const Bytes p = hexBytes(
        "00 01 61  00000000000000000000000000000000  01  00 00  0000000000000009  de ad be ef");
    EXPECT_EQ(parse(p, m), nullptr);
    EXPECT_EQ(m.username, "a");
    EXPECT_EQ(m.last_id, 9U);
}

TEST(MessageParseTest, TextRules) {
    Message m;
    EXPECT_STREQ(parse(hexBytes("00 00"), m), "empty text");
    EXPECT_STREQ(parse(hexBytes("00 03 62 6f 62"), m), "empty text");
    EXPECT_STREQ(parse(hexBytes("00 00 ed a0 80"), m), "text is not valid UTF-8");
    EXPECT_STREQ(parse(hexBytes("00 00 68 c3"), m), "text is not valid UTF-8");
    EXPECT_STREQ(parse(hexBytes("00 02 62 00 68 69"), m), "NUL in string");
    EXPECT_STREQ(parse(hexBytes("00"), m), "truncated");
    EXPECT_STREQ(parse(hexBytes("00 05 62 6f"), m), "truncated");
    // A tail text may hold NUL, and a 4-byte sequence is fine.
    const Bytes ok = hexBytes("00 03 62 6f 62  61 00 f0 9f 98 80");  // views borrow from it
    ASSERT_EQ(parse(ok, m), nullptr);
    EXPECT_EQ(m.to, "bob");
    EXPECT_EQ(m.text, std::string_view("a\0\xf0\x9f\x98\x80", 6));
}

TEST(AgentCommandParseTest, FieldsAndAnyArgs) {
    AgentCommand m;
    const Bytes p = hexBytes("00 00  00 00 00 00 00 00 01 00  00 02 67 6f  ff 00 fe");
    ASSERT_EQ(parse(p, m), nullptr);
    EXPECT_EQ(m.to, "");
    EXPECT_EQ(m.reply_to, 256U);
    EXPECT_EQ(m.command, "go");
    EXPECT_EQ(m.args, std::string_view("\xff\0\xfe", 3));
    EXPECT_STREQ(parse(hexBytes("00 00  00 00 00 00 00 00 01"), m), "truncated");
    EXPECT_STREQ(parse(hexBytes("00 00  00 00 00 00 00 00 01 00  00 01 ff"), m), "invalid UTF-8");
}

TEST(ImageParseTest, MimeAndDataRules) {
    auto frame = [](std::string_view mime, std::string_view data) {
        return encode(Image{"bob", mime, data}, 1);
    };
    Image m;
    const Bytes png = frame("image/png", "x");
    ASSERT_EQ(parse(payloadOf(png), m), nullptr);
    EXPECT_EQ(m.to, "bob");
    EXPECT_EQ(m.mime, "image/png");
    EXPECT_EQ(m.data, "x");
    const Bytes upper = frame("IMAGE/PNG", std::string_view("\0", 1));
    EXPECT_EQ(parse(payloadOf(upper), m), nullptr);
    EXPECT_EQ(m.mime, "IMAGE/PNG");  // relayed as sent
    EXPECT_EQ(parse(payloadOf(frame("Image/x", "x")), m), nullptr);
    EXPECT_STREQ(parse(payloadOf(frame("image/", "x")), m), "mime is not image/*");
    EXPECT_STREQ(parse(payloadOf(frame("text/plain", "x")), m), "mime is not image/*");
    EXPECT_STREQ(parse(payloadOf(frame("", "x")), m), "mime is not image/*");
    EXPECT_STREQ(parse(payloadOf(frame("image/png", "")), m), "empty image data");
}

TEST(ImageMimeTest, Table) {
    EXPECT_TRUE(isImageMime("image/png"));
    EXPECT_TRUE(isImageMime("ImAgE/svg+xml"));
    EXPECT_TRUE(isImageMime("image/x"));
    EXPECT_FALSE(isImageMime("image/"));
    EXPECT_FALSE(isImageMime("image"));
    EXPECT_FALSE(isImageMime("images/png"));
    EXPECT_FALSE(isImageMime("imagf/png"));
    EXPECT_FALSE(isImageMime(""));
    EXPECT_FALSE(isImageMime(" image/png"));
}

TEST(PingParseTest, TokenAndTrailingBytes) {
    Ping m;
    ASSERT_EQ(parse(hexBytes("00 00 00 00 00 00 00 2a ff ff"), m), nullptr);
    EXPECT_EQ(m.token, 42U);
    EXPECT_STREQ(parse(hexBytes("00 00 00 00 00 00 2a"), m), "truncated");
    EXPECT_STREQ(parse(Bytes{}, m), "truncated");
}

TEST(ListUsersParseTest, PrefixRules) {
    ListUsers m;
    ASSERT_EQ(parse(hexBytes("00 00"), m), nullptr);
    EXPECT_EQ(m.prefix, "");
    EXPECT_STREQ(parse(hexBytes("00 01 00"), m), "NUL in string");
    EXPECT_STREQ(parse(Bytes{}, m), "truncated");
}

TEST(SystemParseTest, WelcomeFields) {
    System s;
    s.event = SystemEvent::Welcome;
    s.text = "hello";
    s.welcome = {sampleUuid(), false, 0x01020304, 31, 120, 4096};
    System m;
    const Bytes frame = encode(s, 1);
    ASSERT_EQ(parse(payloadOf(frame), m), nullptr);
    EXPECT_EQ(m.event, SystemEvent::Welcome);
    EXPECT_EQ(m.text, "hello");
    EXPECT_EQ(m.welcome.session, sampleUuid());
    EXPECT_FALSE(m.welcome.resumed);
    EXPECT_EQ(m.welcome.pending, 0x01020304U);
    EXPECT_EQ(m.welcome.heartbeat_s, 31);
    EXPECT_EQ(m.welcome.session_timeout_s, 120);
    EXPECT_EQ(m.welcome.max_payload, 4096);
}

TEST(SystemParseTest, EventFields) {
    System m;
    const Bytes joined = hexBytes("02 00 00 00 03 62 6f 62");
    ASSERT_EQ(parse(joined, m), nullptr);
    EXPECT_EQ(m.event, SystemEvent::Joined);
    EXPECT_EQ(m.name, "bob");
    ASSERT_EQ(parse(hexBytes("04 00 00 00 00 01 00"), m), nullptr);
    EXPECT_EQ(m.dropped, 256U);
    const Bytes shutdown = hexBytes("05 00 01 78 01 00");
    ASSERT_EQ(parse(shutdown, m), nullptr);
    EXPECT_EQ(m.text, "x");
    EXPECT_EQ(m.retry_after_s, 256);
}

TEST(SystemParseTest, UnknownEventKeepsItsText) {
    System m;
    const Bytes p = hexBytes("63 00 02 68 69 01 02 03");
    ASSERT_EQ(parse(p, m), nullptr);
    EXPECT_EQ(static_cast<int>(m.event), 0x63);
    EXPECT_EQ(m.text, "hi");
}

TEST(DeliveryParseTest, Fields) {
    Delivery d;
    d.type = MsgType::BroadcastAgent;
    d.id = 9;
    d.time_ms = 1700000000000ULL;
    d.from = "bot";
    d.to = "alice";
    d.reply_to = 8;
    d.command = "done";
    d.args = std::string_view("\0\1", 2);
    Delivery m;
    const Bytes frame = encode(d);
    ASSERT_EQ(parse(MsgType::BroadcastAgent, payloadOf(frame), m), nullptr);
    EXPECT_EQ(m.type, MsgType::BroadcastAgent);
    EXPECT_EQ(m.id, 9U);
    EXPECT_EQ(m.time_ms, 1700000000000ULL);
    EXPECT_EQ(m.from, "bot");
    EXPECT_EQ(m.to, "alice");
    EXPECT_EQ(m.reply_to, 8U);
    EXPECT_EQ(m.command, "done");
    EXPECT_EQ(m.args, d.args);
}

TEST(DeliveryParseTest, OnlyDeliveryTypes) {
    Delivery m;
    EXPECT_STREQ(parse(MsgType::Message, hexBytes("00"), m), "not a delivery type");
    Delivery d;
    d.type = MsgType::Ack;
    EXPECT_TRUE(encode(d).empty());
}

TEST(ErrorParseTest, KeepsUnknownCodes) {
    Error m;
    const Bytes p = hexBytes("01 00 00 02 6f 6b");
    ASSERT_EQ(parse(p, m), nullptr);
    EXPECT_EQ(m.code, 256);
    EXPECT_EQ(m.text, "ok");
}

TEST(UserListParseTest, CountMustMatchEntries) {
    UserList m;
    ASSERT_EQ(parse(hexBytes("00 00"), m), nullptr);
    EXPECT_TRUE(m.users.empty());
    EXPECT_STREQ(parse(hexBytes("00 02  00 01 61 00 01"), m), "truncated");
    EXPECT_TRUE(m.users.empty());
    EXPECT_STREQ(parse(hexBytes("ff ff"), m), "truncated");
    const Bytes one = hexBytes("00 01  00 01 61 01 02  99");  // trailing byte ignored
    ASSERT_EQ(parse(one, m), nullptr);
    ASSERT_EQ(m.users.size(), 1U);
    EXPECT_EQ(m.users[0].name, "a");
    EXPECT_EQ(m.users[0].kind, ClientKind::Agent);
    EXPECT_EQ(m.users[0].state, UserState::Detached);
}

TEST(HealthResultParseTest, JsonMustBeUtf8) {
    HealthResult m;
    ASSERT_EQ(parse(span(R"({"a":1})"), m), nullptr);
    EXPECT_EQ(m.json, R"({"a":1})");
    EXPECT_STREQ(parse(hexBytes("7b ff 7d"), m), "json is not valid UTF-8");
}

// ---- encode limits -----------------------------------------------------------------------------

TEST(EncodeLimitsTest, MessageUpToTheFrameLimit) {
    const std::string fits(kMaxPayload - 2, 'a');
    EXPECT_EQ(encode(Message{"", fits}, 1).size(), kHeaderSize + kMaxPayload);
    const std::string over(kMaxPayload - 1, 'a');
    EXPECT_TRUE(encode(Message{"", over}, 1).empty());
}

TEST(EncodeLimitsTest, UserListStopsAtTheFrameLimit) {
    // 1820 entries of 36 bytes + one of 12 bytes fill 65534 bytes exactly; a further entry is cut.
    UserList list;
    std::vector<std::string> names;
    for (int i = 0; i < 1820; ++i) {
        names.push_back(std::string(kMaxNameLength - 5, 'n') + std::to_string(10000 + i));
    }
    names.emplace_back("exactfit");
    names.emplace_back("x");
    for (const auto& n : names) {
        list.users.push_back({n, ClientKind::User, UserState::Online});
    }
    const Bytes frame = encode(list, 1);
    ASSERT_EQ(frame.size(), kHeaderSize + kMaxPayload);
    UserList back;
    ASSERT_EQ(parse(payloadOf(frame), back), nullptr);
    ASSERT_EQ(back.users.size(), 1821U);
    EXPECT_EQ(back.users.back().name, "exactfit");
    EXPECT_EQ(frame[7], 0x07);  // count 1821 = 0x071d
    EXPECT_EQ(frame[8], 0x1d);
}

TEST(EncodeLimitsTest, EmptyUserList) {
    EXPECT_EQ(toHex(encode(UserList{}, 5)), hex("01 00 00 05 00 03 18 00 00"));
}

// Calls f(vector, its header, its payload, the parsed delivery) for every delivery vector.
template <class F>
void forEachDeliveryVector(F&& f) {
    for (const auto& v : vectors()) {
        FrameHeader h;
        const ByteSpan p = payloadOf(v.frame, &h);
        const auto type = static_cast<MsgType>(h.type);
        if (type != MsgType::BroadcastMessage && type != MsgType::BroadcastAgent &&
            !(type == MsgType::Image && h.sequence == 0)) {
            continue;
        }
        Delivery d;
        ASSERT_EQ(parse(type, p, d), nullptr) << v.name;
        f(v, h, p, d);
    }
}

TEST(DeliveryPayloadSizeTest, MatchesTheEncodedPayload) {
    forEachDeliveryVector([](const auto& v, const FrameHeader&, ByteSpan p, const Delivery& d) {
        EXPECT_EQ(deliveryPayloadSize(d), p.size()) << v.name;
    });
    // A delivery that would not fit: the sender must get TOO_LARGE.
    Delivery big;
    big.type = MsgType::BroadcastMessage;
    big.from = "alice";
    std::string text(kMaxPayload - 8 - 8 - 7 - 2, 'a');
    big.text = text;
    EXPECT_EQ(deliveryPayloadSize(big), kMaxPayload);
    EXPECT_EQ(encode(big).size(), kHeaderSize + kMaxPayload);
    text.push_back('a');
    big.text = text;
    EXPECT_EQ(deliveryPayloadSize(big), kMaxPayload + 1);
    EXPECT_TRUE(encode(big).empty());
}

// encodeInto writes the same bytes as encode() into a buffer of exactly the frame's size, and
// refuses any other size, a type that is no delivery and a payload over the limit.
TEST(EncodeIntoTest, WritesWhatEncodeWritesIntoAnExactBuffer) {
    forEachDeliveryVector([](const auto& v, const FrameHeader& h, ByteSpan, const Delivery& d) {
        Bytes out(kHeaderSize + deliveryPayloadSize(d), 0xEE);
        ASSERT_TRUE(encodeInto(d, out, h.sequence, h.flags)) << v.name;
        EXPECT_EQ(toHex(out), toHex(v.frame)) << v.name;
        EXPECT_EQ(toHex(out), toHex(encode(d, h.sequence, h.flags))) << v.name;
        Bytes longer(out.size() + 1);
        EXPECT_FALSE(encodeInto(d, longer)) << v.name;
        Bytes shorter(out.size() - 1);
        EXPECT_FALSE(encodeInto(d, shorter)) << v.name;
    });
    Delivery d;
    d.type = MsgType::Message;  // a request type, not a delivery
    d.from = "alice";
    d.text = "hi";
    Bytes out(kHeaderSize + deliveryPayloadSize(d));
    EXPECT_FALSE(encodeInto(d, out));
    d.type = MsgType::BroadcastMessage;
    Bytes fits(kHeaderSize + deliveryPayloadSize(d));
    EXPECT_TRUE(encodeInto(d, fits));
    const std::string text(kMaxPayload, 'a');
    d.text = text;
    Bytes big(kHeaderSize + deliveryPayloadSize(d));
    EXPECT_FALSE(encodeInto(d, big)) << "over kMaxPayload";
}

}  // namespace
}  // namespace tundra::msg
