// SPDX-License-Identifier: Apache-2.0
// Test support: a manually driven common::Clock. Steady and wall time move together on
// advance(); tests never sleep.
#pragma once

#include <cstdint>

#include "common/clock.h"

namespace tundra::testing {

class FakeClock final : public common::Clock {
public:
    /// Starts at an arbitrary non-zero steady time and a realistic wall time (2024-01-01).
    explicit FakeClock(std::int64_t steady_ms = 1'000'000, std::int64_t wall_ms = 1'704'067'200'000)
        : steady_us_(steady_ms * 1000), wall_ms_(wall_ms) {}

    [[nodiscard]] std::int64_t steadyMs() const override { return steady_us_ / 1000; }
    [[nodiscard]] std::int64_t steadyUs() const override { return steady_us_; }
    [[nodiscard]] std::int64_t wallMs() const override { return wall_ms_; }

    void advance(std::int64_t ms) {
        steady_us_ += ms * 1000;
        wall_ms_ += ms;
    }
    /// Moves the steady clock by `us` microseconds (the wall clock keeps its milliseconds).
    void advanceUs(std::int64_t us) { steady_us_ += us; }
    /// Moves only the wall clock (e.g. an NTP step backwards); steady time never goes back.
    void setWall(std::int64_t wall_ms) { wall_ms_ = wall_ms; }

private:
    std::int64_t steady_us_;
    std::int64_t wall_ms_;
};

}  // namespace tundra::testing
