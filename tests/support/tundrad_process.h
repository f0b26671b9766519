// SPDX-License-Identifier: Apache-2.0
// Test support: runs the real tundrad binary on 127.0.0.1 with port 0, waits for its
// "listening on ADDR:PORT" line (with a deadline, never a sleep), and stops it with SIGTERM.
// stderr is drained by a thread so the server never blocks on a full pipe; lines are kept so
// tests can wait for a log line.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace tundra::testing {

#ifndef TUNDRAD_PATH
#error "define TUNDRAD_PATH to the tundrad binary"
#endif

class TundradProcess {
public:
    /// Starts `tundrad --bind 127.0.0.1 --port 0 <extra_args>` and waits up to `timeout` for
    /// readiness. started() tells whether it worked; output() has what it printed.
    explicit TundradProcess(std::vector<std::string> extra_args = {},
                            std::chrono::milliseconds timeout = std::chrono::seconds(10),
                            bool default_bind = true) {
        std::vector<std::string> args{TUNDRAD_PATH};
        if (default_bind) {
            args.insert(args.end(), {"--bind", "127.0.0.1", "--port", "0"});
        }
        args.insert(args.end(), extra_args.begin(), extra_args.end());
        start(args);
        if (pid_ > 0) {
            auto line = waitForLine("listening on", timeout);
            if (line) {
                auto pos = line->rfind(':');
                port_ = static_cast<std::uint16_t>(std::stoi(line->substr(pos + 1)));
            }
        }
    }

    ~TundradProcess() {
        if (pid_ > 0 && !exited_) {
            ::kill(pid_, SIGKILL);
            waitExit(std::chrono::seconds(5));
        }
        if (reader_.joinable()) {
            reader_.join();
        }
    }

    TundradProcess(const TundradProcess&) = delete;
    TundradProcess& operator=(const TundradProcess&) = delete;

    /// RLIMIT_NOFILE (soft and hard) for the processes started from now on (0 = inherited).
    static void setChildFdLimit(std::uint64_t n) { childFdLimit() = n; }

    [[nodiscard]] bool started() const { return port_ != 0; }
    [[nodiscard]] std::uint16_t port() const { return port_; }
    [[nodiscard]] pid_t pid() const { return pid_; }

    void signal(int signo) const { ::kill(pid_, signo); }

    /// Sends SIGTERM and waits for exit; returns the exit code (or 128+signal), nullopt on
    /// timeout.
    std::optional<int> stop(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        if (!exited_) {
            ::kill(pid_, SIGTERM);
        }
        return waitExit(timeout);
    }

    /// Waits for the process to exit by itself (the stderr pipe closes), then reaps it.
    std::optional<int> waitExit(std::chrono::milliseconds timeout) {
        {
            std::unique_lock lock(mu_);
            if (!cv_.wait_for(lock, timeout, [&] { return eof_; })) {
                return std::nullopt;
            }
        }
        if (!exited_) {
            int status = 0;
            ::waitpid(pid_, &status, 0);
            exited_ = true;
            exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        return exit_code_;
    }

    /// Waits until a stderr line containing `needle` appears (counting lines seen before too,
    /// from `from_line`); returns it.
    std::optional<std::string> waitForLine(const std::string& needle,
                                           std::chrono::milliseconds timeout,
                                           std::size_t from_line = 0) {
        std::unique_lock lock(mu_);
        std::optional<std::string> found;
        cv_.wait_for(lock, timeout, [&] {
            for (std::size_t i = from_line; i < lines_.size(); ++i) {
                if (lines_[i].find(needle) != std::string::npos) {
                    found = lines_[i];
                    return true;
                }
            }
            return eof_;
        });
        return found;
    }

    [[nodiscard]] std::size_t lineCount() const {
        std::lock_guard lock(mu_);
        return lines_.size();
    }

    [[nodiscard]] std::string output() const {
        std::lock_guard lock(mu_);
        std::string all;
        for (const auto& l : lines_) {
            all += l;
            all += '\n';
        }
        return all;
    }

private:
    static std::uint64_t& childFdLimit() {
        static std::uint64_t n = 0;
        return n;
    }

    void start(const std::vector<std::string>& args) {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) {
            return;
        }
        pid_ = ::fork();
        if (pid_ == 0) {
            if (childFdLimit() != 0) {
                const rlimit lim{static_cast<rlim_t>(childFdLimit()),
                                 static_cast<rlim_t>(childFdLimit())};
                ::setrlimit(RLIMIT_NOFILE, &lim);
            }
            ::dup2(fds[1], STDERR_FILENO);
            ::dup2(fds[1], STDOUT_FILENO);
            std::vector<char*> argv;
            for (const auto& a : args) {
                argv.push_back(const_cast<char*>(a.c_str()));
            }
            argv.push_back(nullptr);
            ::execv(argv[0], argv.data());
            std::fprintf(stderr, "exec %s: %s\n", argv[0], std::strerror(errno));
            ::_exit(127);
        }
        ::close(fds[1]);
        int rfd = fds[0];
        reader_ = std::thread([this, rfd] {
            std::string partial;
            char buf[4096];
            for (;;) {
                ssize_t n = ::read(rfd, buf, sizeof buf);
                if (n < 0 && errno == EINTR) {
                    continue;
                }
                if (n <= 0) {
                    break;
                }
                partial.append(buf, static_cast<std::size_t>(n));
                std::size_t nl;
                std::lock_guard lock(mu_);
                while ((nl = partial.find('\n')) != std::string::npos) {
                    lines_.push_back(partial.substr(0, nl));
                    partial.erase(0, nl + 1);
                }
                cv_.notify_all();
            }
            ::close(rfd);
            std::lock_guard lock(mu_);
            if (!partial.empty()) {
                lines_.push_back(partial);
            }
            eof_ = true;
            cv_.notify_all();
        });
    }

    pid_t pid_ = -1;
    std::uint16_t port_ = 0;
    bool exited_ = false;
    int exit_code_ = -1;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::vector<std::string> lines_;
    bool eof_ = false;
    std::thread reader_;
};

}  // namespace tundra::testing
