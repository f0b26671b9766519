// SPDX-License-Identifier: Apache-2.0
// Bounded load: 1,000 concurrent clients register and all receive one broadcast.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <chrono>
#include <memory>
#include <vector>

#include "integration/server_fixture.h"

namespace tundra::testing {
namespace {

using namespace std::chrono_literals;

class LoadTest : public ServerTest {
protected:
    std::vector<std::string> serverArgs() override {
        return {"--no-presence",
                "--max-clients",
                "1100",
                "--max-connections-per-ip",
                "0",
                "--register-rate",
                "0"};
    }
    void SetUp() override {
        rlimit lim{};
        ::getrlimit(RLIMIT_NOFILE, &lim);
        if (lim.rlim_cur < 4096 && lim.rlim_max > lim.rlim_cur) {
            lim.rlim_cur = std::min<rlim_t>(lim.rlim_max, 4096);
            ::setrlimit(RLIMIT_NOFILE, &lim);
        }
        ServerTest::SetUp();
    }
};

TEST_F(LoadTest, ThousandClientsRegisterAndAllReceiveABroadcast) {
    constexpr int kClients = 1000;
    std::vector<std::unique_ptr<RawClient>> clients;
    clients.reserve(kClients);
    for (int i = 0; i < kClients; ++i) {
        clients.push_back(connect());
        ASSERT_TRUE(clients.back()->connected()) << "client " << i;
        msg::Register r;
        std::string name = "user" + std::to_string(i);
        r.username = name;
        ASSERT_TRUE(clients.back()->send(msg::encode(r, 1)));
    }
    for (int i = 0; i < kClients; ++i) {
        auto f = clients[static_cast<std::size_t>(i)]->read(10s);
        ASSERT_TRUE(f) << "no WELCOME for client " << i;
        ASSERT_EQ(asSystem(*f).event, SystemEvent::Welcome);
    }
    auto ack = say(*clients[0], "", "hello thousand");
    ASSERT_TRUE(ack);
    auto am = asAck(*ack);
    EXPECT_EQ(am.delivered, static_cast<std::uint32_t>(kClients - 1));
    for (int i = 1; i < kClients; ++i) {
        auto f = clients[static_cast<std::size_t>(i)]->read(10s);
        ASSERT_TRUE(f) << "client " << i << " got nothing";
        auto d = asDelivery(*f);
        EXPECT_EQ(d.id, am.id);
        EXPECT_EQ(d.text, "hello thousand");
    }
}

}  // namespace
}  // namespace tundra::testing
