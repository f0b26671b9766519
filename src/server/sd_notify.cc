// SPDX-License-Identifier: Apache-2.0
// sd_notify(3) in-tree: an unbound AF_UNIX datagram socket sending to $NOTIFY_SOCKET.
#include "server/sd_notify.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <utility>

namespace tundra::server {

namespace {

std::string_view env(const char* name) {
    const char* v = std::getenv(name);
    return v == nullptr ? std::string_view{} : std::string_view{v};
}

std::uint64_t monotonicUsec() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000U +
           static_cast<std::uint64_t>(ts.tv_nsec) / 1000U;
}

template <typename T>
bool parseWhole(std::string_view text, T& out) {
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return !text.empty() && ec == std::errc() && ptr == text.data() + text.size();
}

}  // namespace

SdNotifier SdNotifier::fromEnvironment() {
    SdNotifier n{std::string(env("NOTIFY_SOCKET"))};
    n.watchdog_interval_ms_ = watchdogIntervalFrom(env("WATCHDOG_USEC"), env("WATCHDOG_PID"),
                                                   static_cast<long>(::getpid()));
    return n;
}

SdNotifier::SdNotifier(std::string socket_path, std::uint64_t watchdog_usec)
    : socket_path_(std::move(socket_path)) {
    if (watchdog_usec > 0) {
        watchdog_interval_ms_ = watchdogIntervalFrom(std::to_string(watchdog_usec), "", 0);
    }
}

SdNotifier::~SdNotifier() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

SdNotifier::SdNotifier(SdNotifier&& other) noexcept
    : socket_path_(std::move(other.socket_path_)),
      watchdog_interval_ms_(other.watchdog_interval_ms_),
      fd_(std::exchange(other.fd_, -1)),
      warned_(other.warned_) {
    other.socket_path_.clear();
}

SdNotifier& SdNotifier::operator=(SdNotifier&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        socket_path_ = std::move(other.socket_path_);
        other.socket_path_.clear();
        watchdog_interval_ms_ = other.watchdog_interval_ms_;
        fd_ = std::exchange(other.fd_, -1);
        warned_ = other.warned_;
    }
    return *this;
}

std::int64_t SdNotifier::watchdogIntervalFrom(std::string_view usec, std::string_view pid,
                                              long self_pid) {
    std::uint64_t value = 0;
    if (!parseWhole(usec, value) || value == 0) {
        return 0;
    }
    if (!pid.empty()) {
        long owner = 0;
        if (!parseWhole(pid, owner) || owner != self_pid) {
            return 0;  // the watchdog is meant for another process (e.g. our parent)
        }
    }
    // Ping at half the deadline, as sd_watchdog_enabled(3) recommends.
    const std::uint64_t ms = value / 2000U;
    return ms == 0 ? 1
                   : static_cast<std::int64_t>(std::min<std::uint64_t>(
                         ms, static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())));
}

bool SdNotifier::ready(std::string_view status_text) {
    if (status_text.empty()) {
        return send("READY=1");
    }
    return send("READY=1\nSTATUS=" + std::string(status_text));
}

bool SdNotifier::status(std::string_view text) { return send("STATUS=" + std::string(text)); }

bool SdNotifier::reloading() {
    return send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonicUsec()));
}

bool SdNotifier::stopping(std::string_view status_text) {
    if (status_text.empty()) {
        return send("STOPPING=1");
    }
    return send("STOPPING=1\nSTATUS=" + std::string(status_text));
}

bool SdNotifier::watchdog() { return send("WATCHDOG=1"); }

bool SdNotifier::send(std::string_view message) {
    if (socket_path_.empty()) {
        return false;
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    // Abstract names ('@' in the variable) have no terminating NUL and are not C strings;
    // a path must leave room for its NUL.
    const bool abstract = socket_path_[0] == '@';
    if (socket_path_.size() + (abstract ? 0 : 1) > sizeof(addr.sun_path) ||
        (!abstract && socket_path_[0] != '/')) {
        if (!warned_) {
            spdlog::warn("NOTIFY_SOCKET '{}' is not a usable socket address", socket_path_);
            warned_ = true;
        }
        return false;
    }
    std::memcpy(addr.sun_path, socket_path_.data(), socket_path_.size());
    if (abstract) {
        addr.sun_path[0] = '\0';
    }
    const auto addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) +
                                                 socket_path_.size() + (abstract ? 0 : 1));

    if (fd_ < 0) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd_ < 0) {
            const int err = errno;
            spdlog::warn("sd_notify: socket: {}", std::strerror(err));
            return false;
        }
    }
    ssize_t n = 0;
    do {
        n = ::sendto(fd_, message.data(), message.size(), MSG_NOSIGNAL | MSG_DONTWAIT,
                     reinterpret_cast<const sockaddr*>(&addr), addr_len);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        const int err = errno;
        if (!warned_) {
            spdlog::warn("sd_notify to {}: {}", socket_path_, std::strerror(err));
            warned_ = true;
        } else {
            spdlog::debug("sd_notify to {}: {}", socket_path_, std::strerror(err));
        }
        return false;
    }
    return true;
}

}  // namespace tundra::server
