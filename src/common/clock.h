// SPDX-License-Identifier: Apache-2.0
// Time as an injected dependency: the core reads time only through Clock, so tests can drive
// it with a FakeClock (tests/support/fake_clock.h).
#pragma once

#include <cstdint>

namespace tundra::common {

class Clock {
public:
    virtual ~Clock() = default;
    /// Monotonic milliseconds, for deadlines and durations.
    [[nodiscard]] virtual std::int64_t steadyMs() const = 0;
    /// Monotonic microseconds on the same time line, for round-trip measurements.
    [[nodiscard]] virtual std::int64_t steadyUs() const { return steadyMs() * 1000; }
    /// Milliseconds since the Unix epoch, for message timestamps and ids.
    [[nodiscard]] virtual std::int64_t wallMs() const = 0;
};

/// The real clocks (CLOCK_MONOTONIC and CLOCK_REALTIME).
class SystemClock final : public Clock {
public:
    [[nodiscard]] std::int64_t steadyMs() const override;
    [[nodiscard]] std::int64_t steadyUs() const override;
    [[nodiscard]] std::int64_t wallMs() const override;
};

}  // namespace tundra::common
