// SPDX-License-Identifier: Apache-2.0
#include "server/server.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <utility>

#include <spdlog/spdlog.h>

#include "common/session_id.h"

namespace tundra::server {

namespace {

core::DisconnectReason toCore(net::CloseReason reason) {
    switch (reason) {
        case net::CloseReason::PeerClosed:
            return core::DisconnectReason::PeerClosed;
        case net::CloseReason::SlowConsumer:
            return core::DisconnectReason::SlowConsumer;
        case net::CloseReason::Error:
        case net::CloseReason::FlushTimeout:
            return core::DisconnectReason::Error;
        case net::CloseReason::Local:
            return core::DisconnectReason::Local;
    }
    return core::DisconnectReason::Error;
}

net::TcpServerOptions tcpOptions(const Config& c) {
    net::TcpServerOptions o;
    o.bind = c.bind;
    o.port = c.port;
    o.output_cap = c.output_cap_bytes;
    return o;
}

std::string hostPort(const std::string& host, std::uint16_t port) {
    if (host.find(':') != std::string::npos) {
        return "[" + host + "]:" + std::to_string(port);
    }
    return host + ":" + std::to_string(port);
}

}  // namespace

std::uint64_t residentBytes() {
    std::FILE* f = std::fopen("/proc/self/statm", "r");
    if (f == nullptr) {
        return 0;
    }
    unsigned long size = 0;
    unsigned long resident = 0;
    int n = std::fscanf(f, "%lu %lu", &size, &resident);
    std::fclose(f);
    if (n != 2) {
        return 0;
    }
    return static_cast<std::uint64_t>(resident) * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

Server::Server(Config config) : config_(std::move(config)), tcp_(loop_, tcpOptions(config_)) {
    sessions_ = std::make_unique<core::SessionManager>(
        config_.core, *this, clock_, [] { return common::newSessionId(); },
        [this] { return stats(); });
    tcp_.setConnectCallback([this](net::ConnId id, const net::ConnInfo& info) {
        spdlog::debug("conn={} accepted from {}", id, info.peer);
        sessions_->onConnect(id);
    });
    tcp_.setDataCallback(
        [this](net::ConnId id, std::span<const std::uint8_t> bytes) { return onData(id, bytes); });
    tcp_.setCloseCallback(
        [this](net::ConnId id, net::CloseReason reason, std::vector<std::uint64_t> unwritten) {
            onClosed(id, reason, std::move(unwritten));
        });
}

Server::~Server() = default;

bool Server::start(std::string& error) {
    if (!tcp_.listen(error)) {
        return false;
    }
    signals_ = std::make_unique<net::SignalWatcher>(
        loop_, std::vector<int>{SIGTERM, SIGINT, SIGHUP}, [this](int signo) { onSignal(signo); });
    loop_.addTimer(
        sessions_->tickIntervalMs(), [this] { sessions_->tick(); }, true);
    spdlog::info("tundrad {} listening on {} (max_clients={} max_payload={} ping_interval={}ms "
                 "session_timeout={}ms)",
                 config_.core.software_version, hostPort(config_.bind, tcp_.port()),
                 config_.core.max_clients, config_.core.max_payload,
                 config_.core.ping_interval_ms, config_.core.session_timeout_ms);
    return true;
}

int Server::run() {
    loop_.run();
    spdlog::info("tundrad stopped");
    return 0;
}

std::uint16_t Server::port() const { return tcp_.port(); }

bool Server::send(core::ConnId conn, SharedFrame frame, std::uint64_t delivery_id) {
    if (closing_.contains(conn)) {
        return false;
    }
    return tcp_.send(conn, std::move(frame), delivery_id);
}

void Server::closeAfterFlush(core::ConnId conn) {
    closing_.insert(conn);
    tcp_.closeAfterFlush(conn);
}

std::size_t Server::onData(net::ConnId id, std::span<const std::uint8_t> bytes) {
    std::size_t used = 0;
    while (used < bytes.size()) {
        if (closing_.contains(id)) {
            return bytes.size();  // the connection is on its way out: ignore what follows
        }
        auto r = decodeFrame(bytes.subspan(used), config_.core.max_payload);
        if (r.status == DecodeStatus::NeedMore) {
            break;
        }
        if (r.status == DecodeStatus::Error) {
            sessions_->onHeaderError(id, r.header.sequence, r.error, r.reason);
            closeAfterFlush(id);
            return bytes.size();
        }
        used += r.consumed;
        sessions_->onFrame(id, r.header, r.payload);
    }
    return used;
}

void Server::onClosed(net::ConnId id, net::CloseReason reason,
                      std::vector<std::uint64_t> unwritten) {
    closing_.erase(id);
    auto core_reason = draining_ ? core::DisconnectReason::Shutdown : toCore(reason);
    if (reason == net::CloseReason::SlowConsumer) {
        spdlog::warn("conn={} disconnected: slow consumer ({} unwritten deliveries)", id,
                     unwritten.size());
    } else {
        spdlog::debug("conn={} closed: {}", id, net::closeReasonName(reason));
    }
    sessions_->onDisconnect(id, core_reason, unwritten);
    if (draining_ && tcp_.connectionCount() == 0) {
        loop_.quit();
    }
}

void Server::onSignal(int signo) {
    if (signo == SIGHUP) {
        reload();
        return;
    }
    spdlog::info("received {}, draining", signo == SIGTERM ? "SIGTERM" : "SIGINT");
    beginDrain();
}

void Server::beginDrain() {
    if (draining_) {
        return;
    }
    draining_ = true;
    tcp_.stopAccepting();
    sessions_->shutdown(config_.shutdown_retry_after_s);
    if (tcp_.connectionCount() == 0) {
        loop_.quit();
        return;
    }
    loop_.addTimer(config_.drain_timeout_ms, [this] {
        spdlog::warn("drain timeout: {} connections still open, exiting", tcp_.connectionCount());
        loop_.quit();
    });
}

void Server::reload() {
    spdlog::info("SIGHUP: nothing to reload (no config file support yet)");
}

core::ServerStats Server::stats() const {
    core::ServerStats s;
    s.bytes_in = tcp_.bytesIn();
    s.bytes_out = tcp_.bytesOut();
    s.rss_bytes = residentBytes();
    return s;
}

}  // namespace tundra::server
