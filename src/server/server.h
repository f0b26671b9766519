// SPDX-License-Identifier: Apache-2.0
// The only glue between the reactor and the chat core: owns the EventLoop, the TcpServer and
// the SessionManager; turns bytes into decoded frames for the core and the core's Outbox calls
// into socket writes. Also owns signals (drain on SIGTERM/SIGINT, reload on SIGHUP).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/log_throttle.h"
#include "core/outbox.h"
#include "core/session_manager.h"
#include "net/event_loop.h"
#include "net/signal_watcher.h"
#include "net/tcp_server.h"
#include "net/tls_context.h"
#include "server/admin_http.h"
#include "server/config.h"
#include "server/sd_notify.h"
#include "storage/store.h"

namespace tundra::server {

/// Sets glibc's allocator up for a server that frees and reallocates the same memory every loop
/// iteration: freed memory at the top of the heap stays there (trim threshold 64 MiB) and
/// blocks up to 4 MiB come from the heap rather than their own mmap. Without it, glibc gives
/// the top of the heap back after every burst and takes it again on the next, one page fault
/// per page: under fan-out a third of the server's time went to those faults. Memory is still
/// returned after traffic stops, by the HeapTrimmer (malloc_trim ignores the threshold).
/// Returns false if glibc refused a setting. Call once, before the first allocation burst.
bool tuneAllocator();

/// Gives freed heap pages back to the kernel after a burst. glibc returns memory only from the
/// top of the heap, so the delivery windows and output queues freed once clients go idle would
/// otherwise stay resident; malloc_trim also releases whole free pages below live objects.
/// Called from a timer; trims only when at least `min_growth` more bytes are free than after
/// the previous trim (or than the lowest free figure seen since, if the space was reused), so a
/// fragmented heap is not walked again and again for nothing.
// malloc_trim walks the whole heap on the loop thread, so its cost is bounded by doing it
// rarely and only when it pays: at least `min_interval_ms` apart (unless `urgent_growth` bytes
// were freed since the last trim: the end of a traffic burst that freed every delivery window
// is given back at once, not up to a minute later), only when `min_growth` bytes were freed
// since the last trim, and only when free space is at least a quarter of the heap (a large,
// busy heap with little free is not walked for nothing). A helper thread was not chosen: the
// trim holds the arena lock, so the loop's own allocations would wait on it anyway.
class HeapTrimmer {
public:
    explicit HeapTrimmer(std::size_t min_growth = 1U << 20, std::int64_t min_interval_ms = 0,
                         std::size_t urgent_growth = SIZE_MAX)
        : min_growth_(min_growth),
          urgent_growth_(urgent_growth),
          min_interval_ms_(min_interval_ms) {}
    /// True if it trimmed. `now_ms`: a monotonic time for the interval. `quiet`: the caller
    /// has just freed storage that sat unused for a whole check interval (traffic stopped), so
    /// the interval is waived: what the last burst left is given back now, not up to a minute
    /// later. The other conditions still apply.
    bool maybeTrim(std::int64_t now_ms = 0, bool quiet = false);

private:
    std::size_t min_growth_;
    std::size_t urgent_growth_;
    std::int64_t min_interval_ms_;
    std::int64_t last_trim_ms_ = 0;
    bool trimmed_ = false;
    std::size_t free_after_last_trim_ = 0;
};

class Server final : public core::Outbox {
public:
    /// `args` are the command-line arguments the config came from (without argv[0]); a SIGHUP
    /// re-parses them, so the config file is re-read and the flags still override it.
    explicit Server(Config config, std::vector<std::string> args = {},
                    SdNotifier notifier = SdNotifier::fromEnvironment());
    ~Server() override;
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    /// Opens the store the config names and restores what it holds (start() does it if not
    /// done yet). False with a clear `error` (naming the file) when the data directory is
    /// missing, unwritable, corrupt or from a newer tundrad: tundrad exits 2.
    bool openStore(std::string& error);
    /// Binds the listener and starts the timers; logs "listening on ADDR:PORT". False with a
    /// clear `error` if the address cannot be bound.
    bool start(std::string& error);
    /// Runs the loop until a drain completes; returns the process exit code.
    int run();
    /// SIGTERM/SIGINT: stop accepting, SYSTEM SHUTDOWN to every client, flush, then quit
    /// (after drain_timeout at the latest). Idempotent.
    void beginDrain();
    /// The drain's second step: SYSTEM SHUTDOWN to every client, then close after flush.
    void finishDrain();
    /// SIGHUP: re-read the config file (if any) and apply what can change at runtime (limits,
    /// timeouts, buffers, presence, log level); logs the settings that need a restart. An
    /// invalid file is logged and the running settings stay. Tells systemd RELOADING/READY.
    void reload();

