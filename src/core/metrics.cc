// SPDX-License-Identifier: Apache-2.0
// LatencyStats: a ring of the most recent samples; percentiles are computed on demand (only
// HEALTH_RESULT and /metrics ask, so adding a sample stays O(1)).
#include "core/metrics.h"

#include <algorithm>
#include <cmath>

namespace tundra::core {

void LatencyStats::add(double ms) {
    if (!std::isfinite(ms) || ms < 0) {
        return;
    }
    if (ring_.size() < kWindow) {
        ring_.push_back(ms);
    } else {
        ring_[next_] = ms;
    }
    next_ = (next_ + 1) % kWindow;
    ++count_;
    max_ = count_ == 1 ? ms : std::max(max_, ms);
}

std::optional<double> LatencyStats::percentile(double p) const {
    if (ring_.empty()) {
        return std::nullopt;
    }
    // Nearest-rank over the window: p in [0, 100].
    p = std::clamp(p, 0.0, 100.0);
    std::vector<double> sorted(ring_);
    auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
    std::size_t idx = rank == 0 ? 0 : rank - 1;
    std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(idx),
                     sorted.end());
    return sorted[idx];
}

std::optional<double> LatencyStats::max() const {
    if (count_ == 0) {
        return std::nullopt;
    }
    return max_;
}

}  // namespace tundra::core
