// SPDX-License-Identifier: Apache-2.0
// EventLoop on a real epoll set: timer order, repeat and cancel, deferred work, and the rule that
// a handler removed during a batch gets none of that batch's later events.
#include "net/event_loop.h"

#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "net/socket_ops.h"
#include "unit/net/net_test_util.h"

namespace tundra::net {
namespace {

using test::runUntil;

// One end of a socketpair registered with the loop; the other end makes it readable.
class PairHandler : public IoHandler {
public:
    PairHandler(EventLoop& loop, std::function<void()> on_event)
        : loop_(loop), on_event_(std::move(on_event)) {
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds_), 0);
        loop_.add(fds_[0], EPOLLIN, this);
        registered_ = true;
    }
    ~PairHandler() override {
        unregister();
        sockets::closeFd(fds_[0]);
        sockets::closeFd(fds_[1]);
    }
    PairHandler(const PairHandler&) = delete;
    PairHandler& operator=(const PairHandler&) = delete;

    void makeReadable() { ASSERT_EQ(::write(fds_[1], "x", 1), 1); }
    void unregister() {
        if (registered_) {
            loop_.remove(fds_[0], this);
            registered_ = false;
        }
    }
    void onEvents(std::uint32_t /*events*/) override {
        char buf[64];
        while (::read(fds_[0], buf, sizeof(buf)) > 0) {
        }
        ++events_;
        if (on_event_) {
            on_event_();
        }
    }
    int events_ = 0;

private:
    EventLoop& loop_;
    std::function<void()> on_event_;
    int fds_[2] = {-1, -1};
    bool registered_ = false;
};

// The wake hook runs once per iteration, before that iteration's handlers, timers and
// deferred callbacks (the server refreshes its cached clock there).
TEST(EventLoopTest, WakeHookRunsOncePerIterationBeforeAnythingElse) {
    EventLoop loop;
    std::vector<std::string> order;
    loop.setWakeHook([&] { order.emplace_back("wake"); });
    PairHandler h(loop, [&] { order.emplace_back("io"); });
    loop.addTimer(0, [&] { order.emplace_back("timer"); });
    loop.defer([&] { order.emplace_back("deferred"); });
    h.makeReadable();
    loop.runOnce();
    ASSERT_FALSE(order.empty());
    EXPECT_EQ(order.front(), "wake");
    EXPECT_EQ(std::count(order.begin(), order.end(), "wake"), 1);
    EXPECT_EQ(std::count(order.begin(), order.end(), "io"), 1);
    EXPECT_EQ(std::count(order.begin(), order.end(), "deferred"), 1);
    order.clear();
    h.makeReadable();
    loop.runOnce();
    EXPECT_EQ(order, (std::vector<std::string>{"wake", "io"}));
}

TEST(EventLoopTest, TimersFireInDeadlineOrderAndNotEarly) {
    EventLoop loop;
    std::vector<std::string> fired;
    std::vector<std::int64_t> elapsed;
    const std::int64_t start = loop.nowMs();
    auto add = [&](std::int64_t delay, std::string name) {
        loop.addTimer(delay, [&, delay, name] {
            fired.push_back(name);
            elapsed.push_back(loop.nowMs() - start - delay);
        });
    };
    add(30, "30");
    add(10, "10");
    add(0, "0a");
    add(20, "20");
    add(0, "0b");  // same deadline as 0a (or later): runs after it
    ASSERT_TRUE(runUntil(loop, [&] { return fired.size() == 5; }));
    EXPECT_EQ(fired, (std::vector<std::string>{"0a", "0b", "10", "20", "30"}));
    for (std::int64_t late : elapsed) {
        EXPECT_GE(late, 0) << "a timer fired before its delay";
    }
    EXPECT_EQ(loop.timerCount(), 0U);
}

