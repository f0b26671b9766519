// SPDX-License-Identifier: Apache-2.0
// Acceptor: a listening socket registered with the loop. Accepts a bounded number of
// connections per wakeup and sheds connections at the fd limit (the spare-fd EMFILE trick).
// Used by TcpServer.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "net/event_loop.h"

namespace tundra::net {

/// Owns the listening socket plus a reserved fd on /dev/null. When accept4 fails with
/// EMFILE/ENFILE the pending connection would stay in the backlog and the level-triggered loop
/// would spin on it; instead the spare fd is closed, the connection accepted and closed at
/// once (the peer sees it end), and the spare reopened. If even the spare cannot be reopened,
/// the socket is paused for a while (kAcceptPauseMs in acceptor.cc).
class Acceptor final : public IoHandler {
public:
    /// Gets each accepted non-blocking socket and its peer ("ip:port" / "[ip]:port") and owns
    /// the fd from then on. Returns false if it could not take the connection (it has closed
    /// the fd): that counts as an accept error.
    using AcceptCallback = std::function<bool(int fd, std::string peer)>;

    /// Takes ownership of `listen_fd` (bound, listening, non-blocking) and registers it.
    Acceptor(EventLoop& loop, int listen_fd, AcceptCallback on_accept);
    ~Acceptor() override;
    Acceptor(const Acceptor&) = delete;
    Acceptor& operator=(const Acceptor&) = delete;

    /// Closes the listening socket and the spare fd. Safe inside onEvents() and the accept
    /// callback: the object stays, only the sockets go.
    void stop();
    void onEvents(std::uint32_t events) override;

    /// Accept failures, including connections shed under EMFILE and refused by the callback.
    [[nodiscard]] std::uint64_t errors() const { return errors_; }
    /// Connections accepted and closed at once at the fd limit: one per real peer turned away.
    [[nodiscard]] std::uint64_t shed() const { return shed_; }

private:
    /// Closes the spare fd, accepts and closes one waiting peer, reopens the spare. Returns
    /// true if a peer was shed, false if none was waiting (or no spare fd could be had).
    bool shedOne(int err);
    void pause();
    void warn(int err);

    EventLoop& loop_;
    int listen_fd_;
    int spare_fd_;
    AcceptCallback on_accept_;
    TimerId resume_timer_ = 0;
    std::int64_t last_warn_ms_;
    std::uint64_t errors_ = 0;
    std::uint64_t shed_ = 0;
};

}  // namespace tundra::net
