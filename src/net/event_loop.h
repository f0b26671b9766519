// SPDX-License-Identifier: Apache-2.0
// Reactor, one per thread: a level-triggered epoll loop with coarse timers and deferred work.
// Knows nothing about frames or chat. See docs/ARCHITECTURE.md "One loop iteration".
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace tundra::net {

/// Something registered with the loop. The loop does not own it and never owns the fd.
class IoHandler {
public:
    virtual ~IoHandler() = default;
    /// Called with the epoll event mask. May unregister itself or request its own close,
    /// but must not destroy itself (use EventLoop::defer).
    virtual void onEvents(std::uint32_t events) = 0;
};

using TimerId = std::uint64_t;

/// One iteration: timeout from the nearest timer -> epoll_wait -> dispatch handlers ->
/// run expired timers -> run deferred callbacks (flushes, reaping) -> repeat until quit().
class EventLoop {
public:
    EventLoop();  // fatal (logs, aborts) if epoll_create1 fails
    ~EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    /// Registers `fd` for `events` (EPOLLIN, EPOLLOUT...) with `handler` in epoll data.ptr.
    void add(int fd, std::uint32_t events, IoHandler* handler);
    void modify(int fd, std::uint32_t events, IoHandler* handler);
    /// Unregisters; events already returned by this epoll_wait for this handler are dropped.
    void remove(int fd, IoHandler* handler);

    /// Runs `cb` once after `delay_ms`, or every `delay_ms` when `repeat`. Timers are kept in
    /// an ordered container; there are only a handful (heartbeat tick, drain deadline).
    TimerId addTimer(std::int64_t delay_ms, std::function<void()> cb, bool repeat = false);
    void cancelTimer(TimerId id);

    /// Runs `cb` at the end of the current iteration (after all handlers and timers).
    void defer(std::function<void()> cb);

    /// Runs until quit(). quit() may be called from any callback.
    void run();
    void quit();

    /// A 64 KiB scratch area shared by all reads on this loop (muduo's stack spill area).
    std::vector<std::uint8_t>& scratch() { return scratch_; }
    /// Monotonic now in ms, cached per iteration.
    [[nodiscard]] std::int64_t nowMs() const { return now_ms_; }

private:
    struct Timer;
    int epoll_fd_ = -1;
    bool quit_ = false;
    std::int64_t now_ms_ = 0;
    std::vector<std::uint8_t> scratch_;
    std::vector<IoHandler*> removed_this_round_;
    std::vector<std::function<void()>> deferred_;
    struct TimerEntry {
        std::int64_t when_ms;
        TimerId id;
        std::int64_t period_ms;
        std::function<void()> cb;
    };
    std::vector<TimerEntry> timers_;  // small; kept sorted by (when_ms, id)
    TimerId next_timer_id_ = 1;
};

}  // namespace tundra::net
