// SPDX-License-Identifier: Apache-2.0
// TcpServer heap use counted through a replaced global operator new: in the steady state a
// send() allocates nothing (the marked-connection list and the drained queues' segment storage
// are reused); the only allocation per loop iteration with output is the deferred flush
// callback. Own binary, so the replacement affects nothing else.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "net/tcp_server.h"
#include "unit/net/net_test_util.h"

namespace {

std::atomic<std::int64_t> g_allocations{0};

void* countedAlloc(std::size_t n) {
    void* p = std::malloc(n == 0 ? 1 : n);
    if (p == nullptr) {
        throw std::bad_alloc();
    }
    ++g_allocations;
    return p;
}

}  // namespace

void* operator new(std::size_t n) { return countedAlloc(n); }
void* operator new[](std::size_t n) { return countedAlloc(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace tundra::net {
namespace {

using test::bytesOf;
using test::LoopClient;
using test::runUntil;

TEST(TcpServerAllocTest, SteadyStateSendsDoNotAllocate) {
    EventLoop loop;
    TcpServer server(loop, TcpServerOptions{});
    std::vector<ConnId> ids;
    server.setConnectCallback([&](ConnId id, const ConnInfo&) { ids.push_back(id); });
    std::string error;
    ASSERT_TRUE(server.listen(error)) << error;
    constexpr std::size_t kClients = 10;
    std::vector<std::unique_ptr<LoopClient>> clients;
    for (std::size_t i = 0; i < kClients; ++i) {
        clients.push_back(std::make_unique<LoopClient>(loop, "127.0.0.1", server.port()));
        clients.back()->startReading();
    }
    ASSERT_TRUE(runUntil(loop, [&] { return ids.size() == kClients; }));

    // Eight broadcasts per iteration, each frame shared by the ten recipients.
    std::vector<SharedBytes> frames;
    std::string per_round;
    for (int m = 0; m < 8; ++m) {
        const std::string text = "broadcast " + std::to_string(m) + ";";
        frames.push_back(bytesOf(text));
        per_round += text;
    }
    std::uint64_t tag = 1;
    for (std::size_t round = 1; round <= 5; ++round) {
        const std::int64_t before = g_allocations.load();
        for (const auto& frame : frames) {
            for (ConnId id : ids) {
                ASSERT_TRUE(server.send(id, frame, tag++));
            }
        }
        const std::int64_t allocations = g_allocations.load() - before;
        // Rounds 1 and 2 grow the reused storage; from then on it is steady.
        if (round >= 3) {
            EXPECT_LE(allocations, 1) << "round " << round << ": 80 sends, at most the one "
                                      << "deferred flush callback may allocate";
        }
        const std::uint64_t writes_before = server.writeCalls();
        ASSERT_TRUE(runUntil(loop, [&] {
            for (const auto& c : clients) {
                if (c->received().size() < round * per_round.size()) {
                    return false;
                }
            }
            return true;
        }));
        EXPECT_EQ(server.writeCalls() - writes_before, kClients) << "round " << round;
    }
    for (const auto& c : clients) {
        std::string expect;
        for (int r = 0; r < 5; ++r) {
            expect += per_round;
        }
        EXPECT_EQ(c->received(), expect);
    }
}

}  // namespace
}  // namespace tundra::net
