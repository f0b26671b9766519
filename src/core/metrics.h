// SPDX-License-Identifier: Apache-2.0
// Counters and gauges behind HEALTH_RESULT and the admin /metrics page. Both render them through
// the one table in core/metric_table.h; a new figure also needs its row there.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "tundra/protocol.h"

namespace tundra::core {

/// Monotonic counters; names follow the metric names (tundra_<name>).
struct Metrics {
    std::uint64_t frames_in_total = 0;
    std::uint64_t frames_out_total = 0;
    std::uint64_t messages_in_total = 0;       ///< MESSAGE, AGENT_COMMAND, IMAGE accepted
    std::uint64_t messages_out_total = 0;      ///< deliveries queued to live connections
    std::uint64_t offline_buffered_total = 0;  ///< deliveries stored in offline buffers
    std::uint64_t offline_dropped_total = 0;   ///< lost to count/byte budgets
    std::uint64_t connections_total = 0;
    std::uint64_t registrations_total = 0;
    std::uint64_t resumes_total = 0;
    std::uint64_t heartbeat_timeouts_total = 0;
    std::uint64_t slow_consumer_disconnects_total = 0;
    std::uint64_t sessions_expired_total = 0;
    std::uint64_t register_timeouts_total = 0;      ///< closed for not registering in time
    std::uint64_t unregistered_refused_total = 0;   ///< refused: max_unregistered reached
    std::uint64_t per_ip_refused_total = 0;         ///< refused: max_connections_per_ip reached
    std::uint64_t register_rate_limited_total = 0;  ///< REGISTERs refused by register_rate
    std::uint64_t detached_evicted_total = 0;       ///< detached sessions ended for max_users
    std::uint64_t presence_coalesced_total = 0;     ///< JOINED/LEFT pairs cancelled in a tick
    std::uint64_t budget_evictions_total = 0;  ///< entries taken from the heaviest user for another
    std::uint64_t rate_limited_total = 0;      ///< frames refused with RATE_LIMITED
    std::uint64_t bad_frame_closes_total = 0;  ///< connections closed after max_bad_frames
    std::uint64_t storage_errors_total = 0;    ///< store batches that failed (disk full, I/O)
    std::uint64_t storage_recoveries_total = 0;  ///< degraded mode ended (a resync committed)
    std::uint64_t auth_failures_total = 0;       ///< tokens or passwords refused
    std::uint64_t auth_lockouts_total = 0;       ///< refused unchecked: source locked out
    std::uint64_t auth_expired_total = 0;        ///< connections closed at their token's expiry
    std::array<std::uint64_t, kMaxErrorCode + 1> errors_total{};  ///< indexed by code
};

/// A bounded reservoir of latency samples (ms) with percentiles.
class LatencyStats {
public:
    void add(double ms);
    [[nodiscard]] std::uint64_t samples() const { return count_; }
    /// Nearest-rank percentile over the most recent samples, `p` in [0, 100] (50 = median);
    /// nullopt when there are no samples.
    [[nodiscard]] std::optional<double> percentile(double p) const;
    /// Largest sample ever added; nullopt when there are none.
    [[nodiscard]] std::optional<double> max() const;

private:
    static constexpr std::size_t kWindow = 1024;  // most recent samples
    std::vector<double> ring_;
    std::size_t next_ = 0;
    std::uint64_t count_ = 0;
    double max_ = 0;
};

struct Gauges {
    std::uint64_t connections = 0;
    std::uint64_t sessions_online = 0;
    std::uint64_t sessions_detached = 0;
    std::uint64_t users_known = 0;
    std::uint64_t buffered_messages = 0;  ///< offline entries held now (never written)
    std::uint64_t window_messages = 0;    ///< delivery-window entries held now
    std::uint64_t buffered_bytes = 0;     ///< offline + window, as charged to the budgets
    std::uint64_t latency_samples = 0;
    std::optional<double> latency_p50_ms;
    std::optional<double> latency_p99_ms;
    std::optional<double> latency_max_ms;
    std::int64_t uptime_s = 0;
    std::uint64_t storage_degraded = 0;  ///< 1 while writes fail (STORAGE_UNAVAILABLE)
};

}  // namespace tundra::core
