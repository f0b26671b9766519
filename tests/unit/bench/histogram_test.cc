// SPDX-License-Identifier: Apache-2.0
// The latency histogram of tundra-bench: bucket bounds, the 1/64 precision promise, quantiles
// against a sorted reference, and merging.
#include "bench/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

namespace tundra::bench {
namespace {

TEST(LatencyHistogramTest, SmallValuesAreExact) {
    for (std::uint64_t v = 0; v < LatencyHistogram::kSub; ++v) {
        EXPECT_EQ(LatencyHistogram::index(v), v);
        EXPECT_EQ(LatencyHistogram::bucketTop(LatencyHistogram::index(v)), v);
    }
}

TEST(LatencyHistogramTest, EveryValueIsWithinOneSixtyFourthOfItsBucketTop) {
    std::mt19937_64 rng(7);
    for (int i = 0; i < 200000; ++i) {
        const int bits = static_cast<int>(rng() % 40);
        const std::uint64_t v = rng() & ((std::uint64_t{1} << bits) - 1);
        const std::size_t idx = LatencyHistogram::index(v);
        const std::uint64_t top = LatencyHistogram::bucketTop(idx);
        ASSERT_LE(v, top) << v;
        ASSERT_LE(top - v, v / LatencyHistogram::kSub) << v;
        if (idx > 0) {
            ASSERT_GT(v, LatencyHistogram::bucketTop(idx - 1)) << "buckets overlap at " << v;
        }
    }
}

TEST(LatencyHistogramTest, QuantilesMatchASortedReference) {
    std::mt19937_64 rng(11);
    std::lognormal_distribution<double> dist(11.0, 1.2);  // ~60 us median, long tail
    LatencyHistogram h;
    std::vector<std::uint64_t> ref;
    for (int i = 0; i < 100000; ++i) {
        const auto v = static_cast<std::uint64_t>(dist(rng));
        h.record(v);
        ref.push_back(v);
    }
    std::sort(ref.begin(), ref.end());
    for (double q : {0.0, 0.5, 0.9, 0.99, 0.999, 1.0}) {
        auto rank = static_cast<std::size_t>(q * static_cast<double>(ref.size()) + 0.999999);
        rank = std::clamp<std::size_t>(rank, 1, ref.size());
        const std::uint64_t want = ref[rank - 1];
        const std::uint64_t got = h.quantile(q);
        EXPECT_GE(got, want) << q;
        EXPECT_LE(got - want, want / LatencyHistogram::kSub + 1) << q;
    }
    EXPECT_EQ(h.count(), ref.size());
    EXPECT_EQ(h.min(), ref.front());
    EXPECT_EQ(h.max(), ref.back());
    EXPECT_EQ(h.quantile(1.0), ref.back());
}

TEST(LatencyHistogramTest, MergeAddsCountsAndBounds) {
    LatencyHistogram a;
    LatencyHistogram b;
    a.record(100);
    a.record(5000);
    b.record(7);
    b.record(1000000);
    a.merge(b);
    EXPECT_EQ(a.count(), 4U);
    EXPECT_EQ(a.min(), 7U);
    EXPECT_EQ(a.max(), 1000000U);
    EXPECT_EQ(a.quantile(0.25), 7U);
    EXPECT_DOUBLE_EQ(a.mean(), (100.0 + 5000.0 + 7.0 + 1000000.0) / 4.0);
    LatencyHistogram empty;
    EXPECT_EQ(empty.quantile(0.5), 0U);
    EXPECT_EQ(empty.min(), 0U);
}

TEST(LatencyHistogramTest, HugeValuesAreClampedNotLost) {
    LatencyHistogram h;
    h.record(UINT64_MAX);
    EXPECT_EQ(h.count(), 1U);
    EXPECT_EQ(h.max(), (std::uint64_t{1} << LatencyHistogram::kTopBit) - 1);
}

}  // namespace
}  // namespace tundra::bench
