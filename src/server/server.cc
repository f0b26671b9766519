// SPDX-License-Identifier: Apache-2.0
// Server: the glue between net::TcpServer and core::SessionManager (decode loop, Outbox on top
// of the TcpServer, signals, drain, reload) and the HeapTrimmer.
#include "server/server.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "common/session_id.h"
#include "net/socket_ops.h"
#include "server/auth_setup.h"
#include "server/config_file.h"
#include "server/prometheus.h"
#include "storage/memory_store.h"
#include "storage/sqlite_store.h"

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
    o.output_total_soft = c.output_total_soft_bytes;
    o.output_total_hard = c.output_total_hard_bytes;
    o.tls_handshake_timeout_ms = c.tls_handshake_timeout_ms;
    return o;
}

// An empty tls_key means the key is in the tls_cert file (one combined PEM).
net::TlsFiles tlsFiles(const Config& c) {
    return {c.tls_cert, c.tls_key.empty() ? c.tls_cert : c.tls_key, c.tls_client_ca};
}

// The source key the core counts connections and registrations by: the peer address without
// its port ("1.2.3.4:5" -> "1.2.3.4", "[::1]:5" -> "::1").
std::string_view peerAddress(std::string_view peer) {
    if (peer.starts_with('[')) {
        const auto close = peer.find(']');
        return close == std::string_view::npos ? peer : peer.substr(1, close - 1);
    }
    const auto colon = peer.rfind(':');
    return colon == std::string_view::npos ? peer : peer.substr(0, colon);
}

}  // namespace

std::size_t resolveMaxClients(std::size_t configured, std::uint64_t fd_limit,
                              std::string& warning) {
    warning.clear();
    if (fd_limit == 0) {
        return configured == 0 ? 1000 : configured;
    }
    const std::uint64_t allowed64 = std::min<std::uint64_t>(
        fd_limit > kReservedFds ? fd_limit - kReservedFds : 1, kMaxClientsCeiling);
    const auto allowed = static_cast<std::size_t>(std::max<std::uint64_t>(allowed64, 1));
    if (configured == 0) {
        return allowed;
    }
    if (configured > allowed) {
        warning = fmt::format(
            "max_clients {} lowered to {}: the file descriptor limit is {} ({} kept in reserve); "
            "raise LimitNOFILE",
            configured, allowed, fd_limit, kReservedFds);
        return allowed;
    }
    return configured;
}

namespace {
void applyFdLimit(Config& c) {
    std::string warning;
    c.core.max_clients =
        resolveMaxClients(c.core.max_clients, net::sockets::raiseFdLimit(0), warning);
    if (!warning.empty()) {
        spdlog::warn("{}", warning);
    }
}
}  // namespace

bool tuneAllocator() {
    // Setting any of these also turns off glibc's dynamic mmap threshold, so both are set.
    constexpr int kTrimThreshold = 64 << 20;
    constexpr int kMmapThreshold = 4 << 20;
    const bool trim = ::mallopt(M_TRIM_THRESHOLD, kTrimThreshold) == 1;
    const bool mmap = ::mallopt(M_MMAP_THRESHOLD, kMmapThreshold) == 1;
    return trim && mmap;
}

bool HeapTrimmer::maybeTrim(std::int64_t now_ms, bool quiet) {
    const auto info = ::mallinfo2();
    const std::size_t free_now = info.fordblks;
    // Free space that was reused since the last trim counts as freed again when it comes back.
    free_after_last_trim_ = std::min(free_after_last_trim_, free_now);
    if (!quiet && trimmed_ && now_ms - last_trim_ms_ < min_interval_ms_ &&
        free_now - free_after_last_trim_ < urgent_growth_) {
        return false;  // too soon: a walk of a large heap is not free
    }
    if (free_now < info.arena / 4) {
        return false;  // mostly in use: the walk would give little back
    }
    if (free_now < free_after_last_trim_ + min_growth_) {
        return false;  // not enough freed since the last trim to be worth a heap walk
    }
    ::malloc_trim(0);
    trimmed_ = true;
    last_trim_ms_ = now_ms;
    free_after_last_trim_ = ::mallinfo2().fordblks;
    spdlog::debug("heap: returned free pages to the kernel ({} bytes free before, {} after)",
                  free_now, free_after_last_trim_);
    return true;
}

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
    return static_cast<std::uint64_t>(resident) *
           static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

