// SPDX-License-Identifier: Apache-2.0
// The metric table (one row per figure) and its HEALTH_RESULT rendering. To add a metric, add
// one row here (docs/ARCHITECTURE.md, "Adding a metric").
#include "core/metric_table.h"

#include <array>
#include <string>

namespace tundra::core {

namespace {

using Src = MetricSource;
constexpr MetricKind kCounter = MetricKind::Counter;
constexpr MetricKind kGauge = MetricKind::Gauge;

std::uint64_t nonNegative(std::int64_t v) { return v < 0 ? 0 : static_cast<std::uint64_t>(v); }

// Columns: name, kind, help, labels, HEALTH_RESULT field, per error code, accessor.
const std::array kTable = {
    MetricDef{
        "tundra_uptime_seconds", kGauge, "Seconds since the server started.", "", "uptime_s", false,
        [](const Src& s, std::uint16_t) -> MetricValue { return nonNegative(s.gauges.uptime_s); }},
    MetricDef{"tundra_connections", kGauge, "Open client connections.", "", "connections", false,
              [](const Src& s, std::uint16_t) -> MetricValue { return s.gauges.connections; }},
    MetricDef{"tundra_sessions", kGauge, "Sessions by state: online, or detached and resumable.",
              "state=\"online\"", "sessions.online", false,
              [](const Src& s, std::uint16_t) -> MetricValue { return s.gauges.sessions_online; }},
    MetricDef{
        "tundra_sessions", kGauge, "", "state=\"detached\"", "sessions.detached", false,
        [](const Src& s, std::uint16_t) -> MetricValue { return s.gauges.sessions_detached; }},
    MetricDef{"tundra_users_known", kGauge, "Users remembered with their offline buffers.", "",
              "users_known", false,
              [](const Src& s, std::uint16_t) -> MetricValue { return s.gauges.users_known; }},
    MetricDef{
        "tundra_messages_in_total", kCounter, "MESSAGE, AGENT_COMMAND and IMAGE frames accepted.",
        "", "messages.in", false,
        [](const Src& s, std::uint16_t) -> MetricValue { return s.metrics.messages_in_total; }},
    MetricDef{
        "tundra_messages_out_total", kCounter, "Deliveries queued to live connections.", "",
        "messages.out", false,
        [](const Src& s, std::uint16_t) -> MetricValue { return s.metrics.messages_out_total; }},
    MetricDef{"tundra_offline_buffered_total", kCounter, "Deliveries stored in offline buffers.",
              "", "", false,
              [](const Src& s, std::uint16_t) -> MetricValue {
                  return s.metrics.offline_buffered_total;
              }},
    MetricDef{
        "tundra_buffered_messages", kGauge, "Messages held in offline buffers (never written) now.",
        "", "messages.buffered", false,
        [](const Src& s, std::uint16_t) -> MetricValue { return s.gauges.buffered_messages; }},
    MetricDef{
        "tundra_offline_dropped_total", kCounter,
        "Offline deliveries lost to the per-user count or byte budgets.", "", "messages.dropped",
        false,
        [](const Src& s, std::uint16_t) -> MetricValue { return s.metrics.offline_dropped_total; }},
    MetricDef{
        "tundra_storage_errors_total", kCounter,
        "Store batches that could not be written (disk full, I/O error).", "", "storage.errors",
        false,
        [](const Src& s, std::uint16_t) -> MetricValue { return s.metrics.storage_errors_total; }},
    MetricDef{"tundra_storage_recoveries_total", kCounter,
              "Times degraded storage mode ended (a full resync was written).", "",
              "storage.recoveries", false,
              [](const Src& s, std::uint16_t) -> MetricValue {
                  return s.metrics.storage_recoveries_total;
              }},
    MetricDef{"tundra_storage_degraded", kGauge,
              "1 while writes to the store fail and messages needing storage are refused.", "",
              "storage.degraded", false,
              [](const Src& s, std::uint16_t) -> MetricValue { return s.gauges.storage_degraded; }},
    MetricDef{"tundra_storage_read_holds_total", kCounter,
              "Times reading from clients paused because the store's writer queue was full.", "",
              "storage.read_holds", false,
              [](const Src& s, std::uint16_t) -> MetricValue {
                  return s.stats.storage_read_holds_total;
              }},
    MetricDef{
        "tundra_storage_journal_bytes", kGauge,
        "Bytes of the store's journal not yet folded into the database.", "",
        "storage.journal_bytes", false,
        [](const Src& s, std::uint16_t) -> MetricValue { return s.stats.storage_journal_bytes; }},
    MetricDef{"tundra_storage_checkpoints_total", kCounter,
              "Journal segments folded into the database.", "", "storage.checkpoints", false,
              [](const Src& s, std::uint16_t) -> MetricValue {
                  return s.stats.storage_checkpoints_total;
              }},
    MetricDef{"tundra_storage_checkpoint_failures_total", kCounter,
              "Checkpoints that failed (retried a second later; the journal keeps the messages).",
              "", "storage.checkpoint_failures", false,
              [](const Src& s, std::uint16_t) -> MetricValue {
                  return s.stats.storage_checkpoint_failures_total;
              }},
    MetricDef{"tundra_window_messages", kGauge,
              "Written deliveries kept in per-user replay windows now.", "", "", false,
              [](const Src& s, std::uint16_t) -> MetricValue { return s.gauges.window_messages; }},
    MetricDef{"tundra_buffered_bytes", kGauge,
              "Bytes held in offline buffers and delivery windows, as charged to the budgets.", "",
              "", false,
              [](const Src& s, std::uint16_t) -> MetricValue { return s.gauges.buffered_bytes; }},
    MetricDef{"tundra_bytes_in_total", kCounter, "Bytes read from client connections.", "",
              "bytes.in", false,
              [](const Src& s, std::uint16_t) -> MetricValue { return s.stats.bytes_in; }},
    MetricDef{"tundra_bytes_out_total", kCounter, "Bytes written to client connections.", "",
              "bytes.out", false,
              [](const Src& s, std::uint16_t) -> MetricValue { return s.stats.bytes_out; }},
    MetricDef{"tundra_frames_in_total", kCounter, "Frames received from clients.", "", "", false,
              [](const Src& s, std::uint16_t) -> MetricValue { return s.metrics.frames_in_total; }},
    MetricDef{
        "tundra_frames_out_total", kCounter, "Frames sent to clients.", "", "", false,
        [](const Src& s, std::uint16_t) -> MetricValue { return s.metrics.frames_out_total; }},
    MetricDef{"tundra_errors_total", kCounter, "ERROR frames sent, by protocol error code.", "",
              "errors", true,
              [](const Src& s,
                 std::uint16_t code) -> MetricValue { return s.metrics.errors_total[code]; }},
    MetricDef{"tundra_latency_samples_total", kCounter, "PING/PONG round trips measured.", "",
              "latency_ms.samples", false,
              [](const Src& s, std::uint16_t) -> MetricValue { return s.gauges.latency_samples; }},
    MetricDef{"tundra_latency_ms", kGauge,
              "PING/PONG round-trip time percentiles over recent samples, ms; NaN without "
              "samples.",
              "quantile=\"0.5\"", "latency_ms.p50", false,
              [](const Src& s, std::uint16_t) -> MetricValue { return s.gauges.latency_p50_ms; }},
    MetricDef{"tundra_latency_ms", kGauge, "", "quantile=\"0.99\"", "latency_ms.p99", false,
              [](const Src& s, std::uint16_t) -> MetricValue { return s.gauges.latency_p99_ms; }},
    MetricDef{"tundra_latency_max_ms", kGauge,
              "Largest PING/PONG round-trip time since start, ms; NaN without samples.", "",
              "latency_ms.max", false,
              [](const Src& s, std::uint16_t) -> MetricValue { return s.gauges.latency_max_ms; }},
    MetricDef{"tundra_max_clients", kGauge, "Configured connection limit (max_clients).", "",
              "limits.max_clients", false,
              [](const Src& s, std::uint16_t)
                  -> MetricValue { return static_cast<std::uint64_t>(s.config.max_clients); }},
    MetricDef{"tundra_max_payload_bytes", kGauge,
              "Configured largest client payload (max_payload).", "", "limits.max_payload", false,
              [](const Src& s, std::uint16_t) -> MetricValue {
                  return static_cast<std::uint64_t>(s.config.max_payload);
              }},
    MetricDef{"tundra_rss_bytes", kGauge, "Resident set size of the server process.", "",
              "rss_bytes", false,
              [](const Src& s, std::uint16_t) -> MetricValue { return s.stats.rss_bytes; }},
    MetricDef{
        "tundra_connections_total", kCounter, "Client connections accepted.", "", "", false,
        [](const Src& s, std::uint16_t) -> MetricValue { return s.metrics.connections_total; }},
    MetricDef{
        "tundra_registrations_total", kCounter, "Successful REGISTERs that created a session.", "",
        "", false,
        [](const Src& s, std::uint16_t) -> MetricValue { return s.metrics.registrations_total; }},
    MetricDef{"tundra_resumes_total", kCounter, "Successful REGISTERs that resumed a session.", "",
              "", false,
              [](const Src& s, std::uint16_t) -> MetricValue { return s.metrics.resumes_total; }},
    MetricDef{"tundra_heartbeat_timeouts_total", kCounter,
              "Connections closed for not answering a PING.", "", "", false,
              [](const Src& s, std::uint16_t) -> MetricValue {
                  return s.metrics.heartbeat_timeouts_total;
              }},
    MetricDef{"tundra_slow_consumer_disconnects_total", kCounter,
              "Connections closed because their output exceeded the cap.", "", "", false,
              [](const Src& s, std::uint16_t) -> MetricValue {
                  return s.metrics.slow_consumer_disconnects_total;
              }},
    MetricDef{"tundra_sessions_expired_total", kCounter, "Detached sessions that expired.", "", "",
              false,
              [](const Src& s,
                 std::uint16_t) -> MetricValue { return s.metrics.sessions_expired_total; }},
    MetricDef{"tundra_register_timeouts_total", kCounter,
              "Connections closed for not registering within register_timeout.", "",
              "limits_hit.register_timeouts", false,
              [](const Src& s, std::uint16_t) -> MetricValue {
                  return s.metrics.register_timeouts_total;
              }},
    MetricDef{"tundra_unregistered_refused_total", kCounter,
              "Connections refused because max_unregistered connections awaited REGISTER.", "",
              "limits_hit.unregistered_refused", false,
              [](const Src& s, std::uint16_t) -> MetricValue {
                  return s.metrics.unregistered_refused_total;
              }},
    MetricDef{
        "tundra_per_ip_refused_total", kCounter,
        "Connections refused because their address had max_connections_per_ip open.", "",
        "limits_hit.per_ip_refused", false,
        [](const Src& s, std::uint16_t) -> MetricValue { return s.metrics.per_ip_refused_total; }},
    MetricDef{"tundra_register_rate_limited_total", kCounter,
              "REGISTERs refused with RATE_LIMITED by the per-address register_rate.", "",
              "limits_hit.register_rate_limited", false,
              [](const Src& s, std::uint16_t) -> MetricValue {
                  return s.metrics.register_rate_limited_total;
              }},
    MetricDef{
        "tundra_auth_failures_total", kCounter,
        "REGISTERs and AUTH_REFRESHes refused with AUTH_FAILED after checking the token.", "", "",
        false,
        [](const Src& s, std::uint16_t) -> MetricValue { return s.metrics.auth_failures_total; }},
    MetricDef{
        "tundra_auth_lockouts_total", kCounter,
        "Authentications refused unchecked: the source address was locked out.", "", "", false,
        [](const Src& s, std::uint16_t) -> MetricValue { return s.metrics.auth_lockouts_total; }},
    MetricDef{
        "tundra_auth_expired_total", kCounter,
        "Connections closed because their token expired without AUTH_REFRESH.", "", "", false,
        [](const Src& s, std::uint16_t) -> MetricValue { return s.metrics.auth_expired_total; }},
    MetricDef{"tundra_detached_evicted_total", kCounter,
              "Detached sessions ended early to keep users within max_users.", "",
              "limits_hit.detached_evicted", false,
              [](const Src& s,
                 std::uint16_t) -> MetricValue { return s.metrics.detached_evicted_total; }},
    MetricDef{"tundra_presence_coalesced_total", kCounter,
              "JOINED/LEFT pairs for one user cancelled within one tick (never sent).", "",
              "presence_coalesced", false,
              [](const Src& s,
                 std::uint16_t) -> MetricValue { return s.metrics.presence_coalesced_total; }},
    MetricDef{"tundra_budget_evictions_total", kCounter,
              "Stored entries taken from the user holding the most bytes so that another user's "
              "delivery fits total_buffer_bytes.",
              "", "budget_evictions", false,
              [](const Src& s,
                 std::uint16_t) -> MetricValue { return s.metrics.budget_evictions_total; }},
    MetricDef{
        "tundra_rate_limited_total", kCounter,
        "Frames refused by the per-connection rate limits (answered with RATE_LIMITED).", "",
        "rate_limited", false,
        [](const Src& s, std::uint16_t) -> MetricValue { return s.metrics.rate_limited_total; }},
    MetricDef{"tundra_bad_frame_closes_total", kCounter,
              "Connections closed after max_bad_frames malformed frames.", "", "bad_frame_closes",
              false,
              [](const Src& s,
                 std::uint16_t) -> MetricValue { return s.metrics.bad_frame_closes_total; }},
    // Net limits (issue 9 points 1, 12, 13): keep these rows together, at the end.
    MetricDef{
        "tundra_output_queued_bytes", kGauge,
        "Output queued for all connections, charged as bytes plus a per-frame overhead.", "",
        "net.output_queued_bytes", false,
        [](const Src& s, std::uint16_t) -> MetricValue { return s.stats.output_queued_bytes; }},
    MetricDef{"tundra_output_paused_connections", kGauge,
              "Connections not read because total queued output is over output_total_soft.", "",
              "net.output_paused", false,
              [](const Src& s, std::uint16_t) -> MetricValue { return s.stats.output_paused; }},
    MetricDef{
        "tundra_output_pauses_total", kCounter,
        "Times reading stopped on a connection over the output_total_soft cap.", "",
        "net.output_pauses", false,
        [](const Src& s, std::uint16_t) -> MetricValue { return s.stats.output_pauses_total; }},
    MetricDef{"tundra_output_cuts_total", kCounter,
              "Connections closed as slow consumers over the output_total_hard cap.", "",
              "net.output_cuts", false,
              [](const Src& s, std::uint16_t) -> MetricValue { return s.stats.output_cuts_total; }},
    MetricDef{"tundra_accept_shed_total", kCounter,
              "Connections accepted and closed at once at the file descriptor limit.", "",
              "net.accept_shed", false,
              [](const Src& s, std::uint16_t) -> MetricValue { return s.stats.accept_shed_total; }},
    MetricDef{
        "tundra_admin_refused_total", kCounter,
        "Admin HTTP connections refused by the per-source or global cap.", "", "net.admin_refused",
        false,
        [](const Src& s, std::uint16_t) -> MetricValue { return s.stats.admin_refused_total; }},
    MetricDef{
        "tundra_tls_handshakes_total", kCounter, "TLS handshakes completed.", "",
        "net.tls_handshakes", false,
        [](const Src& s, std::uint16_t) -> MetricValue { return s.stats.tls_handshakes_total; }},
    MetricDef{"tundra_tls_handshake_failures_total", kCounter,
              "TLS handshakes that failed (not TLS, no shared protocol or cipher, refused "
              "certificate).",
              "", "net.tls_handshake_failures", false,
              [](const Src& s, std::uint16_t) -> MetricValue {
                  return s.stats.tls_handshake_failures_total;
              }},
    MetricDef{"tundra_tls_handshake_timeouts_total", kCounter,
              "TLS connections closed because the handshake did not finish in time.", "",
              "net.tls_handshake_timeouts", false,
              [](const Src& s,
                 std::uint16_t) -> MetricValue { return s.stats.tls_handshake_timeouts_total; }},
    MetricDef{"tundra_tls_connections", kGauge, "Established TLS connections open.", "",
              "net.tls_connections", false,
              [](const Src& s, std::uint16_t) -> MetricValue { return s.stats.tls_connections; }},
};

void writeValue(JsonWriter& w, const MetricValue& v) {
    std::visit([&w](const auto& x) { w.value(x); }, v);
}

}  // namespace

std::string_view metricKindName(MetricKind kind) {
    return kind == MetricKind::Counter ? "counter" : "gauge";
}

std::span<const MetricDef> metricTable() { return kTable; }

void writeMetricFields(JsonWriter& w, const MetricSource& src) {
    std::string_view group;  // the nested object open now, "" = top level
    auto enter = [&](std::string_view g) {
        if (g == group) {
            return;
        }
        if (!group.empty()) {
            w.endObject();
        }
        if (!g.empty()) {
            w.key(g).beginObject();
        }
        group = g;
    };
    for (const MetricDef& d : kTable) {
        if (d.json.empty()) {
            continue;
        }
        if (d.per_error_code) {
            enter(d.json);
            for (std::uint16_t code = 1; code <= kMaxErrorCode; ++code) {
                w.key(std::to_string(code));
                writeValue(w, d.value(src, code));
            }
            continue;
        }
        const auto dot = d.json.find('.');
        if (dot == std::string_view::npos) {
            enter({});
            w.key(d.json);
        } else {
            enter(d.json.substr(0, dot));
            w.key(d.json.substr(dot + 1));
        }
        writeValue(w, d.value(src, 0));
    }
    enter({});
}

}  // namespace tundra::core
