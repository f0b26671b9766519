// SPDX-License-Identifier: Apache-2.0
// The /metrics text: exact sample lines for known figures, NaN for empty latency statistics,
// and the exposition-format rules (HELP/TYPE before samples, unique families, valid names);
// every row of the core's metric table in both /metrics and HEALTH_RESULT.
#include "server/prometheus.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <variant>

#include "core/json_writer.h"
#include "core/metric_table.h"

namespace tundra::server {
namespace {

struct Inputs {
    core::Metrics metrics;
    core::Gauges gauges;
    core::ServerStats stats;
    core::CoreConfig config;
};

Inputs sample() {
    Inputs in;
    auto& m = in.metrics;
    m.frames_in_total = 101;
    m.frames_out_total = 102;
    m.messages_in_total = 103;
    m.messages_out_total = 104;
    m.offline_buffered_total = 105;
    m.offline_dropped_total = 106;
    m.connections_total = 107;
    m.registrations_total = 108;
    m.resumes_total = 109;
    m.heartbeat_timeouts_total = 110;
    m.slow_consumer_disconnects_total = 111;
    m.sessions_expired_total = 112;
    m.errors_total[1] = 3;
    m.errors_total[11] = 18446744073709551615ULL;
    auto& g = in.gauges;
    g.connections = 7;
    g.sessions_online = 5;
    g.sessions_detached = 2;
    g.users_known = 9;
    g.buffered_messages = 11;
    g.window_messages = 13;
    g.buffered_bytes = 4096;
    g.latency_samples = 4;
    g.latency_p50_ms = 1.5;
    g.latency_p99_ms = 20.25;
    g.latency_max_ms = 31.0;
    g.uptime_s = 3600;
    in.stats = {.bytes_in = 1000, .bytes_out = 2000, .rss_bytes = 123456};
    in.config.max_clients = 500;
    in.config.max_payload = 4096;
    in.config.software_version = "0.1.0";
    return in;
}

std::string render(const Inputs& in) {
    return renderPrometheus(in.metrics, in.gauges, in.stats, in.config);
}

bool hasLine(const std::string& text, const std::string& line) {
    return text.find("\n" + line + "\n") != std::string::npos || text.starts_with(line + "\n");
}

TEST(Prometheus, EveryFigureHasItsSampleLine) {
    const std::string text = render(sample());
    for (const char* line : {
             "tundra_info{version=\"0.1.0\",protocol=\"1\"} 1",
             "tundra_uptime_seconds 3600",
             "tundra_connections 7",
             "tundra_sessions{state=\"online\"} 5",
             "tundra_sessions{state=\"detached\"} 2",
             "tundra_users_known 9",
             "tundra_buffered_messages 11",
             "tundra_window_messages 13",
             "tundra_buffered_bytes 4096",
             "tundra_rss_bytes 123456",
             "tundra_messages_in_total 103",
             "tundra_messages_out_total 104",
             "tundra_offline_buffered_total 105",
             "tundra_offline_dropped_total 106",
             "tundra_frames_in_total 101",
             "tundra_frames_out_total 102",
             "tundra_bytes_in_total 1000",
             "tundra_bytes_out_total 2000",
             "tundra_connections_total 107",
             "tundra_registrations_total 108",
             "tundra_resumes_total 109",
             "tundra_heartbeat_timeouts_total 110",
             "tundra_slow_consumer_disconnects_total 111",
             "tundra_sessions_expired_total 112",
             "tundra_errors_total{code=\"1\"} 3",
             "tundra_errors_total{code=\"2\"} 0",
             "tundra_errors_total{code=\"11\"} 18446744073709551615",
             "tundra_errors_total{code=\"14\"} 0",
             "tundra_latency_samples_total 4",
             "tundra_latency_ms{quantile=\"0.5\"} 1.5",
             "tundra_latency_ms{quantile=\"0.99\"} 20.25",
             "tundra_latency_max_ms 31",
             "tundra_max_clients 500",
             "tundra_max_payload_bytes 4096",
             "# TYPE tundra_messages_in_total counter",
             "# TYPE tundra_connections gauge",
             "# TYPE tundra_errors_total counter",
         }) {
        EXPECT_TRUE(hasLine(text, line)) << "missing: " << line << "\n" << text;
    }
    EXPECT_EQ(text.find("tundra_errors_total{code=\"0\"}"), std::string::npos);
    EXPECT_EQ(text.find("tundra_errors_total{code=\"17\"}"), std::string::npos);
}

TEST(Prometheus, LatencyWithoutSamplesIsNaN) {
    Inputs in = sample();
    in.gauges.latency_samples = 0;
    in.gauges.latency_p50_ms.reset();
    in.gauges.latency_p99_ms.reset();
    in.gauges.latency_max_ms.reset();
    const std::string text = render(in);
    EXPECT_TRUE(hasLine(text, "tundra_latency_ms{quantile=\"0.5\"} NaN")) << text;
    EXPECT_TRUE(hasLine(text, "tundra_latency_ms{quantile=\"0.99\"} NaN")) << text;
    EXPECT_TRUE(hasLine(text, "tundra_latency_max_ms NaN")) << text;
    EXPECT_TRUE(hasLine(text, "tundra_latency_samples_total 0")) << text;
}

TEST(Prometheus, LabelValuesAreEscaped) {
    Inputs in = sample();
    in.config.software_version = "1.0 \"beta\"\\x\ny";
    const std::string text = render(in);
    EXPECT_TRUE(hasLine(text, R"(tundra_info{version="1.0 \"beta\"\\x\ny",protocol="1"} 1)"))
        << text;
}

TEST(Prometheus, NegativeUptimeIsClampedToZero) {
    Inputs in = sample();
    in.gauges.uptime_s = -5;
    EXPECT_TRUE(hasLine(render(in), "tundra_uptime_seconds 0"));
}

// Text exposition format 0.0.4: every line is a comment or a sample; every family has exactly
// one HELP and one TYPE, before its samples and only once; samples of a family are contiguous;
// counters end in _total; every name is tundra_-prefixed.
TEST(Prometheus, FollowsTheTextExpositionFormat) {
    const std::string text = render(sample());
    ASSERT_TRUE(text.ends_with("\n"));
    const std::regex help_re(R"(^# HELP (tundra_[a-z_]+) [^\n\\]+$)");
    const std::regex type_re(R"(^# TYPE (tundra_[a-z_]+) (counter|gauge)$)");
    const std::string label = R"re([a-z_]+="(?:[^"\\\n]|\\.)*")re";
    const std::string value = R"re((NaN|[+-]Inf|-?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?))re";
    const std::regex sample_re("^(tundra_[a-z_]+)(\\{" + label + "(?:," + label + ")*\\})? " +
                               value + "$");
    std::map<std::string, std::string> types;
    std::set<std::string> helped;
    std::set<std::string> finished;  // families whose samples are over
    std::string current;
    std::istringstream lines(text);
    std::string line;
    int samples = 0;
    while (std::getline(lines, line)) {
        std::smatch m;
        if (std::regex_match(line, m, help_re)) {
            EXPECT_TRUE(helped.insert(m[1]).second) << "second HELP: " << line;
            if (!current.empty()) {
                finished.insert(current);
            }
            current = m[1];
        } else if (std::regex_match(line, m, type_re)) {
            EXPECT_EQ(m[1], current) << "TYPE without its HELP first: " << line;
            EXPECT_TRUE(types.emplace(m[1], m[2]).second) << "second TYPE: " << line;
            if (m[2] == "counter") {
                EXPECT_TRUE(std::string(m[1]).ends_with("_total")) << line;
            }
        } else if (std::regex_match(line, m, sample_re)) {
            ++samples;
            EXPECT_EQ(m[1], current) << "sample outside its family block: " << line;
            EXPECT_TRUE(types.contains(m[1])) << line;
            EXPECT_FALSE(finished.contains(m[1])) << line;
        } else {
            ADD_FAILURE() << "not a valid exposition line: '" << line << "'";
        }
    }
    EXPECT_EQ(helped.size(), types.size());
    EXPECT_GE(samples, 40);
}

// The value on the sample line that starts with `prefix` ("name{labels} "), or nullopt.
std::optional<std::string> sampleValue(const std::string& text, const std::string& prefix) {
    std::size_t at = text.starts_with(prefix) ? 0 : text.find("\n" + prefix);
    if (at == std::string::npos) {
        return std::nullopt;
    }
    at += at == 0 && text.starts_with(prefix) ? prefix.size() : prefix.size() + 1;
    return text.substr(at, text.find('\n', at) - at);
}

// One table, two renderers: every row has its family (HELP, TYPE) and sample line(s) on
// /metrics and, when it names a HEALTH_RESULT field, that field, with the same value in both.
TEST(Prometheus, EveryMetricTableRowIsInBothOutputs) {
    const Inputs in = sample();
    const core::MetricSource src{in.metrics, in.gauges, in.stats, in.config};
    const std::string text = render(in);
    core::JsonWriter w;
    w.beginObject();
    core::writeMetricFields(w, src);
    w.endObject();
    const auto json = nlohmann::json::parse(w.str(), nullptr, false);
    ASSERT_TRUE(json.is_object()) << w.str();
    std::size_t fields = 0;
    for (const core::MetricDef& d : core::metricTable()) {
        const std::string name(d.name);
        EXPECT_TRUE(text.find("# HELP " + name + " ") != std::string::npos) << name;
        EXPECT_TRUE(
            hasLine(text, "# TYPE " + name + " " + std::string(core::metricKindName(d.kind))))
            << name;
        std::vector<std::uint16_t> codes{0};
        if (d.per_error_code) {
            codes.clear();
            for (std::uint16_t c = 1; c <= kMaxErrorCode; ++c) {
                codes.push_back(c);
            }
        }
        for (std::uint16_t code : codes) {
            const std::string labels = d.per_error_code ? "{code=\"" + std::to_string(code) + "\"}"
                                       : d.labels.empty() ? std::string()
                                                          : "{" + std::string(d.labels) + "}";
            const auto prom = sampleValue(text, name + labels + " ");
            ASSERT_TRUE(prom.has_value()) << "no sample " << name << labels;
            const nlohmann::json* field = nullptr;
            if (!d.json.empty()) {
                ++fields;
                const std::string path(d.json);
                const auto dot = path.find('.');
                const auto ptr = nlohmann::json::json_pointer(
                    "/" + (dot == std::string::npos ? path : path.substr(0, dot)) +
                    (d.per_error_code           ? "/" + std::to_string(code)
                     : dot == std::string::npos ? std::string()
                                                : "/" + path.substr(dot + 1)));
                ASSERT_TRUE(json.contains(ptr)) << "missing field " << path;
                field = &json.at(ptr);
                ASSERT_TRUE(field->is_number()) << "not a number: " << path;
            }
            const core::MetricValue v = d.value(src, code);
            if (const auto* n = std::get_if<std::uint64_t>(&v)) {
                EXPECT_EQ(*prom, std::to_string(*n)) << name << labels;
                if (field != nullptr) {
                    EXPECT_EQ(field->dump(), std::to_string(*n)) << d.json << " " << code;
                }
            } else {
                const auto& x = std::get<std::optional<double>>(v);
                ASSERT_TRUE(x.has_value()) << "sample() sets every statistic: " << name;
                EXPECT_DOUBLE_EQ(std::stod(*prom), *x) << name << labels;
                if (field != nullptr) {
                    EXPECT_DOUBLE_EQ(field->get<double>(), *x) << d.json;
                }
            }
        }
    }
    EXPECT_GE(fields, 30U);  // errors 1..14 and the rest of HEALTH_RESULT's figures
}

// /metrics holds nothing but tundra_info and the table's families.
TEST(Prometheus, EveryFamilyComesFromTheMetricTable) {
    std::set<std::string> table{"tundra_info"};
    for (const core::MetricDef& d : core::metricTable()) {
        table.insert(std::string(d.name));
    }
    std::istringstream lines(render(sample()));
    std::string line;
    while (std::getline(lines, line)) {
        if (line.starts_with("# TYPE ")) {
            const std::string name = line.substr(7, line.find(' ', 7) - 7);
            EXPECT_TRUE(table.contains(name)) << name;
        }
    }
}

// docs/OPERATIONS.md lists every metric family, so dashboards can be built from it.
TEST(Prometheus, EveryFamilyIsDocumented) {
    std::ifstream in(TUNDRA_SOURCE_DIR "/docs/OPERATIONS.md");
    std::ostringstream doc;
    doc << in.rdbuf();
    ASSERT_FALSE(doc.str().empty());
    std::istringstream lines(render(sample()));
    std::string line;
    int families = 0;
    while (std::getline(lines, line)) {
        if (line.starts_with("# TYPE ")) {
            const std::string name = line.substr(7, line.find(' ', 7) - 7);
            ++families;
            EXPECT_NE(doc.str().find("`" + name), std::string::npos) << name;
        }
    }
    EXPECT_GE(families, 25);
}

}  // namespace
}  // namespace tundra::server