// How often systemd's STATUS= line is refreshed with live counts.
constexpr std::int64_t kStatusIntervalMs = 5000;
// How often the heap is checked for freed memory worth giving back to the kernel.
constexpr std::int64_t kHeapTrimIntervalMs = 10'000;

// The store's completion eventfd on the loop: results come back on the reactor.
class Server::StoreWatcher final : public net::IoHandler {
public:
    StoreWatcher(Server& server, int fd) : server_(server), fd_(fd) {
        server_.loop_.add(fd_, EPOLLIN, this);
    }
    ~StoreWatcher() override { server_.loop_.remove(fd_, this); }
    StoreWatcher(const StoreWatcher&) = delete;
    StoreWatcher& operator=(const StoreWatcher&) = delete;
    void onEvents(std::uint32_t /*events*/) override { server_.onStoreCompletion(); }

private:
    Server& server_;
    int fd_;
};

Server::Server(Config config, std::vector<std::string> args, SdNotifier notifier)
    : config_(std::move(config)),
      args_(std::move(args)),
      notifier_(std::move(notifier)),
      tcp_(loop_, tcpOptions(config_)) {
    applyFdLimit(config_);
    loop_.setWakeHook([this] { clock_.refresh(); });
    sessions_ = std::make_unique<core::SessionManager>(
        config_.core, *this, clock_, [] { return common::newSessionId(); },
        [this] { return stats(); });
    tcp_.setConnectCallback([this](net::ConnId id, const net::ConnInfo& info) {
        spdlog::debug("conn={} accepted from {}{}", id, info.peer,
                      info.tls ? " over " + info.tls_version : std::string());
        // the verified client certificate's CN (mTLS), "" without one: tls_client_identity
        sessions_->onConnect(id, peerAddress(info.peer), info.tls_peer_cn);
        scheduleStoreFlush();
    });
    tcp_.setDataCallback([this](net::ConnId id, std::span<const std::uint8_t> bytes) {
        const std::size_t used = onData(id, bytes);
        scheduleStoreFlush();
        return used;
    });
    tcp_.setCloseCallback(
        [this](net::ConnId id, net::CloseReason reason,
               const std::vector<std::uint64_t>& unwritten) { onClosed(id, reason, unwritten); });
    // Joined deliveries (sendJoined): the ids of those not fully written, from their frames.
    tcp_.setJoinedTagReader([](std::span<const std::uint8_t> frames, std::size_t written,
                               std::vector<std::uint64_t>& out) {
        core::Outbox::joinedDeliveryIds(frames, written, out);
    });
}

Server::~Server() = default;

bool Server::openStore(std::string& error) {
    if (store_opened_) {
        return true;
    }
    clock_.refresh();  // outside the loop: nothing else refreshes it
    store_opened_ = true;
    if (config_.storage == "memory" || config_.data_dir.empty()) {
        store_ = std::make_unique<storage::MemoryStore>();
        if (config_.storage == "memory") {
            spdlog::info("storage: memory; nothing survives a restart");
        } else {
            spdlog::warn(
                "storage: no data_dir configured, running in memory; users, offline messages "
                "and sessions do not survive a restart");
        }
        return true;
    }
    storage::SqliteOptions o;
    o.fsync = config_.fsync == "interval" ? storage::FsyncMode::Interval
              : config_.fsync == "off"    ? storage::FsyncMode::Off
                                          : storage::FsyncMode::Always;
    o.fsync_interval_ms = config_.fsync_interval_ms;
    if (const char* pages = std::getenv("TUNDRA_TEST_MAX_PAGE_COUNT")) {
        o.max_page_count = std::atoll(pages);  // tests only: a "disk" that fills up
    }
    if (const char* bytes = std::getenv("TUNDRA_TEST_CHECKPOINT_BYTES")) {
        o.checkpoint_bytes = std::strtoull(bytes, nullptr, 10);  // tests only: a small journal
    }
    auto sqlite = storage::SqliteStore::open(config_.data_dir, o, error);
    if (!sqlite) {
        return false;
    }
    core::StoreSnapshot snapshot;
    if (!sqlite->load(snapshot, error)) {
        return false;
    }
    sessions_->attachStore(snapshot);
    store_watcher_ = std::make_unique<StoreWatcher>(*this, sqlite->completionFd());
    if (!sqlite->recoveryReport().empty()) {
        spdlog::info("storage: {}", sqlite->recoveryReport());
    }
    store_ = std::move(sqlite);
    spdlog::info("storage: sqlite in {} (fsync={}{})", config_.data_dir, config_.fsync,
                 config_.fsync == "interval"
                     ? fmt::format(", every {} ms", config_.fsync_interval_ms)
                     : std::string());
    scheduleStoreFlush();
    return true;
}

