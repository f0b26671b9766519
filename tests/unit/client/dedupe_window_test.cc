// SPDX-License-Identifier: Apache-2.0
// Delivery deduplication window.
#include "client/dedupe_window.h"

#include <gtest/gtest.h>

namespace tundra::client {
namespace {

TEST(DedupeWindow, AcceptsEachIdOnce) {
    DedupeWindow w(8);
    EXPECT_TRUE(w.accept(10));
    EXPECT_TRUE(w.accept(11));
    EXPECT_FALSE(w.accept(10));
    EXPECT_FALSE(w.accept(11));
    EXPECT_EQ(w.highest(), 11U);
}

TEST(DedupeWindow, AcceptsOutOfOrderIdsInsideTheWindow) {
    DedupeWindow w(8);
    EXPECT_TRUE(w.accept(20));
    EXPECT_TRUE(w.accept(15));
    EXPECT_FALSE(w.accept(15));
    EXPECT_EQ(w.highest(), 20U);
}

TEST(DedupeWindow, FloorMakesOlderIdsDuplicates) {
    DedupeWindow w(8);
    w.raiseFloor(100);
    EXPECT_FALSE(w.accept(99));
    EXPECT_FALSE(w.accept(100));
    EXPECT_TRUE(w.accept(101));
    EXPECT_EQ(w.highest(), 101U);
}

TEST(DedupeWindow, RaisingTheFloorDropsRememberedIdsBelowIt) {
    DedupeWindow w(8);
    EXPECT_TRUE(w.accept(1));
    EXPECT_TRUE(w.accept(2));
    EXPECT_TRUE(w.accept(5));
    w.raiseFloor(2);
    EXPECT_EQ(w.size(), 1U);
    EXPECT_FALSE(w.accept(2));
    EXPECT_FALSE(w.accept(5));
    w.raiseFloor(1);  // never lowers
    EXPECT_FALSE(w.accept(2));
}

TEST(DedupeWindow, EvictedIdsStillCountAsSeen) {
    DedupeWindow w(3);
    for (std::uint64_t id = 1; id <= 5; ++id) {
        EXPECT_TRUE(w.accept(id));
    }
    EXPECT_EQ(w.size(), 3U);
    for (std::uint64_t id = 1; id <= 5; ++id) {
        EXPECT_FALSE(w.accept(id)) << id;
    }
    EXPECT_TRUE(w.accept(6));
}

TEST(DedupeWindow, ZeroCapacityStillDedupes) {
    DedupeWindow w(0);
    EXPECT_TRUE(w.accept(1));
    EXPECT_FALSE(w.accept(1));
    EXPECT_TRUE(w.accept(2));
    EXPECT_FALSE(w.accept(1));
}

}  // namespace
}  // namespace tundra::client
