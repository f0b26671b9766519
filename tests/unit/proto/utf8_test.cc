// SPDX-License-Identifier: Apache-2.0
// RFC 3629 edge cases for isValidUtf8 and utf8SequenceLength, JSON string encoding
// (appendJsonString) and the name rule isValidName.
#include <gtest/gtest.h>

#include <string>

#include "tundra/codec.h"
#include "unit/proto/test_bytes.h"

namespace tundra {
namespace {

std::string bytesOf(const char* hex_text) {
    const Bytes b = test::hexBytes(hex_text);
    return {b.begin(), b.end()};
}

struct Utf8Case {
    const char* name;
    const char* hex_text;
    bool valid;
};

TEST(Utf8Test, Rfc3629Table) {
    const Utf8Case cases[] = {
        {"empty", "", true},
        {"ascii", "68 65 6c 6c 6f", true},
        {"NUL is valid UTF-8 (str rejects it separately)", "00", true},
        {"DEL", "7f", true},
        {"2-byte smallest U+0080", "c2 80", true},
        {"2-byte largest U+07FF", "df bf", true},
        {"3-byte smallest U+0800", "e0 a0 80", true},
        {"euro sign", "e2 82 ac", true},
        {"last before surrogates U+D7FF", "ed 9f bf", true},
        {"first after surrogates U+E000", "ee 80 80", true},
        {"U+FFFF", "ef bf bf", true},
        {"4-byte smallest U+10000", "f0 90 80 80", true},
        {"emoji U+1F600", "f0 9f 98 80", true},
        {"largest U+10FFFF", "f4 8f bf bf", true},
        {"mixed", "61 c3 a9 e2 82 ac f0 9f 98 80 7a", true},
        {"overlong NUL C0 80", "c0 80", false},
        {"overlong C1 BF", "c1 bf", false},
        {"overlong 3-byte E0 80 80", "e0 80 80", false},
        {"overlong 3-byte E0 9F BF", "e0 9f bf", false},
        {"overlong 4-byte F0 80 80 80", "f0 80 80 80", false},
        {"overlong 4-byte F0 8F BF BF", "f0 8f bf bf", false},
        {"high surrogate ED A0 80", "ed a0 80", false},
        {"low surrogate ED BF BF", "ed bf bf", false},
        {"above U+10FFFF F4 90 80 80", "f4 90 80 80", false},
        {"F5 lead", "f5 80 80 80", false},
        {"FF byte", "ff", false},
        {"FE byte", "fe", false},
        {"bare continuation", "80", false},
        {"continuation after ascii", "61 bf", false},
        {"truncated 2-byte", "c3", false},
        {"truncated 3-byte", "e2 82", false},
        {"truncated 4-byte", "f0 9f 98", false},
        {"truncated then ascii", "e2 82 61", false},
        {"bad second continuation", "e2 28 a1", false},
        {"bad third continuation", "f0 9f 28 80", false},
        {"bad fourth continuation", "f0 9f 98 28", false},
        {"5-byte form", "f8 88 80 80 80", false},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        EXPECT_EQ(isValidUtf8(bytesOf(c.hex_text)), c.valid);
    }
}

TEST(Utf8Test, EveryLeadByteAlone) {
    for (int b = 0; b < 256; ++b) {
        const std::string s(1, static_cast<char>(b));
        EXPECT_EQ(isValidUtf8(s), b < 0x80) << b;
    }
}

// ASCII is checked eight bytes at a time: a bad byte, a good sequence or a truncated one at
// any offset inside or after such runs is still judged byte by byte.
TEST(Utf8Test, LongAsciiRunsWithSomethingElseAtEveryOffset) {
    const std::string ascii(40, 'a');
    for (std::size_t pos = 0; pos <= ascii.size(); ++pos) {
        SCOPED_TRACE(pos);
        std::string bad = ascii;
        bad.insert(pos, 1, static_cast<char>(0xFF));
        EXPECT_FALSE(isValidUtf8(bad));
        std::string good = ascii;
        good.insert(pos, "\xC3\xA9");  // U+00E9
        EXPECT_TRUE(isValidUtf8(good));
        std::string cut = ascii.substr(0, pos) + "\xE2\x82";  // U+20AC without its last byte
        EXPECT_FALSE(isValidUtf8(cut));
        std::string surrogate = ascii;
        surrogate.insert(pos, "\xED\xA0\x80");
        EXPECT_FALSE(isValidUtf8(surrogate));
    }
    EXPECT_TRUE(isValidUtf8(ascii));
}

TEST(Utf8Test, EveryTwoByteSequenceMatchesTheDefinition) {
    // Brute force against the code point definition: valid iff it decodes to U+0080..U+07FF.
    for (int a = 0xc0; a <= 0xdf; ++a) {
        for (int b = 0; b < 256; ++b) {
            const std::string s{static_cast<char>(a), static_cast<char>(b)};
            const bool continuation = (b & 0xc0) == 0x80;
            const int cp = ((a & 0x1f) << 6) | (b & 0x3f);
            EXPECT_EQ(isValidUtf8(s), continuation && cp >= 0x80) << a << " " << b;
        }
    }
}

TEST(Utf8Test, EveryThreeByteLeadAndSecondByte) {
    for (int a = 0xe0; a <= 0xef; ++a) {
        for (int b = 0x80; b <= 0xbf; ++b) {
            const std::string s{static_cast<char>(a), static_cast<char>(b), '\x80'};
            const int cp = ((a & 0x0f) << 12) | ((b & 0x3f) << 6);
            const bool expected = cp >= 0x800 && !(cp >= 0xd800 && cp <= 0xdfff);
            EXPECT_EQ(isValidUtf8(s), expected) << a << " " << b;
        }
    }
}

TEST(Utf8Test, EveryFourByteLeadAndSecondByte) {
    for (int a = 0xf0; a <= 0xf7; ++a) {
        for (int b = 0x80; b <= 0xbf; ++b) {
            const std::string s{static_cast<char>(a), static_cast<char>(b), '\x80', '\x80'};
            const int cp = ((a & 0x07) << 18) | ((b & 0x3f) << 12);
            const bool expected = cp >= 0x10000 && cp <= 0x10ffff;
            EXPECT_EQ(isValidUtf8(s), expected) << a << " " << b;
        }
    }
}

TEST(Utf8SequenceLengthTest, StepsThroughMixedText) {
    // "a" + U+00E9 + U+20AC + U+1F600 + "z"
    const std::string s = bytesOf("61 c3 a9 e2 82 ac f0 9f 98 80 7a");
    EXPECT_EQ(utf8SequenceLength(s, 0), 1U);
    EXPECT_EQ(utf8SequenceLength(s, 1), 2U);
    EXPECT_EQ(utf8SequenceLength(s, 3), 3U);
    EXPECT_EQ(utf8SequenceLength(s, 6), 4U);
    EXPECT_EQ(utf8SequenceLength(s, 10), 1U);
    EXPECT_EQ(utf8SequenceLength(s, 11), 0U);  // past the end
    EXPECT_EQ(utf8SequenceLength(s, 2), 0U);   // a continuation byte starts nothing
    EXPECT_EQ(utf8SequenceLength(std::string_view(s).substr(0, 9), 6), 0U);  // truncated
    EXPECT_EQ(utf8SequenceLength("", 0), 0U);
}

TEST(Utf8SequenceLengthTest, RefusesWhatIsValidUtf8Refuses) {
    for (const char* hex : {"c0 af", "e0 80 af", "ed a0 80", "f4 90 80 80", "f5 80 80 80", "ff",
                            "c3 28", "e2 28 a1", "f0 9f 28 80"}) {
        EXPECT_EQ(utf8SequenceLength(bytesOf(hex), 0), 0U) << hex;
    }
}

TEST(Utf8SequenceLengthTest, AgreesWithIsValidUtf8OnEveryShortSequence) {
    // For every 1..2-byte string and every 3-/4-byte string with continuation tails, a
    // sequence covering the whole string exists iff isValidUtf8 says so.
    for (int a = 0; a < 256; ++a) {
        for (int b = -1; b < 256; ++b) {
            std::string s(1, static_cast<char>(a));
            if (b >= 0) {
                s.push_back(static_cast<char>(b));
            }
            for (const std::string& tail :
                 {std::string(), std::string("\x80"), std::string("\x80\x80")}) {
                const std::string t = s + tail;
                std::size_t i = 0;
                while (i < t.size()) {
                    const std::size_t n = utf8SequenceLength(t, i);
                    if (n == 0) {
                        break;
                    }
                    i += n;
                }
                EXPECT_EQ(i == t.size(), isValidUtf8(t)) << a << " " << b << " " << tail.size();
            }
        }
    }
}

TEST(JsonStringTest, EscapesControlsDelAndRepairsBadUtf8) {
    std::string out = "x";
    appendJsonString(out, std::string_view("a\"b\\c\n\r\t\b\f\x01\x1f/\x7f\0", 15));
    EXPECT_EQ(out, "x\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f/\\u007f\\u0000\"");
    out.clear();
    appendJsonString(out, "caf\xc3\xa9 \xf0\x9f\x98\x80");
    EXPECT_EQ(out, "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"");
    out.clear();
    appendJsonString(out, "x\xff\xc3(y\xed\xa0\x80\xc0\xaf");
    EXPECT_EQ(out, "\"x\\ufffd\\ufffd(y\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\"");
    EXPECT_TRUE(isValidUtf8(out));
    out.clear();
    appendJsonString(out, "");
    EXPECT_EQ(out, "\"\"");
}

TEST(NameTest, ValidNames) {
    for (const char* name : {"a", "alice", "Alice_01", "bot.v2", "x-y", "_", ".", "-",
                             "abcdefghijklmnopqrstuvwxyz012345"}) {
        EXPECT_TRUE(isValidName(name)) << name;
    }
}

TEST(NameTest, InvalidNames) {
    for (const char* name :
         {"", "abcdefghijklmnopqrstuvwxyz0123456", "a b", "a/b", "a@b", "é", "a\tb", "a:b", "a*"}) {
        EXPECT_FALSE(isValidName(name)) << name;
    }
    EXPECT_FALSE(isValidName(std::string_view("a\0b", 3)));
}

}  // namespace
}  // namespace tundra
