// SPDX-License-Identifier: Apache-2.0
// InputBuffer (a connection's unconsumed input): keeps bytes in order across appends and
// partial consumes, owns no storage while empty, and is smaller than the vector it replaced.
#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>
#include <vector>

#include "net/connection.h"

namespace tundra::net {
namespace {

std::vector<std::uint8_t> contents(const InputBuffer& b) {
    auto s = b.bytes();
    return {s.begin(), s.end()};
}

TEST(InputBuffer, KeepsBytesInOrderAcrossAppendsAndConsumes) {
    InputBuffer b;
    EXPECT_TRUE(b.empty());
    EXPECT_EQ(b.capacity(), 0U);
    std::vector<std::uint8_t> data(1000);
    std::iota(data.begin(), data.end(), std::uint8_t{0});

    b.append(data.data(), 3);
    EXPECT_EQ(contents(b), std::vector<std::uint8_t>(data.begin(), data.begin() + 3));
    b.append(data.data() + 3, 997);  // grows past twice its capacity at once
    EXPECT_EQ(contents(b), data);
    EXPECT_GE(b.capacity(), 1000U);

    b.consume(10);
    EXPECT_EQ(b.size(), 990U);
    EXPECT_EQ(contents(b), std::vector<std::uint8_t>(data.begin() + 10, data.end()));
    b.append(data.data(), 5);  // appended after what is left
    EXPECT_EQ(b.bytes()[989], data[999]);
    EXPECT_EQ(b.bytes()[990], data[0]);
    EXPECT_EQ(b.size(), 995U);

    b.release();
    EXPECT_TRUE(b.empty());
    EXPECT_EQ(b.capacity(), 0U);
    b.append(data.data(), 0);
    EXPECT_TRUE(b.empty());
}

TEST(InputBuffer, OneByteAtATimeGrowsByDoubling) {
    InputBuffer b;
    std::size_t growths = 0;
    std::size_t cap = 0;
    for (int i = 0; i < 65'536; ++i) {
        const auto byte = static_cast<std::uint8_t>(i);
        b.append(&byte, 1);
        if (b.capacity() != cap) {
            ++growths;
            cap = b.capacity();
        }
    }
    EXPECT_EQ(b.size(), 65'536U);
    EXPECT_LE(growths, 17U) << "doubling, not one reallocation per byte";
    EXPECT_EQ(b.bytes()[65'535], 0xFF);
}

TEST(InputBuffer, IsSmallerThanAVector) {
    EXPECT_LT(sizeof(InputBuffer), sizeof(std::vector<std::uint8_t>));
}

}  // namespace
}  // namespace tundra::net
