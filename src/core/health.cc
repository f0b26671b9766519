// SPDX-License-Identifier: Apache-2.0
// Health: the live gauges and the HEALTH_RESULT JSON (its figures come from the metric table).
#include <spdlog/spdlog.h>

#include "core/json_writer.h"
#include "core/metric_table.h"
#include "core/session_state.h"

namespace tundra::core {

Gauges SessionManager::Impl::gauges() const {
    Gauges g;
    g.connections = live_conns_;
    g.sessions_online =
        users_.online(ClientKind::User).size() + users_.online(ClientKind::Agent).size();
    g.sessions_detached =
        users_.detached(ClientKind::User).size() + users_.detached(ClientKind::Agent).size();
    g.users_known = users_.size();
    g.buffered_messages = users_.offlineCount();
    g.window_messages = users_.windowCount();
    g.buffered_bytes = users_.storedBytes();
    g.latency_samples = latency_.samples();
    g.latency_p50_ms = latency_.percentile(50);
    g.latency_p99_ms = latency_.percentile(99);
    g.latency_max_ms = latency_.max();
    g.uptime_s = (now() - start_ms_) / 1000;
    g.storage_degraded = degraded_ ? 1 : 0;
    return g;
}

std::string SessionManager::Impl::healthJson(ConnId asker) const {
    return healthJsonFor(asker, true);
}

std::string SessionManager::Impl::healthJsonFor(ConnId asker, bool full) const {
    JsonWriter w;
    w.beginObject();
    w.key("status").value(degraded_ ? "degraded" : "ok");
    w.key("version").value(std::string_view(cfg().software_version));
    w.key("protocol").value(static_cast<int>(kProtocolVersion));
    if (full) {
        // uptime_s ... rss_bytes: the metric table (core/metric_table.cc), shared with /metrics.
        const Gauges g = gauges();
        const ServerStats st = server_stats_ ? server_stats_() : ServerStats{};
        writeMetricFields(w, MetricSource{self_.metrics_, g, st, cfg()});
    }
    Conn* found = conns_.find(asker);
    if (found != nullptr && found->registered()) {
        const Conn& c = *found;
        w.key("connection").beginObject();
        w.key("session").value(std::string_view(uuidToString(c.user->session)));
        w.key("name").value(std::string_view(c.user->name));
        w.key("connected_s").value((now() - c.connected_ms) / 1000);
        w.key("rtt_ms");
        if (c.rtt_ms >= 0) {
            w.value(static_cast<double>(c.rtt_ms));
        } else {
            w.null();
        }
        w.key("frames").beginObject();
        w.key("in").value(c.frames_in);
        w.key("out").value(c.frames_out);
        w.endObject();
        w.endObject();
    }
    w.endObject();
    return w.take();
}

}  // namespace tundra::core