void Server::scheduleStoreFlush() {
    if (store_flush_scheduled_ || !store_ || !store_->durable() ||
        (!sessions_->storePending() && !unsent_)) {
        return;
    }
    store_flush_scheduled_ = true;
    loop_.defer([this] {
        store_flush_scheduled_ = false;
        flushStore();
    });
}

// Group commit: everything the core recorded in this iteration goes to the writer as one
// batch. A full queue keeps the batch here and stops reading from clients until the writer
// catches up (onStoreCompletion retries); the core keeps recording into its next batch.
void Server::flushStore() {
    if (!unsent_ && sessions_->storePending()) {
        unsent_ = sessions_->takeStoreBatch();
    }
    if (!unsent_) {
        return;
    }
    if (!store_->submit(*unsent_)) {
        if (!tcp_.readsHeld()) {
            ++store_read_holds_;
            std::uint64_t held = 0;
            if (store_log_.allow(loop_.nowMs(), held)) {
                spdlog::warn(
                    "storage: the writer's queue is full; reading from clients paused until it "
                    "catches up ({} more pauses not logged)",
                    held);
            }
            tcp_.holdReads(true);
        }
        return;
    }
    unsent_.reset();
    if (tcp_.readsHeld() && !drain_waits_for_store_) {
        tcp_.holdReads(false);
    }
    // A store without a completion descriptor has its results now. With one: batches the
    // writer finished while this iteration ran have their ACKs leave with this iteration's
    // output instead of after the next wakeup (one loop iteration less of ACK latency under
    // load, when iterations are long); the descriptor is cleared with them, so everything a
    // completion does happens here too (the drain).
    if (store_->completionFd() < 0 || sessions_->acksHeld() > 0) {
        onStoreCompletion();
    }
}

void Server::takeStoreResults() {
    store_results_.clear();
    store_->takeResults(store_results_);
    for (auto& r : store_results_) {
        sessions_->onStoreResult(r);
    }
    store_results_.clear();
}

void Server::onStoreCompletion() {
    takeStoreResults();
    if (unsent_) {
        flushStore();
    }
    scheduleStoreFlush();
    if (drain_waits_for_store_ && sessions_->acksHeld() == 0) {
        finishDrain();
    }
}

void Server::finishStore() {
    if (!store_ || !store_->durable()) {
        return;
    }
    // The loop has stopped: submit what is left, waiting for the writer when its queue is full.
    for (int guard = 0; guard < 100000 && (unsent_ || sessions_->storePending()); ++guard) {
        if (!unsent_) {
            unsent_ = sessions_->takeStoreBatch();
        }
        if (store_->submit(*unsent_)) {
            unsent_.reset();
        } else {
            // The queue is full: wait (bounded) for the writer to report a batch.
            pollfd p{store_->completionFd(), POLLIN, 0};
            ::poll(&p, 1, 100);
            std::vector<core::BatchResult> results;
            store_->takeResults(results);
        }
    }
    store_->close();
}

