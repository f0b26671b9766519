// SPDX-License-Identifier: Apache-2.0
// Round-trip time statistics for `tundra-cli ping`: min, average, nearest-rank percentiles, max.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace tundra::cli {

/// Keeps every sample (ping counts are small) so percentiles are exact.
class RttStats {
public:
    void add(double ms) { samples_.push_back(ms); }
    [[nodiscard]] std::size_t count() const { return samples_.size(); }
    [[nodiscard]] double min() const {
        return samples_.empty() ? 0 : *std::min_element(samples_.begin(), samples_.end());
    }
    [[nodiscard]] double max() const {
        return samples_.empty() ? 0 : *std::max_element(samples_.begin(), samples_.end());
    }
    [[nodiscard]] double average() const {
        double sum = 0;
        for (double s : samples_) {
            sum += s;
        }
        return samples_.empty() ? 0 : sum / static_cast<double>(samples_.size());
    }
    /// Nearest-rank percentile: the smallest sample with at least p% of samples at or below it.
    [[nodiscard]] double percentile(double p) const {
        if (samples_.empty()) {
            return 0;
        }
        std::vector<double> sorted = samples_;
        std::sort(sorted.begin(), sorted.end());
        double rank = std::ceil(p / 100.0 * static_cast<double>(sorted.size()));
        std::size_t index = rank < 1 ? 0 : static_cast<std::size_t>(rank) - 1;
        return sorted[std::min(index, sorted.size() - 1)];
    }

private:
    std::vector<double> samples_;
};

}  // namespace tundra::cli
