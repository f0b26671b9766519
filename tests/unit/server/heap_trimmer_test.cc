// SPDX-License-Identifier: Apache-2.0
// HeapTrimmer: freed heap pages go back to the kernel after a burst, and a heap with nothing
// newly freed is not trimmed again.
#include <gtest/gtest.h>
#include <malloc.h>

#include <memory>
#include <vector>

#include "server/server.h"

namespace tundra::server {
namespace {

// Allocates `count` blocks of `size` bytes, touching every page so they are resident.
std::vector<std::unique_ptr<char[]>> burst(std::size_t count, std::size_t size) {
    std::vector<std::unique_ptr<char[]>> blocks;
    blocks.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        blocks.emplace_back(new char[size]);
        for (std::size_t k = 0; k < size; k += 512) {
            blocks.back()[k] = static_cast<char>(k);
        }
    }
    return blocks;
}

// A trimmer with a one-minute interval and an 8 MiB urgent growth that has just trimmed, at
// t = 1 s, the 6 MiB of a burst; returns the small blocks that keep the freed space below
// the heap's top (kept alive by the caller).
std::vector<std::unique_ptr<char[]>> trimOnceAt1s(HeapTrimmer& trimmer) {
    auto first = burst(4'000, 1536);
    auto pins = burst(4'000, 32);
    first.clear();
    EXPECT_TRUE(trimmer.maybeTrim(1000));
    return pins;
}

TEST(HeapTrimmer, ReturnsFreedPagesOnceAndOnlyWhenEnoughWasFreed) {
#ifdef __SANITIZE_ADDRESS__
    GTEST_SKIP() << "AddressSanitizer replaces malloc: there is no glibc heap to trim";
#endif
    HeapTrimmer trimmer(1U << 20);
    trimmer.maybeTrim();  // start from a trimmed heap
    EXPECT_FALSE(trimmer.maybeTrim()) << "nothing was freed since the last trim";

    // 16 MiB in 1.5 KiB blocks (below the mmap threshold, so they live in the heap), with a
    // small block after each that stays allocated: the freed space is not at the heap's top,
    // where glibc would give it back by itself.
    auto blocks = burst(10'000, 1536);
    auto pins = burst(10'000, 32);
    const std::uint64_t resident_busy = residentBytes();
    blocks.clear();
    EXPECT_GE(::mallinfo2().fordblks, 8U << 20);

    EXPECT_TRUE(trimmer.maybeTrim());
    const std::uint64_t resident_trimmed = residentBytes();
    EXPECT_LT(resident_trimmed + (4U << 20), resident_busy)
        << "busy " << resident_busy << " bytes, after the trim " << resident_trimmed;
    EXPECT_FALSE(trimmer.maybeTrim()) << "the same free space is not trimmed twice";

    // A second burst reuses the freed space; once it is freed again, it is trimmed again.
    blocks = burst(10'000, 1536);
    EXPECT_FALSE(trimmer.maybeTrim());
    const std::uint64_t resident_busy_again = residentBytes();
    blocks.clear();
    EXPECT_TRUE(trimmer.maybeTrim());
    EXPECT_LT(residentBytes() + (4U << 20), resident_busy_again);
}

// Trims are at least min_interval apart, unless urgent_growth bytes were freed since the last
// one: the end of a burst is given back at once.
TEST(HeapTrimmer, WithinTheIntervalOnlyALargeFreeTrims) {
#ifdef __SANITIZE_ADDRESS__
    GTEST_SKIP() << "AddressSanitizer replaces malloc: there is no glibc heap to trim";
#endif
    HeapTrimmer trimmer(1U << 20, 60'000, 8U << 20);
    const auto first_pins = trimOnceAt1s(trimmer);

    // 3 MiB freed: more than min_growth, less than urgent_growth: it waits for the interval.
    auto small = burst(2'000, 1536);
    auto small_pins = burst(2'000, 32);
    EXPECT_FALSE(trimmer.maybeTrim(6'000));  // in use
    small.clear();
    EXPECT_FALSE(trimmer.maybeTrim(11'000));
    // 15 MiB freed: trimmed at once, still within the minute.
    auto large = burst(10'000, 1536);
    auto large_pins = burst(10'000, 32);
    EXPECT_FALSE(trimmer.maybeTrim(16'000));  // in use
    const std::uint64_t resident_busy = residentBytes();
    large.clear();
    EXPECT_TRUE(trimmer.maybeTrim(21'000));
    EXPECT_LT(residentBytes() + (4U << 20), resident_busy);
    // 3 MiB used and freed again: that waits for the interval again.
    small = burst(2'000, 1536);
    EXPECT_FALSE(trimmer.maybeTrim(31'000));  // in use
    small.clear();
    EXPECT_FALSE(trimmer.maybeTrim(41'000));
    EXPECT_TRUE(trimmer.maybeTrim(81'000)) << "a minute after the last trim";
}

// A quiet server (the caller freed storage idle for a whole interval) is trimmed within the
// interval too, once enough is free.
TEST(HeapTrimmer, QuietWaivesTheInterval) {
#ifdef __SANITIZE_ADDRESS__
    GTEST_SKIP() << "AddressSanitizer replaces malloc: there is no glibc heap to trim";
#endif
    HeapTrimmer trimmer(1U << 20, 60'000, 8U << 20);
    const auto first_pins = trimOnceAt1s(trimmer);
    EXPECT_FALSE(trimmer.maybeTrim(11'000, true)) << "quiet, but nothing more is free";

    auto small = burst(2'000, 1536);  // 3 MiB: above min_growth, below urgent_growth
    auto small_pins = burst(2'000, 32);
    EXPECT_FALSE(trimmer.maybeTrim(16'000, true)) << "in use";
    const std::uint64_t resident_busy = residentBytes();
    small.clear();
    EXPECT_FALSE(trimmer.maybeTrim(21'000)) << "within the interval";
    EXPECT_TRUE(trimmer.maybeTrim(21'000, true));
    EXPECT_LT(residentBytes() + (2U << 20), resident_busy);
}

// tuneAllocator(): memory freed at the top of the heap stays for the next burst instead of
// being given back (and faulted in again, page by page) every time; blocks up to 4 MiB come
// from the heap; the trimmer still gives it all back once traffic stops.
TEST(HeapTrimmer, TunedAllocatorKeepsFreedMemoryUntilTheTrimmerRuns) {
#ifdef __SANITIZE_ADDRESS__
    GTEST_SKIP() << "AddressSanitizer replaces malloc: there is no glibc heap to tune";
#endif
    ASSERT_TRUE(tuneAllocator());
    HeapTrimmer trimmer(1U << 20);
    trimmer.maybeTrim();

    const std::size_t mapped_before = ::mallinfo2().hblks;
    {
        std::unique_ptr<char[]> big(new char[1U << 20]);
        big[0] = 1;
        EXPECT_EQ(::mallinfo2().hblks, mapped_before) << "a 1 MiB block got its own mmap";
    }

    // 16 MiB in 1.5 KiB blocks (above the tcache's sizes) with nothing allocated after them
    // (so nothing but mallinfo2 in between, which does not allocate): freed newest first, they
    // merge into the top of the heap, which glibc's default (a 128 KiB trim threshold) would
    // give back to the kernel at once.
    auto blocks = burst(10'000, 1536);
    const std::size_t arena_busy = ::mallinfo2().arena;
    EXPECT_FALSE(trimmer.maybeTrim()) << "the heap is in use";
    while (!blocks.empty()) {
        blocks.pop_back();
    }
    EXPECT_GE(::mallinfo2().arena + (1U << 20), arena_busy) << "the top of the heap was released";
    EXPECT_GE(::mallinfo2().fordblks, 14U << 20);

    const std::uint64_t resident_freed = residentBytes();
    EXPECT_TRUE(trimmer.maybeTrim());
    EXPECT_LT(residentBytes() + (8U << 20), resident_freed)
        << "before the trim " << resident_freed << " bytes, after " << residentBytes();
}

}  // namespace
}  // namespace tundra::server
