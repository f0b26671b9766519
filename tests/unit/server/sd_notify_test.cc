// SPDX-License-Identifier: Apache-2.0
// sd_notify: the datagrams a test AF_UNIX socket receives (path and abstract addresses), their
// order, the no-op when NOTIFY_SOCKET is unset, and WATCHDOG_USEC/WATCHDOG_PID parsing.
#include "server/sd_notify.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace tundra::server {
namespace {

// A bound datagram socket standing in for systemd's notify socket. Receives block for at
// most 5 s (a failed send then fails the test instead of hanging it).
class NotifyReceiver {
public:
    // `abstract`: bind an abstract name instead of a file in a temporary directory.
    explicit NotifyReceiver(bool abstract) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        timeval tv{5, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        socklen_t len = 0;
        if (abstract) {
            name_ = "@tundra-notify-test-" + std::to_string(::getpid());
            std::memcpy(addr.sun_path + 1, name_.data() + 1, name_.size() - 1);
            len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name_.size());
        } else {
            std::string templ = ::testing::TempDir() + "tundra-notify-XXXXXX";
            dir_ = ::mkdtemp(templ.data()) != nullptr ? templ : std::string();
            name_ = dir_ + "/notify";
            std::memcpy(addr.sun_path, name_.c_str(), name_.size() + 1);
            len = static_cast<socklen_t>(sizeof addr);
        }
        bound_ = ::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), len) == 0;
    }
    ~NotifyReceiver() {
        ::close(fd_);
        if (!dir_.empty()) {
            ::unlink(name_.c_str());
            ::rmdir(dir_.c_str());
        }
    }
    NotifyReceiver(const NotifyReceiver&) = delete;
    NotifyReceiver& operator=(const NotifyReceiver&) = delete;

    [[nodiscard]] bool bound() const { return bound_; }
    // What NOTIFY_SOCKET would hold.
    [[nodiscard]] const std::string& name() const { return name_; }

    // The next datagram, or "<timeout>".
    std::string next() {
        char buf[4096];
        const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        return n < 0 ? std::string("<timeout>") : std::string(buf, static_cast<std::size_t>(n));
    }
    // True when no datagram is waiting.
    bool empty() {
        char c = 0;
        return ::recv(fd_, &c, 1, MSG_DONTWAIT | MSG_PEEK) < 0;
    }

private:
    int fd_ = -1;
    bool bound_ = false;
    std::string dir_;
    std::string name_;
};

// Sets environment variables for one test and restores them afterwards.
class ScopedEnv {
public:
    ScopedEnv& set(const char* name, const std::string& value) {
        remember(name);
        ::setenv(name, value.c_str(), 1);
        return *this;
    }
    ScopedEnv& unset(const char* name) {
        remember(name);
        ::unsetenv(name);
        return *this;
    }
    ~ScopedEnv() {
        for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
            if (it->had) {
                ::setenv(it->name.c_str(), it->value.c_str(), 1);
            } else {
                ::unsetenv(it->name.c_str());
            }
        }
    }

private:
    struct Saved {
        std::string name;
        bool had;
        std::string value;
    };
    void remember(const char* name) {
        const char* v = std::getenv(name);
        saved_.push_back({name, v != nullptr, v != nullptr ? v : ""});
    }
    std::vector<Saved> saved_;
};

std::uint64_t monotonicUsec() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000U +
           static_cast<std::uint64_t>(ts.tv_nsec) / 1000U;
}

void expectLifecycleInOrder(NotifyReceiver& rx) {
    ScopedEnv env;
    env.set("NOTIFY_SOCKET", rx.name()).unset("WATCHDOG_USEC").unset("WATCHDOG_PID");
    SdNotifier n = SdNotifier::fromEnvironment();
    ASSERT_TRUE(n.enabled());

    EXPECT_TRUE(n.ready("listening on 127.0.0.1:4242"));
    EXPECT_TRUE(n.status("3 connections, 2 online, 1 detached"));
    const std::uint64_t before = monotonicUsec();
    EXPECT_TRUE(n.reloading());
    const std::uint64_t after = monotonicUsec();
    EXPECT_TRUE(n.ready());
    EXPECT_TRUE(n.watchdog());
    EXPECT_TRUE(n.stopping("draining 3 connections"));
    EXPECT_TRUE(n.stopping());

    EXPECT_EQ(rx.next(), "READY=1\nSTATUS=listening on 127.0.0.1:4242");
    EXPECT_EQ(rx.next(), "STATUS=3 connections, 2 online, 1 detached");
    const std::string reloading = rx.next();
    const std::string prefix = "RELOADING=1\nMONOTONIC_USEC=";
    ASSERT_TRUE(reloading.starts_with(prefix)) << reloading;
    const std::uint64_t usec = std::stoull(reloading.substr(prefix.size()));
    EXPECT_GE(usec, before);
    EXPECT_LE(usec, after);
    EXPECT_EQ(rx.next(), "READY=1");
    EXPECT_EQ(rx.next(), "WATCHDOG=1");
    EXPECT_EQ(rx.next(), "STOPPING=1\nSTATUS=draining 3 connections");
    EXPECT_EQ(rx.next(), "STOPPING=1");
    EXPECT_TRUE(rx.empty());
}

