// SPDX-License-Identifier: Apache-2.0
// SignalWatcher: signals raised at the process arrive as loop callbacks via signalfd; SIGPIPE is
// ignored so a write to a dead peer cannot kill the daemon.
#include "net/signal_watcher.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <vector>

#include "unit/net/net_test_util.h"

namespace tundra::net {
namespace {

using test::runUntil;

TEST(SignalWatcherTest, DeliversRaisedAndKilledSignalsThroughTheLoop) {
    EventLoop loop;
    std::vector<int> got;
    SignalWatcher watcher(loop, {SIGUSR1, SIGUSR2}, [&](int signo) { got.push_back(signo); });
    ASSERT_EQ(::raise(SIGUSR1), 0);  // blocked: stays pending instead of killing the test
    EXPECT_TRUE(got.empty()) << "delivered from the loop, not from a signal handler";
    ASSERT_TRUE(runUntil(loop, [&] { return got.size() == 1; }));
    EXPECT_EQ(got[0], SIGUSR1);
    ASSERT_EQ(::kill(::getpid(), SIGUSR2), 0);
    ASSERT_TRUE(runUntil(loop, [&] { return got.size() == 2; }));
    EXPECT_EQ(got[1], SIGUSR2);
}

TEST(SignalWatcherTest, BlocksItsSignalsAndIgnoresSigpipe) {
    EventLoop loop;
    SignalWatcher watcher(loop, {SIGUSR1}, [](int) {});
    sigset_t current;
    ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, nullptr, &current), 0);
    EXPECT_EQ(sigismember(&current, SIGUSR1), 1);
    struct sigaction action {};
    ASSERT_EQ(::sigaction(SIGPIPE, nullptr, &action), 0);
    EXPECT_EQ(action.sa_handler, SIG_IGN);
}

}  // namespace
}  // namespace tundra::net
