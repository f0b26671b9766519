// SPDX-License-Identifier: Apache-2.0
// OutputQueue: order, partial consumption, tags of unwritten segments, that the storage and the
// shared segments are released as soon as they are written, and the bounded SegmentPool that
// lets drained storage be reused.
#include "net/output_queue.h"

#include <gtest/gtest.h>
#include <malloc.h>

#include <string>
#include <vector>

#include "unit/net/net_test_util.h"

namespace tundra::net {
namespace {

using test::bytesOf;

std::string iovText(const OutputQueue& q, std::size_t max = 64) {
    std::vector<iovec> iov(max);
    const std::size_t n = q.fillIov(iov.data(), max);
    std::string out;
    for (std::size_t i = 0; i < n; ++i) {
        out.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
    }
    return out;
}

TEST(OutputQueueTest, EmptyQueueOwnsNoHeap) {
    OutputQueue q;
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.heapBytes(), 0U);
    iovec iov[1];
    EXPECT_EQ(q.fillIov(iov, 1), 0U);
}

TEST(OutputQueueTest, PartialConsumptionKeepsOrderAcrossSegments) {
    OutputQueue q;
    q.push(bytesOf("hello"), 0, 1);
    q.push(bytesOf("XXworld"), 2, 2);  // first two bytes were already written
    q.push(bytesOf("!"), 0, 0);
    EXPECT_EQ(q.bytes(), 11U);
    EXPECT_EQ(q.segments(), 3U);
    EXPECT_EQ(iovText(q), "helloworld!");
    q.consume(3);
    EXPECT_EQ(iovText(q), "loworld!");
    q.consume(4);
    EXPECT_EQ(iovText(q), "rld!");
    EXPECT_EQ(q.segments(), 2U);
    EXPECT_EQ(q.bytes(), 4U);
}

TEST(OutputQueueTest, UnwrittenTagsIncludePartlyWrittenSegmentsAndSkipZeroTags) {
    OutputQueue q;
    q.push(bytesOf("aaaa"), 0, 7);
    q.push(bytesOf("bbbb"), 0, 0);
    q.push(bytesOf("cccc"), 0, 9);
    q.push(bytesOf("dddd"), 0, 11);
    EXPECT_EQ(q.unwrittenTags(), (std::vector<std::uint64_t>{7, 9, 11}));
    q.consume(9);  // a and b written, c one byte in
    EXPECT_EQ(q.unwrittenTags(), (std::vector<std::uint64_t>{9, 11}));
}

TEST(OutputQueueTest, AJoinedSegmentsTagsComeFromTheReaderWithTheWrittenOffset) {
    OutputQueue q;
    q.push(bytesOf("aaaa"), 0, 7);
    q.push(bytesOf("xxyyzz"), 0, kJoinedTag);  // three two-byte messages tagged 1, 2, 3
    q.push(bytesOf("bbbb"), 0, 9);
    std::vector<std::size_t> offsets;
    const JoinedTagReader reader = [&offsets](std::span<const std::uint8_t> seg, std::size_t off,
                                              std::vector<std::uint64_t>& out) {
        EXPECT_EQ(seg.size(), 6U);
        offsets.push_back(off);
        for (std::size_t end = 2; end <= seg.size(); end += 2) {
            if (end > off) {
                out.push_back(end / 2);
            }
        }
    };
    EXPECT_EQ(q.unwrittenTags(&reader), (std::vector<std::uint64_t>{7, 1, 2, 3, 9}));
    q.consume(7);  // "aaaa" and "xxy" written: "y" is the second message's
    EXPECT_EQ(q.unwrittenTags(&reader), (std::vector<std::uint64_t>{2, 3, 9}));
    EXPECT_EQ(offsets, (std::vector<std::size_t>{0, 3}));
    // Without a reader a joined segment reports nothing (and never its marker tag).
    EXPECT_EQ(q.unwrittenTags(), (std::vector<std::uint64_t>{9}));
}

TEST(OutputQueueTest, FullyWrittenOrEmptySegmentsAreNotQueued) {
    OutputQueue q;
    q.push(bytesOf("abc"), 3, 5);
    q.push(bytesOf(""), 0, 6);
    q.push(nullptr, 0, 7);
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.heapBytes(), 0U);
}

TEST(OutputQueueTest, DrainingReleasesStorageAndSegments) {
    OutputQueue q;
    auto shared = bytesOf("shared frame");
    q.push(shared, 0, 1);
    q.push(bytesOf("tail"), 0, 2);
    EXPECT_EQ(shared.use_count(), 2);
    EXPECT_GT(q.heapBytes(), 0U);
    q.consume(shared->size());
    EXPECT_EQ(shared.use_count(), 1) << "a written segment must drop its reference at once";
    q.consume(4);
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.heapBytes(), 0U);
}

TEST(OutputQueueTest, FillIovStopsAtMax) {
    OutputQueue q;
    for (int i = 0; i < 100; ++i) {
        q.push(bytesOf(std::string(1, static_cast<char>('a' + i % 26))), 0, 0);
    }
    iovec iov[64];
    EXPECT_EQ(q.fillIov(iov, 64), 64U);
}

TEST(OutputQueueTest, CompactionKeepsOrder) {
    OutputQueue q;
    std::string expect;
    std::size_t next = 0;
    auto push = [&](std::size_t count) {
        for (std::size_t i = 0; i < count; ++i, ++next) {
            std::string s = std::to_string(next) + ",";
            expect += s;
            q.push(bytesOf(s), 0, next + 1);
        }
    };
    push(100);
    for (int round = 0; round < 20; ++round) {
        const std::size_t n = expect.size() * 2 / 3;
        q.consume(n);
        expect.erase(0, n);
        push(50);
        ASSERT_EQ(q.bytes(), expect.size());
        ASSERT_EQ(iovText(q, 100000), expect) << "round " << round;
    }
}

