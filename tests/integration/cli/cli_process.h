// SPDX-License-Identifier: Apache-2.0
// Test support for the CLI integration tests: runs tundra-cli with pipes (or a pseudo-terminal
// for the interactive mode), collects its output by line in reader threads, and lets tests wait
// for a line with a deadline. Never sleeps.
#pragma once

#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace tundra::testing {

#ifndef TUNDRA_CLI_PATH
#error "define TUNDRA_CLI_PATH to the tundra-cli binary"
#endif

/// Output of one stream, split into lines as it arrives.
class LineSink {
public:
    void append(const char* data, std::size_t n) {
        std::lock_guard lock(mu_);
        raw_.append(data, n);
        partial_.append(data, n);
        std::size_t nl;
        while ((nl = partial_.find('\n')) != std::string::npos) {
            std::string line = partial_.substr(0, nl);
            if (!line.empty() && line.back() == '\r') {
                line.pop_back();
            }
            lines_.push_back(std::move(line));
            partial_.erase(0, nl + 1);
        }
        cv_.notify_all();
    }
    void close() {
        std::lock_guard lock(mu_);
        if (!partial_.empty()) {
            lines_.push_back(partial_);
            partial_.clear();
        }
        eof_ = true;
        cv_.notify_all();
    }
    /// First line at index >= from that contains `needle`.
    std::optional<std::string> waitLine(std::string_view needle, std::chrono::milliseconds timeout,
                                        std::size_t from = 0) {
        std::unique_lock lock(mu_);
        std::optional<std::string> found;
        cv_.wait_for(lock, timeout, [&] {
            for (std::size_t i = from; i < lines_.size(); ++i) {
                if (lines_[i].find(needle) != std::string::npos) {
                    found = lines_[i];
                    return true;
                }
            }
            return eof_;
        });
        return found;
    }
    /// Waits until everything received so far (raw bytes, partial lines too) contains
    /// `needle` after byte offset `from`; returns the offset just past it.
    std::optional<std::size_t> waitRaw(std::string_view needle, std::chrono::milliseconds timeout,
                                       std::size_t from = 0) {
        std::unique_lock lock(mu_);
        std::optional<std::size_t> at;
        cv_.wait_for(lock, timeout, [&] {
            auto pos = raw_.find(needle, from);
            if (pos != std::string::npos) {
                at = pos + needle.size();
                return true;
            }
            return eof_;
        });
        return at;
    }
    bool waitEof(std::chrono::milliseconds timeout) {
        std::unique_lock lock(mu_);
        return cv_.wait_for(lock, timeout, [&] { return eof_; });
    }
    std::vector<std::string> lines() const {
        std::lock_guard lock(mu_);
        return lines_;
    }
    std::string text() const {
        std::lock_guard lock(mu_);
        return raw_;
    }

private:
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::string raw_;
    std::string partial_;
    std::vector<std::string> lines_;
    bool eof_ = false;
};

/// A running tundra-cli. With `use_pty` its stdin/stdout/stderr are one pseudo-terminal
/// (out() then holds everything); otherwise stdin, stdout and stderr are separate pipes.
class CliProcess {
public:
    /// Runs `program` (tundra-cli unless given) with `args`.
    explicit CliProcess(const std::vector<std::string>& args, bool use_pty = false,
                        const char* program = TUNDRA_CLI_PATH) {
        std::vector<std::string> argv_s{program};
        argv_s.insert(argv_s.end(), args.begin(), args.end());
        home_ = makeHome();
        if (use_pty) {
            startPty(argv_s);
        } else {
            startPipes(argv_s);
        }
    }

    ~CliProcess() {
        closeStdin();
        if (pid_ > 0 && !exited_) {
            ::kill(pid_, SIGKILL);
            (void)wait(std::chrono::seconds(5));
        }
        for (auto& t : readers_) {
            if (t.joinable()) {
                t.join();
            }
        }
        if (!home_.empty()) {
            std::string hist = home_ + "/.tundra_cli_history";
            ::unlink(hist.c_str());
            ::rmdir(home_.c_str());
        }
    }

    CliProcess(const CliProcess&) = delete;
    CliProcess& operator=(const CliProcess&) = delete;

    /// True if this machine can hand out a pseudo-terminal (a chroot or container without
    /// /dev/pts cannot); the terminal tests skip themselves otherwise.
    static bool ptyAvailable() {
        int master = ::posix_openpt(O_RDWR | O_NOCTTY);
        if (master < 0) {
            return false;
        }
        bool ok = ::grantpt(master) == 0 && ::unlockpt(master) == 0;
        if (ok) {
            const char* name = ::ptsname(master);
            int slave = name != nullptr ? ::open(name, O_RDWR | O_NOCTTY) : -1;
            ok = slave >= 0;
            if (slave >= 0) {
                ::close(slave);
            }
        }
        ::close(master);
        return ok;
    }

    LineSink& out() { return out_; }
    LineSink& err() { return pty_ ? out_ : err_; }