bool Server::start(std::string& error) {
    clock_.refresh();
    // Settings that only make sense with a certificate: refused here (exit 2) rather than in
    // checkConsistency, so each key can still be set on its own in a file and its flag.
    const char* needs_cert = !config_.tls_key.empty()         ? "tls_key"
                             : !config_.tls_client_ca.empty() ? "tls_client_ca"
                             : config_.admin_tls              ? "admin_tls"
                                                              : nullptr;
    if (needs_cert != nullptr && config_.tls_cert.empty()) {
        error = std::string(needs_cert) + " is set but tls_cert is not";
        config_error_ = true;
        return false;
    }
    if (config_.tls_client_identity && config_.tls_client_ca.empty()) {
        error = "tls_client_identity is set but tls_client_ca is not";
        config_error_ = true;
        return false;
    }
    if (!config_.tls_cert.empty()) {
        std::string tls_error;
        tls_ctx_ = net::TlsContext::createServer(tlsFiles(config_), tls_error);
        if (!tls_ctx_) {
            error = tls_error;
            config_error_ = true;
            return false;
        }
        tcp_.setTlsContext(tls_ctx_);
    }
    if (!openStore(error)) {
        return false;
    }
    std::shared_ptr<const core::Authenticator> auth;
    if (!makeAuthenticator(config_, auth, error)) {
        return false;
    }
    sessions_->setAuthenticator(std::move(auth));
    if (config_.auth != "none") {
        spdlog::info("auth: {}{}", config_.auth,
                     config_.anonymous != "off" ? " (anonymous guest-* " + config_.anonymous + ")"
                                                : std::string());
    }
    if (!tcp_.listen(error)) {
        return false;
    }
    signals_ = std::make_unique<net::SignalWatcher>(
        loop_, std::vector<int>{SIGTERM, SIGINT, SIGHUP}, [this](int signo) { onSignal(signo); });
    loop_.addTimer(
        sessions_->tickIntervalMs(),
        [this] {
            sessions_->tick();
            scheduleStoreFlush();
        },
        true);
    loop_.addTimer(
        kHeapTrimIntervalMs,
        [this] {
            // Spare queue storage unused for a whole interval, then the heap: freeing some
            // means traffic stopped, and the trim then need not wait for its interval.
            const bool quiet = tcp_.trimIdleStorage() > 0;
            heap_trimmer_.maybeTrim(loop_.nowMs(), quiet);
        },
        true);
    spdlog::info(
        "tundrad {} listening on {} (max_clients={} max_payload={} ping_interval={}ms "
        "session_timeout={}ms)",
        config_.core.software_version, net::sockets::formatHostPort(config_.bind, tcp_.port()),
        config_.core.max_clients, config_.core.max_payload, config_.core.ping_interval_ms,
        config_.core.session_timeout_ms);
    if (tls_ctx_) {
        if (!tcp_.listenTls(config_.tls_port, error)) {
            return false;
        }
        spdlog::info("tls listening on {} ({}{})",
                     net::sockets::formatHostPort(config_.bind, tcp_.tlsPort()),
                     tls_ctx_->description(),
                     tls_ctx_->verifiesClients() ? "; client certificates required" : "");
    }
    if (!config_.admin.empty()) {
        AdminHttpOptions admin_options;
        admin_options.max_per_source = config_.admin_max_per_source;
        admin_options.token_file = config_.admin_token_file;
        if (config_.admin_tls) {
            admin_options.tls = tls_ctx_;
        }
        admin_ = std::make_unique<AdminHttp>(
            loop_, [this] { return !draining_ && !sessions_->storageDegraded(); },
            [this] { return metricsText(); }, admin_options);
        std::string admin_error;
        if (!admin_->start(config_.admin, admin_error)) {
            error = "admin listener: " + admin_error;
            config_error_ = admin_error.starts_with("admin_token_file");
            return false;
        }
    }
    if (notifier_.enabled()) {
        loop_.addTimer(
            kStatusIntervalMs, [this] { notifier_.status(statusLine()); }, true);
        if (notifier_.watchdogIntervalMs() > 0) {
            // Pinged from the loop itself: a wedged reactor stops the pings and systemd
            // restarts the service.
            loop_.addTimer(
                notifier_.watchdogIntervalMs(), [this] { notifier_.watchdog(); }, true);
        }
        notifier_.ready(statusLine());
    }
    return true;
}

int Server::run() {
    loop_.run();
    clock_.refresh();
    finishStore();
    spdlog::info("tundrad stopped");
    return 0;
}

std::uint16_t Server::port() const { return tcp_.port(); }

