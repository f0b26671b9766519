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

}  // namespace
}  // namespace tundra::server
