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

/// A Clock that reads `source` only on refresh() and answers from that reading until the next
/// one: the server refreshes it once per loop iteration, so the frames of one read cost no
/// clock read each (a clock_gettime per frame was several percent of a busy server). Every
/// answer is the time the iteration woke up, as EventLoop::nowMs() is.
class CachedClock final : public Clock {
public:
    /// Reads `source` once; it must outlive this clock.
    explicit CachedClock(const Clock& source) : source_(source) { refresh(); }
    void refresh() {
        steady_us_ = source_.steadyUs();
        wall_ms_ = source_.wallMs();
    }
    [[nodiscard]] std::int64_t steadyMs() const override { return steady_us_ / 1000; }
    [[nodiscard]] std::int64_t steadyUs() const override { return steady_us_; }
    [[nodiscard]] std::int64_t wallMs() const override { return wall_ms_; }

private:
    const Clock& source_;
    std::int64_t steady_us_ = 0;
    std::int64_t wall_ms_ = 0;
};

}  // namespace tundra::common