// Closing has one owner: the core marks its connection closed and calls closeAfterFlush() once;
// net stops reading, refuses further send()s (false) and reports the close through onClosed().
// The glue keeps no closing state of its own.
bool Server::send(core::ConnId conn, SharedFrame frame, std::uint64_t delivery_id) {
    return tcp_.send(conn, std::move(frame), delivery_id);
}

bool Server::sendNow(core::ConnId conn, SharedFrame frame) {
    return tcp_.sendNow(conn, std::move(frame));
}

bool Server::sendJoined(core::ConnId conn, SharedFrame frames) {
    return tcp_.send(conn, std::move(frames), net::kJoinedTag);
}

void Server::closeAfterFlush(core::ConnId conn) { tcp_.closeAfterFlush(conn); }

std::size_t feedFrames(core::SessionManager& core, core::ConnId id,
                       std::span<const std::uint8_t> bytes, std::size_t max_payload) {
    // Broadcasts of this read wait for each other (SessionManager::beginInput).
    struct Batch {
        core::SessionManager& core;
        explicit Batch(core::SessionManager& c) : core(c) { core.beginInput(); }
        ~Batch() { core.endInput(); }
        Batch(const Batch&) = delete;
        Batch& operator=(const Batch&) = delete;
    } batch(core);
    std::size_t used = 0;
    while (used < bytes.size()) {
        auto r = decodeFrame(bytes.subspan(used), max_payload);
        if (r.status == DecodeStatus::NeedMore) {
            break;
        }
        if (r.status == DecodeStatus::Error) {
            core.onHeaderError(id, r.header.sequence, r.error, r.reason);  // it closes
            return bytes.size();
        }
        used += r.consumed;
        if (!core.onFrame(id, r.header, r.payload)) {
            return bytes.size();  // the core closed it: ignore what follows
        }
    }
    return used;
}

std::size_t Server::onData(net::ConnId id, std::span<const std::uint8_t> bytes) {
    return feedFrames(*sessions_, id, bytes, config_.core.max_payload);
}

void Server::onClosed(net::ConnId id, net::CloseReason reason,
                      const std::vector<std::uint64_t>& unwritten) {
    auto core_reason = draining_ ? core::DisconnectReason::Shutdown : toCore(reason);
    if (reason == net::CloseReason::SlowConsumer) {
        spdlog::warn("conn={} disconnected: slow consumer ({} unwritten deliveries)", id,
                     unwritten.size());
    } else {
        spdlog::debug("conn={} closed: {}", id, net::closeReasonName(reason));
    }
    sessions_->onDisconnect(id, core_reason, unwritten);
    scheduleStoreFlush();
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
    notifier_.stopping(fmt::format("draining {} connections", tcp_.connectionCount()));
    tcp_.stopAccepting();
    loop_.addTimer(config_.drain_timeout_ms, [this] {
        spdlog::warn("drain timeout: {} connections still open, exiting", tcp_.connectionCount());
        loop_.quit();
    });
    // ACKs held for a batch the writer has not committed yet must reach their senders before
    // SHUTDOWN closes the connections (else a stored message looks unaccepted and is sent
    // again): nothing more is read, the writer finishes, then the clients are told.
    if (store_ && store_->durable() && sessions_->acksHeld() > 0) {
        spdlog::info("draining: waiting for the store to commit {} acknowledged messages",
                     sessions_->acksHeld());
        drain_waits_for_store_ = true;
        tcp_.holdReads(true);
        scheduleStoreFlush();
        return;
    }
    finishDrain();
}

void Server::finishDrain() {
    drain_waits_for_store_ = false;
    sessions_->shutdown(config_.shutdown_retry_after_s);
    if (tcp_.connectionCount() == 0) {
        loop_.quit();
    }
}

void Server::reloadAuthenticator() {
    std::shared_ptr<const core::Authenticator> auth;
    std::string error;
    if (!makeAuthenticator(config_, auth, error)) {
        spdlog::error("reload: {}; keeping the running keys and accounts", error);
        return;
    }
    sessions_->setAuthenticator(std::move(auth));
    if (config_.auth != "none") {
        spdlog::info("reload: auth {} keys and accounts re-read", config_.auth);
    }
}