TEST(EventLoopTest, RepeatTimerRunsUntilItCancelsItself) {
    EventLoop loop;
    int count = 0;
    TimerId id = 0;
    id = loop.addTimer(
        1,
        [&] {
            if (++count == 3) {
                loop.cancelTimer(id);
            }
        },
        true);
    ASSERT_TRUE(runUntil(loop, [&] { return count == 3; }));
    bool later = false;
    loop.addTimer(20, [&] { later = true; });
    ASSERT_TRUE(runUntil(loop, [&] { return later; }));
    EXPECT_EQ(count, 3);
    EXPECT_EQ(loop.timerCount(), 0U);
}

TEST(EventLoopTest, RepeatTimerKeepsFiring) {
    EventLoop loop;
    int count = 0;
    const TimerId id = loop.addTimer(
        1, [&] { ++count; }, true);
    ASSERT_TRUE(runUntil(loop, [&] { return count >= 5; }));
    EXPECT_EQ(loop.timerCount(), 1U);
    loop.cancelTimer(id);
    EXPECT_EQ(loop.timerCount(), 0U);
}

TEST(EventLoopTest, CancelledTimerNeverFires) {
    EventLoop loop;
    bool cancelled_fired = false;
    bool other_fired = false;
    const TimerId id = loop.addTimer(1, [&] { cancelled_fired = true; });
    loop.addTimer(15, [&] { other_fired = true; });
    loop.cancelTimer(id);
    loop.cancelTimer(id);    // twice: ignored
    loop.cancelTimer(9999);  // unknown: ignored
    ASSERT_TRUE(runUntil(loop, [&] { return other_fired; }));
    EXPECT_FALSE(cancelled_fired);
}

TEST(EventLoopTest, TimerCancelledByAnEarlierTimerOfTheSameRoundDoesNotRun) {
    EventLoop loop;
    TimerId second = 0;
    bool second_fired = false;
    bool first_fired = false;
    loop.addTimer(0, [&] {
        first_fired = true;
        loop.cancelTimer(second);
    });
    second = loop.addTimer(0, [&] { second_fired = true; });
    bool done = false;
    loop.addTimer(10, [&] { done = true; });
    ASSERT_TRUE(runUntil(loop, [&] { return done; }));
    EXPECT_TRUE(first_fired);
    EXPECT_FALSE(second_fired);
}

TEST(EventLoopTest, ZeroDelayTimerArmedByATimerWaitsForTheNextIteration) {
    EventLoop loop;
    int iterations_seen = 0;
    int fires = 0;
    std::function<void()> rearm = [&] {
        ++fires;
        loop.addTimer(0, rearm);
    };
    loop.addTimer(0, rearm);
    bool done = false;
    loop.addTimer(10, [&] { done = true; });
    while (!done) {
        loop.runOnce();
        ++iterations_seen;
        ASSERT_LE(fires, iterations_seen) << "a re-armed timer ran twice in one iteration";
        ASSERT_LT(iterations_seen, 1000000);
    }
}

TEST(EventLoopTest, DeferredCallbacksRunAfterHandlersInFifoOrder) {
    EventLoop loop;
    std::vector<std::string> log;
    PairHandler h(loop, [&] {
        log.emplace_back("handler");
        loop.defer([&] {
            log.emplace_back("d1");
            loop.defer([&] { log.emplace_back("d3 (deferred by d1)"); });
        });
        loop.defer([&] { log.emplace_back("d2"); });
        log.emplace_back("handler end");
    });
    h.makeReadable();
    loop.runOnce();
    EXPECT_EQ(log, (std::vector<std::string>{"handler", "handler end", "d1", "d2",
                                             "d3 (deferred by d1)"}));
}

TEST(EventLoopTest, PendingDeferredWorkMakesTheWaitNonBlocking) {
    EventLoop loop;
    bool ran = false;
    bool guard = false;
    loop.addTimer(2000, [&] { guard = true; });  // a blocking wait would take this long
    loop.defer([&] { ran = true; });
    loop.runOnce();
    EXPECT_TRUE(ran);
    EXPECT_FALSE(guard);
}

