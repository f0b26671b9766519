// SPDX-License-Identifier: Apache-2.0
// tundra-bench against a real tundrad: the pairs (direct messages, closed loop and open loop at
// a fixed rate), agents (request/reply) and mailbox (offline stores, then replays) scenarios
// complete, report every delivery as checked (nothing lost, duplicated or out of order) and a
// coherent latency histogram in their JSON; a mailbox that loses messages is reported.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "support/scratch_dir.h"
#include "support/shell_command.h"
#include "support/tundrad_process.h"

namespace tundra::testing {
namespace {

// Runs tundra-bench with `args` against `port` and collects its stdout (it stops by itself:
// every run has --timeout).
ShellResult bench(std::uint16_t port, const std::string& args) {
    return runShell(std::string(TUNDRA_BENCH_PATH) + " --port " + std::to_string(port) +
                    " --json --timeout 60 " + args);
}

class BenchTest : public ::testing::Test {
protected:
    // The load generator opens many connections from 127.0.0.1 at once.
    TundradProcess server{
        {"--max-connections-per-ip", "0", "--register-rate", "0", "--rate-messages-per-s", "0"}};

    /// Runs tundra-bench with `args` against `srv`, which must have started; the run must
    /// succeed, and `out` gets its JSON result. Call inside ASSERT_NO_FATAL_FAILURE.
    static void runOk(TundradProcess& srv, const std::string& args, nlohmann::json& out) {
        ASSERT_NE(srv.port(), 0) << srv.output();
        const ShellResult r = bench(srv.port(), args);
        ASSERT_EQ(r.code, 0) << r.out << srv.output();
        out = nlohmann::json::parse(r.out);
    }

