// SPDX-License-Identifier: Apache-2.0
// Prometheus text format writer for the fixed set of tundra_ metrics.
#include "server/prometheus.h"

#include <fmt/format.h>

#include <cmath>
#include <optional>
#include <string_view>

namespace tundra::server {

namespace {

class Writer {
public:
    explicit Writer(std::string& out) : out_(out) {}

    // "# HELP" and "# TYPE" lines; `help` is plain text without backslashes or newlines.
    void family(std::string_view name, std::string_view type, std::string_view help) {
        fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name,
                       type);
    }
    // `labels` is either empty or a ready '{k="v",...}' list of values that need no escaping.
    void sample(std::string_view name, std::uint64_t value, std::string_view labels = {}) {
        fmt::format_to(std::back_inserter(out_), "{}{} {}\n", name, labels, value);
    }
    void sample(std::string_view name, std::optional<double> value, std::string_view labels = {}) {
        fmt::format_to(std::back_inserter(out_), "{}{} {}\n", name, labels, number(value));
    }
    void counter(std::string_view name, std::string_view help, std::uint64_t value) {
        family(name, "counter", help);
        sample(name, value);
    }
    void gauge(std::string_view name, std::string_view help, std::uint64_t value) {
        family(name, "gauge", help);
        sample(name, value);
    }

private:
    static std::string number(std::optional<double> v) {
        if (!v || std::isnan(*v)) {
            return "NaN";
        }
        if (std::isinf(*v)) {
            return *v > 0 ? "+Inf" : "-Inf";
        }
        return fmt::format("{}", *v);
    }

    std::string& out_;
};

// Label values may hold any text: escape backslash, double quote and newline.
std::string escapeLabel(std::string_view value) {
    std::string out;
    for (char ch : value) {
        if (ch == '\\') {
            out += "\\\\";
        } else if (ch == '"') {
            out += "\\\"";
        } else if (ch == '\n') {
            out += "\\n";
        } else {
            out += ch;
        }
    }
    return out;
}

std::uint64_t nonNegative(std::int64_t v) { return v < 0 ? 0 : static_cast<std::uint64_t>(v); }

}  // namespace

std::string renderPrometheus(const core::Metrics& m, const core::Gauges& g,
                             const core::ServerStats& s, const core::CoreConfig& c) {
    std::string out;
    out.reserve(6144);
    Writer w(out);

    w.family("tundra_info", "gauge", "Server version and protocol version; always 1.");
    w.sample("tundra_info", std::uint64_t{1},
             fmt::format("{{version=\"{}\",protocol=\"{}\"}}", escapeLabel(c.software_version),
                         unsigned{kProtocolVersion}));
    w.gauge("tundra_uptime_seconds", "Seconds since the server started.", nonNegative(g.uptime_s));

    // Live state.
    w.gauge("tundra_connections", "Open client connections.", g.connections);
    w.family("tundra_sessions", "gauge", "Sessions by state: online, or detached and resumable.");
    w.sample("tundra_sessions", g.sessions_online, "{state=\"online\"}");
    w.sample("tundra_sessions", g.sessions_detached, "{state=\"detached\"}");
    w.gauge("tundra_users_known", "Users remembered with their offline buffers.", g.users_known);
    w.gauge("tundra_buffered_messages", "Messages held in offline buffers (never written) now.",
            g.buffered_messages);
    w.gauge("tundra_window_messages", "Written deliveries kept in per-user replay windows now.",
            g.window_messages);
    w.gauge("tundra_buffered_bytes",
            "Bytes held in offline buffers and delivery windows, as charged to the budgets.",
            g.buffered_bytes);
    w.gauge("tundra_rss_bytes", "Resident set size of the server process.", s.rss_bytes);

    // Traffic.
    w.counter("tundra_messages_in_total", "MESSAGE, AGENT_COMMAND and IMAGE frames accepted.",
              m.messages_in_total);
    w.counter("tundra_messages_out_total", "Deliveries queued to live connections.",
              m.messages_out_total);
    w.counter("tundra_offline_buffered_total", "Deliveries stored in offline buffers.",
              m.offline_buffered_total);
    w.counter("tundra_offline_dropped_total",
              "Offline deliveries lost to the per-user count or byte budgets.",
              m.offline_dropped_total);
    w.counter("tundra_frames_in_total", "Frames received from clients.", m.frames_in_total);
    w.counter("tundra_frames_out_total", "Frames sent to clients.", m.frames_out_total);
    w.counter("tundra_bytes_in_total", "Bytes read from client connections.", s.bytes_in);
    w.counter("tundra_bytes_out_total", "Bytes written to client connections.", s.bytes_out);

    // Lifecycle.
    w.counter("tundra_connections_total", "Client connections accepted.", m.connections_total);
    w.counter("tundra_registrations_total", "Successful REGISTERs that created a session.",
              m.registrations_total);
    w.counter("tundra_resumes_total", "Successful REGISTERs that resumed a session.",
              m.resumes_total);
    w.counter("tundra_heartbeat_timeouts_total", "Connections closed for not answering a PING.",
              m.heartbeat_timeouts_total);
    w.counter("tundra_slow_consumer_disconnects_total",
              "Connections closed because their output exceeded the cap.",
              m.slow_consumer_disconnects_total);
    w.counter("tundra_sessions_expired_total", "Detached sessions that expired.",
              m.sessions_expired_total);

    w.family("tundra_errors_total", "counter", "ERROR frames sent, by protocol error code.");
    for (std::uint16_t code = 1; code <= kMaxErrorCode; ++code) {
        w.sample("tundra_errors_total", m.errors_total[code], fmt::format("{{code=\"{}\"}}", code));
    }

    // PING/PONG round trips.
    w.counter("tundra_latency_samples_total", "PING/PONG round trips measured.", g.latency_samples);
    w.family("tundra_latency_ms", "gauge",
             "PING/PONG round-trip time percentiles over recent samples, ms; NaN without samples.");
    w.sample("tundra_latency_ms", g.latency_p50_ms, "{quantile=\"0.5\"}");
    w.sample("tundra_latency_ms", g.latency_p99_ms, "{quantile=\"0.99\"}");
    w.family("tundra_latency_max_ms", "gauge",
             "Largest PING/PONG round-trip time since start, ms; NaN without samples.");
    w.sample("tundra_latency_max_ms", g.latency_max_ms);

    // Limits in force (they change with a SIGHUP reload).
    w.gauge("tundra_max_clients", "Configured connection limit (max_clients).", c.max_clients);
    w.gauge("tundra_max_payload_bytes", "Configured largest client payload (max_payload).",
            c.max_payload);
    return out;
}

}  // namespace tundra::server
