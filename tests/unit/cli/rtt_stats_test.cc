// SPDX-License-Identifier: Apache-2.0
// Round-trip statistics for `tundra-cli ping`.
#include "cli/rtt_stats.h"

#include <gtest/gtest.h>

namespace tundra::cli {
namespace {

TEST(RttStats, EmptyIsAllZero) {
    RttStats s;
    EXPECT_EQ(s.count(), 0U);
    EXPECT_EQ(s.min(), 0);
    EXPECT_EQ(s.max(), 0);
    EXPECT_EQ(s.average(), 0);
    EXPECT_EQ(s.percentile(99), 0);
}

TEST(RttStats, MinAvgMax) {
    RttStats s;
    for (double v : {3.0, 1.0, 2.0, 6.0}) {
        s.add(v);
    }
    EXPECT_EQ(s.count(), 4U);
    EXPECT_DOUBLE_EQ(s.min(), 1.0);
    EXPECT_DOUBLE_EQ(s.max(), 6.0);
    EXPECT_DOUBLE_EQ(s.average(), 3.0);
}

TEST(RttStats, NearestRankPercentiles) {
    RttStats s;
    for (int i = 100; i >= 1; --i) {
        s.add(i);
    }
    EXPECT_DOUBLE_EQ(s.percentile(50), 50);
    EXPECT_DOUBLE_EQ(s.percentile(99), 99);
    EXPECT_DOUBLE_EQ(s.percentile(100), 100);
    EXPECT_DOUBLE_EQ(s.percentile(0), 1);
    RttStats few;
    few.add(5);
    few.add(1);
    EXPECT_DOUBLE_EQ(few.percentile(99), 5);  // p99 of two samples is the larger
}

}  // namespace
}  // namespace tundra::cli
