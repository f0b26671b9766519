// SPDX-License-Identifier: Apache-2.0
// SignalWatcher: signals as loop events through a signalfd, so their handlers run as ordinary
// loop callbacks instead of in async-signal context.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "net/event_loop.h"

namespace tundra::net {

/// Delivers the given signals (tundrad: SIGTERM, SIGINT, SIGHUP) through a signalfd registered
/// with the loop; blocks those signals for the process and ignores SIGPIPE.
/// Create it before starting any thread (pthread_sigmask only covers the calling thread and
/// threads it creates later). The signals stay blocked after destruction, so one that arrives
/// late is left pending instead of killing the process with its default action.
class SignalWatcher : public IoHandler {
public:
    /// `cb` gets the signal number, from the loop, once per delivered signal (standard signals
    /// raised twice before the loop reads them are merged by the kernel).
    SignalWatcher(EventLoop& loop, const std::vector<int>& signals, std::function<void(int)> cb);
    ~SignalWatcher() override;
    SignalWatcher(const SignalWatcher&) = delete;
    SignalWatcher& operator=(const SignalWatcher&) = delete;
    void onEvents(std::uint32_t events) override;

private:
    EventLoop& loop_;
    int fd_ = -1;
    std::function<void(int)> cb_;
};

}  // namespace tundra::net
