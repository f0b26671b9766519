// SPDX-License-Identifier: Apache-2.0
// CachedClock: answers from one reading of its source until refresh().
#include "common/clock.h"

#include <gtest/gtest.h>

#include "support/fake_clock.h"

namespace tundra::common {
namespace {

TEST(CachedClock, AnswersFromTheLastRefreshUntilTheNext) {
    testing::FakeClock source(5'000, 1'704'067'200'000);
    CachedClock clock(source);
    EXPECT_EQ(clock.steadyMs(), 5'000);
    EXPECT_EQ(clock.steadyUs(), 5'000'000);
    EXPECT_EQ(clock.wallMs(), 1'704'067'200'000);

    source.advance(250);
    source.advanceUs(7);
    EXPECT_EQ(clock.steadyMs(), 5'000) << "read again before refresh()";
    EXPECT_EQ(clock.wallMs(), 1'704'067'200'000);

    clock.refresh();
    EXPECT_EQ(clock.steadyUs(), 5'250'007);
    EXPECT_EQ(clock.steadyMs(), 5'250);
    EXPECT_EQ(clock.wallMs(), 1'704'067'200'250);

    source.setWall(1'704'067'100'000);  // the wall clock steps back
    clock.refresh();
    EXPECT_EQ(clock.wallMs(), 1'704'067'100'000);
    EXPECT_EQ(clock.steadyMs(), 5'250) << "steady time never goes back";
}

TEST(CachedClock, FollowsTheSystemClock) {
    SystemClock system;
    CachedClock clock(system);
    const std::int64_t before = system.steadyUs();
    clock.refresh();
    EXPECT_GE(clock.steadyUs(), before);
    EXPECT_LE(clock.steadyUs(), system.steadyUs());
    EXPECT_NEAR(static_cast<double>(clock.wallMs()), static_cast<double>(system.wallMs()), 1000.0);
}

}  // namespace
}  // namespace tundra::common
