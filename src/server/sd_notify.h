// SPDX-License-Identifier: Apache-2.0
// The systemd notify protocol (sd_notify(3)) without libsystemd: newline-separated VAR=VALUE
// datagrams to the AF_UNIX socket named by $NOTIFY_SOCKET. Does nothing when it is unset.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tundra::server {

/// One notify socket for the process lifetime. Not thread-safe; use it from the loop thread.
/// Sends never block (MSG_DONTWAIT): a notification that cannot be queued is dropped and
/// reported by the false return, so a stalled systemd cannot stall the reactor.
class SdNotifier {
public:
    /// Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from the environment.
    static SdNotifier fromEnvironment();

    /// `socket_path`: a filesystem path, or "@name" for an abstract socket; "" = disabled.
    /// `watchdog_usec`: the WATCHDOG_USEC value, 0 = no watchdog.
    explicit SdNotifier(std::string socket_path = {}, std::uint64_t watchdog_usec = 0);
    ~SdNotifier();
    SdNotifier(SdNotifier&& other) noexcept;
    SdNotifier& operator=(SdNotifier&& other) noexcept;
    SdNotifier(const SdNotifier&) = delete;
    SdNotifier& operator=(const SdNotifier&) = delete;

    /// True when a notify socket is configured (running under systemd with Type=notify).
    [[nodiscard]] bool enabled() const { return !socket_path_.empty(); }

    /// READY=1, plus STATUS= when `status` is not empty. Also used after a reload.
    bool ready(std::string_view status = {});
    /// STATUS=<text> (a one-line status shown by `systemctl status`).
    bool status(std::string_view text);
    /// RELOADING=1 with MONOTONIC_USEC=<CLOCK_MONOTONIC now>; follow with ready().
    bool reloading();
    /// STOPPING=1, plus STATUS= when `status` is not empty.
    bool stopping(std::string_view status = {});
    /// WATCHDOG=1.
    bool watchdog();
    /// Sends `message` as is (one datagram). True if it was queued; false when disabled or on
    /// error (errno is logged at debug level; the first failure at warn).
    bool send(std::string_view message);

    /// How often to call watchdog(): half of WATCHDOG_USEC, in ms (at least 1); 0 when systemd
    /// asked for no watchdog, or WATCHDOG_PID names another process.
    [[nodiscard]] std::int64_t watchdogIntervalMs() const { return watchdog_interval_ms_; }

    /// Parses a WATCHDOG_USEC value (and the optional WATCHDOG_PID, "" if unset) into the ping
    /// interval in ms for process `self_pid`; 0 for a missing, malformed or zero value, or a
    /// WATCHDOG_PID that is not `self_pid`.
    static std::int64_t watchdogIntervalFrom(std::string_view usec, std::string_view pid,
                                             long self_pid);

private:
    std::string socket_path_;
    std::int64_t watchdog_interval_ms_ = 0;
    int fd_ = -1;  // opened on first send
    bool warned_ = false;
};

}  // namespace tundra::server
