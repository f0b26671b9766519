// SPDX-License-Identifier: Apache-2.0
// The metric table's shape (adjacent families and HEALTH_RESULT groups, HELP once per family,
// counter names) and that HEALTH_RESULT carries no figure outside it. Both renderers are checked
// against the table in tests/unit/server/prometheus_test.cc.
#include "core/metric_table.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>

#include "unit/core/core_fixture.h"

namespace tundra::testing {
namespace {

using core::MetricDef;
using core::metricTable;

std::string groupOf(const MetricDef& d) {
    if (d.per_error_code) {
        return std::string(d.json);
    }
    const auto dot = d.json.find('.');
    return dot == std::string_view::npos ? std::string() : std::string(d.json.substr(0, dot));
}

TEST(MetricTableTest, FamiliesAreAdjacentWithOneHelpAndCountersEndInTotal) {
    const std::regex name_re("^tundra_[a-z_]+$");
    std::set<std::string> finished;
    std::string current;
    for (const MetricDef& d : metricTable()) {
        const std::string name(d.name);
        EXPECT_TRUE(std::regex_match(name, name_re)) << name;
        EXPECT_NE(d.value, nullptr) << name;
        if (name != current) {
            EXPECT_FALSE(finished.contains(name)) << "family split in two: " << name;
            EXPECT_FALSE(d.help.empty()) << "the first row of a family carries the HELP: " << name;
            if (!current.empty()) {
                finished.insert(current);
            }
            current = name;
        } else {
            EXPECT_TRUE(d.help.empty()) << "HELP is written once, from the first row: " << name;
            EXPECT_FALSE(d.labels.empty()) << "rows of one family differ by labels: " << name;
        }
        EXPECT_EQ(d.kind == core::MetricKind::Counter, name.ends_with("_total")) << name;
        EXPECT_FALSE(d.per_error_code && !d.labels.empty()) << name;
        EXPECT_EQ(d.help.find_first_of("\\\n"), std::string_view::npos) << name;
    }
}

TEST(MetricTableTest, HealthResultFieldsAreUniqueAndGroupsAdjacent) {
    std::set<std::string> fields;
    std::set<std::string> finished;
    std::string current;
    for (const MetricDef& d : metricTable()) {
        if (d.json.empty()) {
            continue;
        }
        EXPECT_TRUE(fields.insert(std::string(d.json)).second) << "twice: " << d.json;
        const std::string group = groupOf(d);
        if (group != current) {
            EXPECT_TRUE(group.empty() || !finished.contains(group)) << "group split: " << group;
            if (!current.empty()) {
                finished.insert(current);
            }
            current = group;
        }
    }
}

class MetricTableHealthTest : public CoreTest {};

// HEALTH_RESULT = identity (status, version, protocol) + the table's fields + the asker's own
// connection; a figure written by hand outside the table would show up here.
TEST_F(MetricTableHealthTest, HealthResultHoldsOnlyTheTableAndTheIdentity) {
    login(1, "alice");
    feed(1, msg::encodeEmpty(MsgType::HealthCheck, 2));
    const auto j = nlohmann::json::parse(asJson(one(1)), nullptr, false);
    ASSERT_TRUE(j.is_object());
    std::set<std::string> expected{"status", "version", "protocol", "connection"};
    for (const MetricDef& d : metricTable()) {
        if (!d.json.empty()) {
            const std::string group = groupOf(d);
            expected.insert(group.empty() ? std::string(d.json) : group);
        }
    }
    std::set<std::string> got;
    for (const auto& item : j.items()) {
        got.insert(item.key());
    }
    EXPECT_EQ(got, expected);
    for (const MetricDef& d : metricTable()) {
        const auto dot = d.json.find('.');
        if (d.json.empty() || d.per_error_code || dot == std::string_view::npos) {
            continue;
        }
        const std::string group(d.json.substr(0, dot));
        std::size_t rows = 0;
        for (const MetricDef& e : metricTable()) {
            rows += !e.per_error_code && groupOf(e) == group ? 1U : 0U;
        }
        ASSERT_TRUE(j.contains(group)) << group;
        EXPECT_EQ(j.at(group).size(), rows) << group;
        EXPECT_TRUE(j.at(group).contains(std::string(d.json.substr(dot + 1)))) << d.json;
    }
}

}  // namespace
}  // namespace tundra::testing
