// SPDX-License-Identifier: Apache-2.0
// Tests of the frame layer: decodeFrame's header checks and boundaries, FrameDecoder buffering
// at every split point, FrameWriter encoding and PayloadReader bounds.
#include "tundra/codec.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "unit/proto/test_bytes.h"

namespace tundra {
namespace {

using test::hex;
using test::hexBytes;
using test::toHex;

// ---- decodeFrame: header errors and partial headers --------------------------------------------

struct HeaderCase {
    const char* name;
    const char* bytes;
    std::size_t max_payload;
    DecodeStatus status;
    ErrorCode error;
    std::uint16_t sequence;  // header.sequence as reported
};

TEST(DecodeFrameTest, HeaderChecksFireAsSoonAsTheirBytesArrive) {
    const HeaderCase cases[] = {
        {"empty input", "", kMaxPayload, DecodeStatus::NeedMore, {}, 0},
        {"version only", "01", kMaxPayload, DecodeStatus::NeedMore, {}, 0},
        {"bad version, 1 byte", "02", kMaxPayload, DecodeStatus::Error,
         ErrorCode::UnsupportedVersion, 0},
        {"version 0", "00", kMaxPayload, DecodeStatus::Error, ErrorCode::UnsupportedVersion, 0},
        {"bad version, 3 bytes: no sequence yet", "ff 00 12", kMaxPayload, DecodeStatus::Error,
         ErrorCode::UnsupportedVersion, 0},
        {"bad version, sequence read", "47 45 54 20", kMaxPayload, DecodeStatus::Error,
         ErrorCode::UnsupportedVersion, 0x5420},
        {"5 bytes: length not complete",
         "01 00 00 05 00",
         kMaxPayload,
         DecodeStatus::NeedMore,
         {},
         5},
        {"length 0", "01 00 00 05 00 00", kMaxPayload, DecodeStatus::Error,
         ErrorCode::InvalidFormat, 5},
        {"length 0 with type", "01 00 ab cd 00 00 02", kMaxPayload, DecodeStatus::Error,
         ErrorCode::InvalidFormat, 0xabcd},
        {"payload one over the limit", "01 00 00 07 00 0c", 10, DecodeStatus::Error,
         ErrorCode::TooLarge, 7},
        {"payload at the limit waits", "01 00 00 07 00 0b", 10, DecodeStatus::NeedMore, {}, 7},
        {"limit 0 refuses any payload", "01 00 00 01 00 02", 0, DecodeStatus::Error,
         ErrorCode::TooLarge, 1},
        {"limit 0 accepts an empty payload", "01 00 00 01 00 01 05", 0, DecodeStatus::Frame, {}, 1},
        {"length 0xffff is the wire maximum",
         "01 00 00 01 ff ff",
         kMaxPayload,
         DecodeStatus::NeedMore,
         {},
         1},
        {"limit above kMaxPayload is clamped",
         "01 00 00 01 ff ff",
         1000000,
         DecodeStatus::NeedMore,
         {},
         1},
        {"header without payload yet",
         "01 00 00 09 00 05 02",
         kMaxPayload,
         DecodeStatus::NeedMore,
         {},
         9},
        {"version checked before length", "02 00 00 01 00 00", kMaxPayload, DecodeStatus::Error,
         ErrorCode::UnsupportedVersion, 1},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        const Bytes in = hexBytes(c.bytes);
        const DecodeResult r = decodeFrame(in, c.max_payload);
        EXPECT_EQ(r.status, c.status);
        EXPECT_EQ(r.header.sequence, c.sequence);
        if (c.status == DecodeStatus::Error) {
            EXPECT_EQ(r.error, c.error);
            EXPECT_STRNE(r.reason, "");
        }
        if (c.status != DecodeStatus::Frame) {
            EXPECT_EQ(r.consumed, 0U);
        }
    }
}

TEST(DecodeFrameTest, ErrorReportsTheHeaderFieldsRead) {
    const Bytes in = hexBytes("09 fc 12 34 00 00 99");
    const DecodeResult r = decodeFrame(in, kMaxPayload);
    ASSERT_EQ(r.status, DecodeStatus::Error);
    EXPECT_EQ(r.header.version, 9);
    EXPECT_EQ(r.header.flags, 0xfc);
    EXPECT_EQ(r.header.sequence, 0x1234);
    EXPECT_EQ(r.header.length, 0);
    EXPECT_EQ(r.header.type, 0x99);
}

TEST(DecodeFrameTest, EmptyPayloadFrame) {
    const Bytes in = hexBytes("01 00 00 03 00 01 05");
    const DecodeResult r = decodeFrame(in, kMaxPayload);
    ASSERT_EQ(r.status, DecodeStatus::Frame);
    EXPECT_EQ(r.consumed, 7U);
    EXPECT_EQ(r.payload.size(), 0U);
    EXPECT_EQ(r.header.type, 0x05);
    EXPECT_EQ(r.header.sequence, 3);
    EXPECT_EQ(r.header.length, 1);
}

TEST(DecodeFrameTest, FrameFieldsAndPayloadView) {
    const Bytes in = hexBytes("01 01 ff fe 00 05 02 00 00 68 69 aa bb");
    const DecodeResult r = decodeFrame(in, kMaxPayload);
    ASSERT_EQ(r.status, DecodeStatus::Frame);
    EXPECT_EQ(r.header.version, 1);
    EXPECT_EQ(r.header.flags, 0x01);
    EXPECT_EQ(r.header.sequence, 0xfffe);
    EXPECT_EQ(r.header.length, 5);
    EXPECT_EQ(r.header.payloadSize(), 4U);
    EXPECT_EQ(r.header.type, 0x02);
    EXPECT_EQ(r.consumed, 11U);
    EXPECT_EQ(r.payload.data(), in.data() + 7);
    EXPECT_EQ(toHex(r.payload), hex("00 00 68 69"));
}

TEST(DecodeFrameTest, ReservedFlagsAndUnknownTypesAreLeftForTheCaller) {
    for (int flag_bits : {0x02, 0x04, 0x80, 0xff}) {
        for (int type : {0x00, 0x08, 0x0f, 0x19, 0xff}) {
            Bytes in = hexBytes("01 00 00 01 00 01 00");
            in[1] = static_cast<std::uint8_t>(flag_bits);
            in[6] = static_cast<std::uint8_t>(type);
            const DecodeResult r = decodeFrame(in, kMaxPayload);
            ASSERT_EQ(r.status, DecodeStatus::Frame);
            EXPECT_EQ(r.header.flags, flag_bits);
            EXPECT_EQ(r.header.type, type);
        }
    }
}

TEST(DecodeFrameTest, EveryStrictPrefixOfAFrameNeedsMore) {
    const Bytes frame = hexBytes("01 00 00 02 00 05 02 00 00 68 69");
    for (std::size_t n = 0; n < frame.size(); ++n) {
        SCOPED_TRACE(n);
        EXPECT_EQ(decodeFrame(ByteSpan(frame.data(), n), kMaxPayload).status,
                  DecodeStatus::NeedMore);
    }
    EXPECT_EQ(decodeFrame(frame, kMaxPayload).status, DecodeStatus::Frame);
}

Bytes frameWithPayload(std::size_t payload_size, std::uint8_t fill) {
    FrameWriter w(MsgType::HealthResult, 7);
    w.tail(Bytes(payload_size, fill));
    return w.finish();
}

TEST(DecodeFrameTest, BoundaryPayloadSizes) {
    // Largest payload of the wire format: length field 0xffff.
    const Bytes max = frameWithPayload(kMaxPayload, 0x5a);
    ASSERT_EQ(max.size(), kHeaderSize + kMaxPayload);
    EXPECT_EQ(max[4], 0xff);
    EXPECT_EQ(max[5], 0xff);
    const DecodeResult r = decodeFrame(max, kMaxPayload);
    ASSERT_EQ(r.status, DecodeStatus::Frame);
    EXPECT_EQ(r.payload.size(), kMaxPayload);
    EXPECT_EQ(r.consumed, max.size());

    // A configured limit: exactly at it decodes, one over is refused from the header alone.
    const std::size_t limit = 1000;
    const Bytes at = frameWithPayload(limit, 1);
    EXPECT_EQ(decodeFrame(at, limit).status, DecodeStatus::Frame);
    const Bytes over = frameWithPayload(limit + 1, 1);
    const DecodeResult too_large = decodeFrame(ByteSpan(over.data(), 6), limit);
    ASSERT_EQ(too_large.status, DecodeStatus::Error);
    EXPECT_EQ(too_large.error, ErrorCode::TooLarge);
    EXPECT_EQ(too_large.header.sequence, 7);
}

TEST(DecodeFrameTest, SeveralFramesInOneBuffer) {
    const Bytes in = hexBytes(
        "01 00 00 01 00 01 05"                          // HEALTH_CHECK seq 1
        "01 00 00 02 00 09 14 00 00 00 00 00 00 00 2a"  // PING seq 2 token 42
        "01 01 00 03 00 05 02 00 00 68 69"              // MESSAGE seq 3, ACK flag
        "01 00 00 04 00");                              // partial
    std::vector<std::pair<std::uint8_t, std::uint16_t>> seen;
    std::size_t offset = 0;
    while (true) {
        const DecodeResult r = decodeFrame(ByteSpan(in).subspan(offset), kMaxPayload);
        if (r.status != DecodeStatus::Frame) {
            EXPECT_EQ(r.status, DecodeStatus::NeedMore);
            break;
        }
        seen.emplace_back(r.header.type, r.header.sequence);
        offset += r.consumed;
    }
    const std::vector<std::pair<std::uint8_t, std::uint16_t>> expected = {
        {0x05, 1}, {0x14, 2}, {0x02, 3}};
    EXPECT_EQ(seen, expected);
    EXPECT_EQ(in.size() - offset, 5U);
}

// ---- encodeHeader / FrameWriter --------------------------------------------------------------

TEST(EncodeHeaderTest, WritesBigEndianFieldsAndLengthPlusOne) {
    std::uint8_t out[kHeaderSize] = {};
    encodeHeader(out, MsgType::UserList, 0x03, 0xabcd, 0x1234);
    EXPECT_EQ(toHex(ByteSpan(out, kHeaderSize)), hex("01 03 ab cd 12 35 18"));
    encodeHeader(out, MsgType::Logout, 0, 0, 0);
    EXPECT_EQ(toHex(ByteSpan(out, kHeaderSize)), hex("01 00 00 00 00 01 07"));
    encodeHeader(out, MsgType::Message, 0, 1, kMaxPayload);
    EXPECT_EQ(toHex(ByteSpan(out, kHeaderSize)), hex("01 00 00 01 ff ff 02"));
}

TEST(FrameWriterTest, EveryFieldTypeIsBigEndian) {
    Uuid id{};
    for (std::size_t i = 0; i < id.size(); ++i) {
        id[i] = static_cast<std::uint8_t>(0xf0 + i);
    }
    FrameWriter w(MsgType::Ack, 0x0102, flags::kReplay);
    w.u8(0xaa)
        .u16(0xbbcc)
        .u32(0x11223344)
        .u64(0x0102030405060708ULL)
        .str("hi")
        .uuid(id)
        .tail(std::string_view("xy"));
    const Bytes b{0xde, 0xad};
    w.tail(ByteSpan(b));
    EXPECT_EQ(w.payloadSize(), 1U + 2 + 4 + 8 + 4 + 16 + 2 + 2);
    EXPECT_EQ(toHex(w.finish()),
              hex("01 02 01 02 00 28 17"
                  "aa bb cc 11 22 33 44 01 02 03 04 05 06 07 08 00 02 68 69"
                  "f0 f1 f2 f3 f4 f5 f6 f7 f8 f9 fa fb fc fd fe ff 78 79 de ad"));
}

TEST(FrameWriterTest, EmptyPayload) {
    EXPECT_EQ(toHex(FrameWriter(MsgType::HealthCheck, 9).finish()), hex("01 00 00 09 00 01 05"));
}

TEST(FrameWriterTest, RefusesPayloadOverTheWireMaximum) {
    EXPECT_EQ(frameWithPayload(kMaxPayload, 0).size(), kHeaderSize + kMaxPayload);
    EXPECT_TRUE(frameWithPayload(kMaxPayload + 1, 0).empty());
    EXPECT_TRUE(frameWithPayload(200000, 0).empty());
}

TEST(FrameWriterTest, StringTooLongForItsPrefixMakesTheFrameFail) {
    const std::string big(70000, 'a');
    FrameWriter w(MsgType::Message);
    w.str(big);
    EXPECT_TRUE(w.finish().empty());
    // The largest str that fits a frame.
    FrameWriter ok(MsgType::ListUsers);
    ok.str(std::string(kMaxPayload - 2, 'b'));
    const Bytes frame = ok.finish();
    ASSERT_EQ(frame.size(), kHeaderSize + kMaxPayload);
    EXPECT_EQ(frame[7], 0xff);
    EXPECT_EQ(frame[8], 0xfc);
}

// ---- PayloadReader ---------------------------------------------------------------------------

TEST(PayloadReaderTest, ReadsEveryFieldType) {
    const Bytes p = hexBytes(
        "aa bb cc 11 22 33 44 01 02 03 04 05 06 07 08 00 02 68 69"
        "f0 f1 f2 f3 f4 f5 f6 f7 f8 f9 fa fb fc fd fe ff 78 79");
    PayloadReader r(p);
    EXPECT_EQ(r.u8(), 0xaa);
    EXPECT_EQ(r.u16(), 0xbbcc);
    EXPECT_EQ(r.u32(), 0x11223344U);
    EXPECT_EQ(r.u64(), 0x0102030405060708ULL);
    EXPECT_EQ(r.str(), "hi");
    const Uuid id = r.uuid();
    EXPECT_EQ(id[0], 0xf0);
    EXPECT_EQ(id[15], 0xff);
    EXPECT_EQ(r.remaining(), 2U);
    EXPECT_EQ(r.tail(), "xy");
    EXPECT_EQ(r.remaining(), 0U);
    EXPECT_EQ(r.tail(), "");
    EXPECT_TRUE(r.ok());
    EXPECT_STREQ(r.error(), "");
}

TEST(PayloadReaderTest, EveryShortReadFailsTruncated) {
    struct Case {
        const char* name;
        const char* bytes;
        int field;  // 0 u8, 1 u16, 2 u32, 3 u64, 4 str, 5 uuid
    };
    const Case cases[] = {
        {"u8 of nothing", "", 0},
        {"u16 of 1", "01", 1},
        {"u32 of 3", "01 02 03", 2},
        {"u64 of 7", "01 02 03 04 05 06 07", 3},
        {"str without length", "00", 4},
        {"str shorter than its length", "00 03 61 62", 4},
        {"uuid of 15", "00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e", 5},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        const Bytes p = hexBytes(c.bytes);
        PayloadReader r(p);
        switch (c.field) {
            case 0:
                EXPECT_EQ(r.u8(), 0);
                break;
            case 1:
                EXPECT_EQ(r.u16(), 0);
                break;
            case 2:
                EXPECT_EQ(r.u32(), 0U);
                break;
            case 3:
                EXPECT_EQ(r.u64(), 0U);
                break;
            case 4:
                EXPECT_EQ(r.str(), "");
                break;
            default:
                EXPECT_TRUE(isNil(r.uuid()));
                break;
        }
        EXPECT_FALSE(r.ok());
        EXPECT_STREQ(r.error(), "truncated");
    }
}

TEST(PayloadReaderTest, FirstFailureSticks) {
    const Bytes p = hexBytes("00 05 61 62 c0 80 64 00 00 00 00 00 00 00 07");
    PayloadReader r(p);
    EXPECT_EQ(r.str(), "");  // holds an overlong NUL
    EXPECT_FALSE(r.ok());
    EXPECT_STREQ(r.error(), "invalid UTF-8");
    // Enough bytes remain, but a failed reader returns zero values and keeps the first reason.
    EXPECT_EQ(r.u8(), 0);
    EXPECT_EQ(r.u64(), 0U);
    EXPECT_EQ(r.tail(), "");
    EXPECT_TRUE(isNil(r.uuid()));
    EXPECT_STREQ(r.error(), "invalid UTF-8");
}

TEST(PayloadReaderTest, StrRefusesNulAndBadUtf8ButTailDoesNot) {
    {
        const Bytes p = hexBytes("00 03 61 00 62");
        PayloadReader r(p);
        EXPECT_EQ(r.str(), "");
        EXPECT_STREQ(r.error(), "NUL in string");
    }
    {
        const Bytes p = hexBytes("00 02 ed a0 80");
        PayloadReader r(p);
        EXPECT_EQ(r.str(), "");
        EXPECT_STREQ(r.error(), "invalid UTF-8");
    }
    {
        const Bytes p = hexBytes("00 00 61 00 ff");
        PayloadReader r(p);
        EXPECT_EQ(r.str(), "");
        EXPECT_EQ(r.tail(), std::string_view("a\0\xff", 3));
        EXPECT_TRUE(r.ok());
    }
}

// ---- FrameDecoder ----------------------------------------------------------------------------

struct SeenFrame {
    std::uint8_t type;
    std::uint8_t flags;
    std::uint16_t sequence;
    std::string payload;
    bool operator==(const SeenFrame&) const = default;
};

// Pops every complete frame; returns the status that ended the loop.
DecodeStatus drain(FrameDecoder& d, std::vector<SeenFrame>& out) {
    while (true) {
        const DecodeResult r = d.next();
        if (r.status != DecodeStatus::Frame) {
            return r.status;
        }
        out.push_back(
            {r.header.type, r.header.flags, r.header.sequence,
             std::string(reinterpret_cast<const char*>(r.payload.data()), r.payload.size())});
    }
}

// A stream with an empty payload, a max-size-ish str, flags, and sequence extremes.
Bytes validStream() {
    Bytes s;
    auto add = [&s](const Bytes& f) { s.insert(s.end(), f.begin(), f.end()); };
    add(FrameWriter(MsgType::HealthCheck, 1).finish());
    add(FrameWriter(MsgType::Register, 2).str("alice").uuid(Uuid{}).u8(0).str("").u64(0).finish());
    add(FrameWriter(MsgType::Message, 65535, flags::kAck).str("").tail("hello").finish());
    add(FrameWriter(MsgType::Ping, 0).u64(42).finish());
    add(FrameWriter(MsgType::Logout, 3).finish());
    return s;
}

std::vector<SeenFrame> expectedStreamFrames() {
    return {
        {0x05, 0, 1, ""},
        {0x01, 0, 2,
         std::string("\0\x05"
                     "alice",
                     7) +
             std::string(16 + 1 + 2 + 8, '\0')},
        {0x02, 1, 65535, std::string("\0\0hello", 7)},
        {0x14, 0, 0, std::string("\0\0\0\0\0\0\0\x2a", 8)},
        {0x07, 0, 3, ""},
    };
}

TEST(FrameDecoderTest, WholeStreamAtOnce) {
    FrameDecoder d;
    d.append(validStream());
    std::vector<SeenFrame> seen;
    EXPECT_EQ(drain(d, seen), DecodeStatus::NeedMore);
    EXPECT_EQ(seen, expectedStreamFrames());
    EXPECT_EQ(d.buffered(), 0U);
}

TEST(FrameDecoderTest, ByteByByte) {
    const Bytes stream = validStream();
    FrameDecoder d;
    std::vector<SeenFrame> seen;
    for (std::uint8_t b : stream) {
        d.append(ByteSpan(&b, 1));
        ASSERT_EQ(drain(d, seen), DecodeStatus::NeedMore);
    }
    EXPECT_EQ(seen, expectedStreamFrames());
    EXPECT_EQ(d.buffered(), 0U);
}

TEST(FrameDecoderTest, EverySplitPoint) {
    const Bytes stream = validStream();
    const ByteSpan all(stream);
    for (std::size_t split = 0; split <= stream.size(); ++split) {
        SCOPED_TRACE(split);
        FrameDecoder d;
        std::vector<SeenFrame> seen;
        d.append(all.first(split));
        ASSERT_EQ(drain(d, seen), DecodeStatus::NeedMore);
        d.append(all.subspan(split));
        ASSERT_EQ(drain(d, seen), DecodeStatus::NeedMore);
        EXPECT_EQ(seen, expectedStreamFrames());
    }
}

TEST(FrameDecoderTest, EveryPairOfSplitPoints) {
    const Bytes stream = validStream();
    const ByteSpan all(stream);
    for (std::size_t a = 0; a <= stream.size(); ++a) {
        for (std::size_t b = a; b <= stream.size(); ++b) {
            FrameDecoder d;
            std::vector<SeenFrame> seen;
            d.append(all.subspan(0, a));
            drain(d, seen);
            d.append(all.subspan(a, b - a));
            drain(d, seen);
            d.append(all.subspan(b));
            ASSERT_EQ(drain(d, seen), DecodeStatus::NeedMore) << a << "," << b;
            ASSERT_EQ(seen, expectedStreamFrames()) << a << "," << b;
        }
    }
}

TEST(FrameDecoderTest, PartialFrameStaysBuffered) {
    const Bytes stream = validStream();
    FrameDecoder d;
    d.append(ByteSpan(stream).first(10));  // HEALTH_CHECK + 3 bytes of REGISTER
    std::vector<SeenFrame> seen;
    EXPECT_EQ(drain(d, seen), DecodeStatus::NeedMore);
    EXPECT_EQ(seen.size(), 1U);
    EXPECT_EQ(d.buffered(), 3U);
}

TEST(FrameDecoderTest, PayloadViewSurvivesUntilNextCall) {
    const Bytes stream = validStream();
    FrameDecoder d;
    d.append(stream);
    d.next();
    const DecodeResult reg = d.next();
    ASSERT_EQ(reg.status, DecodeStatus::Frame);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(reg.payload.data()) + 2, 5), "alice");
}

