// SPDX-License-Identifier: Apache-2.0
// Core unit tests for issue #9's fairness and cost fixes, on the UserRegistry and FrameRing
// directly: the total byte budget is shared fairly (the heaviest user gives first, so throwaway
// users cannot drain it), the by-bytes heap stays consistent, a dead connection's unwritten
// deliveries move to the offline buffer in one linear pass, and the table of users is keyed by
// the per-process SipHash.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <numeric>
#include <string>
#include <type_traits>
#include <vector>

#include "common/keyed_hash.h"
#include "core/frame_ring.h"
#include "core/user_registry.h"

namespace tundra::core {
namespace {

StoredFrame entry(std::uint64_t id, std::size_t size = 100) {
    return StoredFrame{core::share(Bytes(size, 0)), id};
}

std::vector<std::uint64_t> ids(const FrameRing& r) {
    std::vector<std::uint64_t> out;
    for (std::size_t i = 0; i < r.size(); ++i) {
        out.push_back(r.at(i).id);
    }
    return out;
}

class FairnessTest : public ::testing::Test {
protected:
    User& offlineUser(const std::string& name) {
        return reg.create(name, ClientKind::User, 1'000'000, 0);
    }

    Metrics metrics;
    UserRegistry reg{metrics};
    BufferLimits limits{50, 1000, 1000};  // entries of 100 bytes: 10 per user, 10 in total
    std::uint64_t next_id = 1;
};

TEST_F(FairnessTest, ThrowawayUsersCannotDrainTheTotalForAVictimWithNothing) {
    // The attack of issue #9 point 5: one entry parked in each of ten throwaway users fills
    // the total budget. The victim has nothing of its own to give.
    for (int i = 0; i < 10; ++i) {
        ASSERT_TRUE(
            reg.storeOffline(offlineUser("t" + std::to_string(i)), entry(next_id++), limits));
    }
    EXPECT_EQ(reg.storedBytes(), 1000U);
    User& victim = offlineUser("victim");
    EXPECT_TRUE(reg.storeOffline(victim, entry(next_id++), limits));
    EXPECT_EQ(victim.offline.size(), 1U);
    EXPECT_EQ(victim.dropped, 0U);
    EXPECT_EQ(reg.storedBytes(), 1000U);
    EXPECT_EQ(metrics.budget_evictions_total, 1U);
    EXPECT_EQ(metrics.offline_dropped_total, 1U);  // one throwaway user's entry, counted
}

TEST_F(FairnessTest, TheHeaviestUserGivesFirstAndTiesGoAgainstTheStorer) {
    User& bob = offlineUser("bob");
    User& cat = offlineUser("cat");
    User& dan = offlineUser("dan");
    for (int i = 0; i < 7; ++i) {
        ASSERT_TRUE(reg.storeOffline(bob, entry(next_id++), limits));
    }
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(reg.storeOffline(cat, entry(next_id++), limits));
    }
    const std::uint64_t bob_oldest = bob.offline.front().id;
    // dan (0) < bob (700): bob's oldest goes.
    ASSERT_TRUE(reg.storeOffline(dan, entry(next_id++), limits));
    EXPECT_EQ(bob.offline.size(), 6U);
    EXPECT_NE(bob.offline.front().id, bob_oldest);
    EXPECT_EQ(bob.dropped, 1U);
    // cat (300) < bob (600): bob again, until cat would hold as much as him.
    ASSERT_TRUE(reg.storeOffline(cat, entry(next_id++), limits));
    ASSERT_TRUE(reg.storeOffline(cat, entry(next_id++), limits));
    EXPECT_EQ(bob.offline.size(), 4U);
    EXPECT_EQ(cat.offline.size(), 5U);
    // Now cat (500) is the heaviest: it gives its own oldest.
    const std::uint64_t cat_oldest = cat.offline.front().id;
    ASSERT_TRUE(reg.storeOffline(cat, entry(next_id++), limits));
    EXPECT_EQ(cat.offline.size(), 5U);
    EXPECT_NE(cat.offline.front().id, cat_oldest);
    EXPECT_EQ(cat.dropped, 1U);
    // bob (400) stores: cat (500) is heavier, cat gives.
    ASSERT_TRUE(reg.storeOffline(bob, entry(next_id++), limits));
    EXPECT_EQ(bob.offline.size(), 5U);
    EXPECT_EQ(cat.offline.size(), 4U);
    EXPECT_EQ(dan.offline.size(), 1U);
    EXPECT_EQ(reg.storedBytes(), 1000U);
    EXPECT_EQ(metrics.budget_evictions_total, 4U);  // bob x3, cat x1 for someone else
    EXPECT_EQ(metrics.offline_dropped_total, 5U);
    EXPECT_EQ(reg.heaviest(), &bob);
}

TEST_F(FairnessTest, WindowEntriesOfTheHeaviestGoBeforeItsOfflineEntries) {
    User& bob = offlineUser("bob");
    reg.setOnline(bob, nullptr, ClientKind::User);
    for (int i = 0; i < 6; ++i) {
        reg.storeWindow(bob, entry(next_id++), limits);
    }
    reg.setDetached(bob, 0);
    for (int i = 0; i < 4; ++i) {
        ASSERT_TRUE(reg.storeOffline(bob, entry(next_id++), limits));
    }
    User& cat = offlineUser("cat");
    ASSERT_TRUE(reg.storeOffline(cat, entry(next_id++), limits));
    EXPECT_EQ(bob.window.size(), 5U);
    EXPECT_EQ(bob.offline.size(), 4U);
    EXPECT_EQ(bob.dropped, 0U) << "a written window entry is not a DROPPED";
    EXPECT_EQ(metrics.budget_evictions_total, 1U);
}

TEST_F(FairnessTest, TheHeapFollowsEveryChangeAndForgetting) {
    // Many users with different holdings, changed in a scrambled order: heaviest() is always
    // the true maximum.
    BufferLimits wide{1000, 1U << 30, 1U << 30};
    std::vector<User*> users;
    for (int i = 0; i < 64; ++i) {
        users.push_back(&offlineUser("u" + std::to_string(i)));
    }
    auto check = [&] {
        const User* best = nullptr;
        for (User* u : users) {
            if (u->bytes > 0 && (best == nullptr || u->bytes > best->bytes)) {
                best = u;
            }
        }
        if (best == nullptr) {
            EXPECT_EQ(reg.heaviest(), nullptr);
        } else {
            ASSERT_NE(reg.heaviest(), nullptr);
            EXPECT_EQ(reg.heaviest()->bytes, best->bytes);
        }
    };
    std::uint32_t x = 12345;
    auto rnd = [&x] {
        x = x * 1103515245U + 12345U;
        return x >> 8;
    };
    for (int step = 0; step < 2000; ++step) {
        User& u = *users[rnd() % users.size()];
        if (rnd() % 3 == 0 && !u.offline.empty()) {
            reg.promoteOfflineFront(u, wide);                 // offline -> window: bytes unchanged
            reg.confirmWindowThrough(u, u.window.back().id);  // the window empties: bytes drop
        } else {
            ASSERT_TRUE(reg.storeOffline(u, entry(next_id++, 1 + rnd() % 500), wide));
        }
        check();
    }
    // Forgetting users (max_users 1) takes them out of the heap too.
    for (int i = 0; i < 70; ++i) {
        reg.create("z" + std::to_string(i), ClientKind::User, 1, 0);
    }
    EXPECT_EQ(reg.heaviest(), nullptr);
    EXPECT_EQ(reg.storedBytes(), 0U);
}

TEST_F(FairnessTest, TheHeapIsLiveOnlyUnderPressureAndStaysExact) {
    // The heap is built when a store would not fit the total budget and dropped below a quarter
    // of it; across those switches heaviest() stays the true maximum and evictions still take
    // from the heaviest (user budget wide, total budget tight).
    BufferLimits tight{1000, 1U << 30, 64 * 200};
    std::vector<User*> users;
    for (int i = 0; i < 64; ++i) {
        users.push_back(&offlineUser("p" + std::to_string(i)));
    }
    int went_live = 0;
    int went_idle = 0;
    bool was_live = reg.heapLive();
    std::uint32_t x = 777;
    auto rnd = [&x] {
        x = x * 1103515245U + 12345U;
        return x >> 8;
    };
    for (int step = 0; step < 4000; ++step) {
        // Phases of filling and of draining, so the total crosses the budget and a quarter of it.
        const bool draining = (step / 500) % 2 == 1;
        User& u = *users[rnd() % users.size()];
        if (draining) {
            if (!u.offline.empty()) {
                reg.promoteOfflineFront(u, tight);
                reg.confirmWindowThrough(u, u.window.back().id);
            }
            // A small store now and then: it is where the registry notices the pressure is gone.
            if (rnd() % 8 == 0) {
                ASSERT_TRUE(reg.storeOffline(u, entry(next_id++, 1 + rnd() % 50), tight));
            }
        } else {
            const User* before = reg.heaviest();
            const std::uint64_t held_before = u.bytes;
            const std::size_t size = 1 + rnd() % 400;
            ASSERT_TRUE(reg.storeOffline(u, entry(next_id++, size), tight));
            // A user holding less than the heaviest never loses its own entries to fit.
            if (before != nullptr && held_before + size < before->bytes) {
                EXPECT_GE(u.bytes, held_before + size);
            }
        }
        EXPECT_LE(reg.storedBytes(), tight.total_bytes);
        const User* best = nullptr;
        for (User* v : users) {
            if (v->bytes > 0 && (best == nullptr || v->bytes > best->bytes)) {
                best = v;
            }
        }
        if (best == nullptr) {
            EXPECT_EQ(reg.heaviest(), nullptr);
        } else {
            ASSERT_NE(reg.heaviest(), nullptr);
            EXPECT_EQ(reg.heaviest()->bytes, best->bytes);
        }
        if (reg.heapLive() != was_live) {
            (reg.heapLive() ? went_live : went_idle) += 1;
            was_live = reg.heapLive();
        }
    }
    EXPECT_GE(went_live, 2) << "the budget pressure never built the heap";
    EXPECT_GE(went_idle, 1) << "draining below a quarter never dropped the heap";
}

TEST_F(FairnessTest, ReconfigureTrimsTheHeaviestFirst) {
    User& bob = offlineUser("bob");
    User& cat = offlineUser("cat");
    for (int i = 0; i < 8; ++i) {
        ASSERT_TRUE(reg.storeOffline(bob, entry(next_id++), limits));
    }
    for (int i = 0; i < 2; ++i) {
        ASSERT_TRUE(reg.storeOffline(cat, entry(next_id++), limits));
    }
    reg.enforce(BufferLimits{50, 1000, 600});
    EXPECT_EQ(bob.offline.size(), 4U);
    EXPECT_EQ(cat.offline.size(), 2U);
}

// ---- the slow-consumer cut: unwritten window entries move in one pass ----------------------

TEST_F(FairnessTest, UnwrittenEntriesMergeWithNewerOfflineEntriesInIdOrder) {
    BufferLimits l{6, 1U << 20, 1U << 20};
    User& bob = offlineUser("bob");
    reg.setOnline(bob, nullptr, ClientKind::User);
    for (std::uint64_t id = 1; id <= 6; ++id) {
        reg.storeWindow(bob, entry(id), l);
    }
    reg.setDetached(bob, 0);
    // Delivered while the dead connection had not been reported yet: newer, already offline.
    ASSERT_TRUE(reg.storeOffline(bob, entry(7), l));
    ASSERT_TRUE(reg.storeOffline(bob, entry(8), l));
    const std::uint64_t buffered_before = metrics.offline_buffered_total;
    // 2, 4, 6 were never written; 9 left the window long ago.
    EXPECT_EQ(reg.moveToOffline(bob, {2, 4, 6, 9}, l), 1U);
    EXPECT_EQ(ids(bob.window), (std::vector<std::uint64_t>{1, 3, 5}));
    EXPECT_EQ(ids(bob.offline), (std::vector<std::uint64_t>{2, 4, 6, 7, 8}));
    EXPECT_EQ(metrics.offline_buffered_total, buffered_before + 3);
    EXPECT_EQ(reg.offlineCount(), 5U);
    EXPECT_EQ(reg.windowCount(), 3U);
    EXPECT_EQ(bob.bytes, 800U);
    EXPECT_EQ(reg.storedBytes(), 800U);
}

TEST_F(FairnessTest, UnwrittenEntriesKeepTheNewestMaxBufferedAsOneByOneWould) {
    BufferLimits l{4, 1U << 20, 1U << 20};
    User& bob = offlineUser("bob");
    reg.setOnline(bob, nullptr, ClientKind::User);
    for (std::uint64_t id = 1; id <= 4; ++id) {
        reg.storeWindow(bob, entry(id), l);
    }
    reg.setDetached(bob, 0);
    ASSERT_TRUE(reg.storeOffline(bob, entry(5), l));
    ASSERT_TRUE(reg.storeOffline(bob, entry(6), l));
    EXPECT_EQ(reg.moveToOffline(bob, {1, 2, 3, 4}, l), 0U);
    EXPECT_EQ(ids(bob.offline), (std::vector<std::uint64_t>{3, 4, 5, 6}));
    EXPECT_TRUE(bob.window.empty());
    EXPECT_EQ(bob.dropped, 2U);
    EXPECT_EQ(reg.offlineCount(), 4U);
    EXPECT_EQ(bob.bytes, 400U);
}

TEST_F(FairnessTest, ALargeCutIsOnePass) {
    // 200,000 unwritten deliveries: one ring erase per id would be ~10^10 moves (minutes); the
    // batch move is linear. No timing is measured; a quadratic cut would hit the ctest timeout.
    constexpr std::uint64_t kN = 200'000;
    BufferLimits l{kN, std::size_t{1} << 40, std::size_t{1} << 40};
    User& bob = offlineUser("bob");
    reg.setOnline(bob, nullptr, ClientKind::User);
    auto frame = core::share(Bytes(20, 0));
    for (std::uint64_t id = 1; id <= kN; ++id) {
        reg.storeWindow(bob, StoredFrame{frame, id}, l);
    }
    reg.setDetached(bob, 0);
    std::vector<std::uint64_t> unwritten;
    for (std::uint64_t id = 2; id <= kN; id += 2) {
        unwritten.push_back(id);
    }
    EXPECT_EQ(reg.moveToOffline(bob, unwritten, l), 0U);
    ASSERT_EQ(bob.offline.size(), kN / 2);
    ASSERT_EQ(bob.window.size(), kN / 2);
    for (std::size_t i = 0; i < kN / 2; ++i) {
        ASSERT_EQ(bob.offline.at(i).id, 2 * (i + 1));
        ASSERT_EQ(bob.window.at(i).id, 2 * i + 1);
    }
    EXPECT_EQ(bob.bytes, kN * 20);
}

TEST(FrameRingExtract, TakesTheGivenIdsInOnePassAcrossTheSeam) {
    FrameRing r;
    for (std::uint64_t id = 1; id <= 8; ++id) {
        r.pushBack(entry(id));
    }
    r.popFront();
    r.popFront();
    r.pushBack(entry(9));
    r.pushBack(entry(10));  // wraps around the end of the storage
    std::vector<StoredFrame> out;
    EXPECT_EQ(r.extractSorted({1, 3, 4, 9, 11}, out), 3U);
    ASSERT_EQ(out.size(), 3U);
    EXPECT_EQ(out[0].id, 3U);
    EXPECT_EQ(out[1].id, 4U);
    EXPECT_EQ(out[2].id, 9U);
    EXPECT_EQ(ids(r), (std::vector<std::uint64_t>{5, 6, 7, 8, 10}));
    r.pushBack(entry(11));  // still a valid ring afterwards
    EXPECT_EQ(r.back().id, 11U);
    std::vector<StoredFrame> rest;
    EXPECT_EQ(r.extractSorted({5, 6, 7, 8, 10, 11}, rest), 6U);
    EXPECT_TRUE(r.empty());
}

TEST(FrameRingExtract, ReleasesTheFramesItDoesNotReturn) {
    auto frame = core::share(Bytes{1});
    FrameRing r;
    for (std::uint64_t id = 1; id <= 4; ++id) {
        r.pushBack(StoredFrame{frame, id});
    }
    {
        std::vector<StoredFrame> out;
        r.extractSorted({2, 3}, out);
        EXPECT_EQ(frame.use_count(), 5);  // 2 in the ring, 2 extracted, 1 here
    }
    EXPECT_EQ(frame.use_count(), 3);
}

// find() remembers its last hit; forgetting that user must not leave it findable.
TEST_F(FairnessTest, FindNeverReturnsAForgottenUser) {
    User& amy = offlineUser("amy");
    offlineUser("ben");
    EXPECT_EQ(reg.find("amy"), &amy);
    EXPECT_EQ(reg.find("amy"), &amy);
    EXPECT_EQ(reg.find("ben")->name, std::string_view("ben"));
    EXPECT_EQ(reg.find("amy"), &amy);
    EXPECT_TRUE(reg.forgetUnused(amy));
    EXPECT_EQ(reg.find("amy"), nullptr);
    EXPECT_EQ(reg.find("am"), nullptr);
    User& again = offlineUser("amy");  // may reuse the same slot: found by name, not by address
    EXPECT_EQ(reg.find("amy"), &again);
    EXPECT_EQ(again.kind, ClientKind::User);
}

// ---- hash flooding --------------------------------------------------------------------------

TEST(KeyedTables, UsersAreHashedWithThePerProcessKey) {
    static_assert(std::is_same_v<UserRegistry::UserTable::hasher, common::KeyedStringHash>);
    EXPECT_EQ(UserRegistry::UserTable().hash_function().key(), common::processHashKey());
}

}  // namespace
}  // namespace tundra::core
