// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the storage integration tests: a tundrad on a data directory, restarted on
// the same one, raw clients that register, log out and collect replays.
#pragma once

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "integration/server_fixture.h"
#include "support/raw_client.h"
#include "support/scratch_dir.h"
#include "support/tundrad_process.h"
#include "tundra/messages.h"

namespace tundra::testing {

using namespace std::chrono_literals;

/// tundrad on `dir` with presence off and the given extra flags.
inline std::unique_ptr<TundradProcess> startOn(const std::string& dir,
                                               std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"--no-presence", "--data-dir", dir};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<TundradProcess>(args);
}

/// Flags for floods of acked messages to offline users (crash and drain tests): every ACK waits
/// for its fsync, and the buffers and rate limits never drop or refuse one.
inline const std::vector<std::string> kFloodFlags{"--fsync",
                                                  "always",
                                                  "--max-buffered",
                                                  "100000",
                                                  "--user-buffer-bytes",
                                                  "67108864",
                                                  "--rate-messages-per-s",
                                                  "0"};

/// Registers `name` (a new session unless `session` is set); the WELCOME, or nullopt. Waits up
/// to 30 s: a server syncing every commit on a machine busy with other disk work (a parallel
/// build) was once seen to take over 5 s to answer; only a failure waits that long.
inline std::optional<msg::Welcome> registerOn(RawClient& c, const std::string& name,
                                              Uuid session = {}, std::uint64_t last_id = 0) {
    auto f = c.registerAs(name, ClientKind::User, session, last_id, std::chrono::seconds(30));
    if (!f || f->type() != MsgType::System) {
        return std::nullopt;
    }
    auto s = asSystem(*f);
    if (s.event != SystemEvent::Welcome) {
        return std::nullopt;
    }
    return s.welcome;
}

/// Answers a server PING (a client that does not is closed after two ping intervals).
inline bool answerPing(RawClient& c, const RawFrame& f) {
    if (f.type() != MsgType::Ping) {
        return false;
    }
    msg::Ping p;
    if (msg::parse(f.span(), p) == nullptr) {
        c.send(msg::encodePing(MsgType::Pong, p.token, f.header.sequence));
    }
    return true;
}

/// A MESSAGE with the ACK flag; the ACK or ERROR that answers it (PINGs answered, other
/// frames set aside).
inline std::optional<RawFrame> say(RawClient& c, std::string_view to, std::string_view text) {
    c.send(msg::encode(msg::Message{to, text}, c.nextSeq(), flags::kAck));
    for (;;) {
        auto f = c.read(10s);
        if (!f || f->type() == MsgType::Ack || f->type() == MsgType::Error) {
            return f;
        }
        if (!answerPing(c, *f)) {
            c.skipped().push_back(std::move(*f));
        }
    }
}

/// LOGOUT and wait for the close: the user is known and offline, its session over.
inline void logoutAndClose(RawClient& c) {
    c.send(msg::encodeEmpty(MsgType::Logout, c.nextSeq()));
    c.waitClosed(5s);
}

/// The next `n` deliveries (other frames skipped).
inline std::vector<RawFrame> readDeliveries(RawClient& c, std::size_t n,
                                            std::chrono::milliseconds timeout = 5s) {
    std::vector<RawFrame> out;
    while (out.size() < n) {
        auto f = c.readUntil(MsgType::BroadcastMessage, timeout);
        if (!f) {
            break;
        }
        out.push_back(std::move(*f));
    }
    return out;
}

struct HttpAnswer {
    int status = 0;
    std::string body;
};

/// One GET to the admin listener on 127.0.0.1:port.
inline std::optional<HttpAnswer> httpGet(std::uint16_t port, const std::string& path) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        ::close(fd);
        return std::nullopt;
    }
    const std::string req = "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
    ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    std::string all;
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 5000) <= 0) {
            break;
        }
        char buf[4096];
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
            break;
        }
        all.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    const auto end = all.find("\r\n\r\n");
    if (all.size() < 12 || end == std::string::npos) {
        return std::nullopt;
    }
    return HttpAnswer{std::stoi(all.substr(9, 3)), all.substr(end + 4)};
}

inline std::uint16_t adminPortOf(TundradProcess& server) {
    auto line = server.waitForLine("admin listening on", 5s);
    return line ? static_cast<std::uint16_t>(std::stoi(line->substr(line->rfind(':') + 1))) : 0;
}

}  // namespace tundra::testing