TEST(EventLoopTest, SelfReDeferringCallbackDoesNotStarveIo) {
    EventLoop loop;
    bool keep_going = true;
    int runs = 0;
    std::function<void()> again = [&] {
        ++runs;
        if (keep_going) {
            loop.defer(again);
        }
    };
    loop.defer(again);
    PairHandler h(loop, nullptr);
    h.makeReadable();
    bool timer_fired = false;
    loop.addTimer(5, [&] { timer_fired = true; });
    EXPECT_TRUE(runUntil(loop, [&] { return h.events_ > 0 && timer_fired; }));
    keep_going = false;
    loop.runOnce();
    EXPECT_GT(runs, 1);
}

TEST(EventLoopTest, HandlerRemovedAndDestroyedEarlierInTheBatchGetsNoEvent) {
    EventLoop loop;
    std::unique_ptr<PairHandler> a;
    std::unique_ptr<PairHandler> b;
    int calls = 0;
    // Whichever runs first removes and destroys the other; both were ready in the same batch,
    // so the other's event must be skipped (ASan would flag a call on the freed object).
    a = std::make_unique<PairHandler>(loop, [&] {
        ++calls;
        b.reset();
    });
    b = std::make_unique<PairHandler>(loop, [&] {
        ++calls;
        a.reset();
    });
    a->makeReadable();
    b->makeReadable();
    loop.runOnce();
    EXPECT_EQ(calls, 1);
    EXPECT_NE(a == nullptr, b == nullptr);
}

// One iteration takes at most kMaxEventsPerWait ready handlers, then runs its deferred work
// (the server's flush); the other ready handlers follow in the next iterations, none lost.
TEST(EventLoopTest, AnIterationTakesAtMostMaxEventsPerWaitReadyHandlers) {
    EventLoop loop;
    constexpr int kHandlers = 2 * EventLoop::kMaxEventsPerWait + 10;
    int handled = 0;
    std::vector<int> handled_at_deferred;
    std::vector<std::unique_ptr<PairHandler>> handlers;
    for (int i = 0; i < kHandlers; ++i) {
        handlers.push_back(std::make_unique<PairHandler>(loop, [&] { ++handled; }));
    }
    for (auto& h : handlers) {
        h->makeReadable();
    }
    for (int i = 0; i < 3; ++i) {
        loop.defer([&] { handled_at_deferred.push_back(handled); });
        loop.runOnce();
    }
    EXPECT_EQ(handled_at_deferred, (std::vector<int>{EventLoop::kMaxEventsPerWait,
                                                     2 * EventLoop::kMaxEventsPerWait, kHandlers}));
    for (const auto& h : handlers) {
        EXPECT_EQ(h->events_, 1);
    }
}

TEST(EventLoopTest, QuitFinishesTheIterationAndRunCanBeCalledAgain) {
    EventLoop loop;
    bool deferred_ran = false;
    loop.addTimer(1, [&] {
        loop.quit();
        loop.defer([&] { deferred_ran = true; });
    });
    loop.run();
    EXPECT_TRUE(deferred_ran);

    int second_run = 0;
    loop.addTimer(1, [&] {
        ++second_run;
        loop.quit();
    });
    loop.run();
    EXPECT_EQ(second_run, 1);
}

TEST(EventLoopTest, QuitBeforeRunReturnsAtOnce) {
    EventLoop loop;
    bool guard = false;
    loop.addTimer(2000, [&] { guard = true; });
    loop.quit();
    loop.run();
    EXPECT_FALSE(guard);
}

TEST(EventLoopTest, ScratchIs64KiB) {
    EventLoop loop;
    EXPECT_EQ(loop.scratch().size(), 64U * 1024U);
}

TEST(EventLoopTest, NowAdvancesWithTheIterations) {
    EventLoop loop;
    const std::int64_t before = loop.nowMs();
    bool fired = false;
    loop.addTimer(5, [&] { fired = true; });
    ASSERT_TRUE(runUntil(loop, [&] { return fired; }));
    EXPECT_GE(loop.nowMs() - before, 5);
}

}  // namespace
}  // namespace tundra::net
