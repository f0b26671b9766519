// SPDX-License-Identifier: Apache-2.0
// Acceptor: bounded accepts per wakeup, the spare-fd trick at the fd limit, rate-limited
// warnings (see acceptor.h).
#include "net/acceptor.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>

#include <cerrno>
#include <utility>

#include "net/socket_ops.h"

namespace tundra::net {

namespace {

// Connections accepted per listening-socket wakeup; the rest wait for the next iteration so
// a connection storm cannot starve established peers.
constexpr int kMaxAcceptsPerWakeup = 64;
// With no spare fd left, the listening socket sleeps this long instead of spinning.
constexpr std::int64_t kAcceptPauseMs = 100;
constexpr std::int64_t kAcceptWarnIntervalMs = 1000;

int openSpareFd() { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }

}  // namespace

Acceptor::Acceptor(EventLoop& loop, int listen_fd, AcceptCallback on_accept)
    : loop_(loop),
      listen_fd_(listen_fd),
      spare_fd_(openSpareFd()),
      on_accept_(std::move(on_accept)),
      last_warn_ms_(-kAcceptWarnIntervalMs) {
    loop_.add(listen_fd_, EPOLLIN, this);
}

Acceptor::~Acceptor() { stop(); }

void Acceptor::stop() {
    if (listen_fd_ >= 0) {
        loop_.remove(listen_fd_, this);
        sockets::closeFd(listen_fd_);
        listen_fd_ = -1;
    }
    sockets::closeFd(spare_fd_);
    spare_fd_ = -1;
    loop_.cancelTimer(resume_timer_);
    resume_timer_ = 0;
}

void Acceptor::onEvents(std::uint32_t /*events*/) {
    for (int i = 0; i < kMaxAcceptsPerWakeup && listen_fd_ >= 0 && resume_timer_ == 0; ++i) {
        auto r = sockets::acceptPeer(listen_fd_);
        if (r.fd >= 0) {
            if (!on_accept_(r.fd, std::move(r.peer))) {
                ++errors_;
            }
            continue;
        }
        if (sockets::wouldBlock(r.err)) {
            return;
        }
        switch (r.err) {
            case ECONNABORTED:
            case EPROTO:
            case EPERM:    // firewall rules
                continue;  // that peer is gone; try the next one
            case EMFILE:
            case ENFILE:
                shedOne(r.err);
                continue;
            default:  // ENOBUFS, ENOMEM: try again next iteration
                ++errors_;
                warn(r.err);
                return;
        }
    }
}

void Acceptor::shedOne(int err) {
    ++errors_;
    ++shed_;
    warn(err);
    if (spare_fd_ < 0) {
        spare_fd_ = openSpareFd();
    }
    if (spare_fd_ < 0) {
        pause();
        return;
    }
    sockets::closeFd(spare_fd_);
    auto r = sockets::acceptPeer(listen_fd_);
    sockets::closeFd(r.fd);
    spare_fd_ = openSpareFd();
}

// The timer is cancelled by stop() (and so by the destructor): it never outlives the object.
void Acceptor::pause() {
    loop_.modify(listen_fd_, 0, this);
    resume_timer_ = loop_.addTimer(kAcceptPauseMs, [this] {
        resume_timer_ = 0;
        if (listen_fd_ >= 0) {
            loop_.modify(listen_fd_, EPOLLIN, this);
        }
    });
}

void Acceptor::warn(int err) {
    const std::int64_t now = loop_.nowMs();
    if (now - last_warn_ms_ < kAcceptWarnIntervalMs) {
        return;  // at most one line a second: this happens in storms
    }
    last_warn_ms_ = now;
    spdlog::warn("accept: {} ({} accept errors so far, {} connections shed at the fd limit)",
                 sockets::errorText(err), errors_, shed_);
}

}  // namespace tundra::net
