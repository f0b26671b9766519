// SPDX-License-Identifier: Apache-2.0
#include "common/log_throttle.h"

#include <gtest/gtest.h>

namespace tundra::common {
namespace {

TEST(LogThrottle, FirstEventIsLoggedWithNothingSuppressed) {
    LogThrottle t;
    std::uint64_t suppressed = 99;
    EXPECT_TRUE(t.allow(5, suppressed));
    EXPECT_EQ(suppressed, 0U);
}

TEST(LogThrottle, AtMostOneLinePerIntervalAndTheRestCounted) {
    LogThrottle t(1000);
    std::uint64_t suppressed = 0;
    ASSERT_TRUE(t.allow(0, suppressed));
    int allowed = 0;
    for (std::int64_t ms = 1; ms < 1000; ++ms) {
        allowed += t.allow(ms, suppressed) ? 1 : 0;
    }
    EXPECT_EQ(allowed, 0);
    ASSERT_TRUE(t.allow(1000, suppressed));
    EXPECT_EQ(suppressed, 999U);
    ASSERT_FALSE(t.allow(1500, suppressed));
    ASSERT_TRUE(t.allow(2000, suppressed));
    EXPECT_EQ(suppressed, 1U);
}

}  // namespace
}  // namespace tundra::common
