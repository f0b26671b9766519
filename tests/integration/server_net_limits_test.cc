// SPDX-License-Identifier: Apache-2.0
// Net limits of issue 9 against the real tundrad: a half-closed pipeline gets every answer,
// max_clients follows the descriptor limit, a never-reading PING flooder is cut early.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <chrono>
#include <string>

#include "support/raw_client.h"
#include "support/tundrad_process.h"
#include "tundra/messages.h"

namespace tundra::testing {
namespace {

using namespace std::chrono_literals;

// `nc -N` style: pipeline PINGs, shutdown(SHUT_WR), read to EOF. Before the fix at most 1,024
// PONGs (one round of writes) arrived and the rest were discarded.
TEST(NetLimits, HalfClosedPipelineGetsEveryPong) {
    // More PINGs than the default frame burst: the rate limit would answer some with
    // RATE_LIMITED, which is not what this test is about.
    TundradProcess server({"--rate-messages-per-s", "0"});
    ASSERT_TRUE(server.started()) << server.output();
    RawClient c(server.port());
    constexpr std::uint32_t kPings = 5000;
    Bytes all;
    for (std::uint32_t i = 1; i <= kPings; ++i) {
        Bytes p = msg::encodePing(MsgType::Ping, i, static_cast<std::uint16_t>(i));
        all.insert(all.end(), p.begin(), p.end());
    }
    ASSERT_TRUE(c.send(all));
    ASSERT_EQ(::shutdown(c.fd(), SHUT_WR), 0);
    std::uint32_t pongs = 0;
    while (auto f = c.read(5s)) {
        if (f->type() == MsgType::Pong) {
            ++pongs;
        }
    }
    EXPECT_TRUE(c.eof());
    EXPECT_EQ(pongs, kPings);
}

// With RLIMIT_NOFILE 300 (soft and hard) and no --max-clients, max_clients is 300 - 32; an
// explicit value above that is lowered with a warning.
TEST(NetLimits, MaxClientsFollowsTheDescriptorLimit) {
    TundradProcess::setChildFdLimit(300);
    TundradProcess derived;
    TundradProcess lowered({"--max-clients", "5000"});
    TundradProcess::setChildFdLimit(0);
    ASSERT_TRUE(derived.started()) << derived.output();
    ASSERT_TRUE(lowered.started()) << lowered.output();
    EXPECT_TRUE(derived.waitForLine("max_clients=268", 2s)) << derived.output();
    EXPECT_TRUE(lowered.waitForLine("max_clients 5000 lowered to 268", 2s)) << lowered.output();
    EXPECT_TRUE(lowered.waitForLine("max_clients=268", 2s)) << lowered.output();
}

}  // namespace
}  // namespace tundra::testing