TEST(SdNotify, MessagesArriveInOrderOnAPathSocket) {
    NotifyReceiver rx(false);
    ASSERT_TRUE(rx.bound()) << rx.name();
    expectLifecycleInOrder(rx);
}

TEST(SdNotify, MessagesArriveInOrderOnAnAbstractSocket) {
    NotifyReceiver rx(true);
    ASSERT_TRUE(rx.bound()) << rx.name();
    expectLifecycleInOrder(rx);
}

TEST(SdNotify, NothingHappensWithoutNotifySocket) {
    ScopedEnv env;
    env.unset("NOTIFY_SOCKET").unset("WATCHDOG_USEC").unset("WATCHDOG_PID");
    SdNotifier n = SdNotifier::fromEnvironment();
    EXPECT_FALSE(n.enabled());
    EXPECT_FALSE(n.ready());
    EXPECT_FALSE(n.watchdog());
    EXPECT_EQ(n.watchdogIntervalMs(), 0);
}

TEST(SdNotify, AnUnusableAddressFailsWithoutThrowing) {
    for (const std::string& bad :
         {std::string("relative/path"), std::string("/") + std::string(200, 'x'),
          ::testing::TempDir() + "tundra-no-such-dir/notify"}) {
        SdNotifier n(bad);
        EXPECT_TRUE(n.enabled());
        EXPECT_FALSE(n.ready()) << bad;
        EXPECT_FALSE(n.ready()) << bad;  // still fine the second time (warned once)
    }
}

TEST(SdNotify, AMovedNotifierKeepsSending) {
    NotifyReceiver rx(false);
    ASSERT_TRUE(rx.bound());
    SdNotifier a(rx.name());
    EXPECT_TRUE(a.status("one"));
    SdNotifier b(std::move(a));
    EXPECT_TRUE(b.status("two"));
    SdNotifier c;
    c = std::move(b);
    EXPECT_TRUE(c.status("three"));
    EXPECT_EQ(rx.next(), "STATUS=one");
    EXPECT_EQ(rx.next(), "STATUS=two");
    EXPECT_EQ(rx.next(), "STATUS=three");
}

TEST(SdNotify, WatchdogIntervalIsHalfOfWatchdogUsec) {
    EXPECT_EQ(SdNotifier::watchdogIntervalFrom("30000000", "", 42), 15000);
    EXPECT_EQ(SdNotifier::watchdogIntervalFrom("30000000", "42", 42), 15000);
    EXPECT_EQ(SdNotifier::watchdogIntervalFrom("1", "", 42), 1);  // never 0 when enabled
    EXPECT_EQ(SdNotifier::watchdogIntervalFrom("3000", "", 42), 1);
    EXPECT_EQ(SdNotifier::watchdogIntervalFrom("5000", "", 42), 2);
}

TEST(SdNotify, NoWatchdogForAnotherPidOrABadValue) {
    EXPECT_EQ(SdNotifier::watchdogIntervalFrom("30000000", "41", 42), 0);
    EXPECT_EQ(SdNotifier::watchdogIntervalFrom("30000000", "x", 42), 0);
    EXPECT_EQ(SdNotifier::watchdogIntervalFrom("", "", 42), 0);
    EXPECT_EQ(SdNotifier::watchdogIntervalFrom("0", "", 42), 0);
    EXPECT_EQ(SdNotifier::watchdogIntervalFrom("-5", "", 42), 0);
    EXPECT_EQ(SdNotifier::watchdogIntervalFrom("10s", "", 42), 0);
}

TEST(SdNotify, WatchdogFromTheEnvironment) {
    ScopedEnv env;
    env.set("NOTIFY_SOCKET", "/run/systemd/notify")
        .set("WATCHDOG_USEC", "20000000")
        .set("WATCHDOG_PID", std::to_string(::getpid()));
    EXPECT_EQ(SdNotifier::fromEnvironment().watchdogIntervalMs(), 10000);
    env.set("WATCHDOG_PID", std::to_string(::getpid() + 1));
    EXPECT_EQ(SdNotifier::fromEnvironment().watchdogIntervalMs(), 0);
    env.unset("WATCHDOG_PID");
    EXPECT_EQ(SdNotifier::fromEnvironment().watchdogIntervalMs(), 10000);
    EXPECT_EQ(SdNotifier("", 8'000'000).watchdogIntervalMs(), 4000);
}

}  // namespace
}  // namespace tundra::server