void Server::reloadTls(const Config& c) {
    if (!tls_ctx_) {
        return;  // TLS off at start: enabling it needs a restart (tls_port is restart-only)
    }
    if (c.tls_cert.empty()) {
        spdlog::warn(
            "reload: TLS cannot be turned off without a restart; keeping the running "
            "certificate");
        return;
    }
    std::string error;
    auto fresh = net::TlsContext::createServer(tlsFiles(c), error);
    if (!fresh) {
        spdlog::error("reload: TLS certificate not reloaded, keeping the running one: {}", error);
        return;
    }
    tls_ctx_ = std::move(fresh);
    tcp_.setTlsContext(tls_ctx_);
    if (admin_) {
        admin_->setTlsContext(tls_ctx_);
    }
    spdlog::info("reload: TLS certificate loaded ({}); new connections use it",
                 tls_ctx_->description());
}

void Server::reload() {
    if (draining_) {
        spdlog::info("SIGHUP ignored: shutting down");
        return;
    }
    if (config_.config_file.empty()) {
        // The keys and the accounts file are re-read all the same.
        reloadAuthenticator();
        // The certificate files are re-read even without a config file (renewed in place).
        reloadTls(config_);
        if (admin_) {
            admin_->reloadToken();
        }
        spdlog::info("SIGHUP: no --config file, nothing else to reload");
        return;
    }
    notifier_.reloading();
    spdlog::info("SIGHUP: reloading {}", config_.config_file);
    ParsedArgs parsed = parseArgs(args_, loadConfigFile);
    if (parsed.action != ParsedArgs::Action::Run) {
        spdlog::error("reload failed, keeping the running configuration: {}", parsed.message);
        notifier_.ready(statusLine());
        return;
    }
    Config fresh = std::move(parsed.config);
    reloadTls(fresh);
    auto restart = restartRequiredChanges(config_, fresh);
    if (!restart.empty()) {
        spdlog::warn("reload: {} changed and needs a restart; keeping the running value",
                     fmt::join(restart, ", "));
    }
    // Restart-only settings (listeners, the output cap) are fixed at start: keep them.
    keepRestartSettings(config_, fresh);
    applyFdLimit(fresh);
    sessions_->reconfigure(fresh.core);
    scheduleStoreFlush();
    spdlog::set_level(fresh.log_level);
    config_ = std::move(fresh);
    reloadAuthenticator();
    if (admin_) {
        admin_->setTokenFile(config_.admin_token_file);
        admin_->reloadToken();
    }
    spdlog::info("reloaded {} (presence={} log_level={})", config_.config_file,
                 config_.core.presence_events ? "on" : "off",
                 spdlog::level::to_string_view(config_.log_level));
    notifier_.ready(statusLine());
}

std::string Server::metricsText() const {
    return renderPrometheus(sessions_->metrics(), sessions_->gauges(), stats(),
                            sessions_->config());
}

std::string Server::statusLine() const {
    auto g = sessions_->gauges();
    return fmt::format("{} connections, {} sessions online, {} detached{}", g.connections,
                       g.sessions_online, g.sessions_detached, draining_ ? ", draining" : "");
}

core::ServerStats Server::stats() const {
    core::ServerStats s;
    s.bytes_in = tcp_.bytesIn();
    s.bytes_out = tcp_.bytesOut();
    s.rss_bytes = residentBytes();
    s.output_queued_bytes = tcp_.queuedTotal();
    s.output_paused = tcp_.outputPaused();
    s.output_pauses_total = tcp_.outputPauses();
    s.output_cuts_total = tcp_.outputCuts();
    s.accept_shed_total = tcp_.acceptShed();
    s.admin_refused_total = admin_ ? admin_->refused() : 0;
    s.storage_read_holds_total = store_read_holds_;
    if (store_) {
        const auto st = store_->stats();
        s.storage_journal_bytes = st.journal_bytes;
        s.storage_checkpoints_total = st.checkpoints;
        s.storage_checkpoint_failures_total = st.checkpoint_failures;
    }
    s.tls_handshakes_total = tcp_.tlsHandshakes();
    s.tls_handshake_failures_total = tcp_.tlsHandshakeFailures();
    s.tls_handshake_timeouts_total = tcp_.tlsHandshakeTimeouts();
    s.tls_connections = tcp_.tlsOpen();
    return s;
}

}  // namespace tundra::server
