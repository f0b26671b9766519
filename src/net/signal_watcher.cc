// SPDX-License-Identifier: Apache-2.0
// SignalWatcher: blocks the signals, reads them from a signalfd and calls back (see
// signal_watcher.h).
#include "net/signal_watcher.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>

#include <cerrno>
#include <cstdlib>
#include <utility>

#include "net/socket_ops.h"

namespace tundra::net {

SignalWatcher::SignalWatcher(EventLoop& loop, const std::vector<int>& signals,
                             std::function<void(int)> cb)
    : loop_(loop), cb_(std::move(cb)) {
    // A write to a closed socket must become EPIPE, never a process-killing SIGPIPE.
    ::signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    for (int signo : signals) {
        sigaddset(&mask, signo);
    }
    // Blocked first, so a signal arriving from now on waits in the signalfd instead of running
    // its default action.
    const int err = ::pthread_sigmask(SIG_BLOCK, &mask, nullptr);
    if (err != 0) {
        spdlog::critical("pthread_sigmask failed: {}", sockets::errorText(err));
        std::abort();
    }
    fd_ = ::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd_ < 0) {
        spdlog::critical("signalfd failed: {}", sockets::errorText(errno));
        std::abort();
    }
    loop_.add(fd_, EPOLLIN, this);
}

SignalWatcher::~SignalWatcher() {
    loop_.remove(fd_, this);
    sockets::closeFd(fd_);
}

void SignalWatcher::onEvents(std::uint32_t /*events*/) {
    for (;;) {
        signalfd_siginfo info{};
        auto r = sockets::readSome(fd_, &info, sizeof(info));
        if (r.n != static_cast<ssize_t>(sizeof(info))) {
            return;  // EAGAIN: all pending signals delivered
        }
        spdlog::debug("signal {} received", info.ssi_signo);
        if (cb_) {
            cb_(static_cast<int>(info.ssi_signo));
        }
    }
}

}  // namespace tundra::net
