// SPDX-License-Identifier: Apache-2.0
// Reactor, one per thread: a level-triggered epoll loop with coarse timers and deferred work.
// Knows nothing about frames or chat. See docs/ARCHITECTURE.md "One loop iteration".
#pragma once

#include <cstddef>
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

    /// Ready handlers taken per epoll_wait (one iteration); the others wait for the next.
    /// Everything one iteration's handlers queue stays in memory until its deferred flush: with
    /// 256 (a saturated server has that many ready) that was megabytes of encoded frames, out
    /// of the cache by the time the kernel copied them; with 64 it stays in it (pairs of
    /// direct messages 1.71 -> 1.89 M/s, docs/BENCHMARKS.md).
    static constexpr int kMaxEventsPerWait = 64;

    /// Registers `fd` for `events` (EPOLLIN, EPOLLOUT...) with `handler` in epoll data.ptr.
    /// Level-triggered. Fatal if epoll_ctl fails (a bad fd is our bug); see tryAdd().
    void add(int fd, std::uint32_t events, IoHandler* handler);
    /// Like add(), but returns false (errno in `err`) instead of aborting: for fds that come
    /// from peers, where ENOMEM/ENOSPC (max_user_watches) are environment errors.
    [[nodiscard]] bool tryAdd(int fd, std::uint32_t events, IoHandler* handler, int& err);
    void modify(int fd, std::uint32_t events, IoHandler* handler);
    /// Unregisters; events already returned by this epoll_wait for this handler are dropped,
    /// so the handler may be destroyed once the current callback has returned.
    void remove(int fd, IoHandler* handler);

    /// Runs `cb` once after `delay_ms`, or every `delay_ms` when `repeat`. Timers are kept in
    /// a sorted vector: few are armed at a time (the core tick, a drain deadline, one flush
    /// deadline per connection closing after flush).
    /// A repeat period below 1 ms is treated as 1 ms. Timers due in the same millisecond run in
    /// the order they were added. May be called from any callback, timers included.
    TimerId addTimer(std::int64_t delay_ms, std::function<void()> cb, bool repeat = false);
    /// Unknown or already-fired ids are ignored; a repeat timer may cancel itself from its cb.
    void cancelTimer(TimerId id);

    /// Runs `cb` at the end of the current iteration (after all handlers and timers), in FIFO
    /// order. Callbacks deferred by deferred callbacks run in the same iteration for a few
    /// rounds, then in the next one (epoll_wait does not block while any are pending).
    void defer(std::function<void()> cb);

    /// Runs iterations until quit(). quit() may be called from any callback; the iteration in
    /// progress completes (deferred work included). A quit() before run() makes it return at
    /// once; run() clears the request on return, so the loop can be run again.
    void run();
    void quit();
    /// Runs exactly one iteration, blocking in epoll_wait until an event, the nearest timer or
    /// (with pending deferred work) not at all. For tests and tools that drive the loop.
    void runOnce();

    /// Runs `hook` at the start of every iteration, as soon as epoll_wait returns (before any
    /// handler, timer or deferred callback): the owner refreshes its cached clock there.
    void setWakeHook(std::function<void()> hook) { wake_hook_ = std::move(hook); }

    /// A 64 KiB scratch area shared by all reads on this loop (muduo's stack spill area).
    std::vector<std::uint8_t>& scratch() { return scratch_; }
    /// Monotonic now in ms, cached per iteration.
    [[nodiscard]] std::int64_t nowMs() const { return now_ms_; }

    /// Number of armed timers (tests use it to check that cancellation really forgets).
    [[nodiscard]] std::size_t timerCount() const { return timers_.size(); }

private:
    struct TimerEntry {
        std::int64_t when_ms;
        TimerId id;
        std::int64_t period_ms;  // 0 = one-shot
        std::function<void()> cb;
    };
    void dispatch(int ready);
    void runTimers();
    void runDeferred();
    void insertTimer(TimerEntry entry);
    [[nodiscard]] int waitTimeoutMs() const;
    [[nodiscard]] bool removedThisRound(const IoHandler* handler) const;

    int epoll_fd_ = -1;
    bool quit_ = false;
    std::int64_t now_ms_ = 0;
    std::function<void()> wake_hook_;
    std::vector<std::uint8_t> scratch_;
    // Handlers removed since the last epoll_wait: the rest of its batch may still name them.
    std::vector<IoHandler*> removed_this_round_;
    std::vector<std::function<void()>> deferred_;
    std::vector<std::function<void()>> running_deferred_;  // kept to reuse its capacity
    std::vector<TimerEntry> timers_;                       // small; kept sorted by (when_ms, id)
    TimerId next_timer_id_ = 1;
    std::vector<TimerEntry> due_;  // expired timers being run; cancelled ones get id 0
    TimerId running_timer_ = 0;    // the timer whose callback is running, 0 if none
    bool running_timer_cancelled_ = false;
};

}  // namespace tundra::net
