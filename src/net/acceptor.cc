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
// Connections shed per wakeup at the fd limit (each costs accept + close + accept + close +
// open); the rest wait for the next wakeup, so a storm at the limit cannot take the loop.
constexpr int kMaxShedsPerWakeup = 8;
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
    int sheds = 0;
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
                // accept4 fails with EMFILE before it looks at the backlog, so this says
                // nothing about a waiting peer: shedOne() finds out. Stop once the backlog is
                // empty (no more rounds of syscalls for nothing) or after a few real sheds.
                if (!shedOne(r.err) || ++sheds >= kMaxShedsPerWakeup) {
                    return;
                }
                continue;
            default:  // ENOBUFS, ENOMEM: try again next iteration
                ++errors_;
                warn(r.err);
                return;
        }
    }
}

bool Acceptor::shedOne(int err) {
    if (spare_fd_ < 0) {
        spare_fd_ = openSpareFd();
    }
    if (spare_fd_ < 0) {
        ++errors_;
        warn(err);
        pause();
        return false;
    }
    sockets::closeFd(spare_fd_);
    auto r = sockets::acceptPeer(listen_fd_);
    const bool shed = r.fd >= 0;
    sockets::closeFd(r.fd);
    spare_fd_ = openSpareFd();
    if (shed) {  // a real peer was turned away; an empty backlog is not an error
        ++errors_;
        ++shed_;
        warn(err);
    }
    return shed;
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
