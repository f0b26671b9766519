// SPDX-License-Identifier: Apache-2.0
// Exponential reconnect backoff with jitter.
#include "client/backoff.h"

#include <algorithm>
#include <cmath>

namespace tundra::client {

Backoff::Backoff(BackoffPolicy policy, std::uint64_t seed) : policy_(policy), rng_(seed) {}

std::chrono::milliseconds Backoff::next() {
    const double max_ms = static_cast<double>(std::max<std::int64_t>(policy_.max.count(), 0));
    const double initial_ms = std::min(static_cast<double>(policy_.initial.count()), max_ms);
    const double multiplier = std::max(policy_.multiplier, 1.0);
    // Stop multiplying once the cap is reached so the exponent can never overflow.
    double delay = initial_ms;
    for (unsigned i = 0; i < attempts_ && delay < max_ms; ++i) {
        delay *= multiplier;
    }
    delay = std::min(delay, max_ms);
    const double jitter = std::clamp(policy_.jitter, 0.0, 1.0);
    if (jitter > 0.0) {
        std::uniform_real_distribution<double> factor(1.0 - jitter, 1.0 + jitter);
        delay = std::min(delay * factor(rng_), max_ms);
    }
    ++attempts_;
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(delay)));
}

}  // namespace tundra::client
