// SPDX-License-Identifier: Apache-2.0
// Prometheus text format writer: tundra_info, then one family per metric family of the core's
// metric table (the same rows HEALTH_RESULT renders).
#include "server/prometheus.h"

#include <fmt/format.h>

#include <cmath>
#include <optional>
#include <string_view>
#include <variant>

#include "core/metric_table.h"

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
    void sample(std::string_view name, const core::MetricValue& value, std::string_view labels) {
        std::visit([&](const auto& v) { sample(name, v, labels); }, value);
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

}  // namespace

std::string renderPrometheus(const core::Metrics& m, const core::Gauges& g,
                             const core::ServerStats& s, const core::CoreConfig& c) {
    std::string out;
    out.reserve(6144);
    Writer w(out);

    // The identity is a label set, not a figure (HEALTH_RESULT "version" and "protocol").
    w.family("tundra_info", "gauge", "Server version and protocol version; always 1.");
    w.sample("tundra_info", std::uint64_t{1},
             fmt::format("{{version=\"{}\",protocol=\"{}\"}}", escapeLabel(c.software_version),
                         unsigned{kProtocolVersion}));

    // Every figure: one row of the core's metric table each (core/metric_table.cc).
    const core::MetricSource src{m, g, s, c};
    std::string_view family;
    for (const core::MetricDef& d : core::metricTable()) {
        if (d.name != family) {
            w.family(d.name, core::metricKindName(d.kind), d.help);
            family = d.name;
        }
        if (d.per_error_code) {
            for (std::uint16_t code = 1; code <= kMaxErrorCode; ++code) {
                w.sample(d.name, d.value(src, code), fmt::format("{{code=\"{}\"}}", code));
            }
        } else {
            w.sample(d.name, d.value(src, 0),
                     d.labels.empty() ? std::string() : fmt::format("{{{}}}", d.labels));
        }
    }
    return out;
}

}  // namespace tundra::server
