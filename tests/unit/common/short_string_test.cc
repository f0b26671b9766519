// SPDX-License-Identifier: Apache-2.0
// ShortString: 16 bytes, up to 15 bytes inline, longer ones in one heap block; copies, moves,
// self-assignment and formatting.
#include "common/short_string.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>

namespace tundra::common {
namespace {

TEST(ShortString, IsSixteenBytesAndHoldsFifteenInline) {
    EXPECT_EQ(sizeof(ShortString), 16U);
    ShortString e;
    EXPECT_TRUE(e.empty());
    EXPECT_EQ(e.view(), "");
    for (std::size_t n = 0; n <= 40; ++n) {
        const std::string text(n, static_cast<char>('a' + n % 26));
        ShortString s(text);
        EXPECT_EQ(s.view(), text) << n;
        EXPECT_EQ(s.size(), n);
        EXPECT_EQ(s.empty(), n == 0);
        EXPECT_EQ(s.heapBytes(), n <= ShortString::kInline ? 0U : n) << n;
    }
}

TEST(ShortString, CopiesMovesAndReassignsOwnTheirBytes) {
    const std::string long_name = "a-name-longer-than-fifteen-bytes";
    ShortString a(long_name);
    ShortString b = a;  // a deep copy
    EXPECT_EQ(b, long_name);
    EXPECT_NE(b.view().data(), a.view().data());
    ShortString c = std::move(a);
    EXPECT_EQ(c, long_name);
    EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty by design
    a = c;
    EXPECT_EQ(a, c);
    a = ShortString("short");
    EXPECT_EQ(a, "short");
    EXPECT_EQ(a.heapBytes(), 0U);
    c.assign(c.view().substr(2));  // from its own bytes
    EXPECT_EQ(c, long_name.substr(2));
    c.assign(c.view().substr(0, 3));
    EXPECT_EQ(c, "nam");
    auto& same = c;
    c = same;
    EXPECT_EQ(c, "nam");
}

TEST(ShortString, ConvertsToAStringViewAndFormats) {
    ShortString s("alice");
    std::string_view v = s;
    EXPECT_EQ(v, "alice");
    EXPECT_EQ(fmt::format("user={}", s), "user=alice");
    std::string copy;
    copy = s.view();
    EXPECT_EQ(copy, "alice");
}

}  // namespace
}  // namespace tundra::common