TEST(FrameDecoderTest, ErrorsAreTerminal) {
    FrameDecoder d;
    std::vector<SeenFrame> seen;
    d.append(hexBytes("01 00 00 01 00 01 05  01 00 00 02 00 00"));
    EXPECT_EQ(drain(d, seen), DecodeStatus::Error);
    EXPECT_EQ(seen.size(), 1U);
    // A valid frame after the error does not bring the stream back, and is not even kept.
    const std::size_t before = d.buffered();
    d.append(hexBytes("01 00 00 03 00 01 05"));
    EXPECT_EQ(d.buffered(), before);
    for (int i = 0; i < 3; ++i) {
        const DecodeResult r = d.next();
        EXPECT_EQ(r.status, DecodeStatus::Error);
        EXPECT_EQ(r.error, ErrorCode::InvalidFormat);
        EXPECT_EQ(r.header.sequence, 2);
    }
}

TEST(FrameDecoderTest, ErrorIsFrozenAtTheFirstReport) {
    // A bad version is reported after one byte; the sequence that arrives later is not read.
    FrameDecoder d;
    d.append(hexBytes("02"));
    EXPECT_EQ(d.next().header.sequence, 0);
    d.append(hexBytes("00 12 34 00 01 05"));
    const DecodeResult r = d.next();
    EXPECT_EQ(r.status, DecodeStatus::Error);
    EXPECT_EQ(r.error, ErrorCode::UnsupportedVersion);
    EXPECT_EQ(r.header.sequence, 0);
}

TEST(FrameDecoderTest, EnforcesItsPayloadLimit) {
    FrameDecoder d(4);
    d.append(FrameWriter(MsgType::Ping, 1).u32(1).finish());
    std::vector<SeenFrame> seen;
    EXPECT_EQ(drain(d, seen), DecodeStatus::NeedMore);
    EXPECT_EQ(seen.size(), 1U);
    d.append(hexBytes("01 00 00 02 00 06"));
    const DecodeResult r = d.next();
    EXPECT_EQ(r.status, DecodeStatus::Error);
    EXPECT_EQ(r.error, ErrorCode::TooLarge);
}

TEST(FrameDecoderTest, BadVersionAfterGoodFramesIsReportedAtOnce) {
    FrameDecoder d;
    std::vector<SeenFrame> seen;
    d.append(hexBytes("01 00 00 01 00 01 05 16"));
    const DecodeStatus st = drain(d, seen);
    EXPECT_EQ(st, DecodeStatus::Error);
    EXPECT_EQ(seen.size(), 1U);
    EXPECT_EQ(d.next().error, ErrorCode::UnsupportedVersion);
}

}  // namespace
}  // namespace tundra
