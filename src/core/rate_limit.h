// SPDX-License-Identifier: Apache-2.0
// TokenBucket: the per-connection rate limit (frames per second and bytes per second, each with
// a burst). Pure integer arithmetic on the core's steady milliseconds; 16 bytes, no allocation.
#pragma once

#include <algorithm>
#include <climits>
#include <cstdint>

namespace tundra::core {

/// A bucket of up to `burst` tokens refilled at `rate_per_s`; it starts full. The rate and the
/// burst are passed on every call, so a reload applies at once. Tokens are kept in thousandths,
/// so a rate of 1000/s refills one token per millisecond exactly.
class TokenBucket {
public:
    /// Takes `cost` tokens if the bucket holds them (true); otherwise takes nothing (false).
    /// `rate_per_s` 0 means unlimited (always true).
    bool take(std::uint64_t cost, std::uint64_t rate_per_s, std::uint64_t burst,
              std::int64_t now_ms) {
        if (rate_per_s == 0) {
            return true;
        }
        const std::uint64_t cap = burst * 1000;
        if (last_ms_ == kUnprimed) {
            milli_ = cap;
        } else if (now_ms > last_ms_) {
            // Capped at an hour so the product cannot overflow (rate <= 2^40).
            const auto elapsed = static_cast<std::uint64_t>(
                std::min<std::int64_t>(now_ms - last_ms_, std::int64_t{3'600'000}));
            milli_ = std::min(cap, milli_ + elapsed * rate_per_s);
        }
        milli_ = std::min(milli_, cap);  // a smaller burst after a reload
        if (now_ms > last_ms_) {
            last_ms_ = now_ms;
        }
        const std::uint64_t need = cost * 1000;
        if (milli_ < need) {
            return false;
        }
        milli_ -= need;
        return true;
    }

private:
    static constexpr std::int64_t kUnprimed = INT64_MIN;  ///< before the first take(): full

    std::uint64_t milli_ = 0;  ///< tokens x 1000
    std::int64_t last_ms_ = kUnprimed;
};

}  // namespace tundra::core
