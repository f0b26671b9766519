// SPDX-License-Identifier: Apache-2.0
// The epoll reactor: one level-triggered epoll set, a short sorted timer list and a deferred
// queue. Nothing here knows about connections; see docs/ARCHITECTURE.md "One loop iteration".
#include "net/event_loop.h"

#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <ctime>
#include <iterator>
#include <utility>

#include "net/socket_ops.h"

namespace tundra::net {

namespace {

constexpr std::size_t kScratchBytes = 64 * 1024;
// Rounds of "deferred callbacks deferred by deferred callbacks" run in one iteration before
// the rest waits for the next (non-blocking) iteration, so a callback that keeps re-deferring
// itself cannot starve I/O.
constexpr int kMaxDeferRounds = 8;
constexpr std::int64_t kMaxWaitMs = 60 * 60 * 1000;

std::int64_t monotonicMs() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

[[noreturn]] void fatal(const char* what, int err) {
    spdlog::critical("event loop: {} failed: {}", what, sockets::errorText(err));
    std::abort();
}

}  // namespace

EventLoop::EventLoop() : scratch_(kScratchBytes) {
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) {
        fatal("epoll_create1", errno);
    }
    now_ms_ = monotonicMs();
}

EventLoop::~EventLoop() { sockets::closeFd(epoll_fd_); }

void EventLoop::add(int fd, std::uint32_t events, IoHandler* handler) {
    int err = 0;
    if (!tryAdd(fd, events, handler, err)) {
        fatal("epoll_ctl(ADD)", err);
    }
}

bool EventLoop::tryAdd(int fd, std::uint32_t events, IoHandler* handler, int& err) {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = handler;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
        err = errno;
        return false;
    }
    return true;
}

void EventLoop::modify(int fd, std::uint32_t events, IoHandler* handler) {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = handler;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) != 0) {
        fatal("epoll_ctl(MOD)", errno);
    }
}

void EventLoop::remove(int fd, IoHandler* handler) {
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr) != 0) {
        fatal("epoll_ctl(DEL)", errno);
    }
    removed_this_round_.push_back(handler);
}

TimerId EventLoop::addTimer(std::int64_t delay_ms, std::function<void()> cb, bool repeat) {
    const TimerId id = next_timer_id_++;
    delay_ms = std::max<std::int64_t>(delay_ms, 0);
    const std::int64_t period = repeat ? std::max<std::int64_t>(delay_ms, 1) : 0;
    // A fresh clock rather than now_ms_: a timer armed late in a long iteration still waits
    // its full delay.
    insertTimer(TimerEntry{monotonicMs() + delay_ms, id, period, std::move(cb)});
    return id;
}

void EventLoop::insertTimer(TimerEntry entry) {
    auto pos = std::upper_bound(
        timers_.begin(), timers_.end(), entry, [](const TimerEntry& a, const TimerEntry& b) {
            return a.when_ms != b.when_ms ? a.when_ms < b.when_ms : a.id < b.id;
        });
    timers_.insert(pos, std::move(entry));
}

void EventLoop::cancelTimer(TimerId id) {
    if (id == 0) {
        return;
    }
    if (id == running_timer_) {
        running_timer_cancelled_ = true;
        return;
    }
    for (auto& e : due_) {
        if (e.id == id) {
            e.id = 0;  // expired in this round but not run yet: skip it
            return;
        }
    }
    auto it = std::find_if(timers_.begin(), timers_.end(),
                           [id](const TimerEntry& e) { return e.id == id; });
    if (it != timers_.end()) {
        timers_.erase(it);
    }
}

void EventLoop::defer(std::function<void()> cb) { deferred_.push_back(std::move(cb)); }

void EventLoop::run() {
    while (!quit_) {
        runOnce();
    }
    quit_ = false;
}

void EventLoop::quit() { quit_ = true; }

int EventLoop::waitTimeoutMs() const {
    if (!deferred_.empty()) {
        return 0;
    }
    if (timers_.empty()) {
        return -1;
    }
    const std::int64_t wait = timers_.front().when_ms - monotonicMs();
    return static_cast<int>(std::clamp<std::int64_t>(wait, 0, kMaxWaitMs));
}

void EventLoop::runOnce() {
    epoll_event events[kMaxEventsPerWait];
    // Anything removed before this wait cannot appear in its result.
    removed_this_round_.clear();
    int ready = ::epoll_wait(epoll_fd_, events, kMaxEventsPerWait, waitTimeoutMs());
    if (ready < 0) {
        if (errno != EINTR) {
            fatal("epoll_wait", errno);
        }
        ready = 0;
    }
    now_ms_ = monotonicMs();
    if (wake_hook_) {
        wake_hook_();
    }
    for (int i = 0; i < ready; ++i) {
        auto* handler = static_cast<IoHandler*>(events[i].data.ptr);
        // An earlier callback in this batch may have removed (and queued for destruction)
        // this handler: its event is stale.
        if (removedThisRound(handler)) {
            continue;
        }
        handler->onEvents(events[i].events);
    }
    runTimers();
    runDeferred();
}

bool EventLoop::removedThisRound(const IoHandler* handler) const {
    return std::find(removed_this_round_.begin(), removed_this_round_.end(), handler) !=
           removed_this_round_.end();
}

// Runs the timers that were due when this iteration woke up. They are moved out first, so a
// timer armed by a callback (even with delay 0) waits for the next iteration instead of
// running in this one, and a repeat timer is re-armed only after its callback returned
// without cancelling it. Missed periods are skipped rather than replayed in a burst.
void EventLoop::runTimers() {
    auto split = std::find_if(timers_.begin(), timers_.end(),
                              [this](const TimerEntry& e) { return e.when_ms > now_ms_; });
    if (split == timers_.begin()) {
        return;
    }
    due_.assign(std::make_move_iterator(timers_.begin()), std::make_move_iterator(split));
    timers_.erase(timers_.begin(), split);
    // Callbacks may cancel entries of due_ (id 0) but never add or remove any.
    for (TimerEntry& e : due_) {
        if (e.id == 0) {
            continue;  // cancelled by an earlier callback of this round
        }
        running_timer_ = e.id;
        running_timer_cancelled_ = false;
        e.cb();
        running_timer_ = 0;
        if (e.period_ms > 0 && !running_timer_cancelled_) {
            e.when_ms += e.period_ms;
            if (e.when_ms <= now_ms_) {
                e.when_ms = now_ms_ + e.period_ms;
            }
            insertTimer(std::move(e));
        }
    }
    due_.clear();
}

void EventLoop::runDeferred() {
    for (int round = 0; round < kMaxDeferRounds && !deferred_.empty(); ++round) {
        running_deferred_.swap(deferred_);
        for (auto& cb : running_deferred_) {
            cb();
        }
        running_deferred_.clear();
    }
}

}  // namespace tundra::net
