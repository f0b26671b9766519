// SPDX-License-Identifier: Apache-2.0
// TokenBuckets: the per-connection rate limit (frames per second and bytes per second, each with
// a burst). Pure integer arithmetic on the core's steady milliseconds; no allocation.
#pragma once

#include <algorithm>
#include <array>
#include <climits>
#include <cstddef>
#include <cstdint>

namespace tundra::core {

/// N token buckets refilled together from one timestamp (a connection's frame and byte buckets:
/// 24 bytes for two). Bucket i holds up to `burst` tokens, refilled at `rate_per_s`, and starts
/// full. Rates and bursts are passed on every call, so a reload applies at once; a bucket whose
/// rate is 0 is unlimited and counts as full when a reload gives it a rate. Tokens are kept in
/// thousandths, so a rate of 1000/s refills one token per millisecond exactly.
template <std::size_t N>
class TokenBuckets {
public:
    struct Take {
        std::uint64_t cost = 0;
        std::uint64_t rate_per_s = 0;  ///< 0 = unlimited
        std::uint64_t burst = 0;
    };

    /// Takes every bucket's cost if each holds it (true); otherwise takes nothing (false).
    bool take(const std::array<Take, N>& want, std::int64_t now_ms) {
        // Capped at an hour so the product cannot overflow (rate <= 2^40).
        const auto elapsed = static_cast<std::uint64_t>(
            std::clamp<std::int64_t>(now_ms - last_ms_, 0, std::int64_t{3'600'000}));
        if (now_ms > last_ms_) {
            last_ms_ = now_ms;
        }
        bool fits = true;
        for (std::size_t i = 0; i < N; ++i) {
            if (want[i].rate_per_s == 0) {
                milli_[i] = kFull;
                continue;
            }
            const std::uint64_t cap = want[i].burst * 1000;
            milli_[i] =
                milli_[i] == kFull ? cap : std::min(cap, milli_[i] + elapsed * want[i].rate_per_s);
            fits = fits && milli_[i] >= want[i].cost * 1000;
        }
        if (!fits) {
            return false;
        }
        for (std::size_t i = 0; i < N; ++i) {
            if (want[i].rate_per_s != 0) {
                milli_[i] -= want[i].cost * 1000;
            }
        }
        return true;
    }

private:
    static constexpr std::uint64_t kFull = UINT64_MAX;  ///< unused so far, or unlimited: full

    std::array<std::uint64_t, N> milli_ = filled();  ///< tokens x 1000
    std::int64_t last_ms_ = INT64_MIN / 2;           ///< when they were last brought up to date

    static constexpr std::array<std::uint64_t, N> filled() {
        std::array<std::uint64_t, N> a{};
        a.fill(kFull);
        return a;
    }
};

}  // namespace tundra::core
