// SPDX-License-Identifier: Apache-2.0
// The /metrics page: the HEALTH_RESULT figures in the Prometheus text exposition format 0.0.4.
// A pure function of the core's counters; no I/O.
#pragma once

#include <string>

#include "core/metrics.h"
#include "core/session_manager.h"

namespace tundra::server {

/// Content-Type of renderPrometheus() output.
inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

/// Renders tundra_info and every row of the core's metric table (core/metric_table.h, the
/// same rows HEALTH_RESULT renders), each family with # HELP and # TYPE lines, in table order;
/// counters end in _total, errors are tundra_errors_total{code="N"} for every code
/// 1..kMaxErrorCode, a latency statistic without samples is NaN. The metric names are listed
/// in docs/OPERATIONS.md; renaming one breaks dashboards.
std::string renderPrometheus(const core::Metrics& metrics, const core::Gauges& gauges,
                             const core::ServerStats& stats, const core::CoreConfig& config);

}  // namespace tundra::server