    static void expectCoherentLatency(const nlohmann::json& j) {
        const auto& l = j.at("latency_us");
        EXPECT_GT(l.at("max").get<double>(), 0.0);
        EXPECT_LE(l.at("min").get<double>(), l.at("p50").get<double>());
        EXPECT_LE(l.at("p50").get<double>(), l.at("p90").get<double>());
        EXPECT_LE(l.at("p90").get<double>(), l.at("p99").get<double>());
        EXPECT_LE(l.at("p99").get<double>(), l.at("p999").get<double>());
        EXPECT_LE(l.at("p999").get<double>(), l.at("max").get<double>());
    }
};

TEST_F(BenchTest, PairsDeliversEveryMessageOnceAndInOrder) {
    nlohmann::json j;
    ASSERT_NO_FATAL_FAILURE(runOk(server, "pairs --pairs 20 --messages 300 --window 8", j));
    EXPECT_EQ(j.at("scenario"), "pairs");
    EXPECT_EQ(j.at("expected").get<int>(), 20 * 300);
    EXPECT_EQ(j.at("delivered").get<int>(), 20 * 300);
    EXPECT_EQ(j.at("lost").get<int>(), 0);
    EXPECT_EQ(j.at("duplicates").get<int>(), 0);
    EXPECT_EQ(j.at("out_of_order").get<int>(), 0);
    EXPECT_GT(j.at("deliveries_per_s").get<double>(), 0.0);
    expectCoherentLatency(j);
}

TEST_F(BenchTest, OpenLoopPairsKeepToTheOfferedRate) {
    // 1,000 messages at 4,000/s: the schedule alone takes 0.25 s, so the run cannot be shorter
    // (open loop: messages leave when due, not when the previous one is answered).
    nlohmann::json j;
    ASSERT_NO_FATAL_FAILURE(runOk(server, "pairs --pairs 10 --messages 100 --rate 4000", j));
    EXPECT_EQ(j.at("delivered").get<int>(), 1000);
    EXPECT_EQ(j.at("lost").get<int>(), 0);
    EXPECT_EQ(j.at("rate").get<double>(), 4000.0);
    EXPECT_GE(j.at("seconds").get<double>(), 0.24);
    expectCoherentLatency(j);
}

TEST_F(BenchTest, AgentsCompleteEveryRequestReplyRoundTrip) {
    nlohmann::json j;
    ASSERT_NO_FATAL_FAILURE(runOk(server, "agents --pairs 10 --messages 200 --window 2", j));
    EXPECT_EQ(j.at("scenario"), "agents");
    EXPECT_EQ(j.at("delivered").get<int>(), 10 * 200);
    EXPECT_EQ(j.at("duplicates").get<int>(), 0);
    EXPECT_EQ(j.at("out_of_order").get<int>(), 0);
    EXPECT_GT(j.at("round_trips_per_s").get<double>(), 0.0);
    expectCoherentLatency(j);
}

TEST_F(BenchTest, MailboxStoresEveryMessageAndReplaysItOnceInOrder) {
    ScratchDir dir;
    TundradProcess stored({"--max-connections-per-ip", "0", "--register-rate", "0",
                           "--rate-messages-per-s", "0", "--max-buffered", "200", "--data-dir",
                           dir.path()});
    nlohmann::json j;
    ASSERT_NO_FATAL_FAILURE(runOk(stored, "mailbox --pairs 10 --messages 150 --window 8", j));
    EXPECT_EQ(j.at("scenario"), "mailbox");
    EXPECT_EQ(j.at("expected").get<int>(), 10 * 150);
    EXPECT_EQ(j.at("delivered").get<int>(), 10 * 150);  // replayed after the return
    EXPECT_EQ(j.at("lost").get<int>(), 0);
    EXPECT_EQ(j.at("duplicates").get<int>(), 0);
    EXPECT_EQ(j.at("out_of_order").get<int>(), 0);
    EXPECT_GT(j.at("stored_per_s").get<double>(), 0.0);
    expectCoherentLatency(j);
}

TEST_F(BenchTest, AMailboxThatDropsMessagesFailsTheRun) {
    ASSERT_NE(server.port(), 0);
    // 60 messages for a buffer of 50 (the default): the 10 oldest are dropped, so the replay
    // misses them and the run says so (exit 1) after its --timeout.
    const ShellResult r =
        runShell(std::string(TUNDRA_BENCH_PATH) + " --port " + std::to_string(server.port()) +
                 " --json --timeout 2 mailbox --pairs 2 --messages 60");
    EXPECT_EQ(r.code, 1) << r.out;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j.at("delivered").get<int>(), 2 * 50);
    EXPECT_EQ(j.at("lost").get<int>(), 2 * 10);
}

// idle --health: the RSS per held connection, then timed HEALTH_CHECK round trips while the
// connections are still held.
TEST_F(BenchTest, IdleTimesHealthChecksWhileTheConnectionsAreHeld) {
    nlohmann::json j;
    ASSERT_NO_FATAL_FAILURE(runOk(server, "idle --clients 200 --health 50", j));
    EXPECT_EQ(j.at("scenario"), "idle");
    EXPECT_EQ(j.at("clients").get<int>(), 200);
    EXPECT_GT(j.at("rss_after").get<double>(), 0.0);
    EXPECT_EQ(j.at("health_checks").get<int>(), 50);
    EXPECT_GT(j.at("health_p50_ms").get<double>(), 0.0);
    EXPECT_LE(j.at("health_p50_ms").get<double>(), j.at("health_p99_ms").get<double>());
    EXPECT_LE(j.at("health_p99_ms").get<double>(), j.at("health_max_ms").get<double>());
    const ShellResult both = bench(server.port(), "idle --clients 5 --warm 2 --health 5");
    EXPECT_NE(both.code, 0);
}

// idle --warm end to end, with clients slow to read their WELCOMEs: the server's first PING
// arrives right behind each WELCOME (read together, before the pump took over), and must still
// be answered, or the server drops them at the heartbeat deadline (as it did at 19,970 clients,
// whose registration takes longer than a short ping interval).
TEST_F(BenchTest, IdleWarmAnswersPingsThatArrivedWithTheWelcome) {
    TundradProcess pinging{{"--max-connections-per-ip", "0", "--register-rate", "0",
                            "--rate-messages-per-s", "0", "--ping-interval", "2"}};
    nlohmann::json j;
    ASSERT_NO_FATAL_FAILURE(
        runOk(pinging, "idle --clients 3 --warm 2 --register-pause-ms 2500", j));
    EXPECT_EQ(j.at("clients").get<int>(), 3);
    EXPECT_GT(j.at("rss_after_traffic").get<double>(), 0.0);
    EXPECT_GT(j.at("rss_after_pong").get<double>(), 0.0);
}

TEST_F(BenchTest, UnknownScenarioArgumentIsAClearError) {
    const ShellResult r = bench(server.port(), "pairs --pairs nope 2>&1");
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.out.find("--pairs: 'nope' is not a number"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace tundra::testing