    /// False if the child is gone or stopped reading (EPIPE: SIGPIPE is ignored in the test
    /// process, so a CLI that exits before reading its input cannot kill the test).
    bool write(std::string_view text) {
        static const bool ignored = [] {
            ::signal(SIGPIPE, SIG_IGN);  // children get the default back before exec
            return true;
        }();
        (void)ignored;
        std::size_t off = 0;
        while (off < text.size()) {
            ssize_t n = ::write(in_fd_, text.data() + off, text.size() - off);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                return false;
            }
            off += static_cast<std::size_t>(n);
        }
        return true;
    }

    void closeStdin() {
        if (!pty_ && in_fd_ >= 0) {
            ::close(in_fd_);
            in_fd_ = -1;
        }
    }

    void signal(int signo) const { ::kill(pid_, signo); }

    /// Waits until the process has exited (its output streams closed, then waitpid); returns
    /// the exit code, 128+signal, or nullopt on timeout.
    std::optional<int> wait(std::chrono::milliseconds timeout) {
        if (exited_) {
            return exit_code_;
        }
        auto deadline = std::chrono::steady_clock::now() + timeout;
        if (!out_.waitEof(timeout)) {
            return std::nullopt;
        }
        if (!pty_) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (!err_.waitEof(left)) {
                return std::nullopt;
            }
        }
        int status = 0;
        ::waitpid(pid_, &status, 0);
        exited_ = true;
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (pty_ && in_fd_ >= 0) {
            ::close(in_fd_);
            in_fd_ = -1;
        }
        return exit_code_;
    }

private:
    static std::string makeHome() {
        char tmpl[] = "/tmp/tundra-cli-test-XXXXXX";
        const char* dir = ::mkdtemp(tmpl);
        return dir == nullptr ? std::string() : std::string(dir);
    }

    static std::vector<char*> argvOf(const std::vector<std::string>& args) {
        std::vector<char*> argv;
        for (const auto& a : args) {
            argv.push_back(const_cast<char*>(a.c_str()));
        }
        argv.push_back(nullptr);
        return argv;
    }

    void execChild(const std::vector<std::string>& args) {
        if (!home_.empty()) {
            ::setenv("HOME", home_.c_str(), 1);  // keep the history file out of the real home
        }
        ::setenv("TERM", "xterm", 1);
        ::signal(SIGPIPE, SIG_DFL);  // an ignored signal would stay ignored across exec
        auto argv = argvOf(args);
        ::execv(argv[0], argv.data());
        std::fprintf(stderr, "exec %s: %s\n", argv[0], std::strerror(errno));
        ::_exit(127);
    }

    void startPipes(const std::vector<std::string>& args) {
        int in[2], out[2], err[2];
        if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 ||
            ::pipe2(err, O_CLOEXEC) != 0) {
            return;
        }
        pid_ = ::fork();
        if (pid_ == 0) {
            ::dup2(in[0], STDIN_FILENO);
            ::dup2(out[1], STDOUT_FILENO);
            ::dup2(err[1], STDERR_FILENO);
            execChild(args);
        }
        ::close(in[0]);
        ::close(out[1]);
        ::close(err[1]);
        in_fd_ = in[1];
        readers_.emplace_back([this, fd = out[0]] { drain(fd, out_); });
        readers_.emplace_back([this, fd = err[0]] { drain(fd, err_); });
    }

    void startPty(const std::vector<std::string>& args) {
        pty_ = true;
        winsize ws{};
        ws.ws_row = 40;
        ws.ws_col = 200;
        int master = -1;
        pid_ = ::forkpty(&master, nullptr, nullptr, &ws);
        if (pid_ == 0) {
            execChild(args);
        }
        if (pid_ < 0) {
            return;
        }
        ::fcntl(master, F_SETFD, FD_CLOEXEC);
        in_fd_ = master;
        readers_.emplace_back([this, master] { drain(master, out_, /*owns=*/false); });
    }

    // Reads until EOF (a pty master reports EIO once the child is gone).
    static void drain(int fd, LineSink& sink, bool owns = true) {
        char buf[4096];
        for (;;) {
            ssize_t n = ::read(fd, buf, sizeof buf);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                break;
            }
            sink.append(buf, static_cast<std::size_t>(n));
        }
        if (owns) {
            ::close(fd);
        }
        sink.close();
    }

    pid_t pid_ = -1;
    int in_fd_ = -1;
    bool pty_ = false;
    bool exited_ = false;
    int exit_code_ = -1;
    std::string home_;
    LineSink out_;
    LineSink err_;
    std::vector<std::thread> readers_;
};

/// Runs tundra-cli to completion with `input` on stdin.
struct CliRun {
    int code = -1;
    std::string out;
    std::string err;
};

inline CliRun runCli(const std::vector<std::string>& args, std::string_view input = {},
                     std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    CliProcess p(args);
    if (!input.empty()) {
        p.write(input);
    }
    p.closeStdin();
    CliRun r;
    auto code = p.wait(timeout);
    r.code = code.value_or(-1);
    r.out = p.out().text();
    r.err = p.err().text();
    return r;
}

}  // namespace tundra::testing
