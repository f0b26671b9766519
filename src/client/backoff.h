// SPDX-License-Identifier: Apache-2.0
// Exponential reconnect backoff with jitter (a pure computation with its own seeded generator,
// so tests can check the sequence).
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

#include "tundra/client.h"

namespace tundra::client {

/// Produces the delay before each reconnect attempt: policy.initial * multiplier^n capped at
/// policy.max, scaled by a factor drawn from [1 - jitter, 1 + jitter], capped again.
class Backoff {
public:
    explicit Backoff(BackoffPolicy policy = {}, std::uint64_t seed = std::random_device{}());

    /// The delay before the next attempt; each call counts one failed attempt.
    std::chrono::milliseconds next();
    /// Back to the initial delay after a success.
    void reset() { attempts_ = 0; }
    /// Failed attempts since the last reset().
    [[nodiscard]] unsigned attempts() const { return attempts_; }
    /// True when policy.max_attempts is set and that many attempts have failed.
    [[nodiscard]] bool exhausted() const {
        return policy_.max_attempts != 0 && attempts_ >= policy_.max_attempts;
    }

private:
    BackoffPolicy policy_;
    std::mt19937_64 rng_;
    unsigned attempts_ = 0;
};

}  // namespace tundra::client
