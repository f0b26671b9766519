// SPDX-License-Identifier: Apache-2.0
// SlabPool: objects carved from aligned slabs without per-object headers, freed objects reused,
// an emptied slab kept as the one spare or freed, constructors and destructors run by
// make()/destroy(), and contents kept intact through random churn.
#include "common/slab_pool.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <stdexcept>
#include <vector>

namespace tundra::common {
namespace {

struct Tracked {
    explicit Tracked(int v) : value(v) { ++alive; }
    ~Tracked() { --alive; }
    Tracked(const Tracked&) = delete;
    Tracked& operator=(const Tracked&) = delete;
    int value;
    std::uint8_t pad[180] = {};
    static int alive;
};
int Tracked::alive = 0;

std::uintptr_t slabOf(const void* p) {
    return reinterpret_cast<std::uintptr_t>(p) & ~(SlabPool::kSlabBytes - 1);
}

TEST(SlabPool, ObjectsAreDenseAlignedAndFillASlabBeforeTheNext) {
    SlabPool pool(184, 8);
    EXPECT_EQ(pool.objectSize(), 184U);
    EXPECT_GT(pool.perSlab(), 340U);  // 64 KiB / 184 bytes, less the header
    std::vector<void*> v;
    for (std::size_t i = 0; i < pool.perSlab(); ++i) {
        v.push_back(pool.allocate());
        EXPECT_EQ(reinterpret_cast<std::uintptr_t>(v.back()) % 8, 0U);
        EXPECT_EQ(slabOf(v.back()), slabOf(v.front())) << "object " << i;
    }
    // No header between objects: consecutive ones are exactly one object apart.
    EXPECT_EQ(static_cast<std::byte*>(v[1]) - static_cast<std::byte*>(v[0]), 184);
    EXPECT_EQ(pool.slabs(), 1U);
    void* next = pool.allocate();
    EXPECT_NE(slabOf(next), slabOf(v.front()));
    EXPECT_EQ(pool.slabs(), 2U);
    EXPECT_EQ(pool.live(), pool.perSlab() + 1);
    SlabPool::deallocate(next);
    for (void* p : v) {
        SlabPool::deallocate(p);
    }
    EXPECT_EQ(pool.live(), 0U);
    EXPECT_EQ(pool.slabs(), 1U) << "one emptied slab is kept as the spare, the other freed";
}

TEST(SlabPool, FreedObjectsAreReusedBeforeTheSlabGrows) {
    SlabPool pool(64, 16);
    void* a = pool.allocate();
    void* b = pool.allocate();
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a) % 16, 0U);
    SlabPool::deallocate(a);
    EXPECT_EQ(pool.allocate(), a);
    SlabPool::deallocate(a);
    SlabPool::deallocate(b);
    EXPECT_EQ(pool.slabs(), 1U);
    void* c = pool.allocate();  // from the spare
    EXPECT_EQ(slabOf(c), slabOf(a));
    EXPECT_EQ(pool.slabs(), 1U);
    SlabPool::deallocate(c);
}

TEST(SlabPool, MakeAndDestroyRunConstructorsAndDestructors) {
    SlabPool pool(sizeof(Tracked), alignof(Tracked));
    {
        std::unique_ptr<Tracked, SlabDelete> a(pool.make<Tracked>(7));
        Tracked* b = pool.make<Tracked>(8);
        EXPECT_EQ(Tracked::alive, 2);
        EXPECT_EQ(a->value, 7);
        EXPECT_EQ(b->value, 8);
        SlabPool::destroy(b);
        EXPECT_EQ(Tracked::alive, 1);
        SlabPool::destroy<Tracked>(nullptr);
    }
    EXPECT_EQ(Tracked::alive, 0);
    EXPECT_EQ(pool.live(), 0U);
}

TEST(SlabPool, RandomChurnKeepsEveryObjectIntact) {
    SlabPool pool(40, 8);
    std::mt19937 rng(12345);
    std::vector<std::pair<std::uint8_t*, std::uint8_t>> held;
    std::set<void*> addresses;
    for (int step = 0; step < 200'000; ++step) {
        const bool grow = held.empty() || rng() % 100 < (step < 100'000 ? 60U : 35U);
        if (grow) {
            auto* p = static_cast<std::uint8_t*>(pool.allocate());
            ASSERT_TRUE(addresses.insert(p).second) << "handed out twice";
            const auto tag = static_cast<std::uint8_t>(rng());
            std::memset(p, tag, 40);
            held.emplace_back(p, tag);
        } else {
            const std::size_t i = rng() % held.size();
            auto [p, tag] = held[i];
            for (int k = 0; k < 40; ++k) {
                ASSERT_EQ(p[k], tag) << "object overwritten";
            }
            addresses.erase(p);
            SlabPool::deallocate(p);
            held[i] = held.back();
            held.pop_back();
        }
        ASSERT_EQ(pool.live(), held.size());
    }
    for (auto& [p, tag] : held) {
        SlabPool::deallocate(p);
    }
    EXPECT_EQ(pool.live(), 0U);
    EXPECT_LE(pool.slabs(), 1U);
}

// totalBytes() counts what is resident: each slab's pages up to its last carved object.
TEST(SlabPool, TotalBytesCountsTheTouchedPages) {
    const std::size_t base = SlabPool::totalBytes();
    std::vector<void*> v;
    {
        SlabPool pool(100, 8);
        v.push_back(pool.allocate());
        EXPECT_EQ(SlabPool::totalBytes() - base, 4096U);  // header and one object: one page
        while (v.size() < 100) {
            v.push_back(pool.allocate());
        }
        EXPECT_EQ(SlabPool::totalBytes() - base, 12288U);  // 10,000 bytes and the header
        for (void* p : v) {
            SlabPool::deallocate(p);
        }
        EXPECT_EQ(SlabPool::totalBytes() - base, 12288U) << "the spare slab stays";
    }
    EXPECT_EQ(SlabPool::totalBytes(), base) << "freed with its pool";
}

TEST(SlabPool, RejectsBadAlignmentAndOversizedObjects) {
    EXPECT_THROW(SlabPool(16, 3), std::invalid_argument);
    EXPECT_THROW(SlabPool(16, 128), std::invalid_argument);
    EXPECT_THROW(SlabPool(SlabPool::kSlabBytes, 8), std::invalid_argument);
}

#if defined(__SANITIZE_ADDRESS__)
// Free objects are poisoned: AddressSanitizer still reports a use after free inside a slab.
TEST(SlabPoolDeathTest, AUseAfterFreeIsReportedUnderAddressSanitizer) {
    SlabPool pool(64, 8);
    auto* p = static_cast<char*>(pool.allocate());
    void* keep = pool.allocate();  // the slab stays allocated
    SlabPool::deallocate(p);
    EXPECT_DEATH(
        {
            volatile char* q = p;
            q[16] = 1;
        },
        "use-after-poison");
    SlabPool::deallocate(keep);
}
#endif

}  // namespace
}  // namespace tundra::common
