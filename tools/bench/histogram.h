// SPDX-License-Identifier: Apache-2.0
// A log-linear latency histogram in the manner of HdrHistogram: fixed memory whatever the count,
// values in integer nanoseconds, every recorded value kept within 1/64 (1.6%) of its true value,
// percentiles read back in one pass. tundra-bench records one value per delivery in it.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace tundra::bench {

class LatencyHistogram {
public:
    /// Sub-buckets per power of two: values below kSub are exact, larger ones fall in buckets of
    /// width 2^(k-6) for 2^k <= v < 2^(k+1), so the error is below 1/kSub of the value.
    static constexpr std::uint64_t kSub = 64;
    static constexpr int kSubBits = 6;
    static constexpr int kTopBit = 40;  // 2^40 ns ~ 18 minutes; larger values are clamped

    void record(std::uint64_t ns) {
        ns = std::min<std::uint64_t>(ns, (std::uint64_t{1} << kTopBit) - 1);
        ++counts_[index(ns)];
        ++count_;
        max_ = std::max(max_, ns);
        min_ = count_ == 1 ? ns : std::min(min_, ns);
        sum_ += ns;
    }

    void merge(const LatencyHistogram& other) {
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            counts_[i] += other.counts_[i];
        }
        if (other.count_ > 0) {
            min_ = count_ == 0 ? other.min_ : std::min(min_, other.min_);
            max_ = std::max(max_, other.max_);
        }
        count_ += other.count_;
        sum_ += other.sum_;
    }

    [[nodiscard]] std::uint64_t count() const { return count_; }
    [[nodiscard]] std::uint64_t max() const { return max_; }
    [[nodiscard]] std::uint64_t min() const { return count_ == 0 ? 0 : min_; }
    [[nodiscard]] double mean() const {
        return count_ == 0 ? 0.0 : static_cast<double>(sum_) / static_cast<double>(count_);
    }

    /// The value at quantile q (0..1): the highest value of the bucket holding the
    /// ceil(q * count)-th smallest sample, capped at the largest value recorded.
    [[nodiscard]] std::uint64_t quantile(double q) const {
        if (count_ == 0) {
            return 0;
        }
        q = std::clamp(q, 0.0, 1.0);
        auto rank = static_cast<std::uint64_t>(q * static_cast<double>(count_) + 0.999999);
        rank = std::clamp<std::uint64_t>(rank, 1, count_);
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            seen += counts_[i];
            if (seen >= rank) {
                return std::min(bucketTop(i), max_);
            }
        }
        return max_;
    }

    /// Bucket of a value (exposed for tests).
    static std::size_t index(std::uint64_t v) {
        if (v < kSub) {
            return static_cast<std::size_t>(v);
        }
        const int k = static_cast<int>(std::bit_width(v)) - 1;  // 2^k <= v < 2^(k+1), k >= 6
        const int shift = k - kSubBits;
        const std::uint64_t sub = (v >> shift) - kSub;  // 0..kSub-1
        return static_cast<std::size_t>(kSub + static_cast<std::uint64_t>(shift) * kSub + sub);
    }
    /// Highest value that falls in bucket i.
    static std::uint64_t bucketTop(std::size_t i) {
        if (i < kSub) {
            return i;
        }
        const std::uint64_t shift = (i - kSub) / kSub;
        const std::uint64_t sub = (i - kSub) % kSub;
        return (((kSub + sub) << shift) + (std::uint64_t{1} << shift)) - 1;
    }

private:
    static constexpr std::size_t kBuckets = kSub + (kTopBit - kSubBits) * kSub;
    std::array<std::uint64_t, kBuckets> counts_{};
    std::uint64_t count_ = 0;
    std::uint64_t min_ = 0;
    std::uint64_t max_ = 0;
    std::uint64_t sum_ = 0;
};

}  // namespace tundra::bench