TEST(OutputQueueTest, DrainedStorageGoesToThePoolAndIsReusedWithoutAllocating) {
    SegmentPool pool;
    OutputQueue q;
    for (int i = 0; i < 5; ++i) {
        q.push(bytesOf("abc"), 0, 0, &pool);
    }
    const std::size_t heap = q.heapBytes();
    ASSERT_GT(heap, 0U);
    q.consume(15, &pool);
    EXPECT_EQ(q.heapBytes(), 0U) << "an empty queue still owns nothing";
    EXPECT_EQ(pool.spares(), 1U);
    EXPECT_EQ(pool.heapBytes(), heap + sizeof(std::vector<OutputSegment>));

    OutputQueue other;
    auto shared = bytesOf("x");
    other.push(shared, 0, 1, &pool);
    EXPECT_EQ(other.heapBytes(), heap) << "took the spare storage";
    EXPECT_EQ(pool.spares(), 0U);
    EXPECT_EQ(iovText(other), "x");
    other.clear(&pool);
    EXPECT_EQ(shared.use_count(), 1) << "pooled storage holds no references";
    EXPECT_EQ(pool.spares(), 1U);
}

TEST(OutputQueueTest, PoolKeepsOnlySmallVectorsUpToItsBound) {
    SegmentPool pool;
    OutputQueue big;
    for (std::size_t i = 0; i <= SegmentPool::kMaxVectorSegments; ++i) {
        big.push(bytesOf("y"), 0, 0, &pool);
    }
    big.clear(&pool);
    EXPECT_EQ(pool.spares(), 0U) << "a vector grown past kMaxVectorSegments is freed";

    std::vector<OutputQueue> queues(SegmentPool::kMaxSegments / 4 + 10);
    for (auto& q : queues) {
        for (int i = 0; i < 4; ++i) {
            q.push(bytesOf("z"), 0, 0, &pool);  // capacity 4 each
        }
    }
    for (auto& q : queues) {
        q.clear(&pool);
    }
    EXPECT_EQ(pool.spares(), SegmentPool::kMaxSegments / 4) << "bounded by kMaxSegments slots";
}

// trimUnused() frees the spares nobody took since the previous call and keeps the working set.
TEST(OutputQueueTest, PoolTrimFreesOnlyWhatWasNotUsedSinceTheLastTrim) {
    SegmentPool pool;
    std::vector<OutputQueue> queues(10);
    auto fill = [&](std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) {
            queues[i].push(bytesOf("q"), 0, 0, &pool);
        }
    };
    auto drain = [&](std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) {
            queues[i].clear(&pool);
        }
    };
    fill(10);
    drain(10);
    ASSERT_EQ(pool.spares(), 10U);
    EXPECT_EQ(pool.trimUnused(), 0U) << "the first call only starts the interval";
    fill(3);  // 3 spares in use at once during this interval
    drain(3);
    EXPECT_EQ(pool.trimUnused(), 7U) << "7 spares sat unused for a whole interval";
    EXPECT_EQ(pool.spares(), 3U);
    EXPECT_EQ(pool.trimUnused(), 3U) << "an interval without sends frees the rest";
    EXPECT_EQ(pool.spares(), 0U);
    EXPECT_EQ(pool.heapBytes(), 0U);
    fill(2);
    drain(2);
    EXPECT_EQ(pool.spares(), 2U) << "still a pool afterwards";
}

TEST(OutputQueueTest, WithoutAPoolDrainingFreesTheStorage) {
    SegmentPool pool;
    OutputQueue q;
    q.push(bytesOf("abc"), 0, 0, &pool);
    q.consume(3);  // no pool given
    EXPECT_EQ(q.heapBytes(), 0U);
    EXPECT_EQ(pool.spares(), 0U);
}

}  // namespace
}  // namespace tundra::net

namespace tundra::net {
namespace {

// The overhead charged per segment is what the heap really spends on a small queued frame:
// measured with mallinfo2 over many 15-byte frames (a PONG) made the way the codec makes them.
TEST(OutputQueueTest, SegmentOverheadMatchesTheMeasuredHeapCostOfSmallFrames) {
#ifdef __SANITIZE_ADDRESS__
    GTEST_SKIP() << "AddressSanitizer replaces malloc: glibc's heap figures measure nothing";
#endif
    constexpr std::size_t kFrames = 20000;
    constexpr std::size_t kFrameBytes = 15;
    OutputQueue q;
    // uordblks: small chunks; hblkhd: mmapped ones (the queue's own vector once it is large).
    auto heap = [] {
        const auto m = ::mallinfo2();
        return m.uordblks + m.hblkhd;
    };
    const std::size_t before = heap();
    for (std::size_t i = 0; i < kFrames; ++i) {
        std::vector<std::uint8_t> frame(kFrameBytes, 0x42);
        q.push(SharedBytes::copyOf(frame), 0, 0);
    }
    const std::size_t used = heap() - before;
    const std::size_t per_segment = used / kFrames;
    EXPECT_EQ(q.charge(), kFrames * (kFrameBytes + OutputQueue::kSegmentOverhead));
    // Within 25% of the measured cost (the queue vector's growth slack varies with the count).
    const std::size_t charged = kFrameBytes + OutputQueue::kSegmentOverhead;
    EXPECT_GE(charged * 4, per_segment * 3) << "measured " << per_segment << " bytes a segment";
    EXPECT_LE(charged * 3, per_segment * 4) << "measured " << per_segment << " bytes a segment";
    q.consume(q.bytes());
    EXPECT_EQ(q.charge(), 0U);
}

}  // namespace
}  // namespace tundra::net
