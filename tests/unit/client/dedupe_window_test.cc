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

TEST(DedupeWindow, CountsWhatItRefuses) {
    DedupeWindow w(8);
    w.raiseFloor(10);
    EXPECT_FALSE(w.accept(9));
    EXPECT_TRUE(w.accept(11));
    EXPECT_FALSE(w.accept(11));
    EXPECT_EQ(w.duplicates(), 2U);
    EXPECT_EQ(w.resets(), 0U);
}

// A server restarted with its wall clock stepped back issues ids below the old floor: after a
// new session they are new messages, not duplicates.
TEST(DedupeWindow, NewSessionFollowsIdsThatStartAgainLower) {
    DedupeWindow w(3);
    for (std::uint64_t id = 1000; id <= 1005; ++id) {
        EXPECT_TRUE(w.accept(id));
    }
    EXPECT_FALSE(w.accept(500));  // same session: below the floor is a duplicate
    w.newSession();
    EXPECT_TRUE(w.accept(500));  // the new process's first id
    EXPECT_EQ(w.resets(), 1U);
    EXPECT_EQ(w.highest(), 500U);  // lastId follows the new sequence
    EXPECT_FALSE(w.accept(500));   // really seen now
    EXPECT_TRUE(w.accept(501));
    EXPECT_TRUE(w.accept(502));
    EXPECT_TRUE(w.accept(1003));  // the old sequence is forgotten: nothing is refused unseen
    EXPECT_EQ(w.duplicates(), 2U);
}

TEST(DedupeWindow, NewSessionCatchesAnIdJustBelowTheHighest) {
    DedupeWindow w(8);
    EXPECT_TRUE(w.accept(100));
    EXPECT_TRUE(w.accept(103));
    w.newSession();
    EXPECT_TRUE(w.accept(101));  // a clock stepped back only a little
    EXPECT_EQ(w.resets(), 1U);
    EXPECT_EQ(w.highest(), 101U);
}

TEST(DedupeWindow, NewSessionStillRefusesIdsItRemembers) {
    DedupeWindow w(8);
    EXPECT_TRUE(w.accept(7));
    EXPECT_TRUE(w.accept(8));
    w.newSession();
    EXPECT_FALSE(w.accept(8));  // a replay of what was returned: really a duplicate
    EXPECT_EQ(w.resets(), 0U);
    EXPECT_TRUE(w.accept(9));  // ids still grow: the same server, the floor is trusted again
    EXPECT_EQ(w.highest(), 9U);
    EXPECT_FALSE(w.accept(7));
    EXPECT_EQ(w.resets(), 0U);
}

TEST(DedupeWindow, NewSessionWithIdsAboveTheOldOnesKeepsTheFloor) {
    DedupeWindow w(2);
    w.raiseFloor(50);  // a saved last_id
    w.newSession();
    EXPECT_TRUE(w.accept(60));
    EXPECT_FALSE(w.accept(40));  // anchored again: at or below the floor is seen
    EXPECT_EQ(w.resets(), 0U);
    EXPECT_EQ(w.highest(), 60U);
}

TEST(DedupeWindow, SavedLastIdFromAnOlderServerDoesNotSwallowANewOnesIds) {
    DedupeWindow w(8);
    w.raiseFloor(1'000'000);  // last_id saved before the restart
    w.newSession();
    EXPECT_TRUE(w.accept(999));
    EXPECT_EQ(w.highest(), 999U);
    EXPECT_EQ(w.resets(), 1U);
}

TEST(DedupeWindow, ReplaysAfterANewSessionKeepTheFloor) {
    DedupeWindow w(8);
    w.raiseFloor(50);  // the caller processed everything up to 50
    w.newSession();
    EXPECT_FALSE(w.accept(49, /*live=*/false));  // a replay of what the caller had
    EXPECT_EQ(w.resets(), 0U);
    EXPECT_TRUE(w.accept(51, /*live=*/false));
    EXPECT_TRUE(w.accept(20));  // the first live id is below: a new id sequence
    EXPECT_EQ(w.resets(), 1U);
    EXPECT_EQ(w.highest(), 20U);
}

}  // namespace
}  // namespace tundra::client