    [[nodiscard]] std::uint16_t port() const;
    /// The TLS listener's port (0 when TLS is off).
    [[nodiscard]] std::uint16_t tlsPort() const { return tcp_.tlsPort(); }
    /// start() failed because of the configuration (an unusable certificate or key): exit 2.
    [[nodiscard]] bool configError() const { return config_error_; }
    [[nodiscard]] bool draining() const { return draining_; }
    /// The admin HTTP port (0 when the admin listener is off).
    [[nodiscard]] std::uint16_t adminPort() const { return admin_ ? admin_->port() : 0; }
    /// The /metrics page (Prometheus text format).
    [[nodiscard]] std::string metricsText() const;
    /// One-line status for systemd: live connection and session counts.
    [[nodiscard]] std::string statusLine() const;
    core::SessionManager& sessions() { return *sessions_; }
    net::EventLoop& loop() { return loop_; }

    // core::Outbox
    bool send(core::ConnId conn, SharedFrame frame, std::uint64_t delivery_id) override;
    /// net::TcpServer::sendNow: written at once when nothing is queued for `conn`.
    bool sendNow(core::ConnId conn, SharedFrame frame) override;
    /// One output segment (net::kJoinedTag); its delivery ids are read back from the frames if
    /// the connection closes before they are written.
    bool sendJoined(core::ConnId conn, SharedFrame frames) override;
    void closeAfterFlush(core::ConnId conn) override;

private:
    std::size_t onData(net::ConnId id, std::span<const std::uint8_t> bytes);
    void onClosed(net::ConnId id, net::CloseReason reason,
                  const std::vector<std::uint64_t>& unwritten);
    void onSignal(int signo);
    /// SIGHUP: a new TLS context from the files `c` names for new connections (chat and admin);
    /// on failure logs an error and keeps the running one.
    void reloadTls(const Config& c);
    core::ServerStats stats() const;
    /// Hands the core's batch of this iteration to the store once, at the end of the
    /// iteration (deferred).
    void scheduleStoreFlush();
    void flushStore();
    void takeStoreResults();
    void onStoreCompletion();
    /// At exit: every recorded mutation reaches the store, then it closes.
    void finishStore();
    class StoreWatcher;
    /// Re-reads the keys and the accounts file of config_; keeps the running ones on error.
    void reloadAuthenticator();

    Config config_;
    std::vector<std::string> args_;
    SdNotifier notifier_;
    common::SystemClock system_clock_;
    /// What the core and the server read: refreshed once per loop iteration (setWakeHook).
    common::CachedClock clock_{system_clock_};
    net::EventLoop loop_;
    net::TcpServer tcp_;
    std::unique_ptr<core::SessionManager> sessions_;
    std::unique_ptr<net::SignalWatcher> signals_;
    std::unique_ptr<AdminHttp> admin_;
    std::shared_ptr<net::TlsContext> tls_ctx_;
    bool config_error_ = false;
    // Checked every 10 s; trims at most once a minute, once 256 KiB more is free than after
    // the last trim and free space is a quarter of the heap (see HeapTrimmer); at the next
    // check once 8 MiB more is free, or once trimIdleStorage() freed spare queue storage (the
    // server went quiet). 256 KiB: what a burst of 10,000 connections leaves behind
    // (the timer wheels' emptied slots, old hash bucket arrays) is 3 to 4 MiB, a third of the
    // heap, and stayed resident under a 16 MiB threshold; the output-queue storage a burst of
    // deliveries to them leaves in the SegmentPool, freed once unused (trimIdleStorage), is
    // about 460 KiB and stayed resident under a 1 MiB one (docs/BENCHMARKS.md, "Heartbeats
    // without queue storage").
    // 8 MiB: the delivery windows 10,000 idle clients free once their PONGs confirm a burst
    // (17 MiB) were kept up to a minute when a trim had just happened.
    HeapTrimmer heap_trimmer_{256U << 10, 60'000, 8U << 20};
    bool draining_ = false;
    bool drain_waits_for_store_ = false;  // draining: held ACKs wait for their commit first
    std::unique_ptr<storage::Store> store_;
    std::unique_ptr<StoreWatcher> store_watcher_;
    std::optional<core::StoreBatch> unsent_;        // taken from the core, refused by a full queue
    std::vector<core::BatchResult> store_results_;  // reused by takeStoreResults()
    bool store_flush_scheduled_ = false;
    bool store_opened_ = false;
    std::uint64_t store_read_holds_ = 0;  // times reading paused for a full writer queue
    common::LogThrottle store_log_;
};

/// Decodes the frames at the front of `bytes` (input of chat connection `id`) and hands them to
/// `core`; returns how many bytes were used. Stops before a partial frame. After a header error,
/// or once the core has closed the connection (onFrame() returned false), everything counts as
/// used: nothing after it is read. The core decides and requests every close of a chat
/// connection, a header error's included, exactly once; this function never closes.
std::size_t feedFrames(core::SessionManager& core, core::ConnId id,
                       std::span<const std::uint8_t> bytes, std::size_t max_payload);

/// Resident set size of this process in bytes (from /proc/self/statm), 0 if unknown.
std::uint64_t residentBytes();

}  // namespace tundra::server
