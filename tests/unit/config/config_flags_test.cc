// SPDX-License-Identifier: Apache-2.0
// tundrad flag parsing: defaults, every flag, and clear errors for bad values.
#include <gtest/gtest.h>

#include "server/config.h"

namespace tundra::server {
namespace {

using Action = ParsedArgs::Action;

TEST(ConfigFlags, DefaultsMatchTheDesign) {
    auto p = parseArgs({});
    ASSERT_EQ(p.action, Action::Run);
    EXPECT_EQ(p.config.bind, "127.0.0.1");
    EXPECT_EQ(p.config.port, 4242);
    EXPECT_EQ(p.config.core.max_clients, 1000U);
    EXPECT_EQ(p.config.core.max_payload, 65534U);
    EXPECT_EQ(p.config.core.session_timeout_ms, 120000);
    EXPECT_EQ(p.config.core.ping_interval_ms, 30000);
    EXPECT_EQ(p.config.core.max_buffered, 50U);
    EXPECT_TRUE(p.config.core.presence_events);
    EXPECT_EQ(p.config.output_cap_bytes, 8U << 20);
}

TEST(ConfigFlags, EveryFlagIsApplied) {
    auto p = parseArgs({"--bind", "::1", "--port", "0", "--max-clients", "5", "--max-payload",
                        "1024", "--session-timeout", "2.5", "--ping-interval=0.5",
                        "--max-buffered", "3", "--no-presence", "--log-level", "debug",
                        "--output-cap", "131072", "--max-users", "10", "--admin",
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
                      BadCase{{"--max-clients", "0"}, "--max-clients: '0'"},
                      BadCase{{"--max-payload", "65535"}, "--max-payload: '65535'"},
                      BadCase{{"--session-timeout", "-1"}, "--session-timeout: '-1'"},
                      BadCase{{"--ping-interval", "soon"}, "--ping-interval: 'soon'"},
                      BadCase{{"--max-buffered", "1x"}, "--max-buffered: '1x'"},
                      BadCase{{"--log-level", "loud"}, "--log-level: 'loud'"},
                      BadCase{{"--admin", "9090"}, "--admin: '9090'"},
                      BadCase{{"--no-presence=1"}, "--no-presence takes no value"},
                      BadCase{{"--frobnicate"}, "unknown option '--frobnicate'"},
                      BadCase{{"--config"}, "--config needs a FILE argument"}));

TEST(ConfigFlags, HelpListsEveryFlag) {
    auto p = parseArgs({"--help"});
    ASSERT_EQ(p.action, Action::Help);
    for (const char* flag : {"--bind", "--port", "--max-clients", "--max-payload",
                             "--session-timeout", "--ping-interval", "--max-buffered",
                             "--no-presence", "--log-level", "--config", "--check-config",
                             "--admin", "--version"}) {
        EXPECT_NE(p.message.find(flag), std::string::npos) << flag;
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

TEST(ConfigFlags, RateLimitsAndBadFramesHaveDefaultsAndFlags) {
    auto d = parseArgs({});
    ASSERT_EQ(d.action, Action::Run) << d.message;
    EXPECT_EQ(d.config.core.rate_messages_per_s, 1000U);
    EXPECT_EQ(d.config.core.rate_messages_burst, 2000U);
    EXPECT_EQ(d.config.core.rate_bytes_per_s, 8U << 20);
    EXPECT_EQ(d.config.core.rate_bytes_burst, 16U << 20);
    EXPECT_EQ(d.config.core.max_bad_frames, 16U);
    auto p =
        parseArgs({"--rate-messages-per-s", "0", "--rate-messages-burst", "5", "--rate-bytes-per-s",
                   "1024", "--rate-bytes-burst=65541", "--max-bad-frames", "0"});
    ASSERT_EQ(p.action, Action::Run) << p.message;
    EXPECT_EQ(p.config.core.rate_messages_per_s, 0U);
    EXPECT_EQ(p.config.core.rate_messages_burst, 5U);
    EXPECT_EQ(p.config.core.rate_bytes_per_s, 1024U);
    EXPECT_EQ(p.config.core.rate_bytes_burst, 65541U);
    EXPECT_EQ(p.config.core.max_bad_frames, 0U);
    EXPECT_EQ(parseArgs({"--rate-bytes-burst", "65540"}).action, Action::Error)
        << "a burst smaller than the largest frame would refuse that frame forever";
    EXPECT_EQ(parseArgs({"--rate-messages-burst", "0"}).action, Action::Error);
    auto help = parseArgs({"--help"});
    for (const char* flag : {"--rate-messages-per-s", "--rate-messages-burst", "--rate-bytes-per-s",
                             "--rate-bytes-burst", "--max-bad-frames"}) {
        EXPECT_NE(help.message.find(flag), std::string::npos) << flag;
    }
}

}  // namespace
}  // namespace tundra::server
