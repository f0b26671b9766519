// SPDX-License-Identifier: Apache-2.0
// The one list of metrics: every counter and gauge as {name, kind, help, labels, HEALTH_RESULT
// field, accessor}. HEALTH_RESULT (writeMetricFields, used by the core) and the Prometheus page
// (server/prometheus.cc) both render this table, so a figure added here shows up in both.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <variant>

#include "core/json_writer.h"
#include "core/metrics.h"
#include "core/session_manager.h"

namespace tundra::core {

enum class MetricKind { Counter, Gauge };

/// "counter" or "gauge" (the Prometheus TYPE).
std::string_view metricKindName(MetricKind kind);

/// A sample: a count, or a statistic that may be missing (JSON null, Prometheus NaN).
using MetricValue = std::variant<std::uint64_t, std::optional<double>>;

/// Everything a row may read from.
struct MetricSource {
    const Metrics& metrics;
    const Gauges& gauges;
    const ServerStats& stats;
    const CoreConfig& config;
};

/// One Prometheus sample line (or, with per_error_code, one line per code 1..kMaxErrorCode)
/// and, when `json` is set, the matching HEALTH_RESULT field. Rows of one family are adjacent.
struct MetricDef {
    std::string_view name;  ///< Prometheus family, tundra_...; counters end in _total
    MetricKind kind;
    std::string_view help;    ///< # HELP text; only the family's first row has it
    std::string_view labels;  ///< fixed labels of this sample (`state="online"`), "" = none
    /// HEALTH_RESULT field: "key" or "group.key"; with per_error_code the group that holds one
    /// key per code ("1" ... "14"). "" = /metrics only. Rows of one group are adjacent among
    /// the rows that have a field (HEALTH_RESULT keys come in table order).
    std::string_view json;
    bool per_error_code;  ///< one sample per error code: label code="N", JSON key "N"
    MetricValue (*value)(const MetricSource& src, std::uint16_t code);
};

/// The table, in HEALTH_RESULT order (docs/PROTOCOL.md section 15, docs/OPERATIONS.md).
std::span<const MetricDef> metricTable();

/// Writes every row that has a HEALTH_RESULT field into the object open in `w`, nested as the
/// fields say ("sessions": {"online": ..., "detached": ...}).
void writeMetricFields(JsonWriter& w, const MetricSource& src);

}  // namespace tundra::core
