// SPDX-License-Identifier: Apache-2.0
// LogThrottle: at most one log line per event kind per interval (one second by default), with a
// count of what was held back, so an attacker who triggers an event a million times a second
// costs the log one line a second. Time comes in as an argument (pure, testable).
#pragma once

#include <cstdint>

namespace tundra::common {

/// One per event kind (e.g. a member next to the code that logs it). Not thread-safe.
class LogThrottle {
public:
    explicit LogThrottle(std::int64_t interval_ms = 1000) : interval_ms_(interval_ms) {}

    /// True if a line may be logged at `now_ms` (steady milliseconds). Then `suppressed` is the
    /// number of events held back since the last allowed line (to mention in that line), and
    /// the count starts over. False counts the event as held back.
    bool allow(std::int64_t now_ms, std::uint64_t& suppressed) {
        if (has_logged_ && now_ms - last_ms_ < interval_ms_) {
            ++held_back_;
            return false;
        }
        has_logged_ = true;
        last_ms_ = now_ms;
        suppressed = held_back_;
        held_back_ = 0;
        return true;
    }

private:
    std::int64_t interval_ms_;
    std::int64_t last_ms_ = 0;
    std::uint64_t held_back_ = 0;
    bool has_logged_ = false;
};

}  // namespace tundra::common
