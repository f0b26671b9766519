// SPDX-License-Identifier: Apache-2.0
// tundrad flag parsing: defaults, every flag, --config=FILE, and clear errors for bad values.
#include <gtest/gtest.h>

#include "server/config.h"
#include "server/settings.h"

namespace tundra::server {
namespace {

using Action = ParsedArgs::Action;

TEST(ConfigFlags, DefaultsMatchTheDesign) {
    auto p = parseArgs({});
    ASSERT_EQ(p.action, Action::Run);
    EXPECT_EQ(p.config.bind, "127.0.0.1");
    EXPECT_EQ(p.config.port, 4242);
    EXPECT_EQ(p.config.core.max_clients, 0U);  // derived from the fd limit at start
    EXPECT_EQ(p.config.core.max_payload, 65534U);
    EXPECT_EQ(p.config.core.session_timeout_ms, 120000);
    EXPECT_EQ(p.config.core.ping_interval_ms, 30000);
    EXPECT_EQ(p.config.core.max_buffered, 50U);
    EXPECT_TRUE(p.config.core.presence_events);
    EXPECT_EQ(p.config.output_cap_bytes, 8U << 20);
}

TEST(ConfigFlags, EveryFlagIsApplied) {
    auto p = parseArgs({"--bind",
                        "::1",
                        "--port",
                        "0",
                        "--max-clients",
                        "5",
                        "--max-payload",
                        "1024",
                        "--session-timeout",
                        "2.5",
                        "--ping-interval=0.5",
                        "--max-buffered",
                        "3",
                        "--no-presence",
                        "--log-level",
                        "debug",
                        "--output-cap",
                        "131072",
                        "--max-users",
                        "10",
                        "--admin",
                        "127.0.0.1:0"});
    ASSERT_EQ(p.action, Action::Run) << p.message;
    EXPECT_EQ(p.config.bind, "::1");
    EXPECT_EQ(p.config.port, 0);
    EXPECT_EQ(p.config.core.max_clients, 5U);
    EXPECT_EQ(p.config.core.max_payload, 1024U);
    EXPECT_EQ(p.config.core.session_timeout_ms, 2500);
    EXPECT_EQ(p.config.core.ping_interval_ms, 500);
    EXPECT_EQ(p.config.core.max_buffered, 3U);
    EXPECT_FALSE(p.config.core.presence_events);
    EXPECT_EQ(p.config.log_level, spdlog::level::debug);
    EXPECT_EQ(p.config.output_cap_bytes, 131072U);
    EXPECT_EQ(p.config.core.max_users, 10U);
    EXPECT_EQ(p.config.admin, "127.0.0.1:0");
}

struct BadCase {
    std::vector<std::string> args;
    const char* expected_fragment;
};

class ConfigFlagErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(ConfigFlagErrors, AreClearErrors) {
    auto p = parseArgs(GetParam().args);
    EXPECT_EQ(p.action, Action::Error);
    EXPECT_NE(p.message.find(GetParam().expected_fragment), std::string::npos) << p.message;
}

INSTANTIATE_TEST_SUITE_P(
    All, ConfigFlagErrors,
    ::testing::Values(BadCase{{"--port", "abc"}, "--port: 'abc' is not a port number"},
                      BadCase{{"--port", "70000"}, "--port: '70000'"},
                      BadCase{{"--port"}, "--port needs a N argument"},
                      BadCase{{"--max-clients", "-1"}, "--max-clients: '-1'"},
                      BadCase{{"--max-payload", "65535"}, "--max-payload: '65535'"},
                      BadCase{{"--session-timeout", "-1"}, "--session-timeout: '-1'"},
                      BadCase{{"--ping-interval", "soon"}, "--ping-interval: 'soon'"},
                      BadCase{{"--max-buffered", "1x"}, "--max-buffered: '1x'"},
                      BadCase{{"--log-level", "loud"}, "--log-level: 'loud'"},
                      BadCase{{"--bind", "nonsense"},
                              "--bind: 'nonsense' is not an IPv4 or IPv6 address"},
                      BadCase{{"--bind="}, "--bind: '' is not an IPv4 or IPv6 address"},
                      BadCase{{"--presence=yes"}, "--presence: 'yes' is not true or false"},
                      BadCase{{"--drain-timeout", "3601"}, "--drain-timeout: '3601'"},
                      BadCase{{"--shutdown-retry-after", "1.5"}, "--shutdown-retry-after: '1.5'"},
                      BadCase{{"--user-buffer-bytes", "300000", "--total-buffer-bytes", "200000"},
                              "user_buffer_bytes (300000) must not exceed total_buffer_bytes "
                              "(200000)"},
                      BadCase{{"--max-client", "5"},
                              "unknown option '--max-client' (did you mean '--max-clients'?)"},
                      BadCase{{"--print-settings", "pdf"}, "--print-settings: 'pdf' is not one of"},
                      BadCase{{"--admin", "9090"}, "--admin: '9090'"},
                      BadCase{{"--no-presence=1"}, "--no-presence takes no value"},
                      BadCase{{"--frobnicate"}, "unknown option '--frobnicate'"},
                      BadCase{{"--config"}, "--config needs a FILE argument"},
                      BadCase{{"--config="}, "--config needs a FILE argument"},
                      BadCase{{"--check-config"}, "--check-config needs a FILE argument"}));

TEST(ConfigFlags, HelpListsEveryFlag) {
    auto p = parseArgs({"--help"});
    ASSERT_EQ(p.action, Action::Help);
    for (const char* flag :
         {"--bind", "--port", "--max-clients", "--max-payload", "--session-timeout",
          "--ping-interval", "--max-buffered", "--no-presence", "--log-level", "--config",
          "--check-config", "--admin", "--version"}) {
        EXPECT_NE(p.message.find(flag), std::string::npos) << flag;
    }
    for (const auto& s : settings()) {
        EXPECT_NE(p.message.find("  " + s.flag), std::string::npos) << s.flag;
    }
}

TEST(ConfigFlags, FileOnlySettingsHaveFlagsToo) {
    auto p = parseArgs({"--user-buffer-bytes", "200000", "--total-buffer-bytes=300000",
                        "--shutdown-retry-after", "9", "--drain-timeout", "0.25",
                        "--presence=false", "--admin", "[::1]:0"});
    ASSERT_EQ(p.action, Action::Run) << p.message;
    EXPECT_EQ(p.config.core.user_buffer_bytes, 200000U);
    EXPECT_EQ(p.config.core.total_buffer_bytes, 300000U);
    EXPECT_EQ(p.config.shutdown_retry_after_s, 9);
    EXPECT_EQ(p.config.drain_timeout_ms, 250);
    EXPECT_FALSE(p.config.core.presence_events);
    EXPECT_EQ(p.config.admin, "[::1]:0");
}

TEST(ConfigFlags, BoolFlagsTakeBothForms) {
    EXPECT_FALSE(parseArgs({"--no-presence"}).config.core.presence_events);
    EXPECT_TRUE(parseArgs({"--no-presence", "--presence"}).config.core.presence_events);
    EXPECT_TRUE(parseArgs({"--presence=true"}).config.core.presence_events);
}

TEST(ConfigFlags, AnEmptyAdminTurnsTheListenerOff) {
    auto p = parseArgs({"--admin", "127.0.0.1:9090", "--admin="});
    ASSERT_EQ(p.action, Action::Run) << p.message;
    EXPECT_EQ(p.config.admin, "");
}

TEST(ConfigFlags, ConfigTakesAnEqualsSignLikeEveryFlag) {
    std::vector<std::string> seen;
    ConfigFileLoader loader = [&](const std::string& path, Config&, std::string&) {
        seen.push_back(path);
        return true;
    };
    auto p = parseArgs({"--config=/etc/tundra.conf", "--port=1"}, loader);
    ASSERT_EQ(p.action, Action::Run) << p.message;
    EXPECT_EQ(p.config.config_file, "/etc/tundra.conf");
    EXPECT_EQ(p.config.port, 1);
    auto c = parseArgs({"--check-config=t.conf"}, loader);
    EXPECT_EQ(c.action, Action::CheckConfig) << c.message;
    EXPECT_EQ(c.config.config_file, "t.conf");
    EXPECT_EQ(seen, (std::vector<std::string>{"/etc/tundra.conf", "t.conf"}));
}

TEST(ConfigFlags, PrintSettingsRendersTheDocs) {
    for (auto format : settingsDocFormats()) {
        auto p = parseArgs({"--print-settings", std::string(format)});
        ASSERT_EQ(p.action, Action::Help) << p.message;
        EXPECT_EQ(p.message, renderSettingsDoc(format).value_or("")) << format;
    }
}

TEST(ConfigFlags, FileIsLoadedFirstAndFlagsOverrideIt) {
    ConfigFileLoader loader = [](const std::string& path, Config& c, std::string&) {
        EXPECT_EQ(path, "/etc/tundra.conf");
        c.port = 5000;
        c.core.max_clients = 7;
        return true;
    };
    auto p = parseArgs({"--port", "6000", "--config", "/etc/tundra.conf"}, loader);
    ASSERT_EQ(p.action, Action::Run) << p.message;
    EXPECT_EQ(p.config.port, 6000);
    EXPECT_EQ(p.config.core.max_clients, 7U);
}

TEST(ConfigFlags, FileErrorsAreReportedAsIs) {
    ConfigFileLoader loader = [](const std::string&, Config&, std::string& error) {
        error = "t.conf:3: unknown key 'prot'";
        return false;
    };
    auto p = parseArgs({"--check-config", "t.conf"}, loader);
    EXPECT_EQ(p.action, Action::Error);
    EXPECT_EQ(p.message, "t.conf:3: unknown key 'prot'");
}

}  // namespace
}  // namespace tundra::server
