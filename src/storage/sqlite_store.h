// SPDX-License-Identifier: Apache-2.0
// SQLite storage: SqliteDb (one database file, schema version and migrations, load, one
// transaction per group of batches or per compacted journal segment, integrity check, online
// backup) and SqliteStore (the Store: a writer thread fed through a bounded queue that appends
// each group of batches to the journal and syncs it, results back through an eventfd; a
// checkpoint thread that folds full journal segments into the database).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "storage/compaction.h"
#include "storage/store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace tundra::storage {

/// fsync = always | interval | off (docs/OPERATIONS.md, "Storage").
enum class FsyncMode { Always, Interval, Off };

struct SqliteOptions {
    FsyncMode fsync = FsyncMode::Always;
    std::int64_t fsync_interval_ms = 1000;
    std::size_t queue_batches = 64;  ///< batches waiting for the writer before submit() refuses
    /// Tests: PRAGMA max_page_count (0 = SQLite's default), to make "disk full" happen.
    std::int64_t max_page_count = 0;
    /// A journal segment this large is sealed and folded into the database (checkpoint).
    /// While checkpoints fail or fall behind, the journal may grow to 4 times this; beyond
    /// that, batches wait for the checkpoint, or fail while it is failing.
    std::uint64_t checkpoint_bytes = 64ULL << 20;
};

/// The schema this build writes; older files are migrated at open, newer ones refused.
inline constexpr int kSchemaVersion = 2;
inline constexpr const char* kDbFileName = "tundra.db";

/// One open database. Not thread-safe: one thread uses it at a time.
class SqliteDb {
public:
    ~SqliteDb();
    SqliteDb(const SqliteDb&) = delete;
    SqliteDb& operator=(const SqliteDb&) = delete;

    /// Opens (creating if needed) DIR/tundra.db: checks the directory, takes its lock file,
    /// WAL mode, the schema version (migrating older ones), a quick integrity check. Null with
    /// a message naming the file when any of it fails.
    static std::unique_ptr<SqliteDb> open(const std::string& dir, const SqliteOptions& options,
                                          std::string& error);
    /// Opens a database file by path, without the directory's lock or journal (backups).
    static std::unique_ptr<SqliteDb> openFile(const std::string& path, const SqliteOptions& options,
                                              std::string& error);
    bool load(core::StoreSnapshot& out, std::string& error);
    /// Applies the batches in order in one transaction; rolled back as a whole on failure.
    /// `journal_applied` > 0 also records that journal segments up to it are in.
    bool apply(std::span<const core::StoreBatch> batches, std::string& error,
               std::uint64_t journal_applied = 0);
    bool apply(const std::vector<core::StoreBatch>& batches, std::string& error) {
        return apply(std::span<const core::StoreBatch>(batches), error);
    }
    /// Applies a compaction (its net effect) in one transaction, recording that journal
    /// segments up to `journal_applied` are in.
    bool apply(const Compaction& c, std::uint64_t journal_applied, std::string& error);
    /// Folds the journal segments of `dir` the database does not hold yet into it (one
    /// transaction), then deletes every segment file. `report` says what was found.
    bool recoverJournal(const std::string& dir, std::string& report, std::string& error);
    /// The last journal segment the database holds (0 = none).
    bool journalApplied(std::uint64_t& out, std::string& error);
    /// The highest entry id stored (0 = none).
    bool maxEntryId(std::uint64_t& out, std::string& error);
    [[nodiscard]] const std::string& path() const { return path_; }

private:
    SqliteDb() = default;
    bool setJournalApplied(std::uint64_t n, std::string& error);
    bool wipeAndReserve(bool wipe, std::uint64_t id_reserve, std::string& error);
    bool applyCompaction(const Compaction& c, std::string& error);
    bool exec(const char* sql, std::string& error);
    bool applyOne(const core::StoreBatch& b, std::string& error);
    sqlite3_stmt* prepare(const char* sql, std::string& error);

    sqlite3* db_ = nullptr;
    int lock_fd_ = -1;
    std::string path_;
    struct Statements;
    std::unique_ptr<Statements> st_;
};

/// `tundrad --check-data DIR`: the integrity check and schema version of DIR/tundra.db and
/// the journal segments not yet folded into it, without changing them. True if usable;
/// `report` says what was found either way.
bool checkDataDir(const std::string& dir, std::string& report);
/// `tundrad backup --data-dir DIR FILE`: a consistent copy through SQLite's online backup API,
/// also while tundrad runs (WAL readers do not block the writer), with the journal records
/// the database does not hold yet folded into the copy.
bool backupDataDir(const std::string& dir, const std::string& file, std::string& error);

class SqliteStore final : public Store {
public:
    /// Opens DIR (see SqliteDb::open); null with `error` on failure.
    static std::unique_ptr<SqliteStore> open(const std::string& dir, const SqliteOptions& options,
                                             std::string& error);
    ~SqliteStore() override;

    [[nodiscard]] std::string_view kind() const override { return "sqlite"; }
    [[nodiscard]] bool durable() const override { return true; }
    /// Loads, then starts the writer thread.
    bool load(core::StoreSnapshot& out, std::string& error) override;
    bool submit(core::StoreBatch& batch) override;
    [[nodiscard]] int completionFd() const override { return event_fd_; }
    void takeResults(std::vector<core::BatchResult>& out) override;
    void close() override;

    [[nodiscard]] Stats stats() override;
    /// What the start found in the journal (records folded in, torn bytes ignored).
    [[nodiscard]] const std::string& recoveryReport() const { return recovery_report_; }

private:
    SqliteStore(std::unique_ptr<SqliteDb> db, std::string dir, const SqliteOptions& options);
    void run();
    void runCheckpoints();
    // Writer thread: the open segment.
    bool openSegment(std::string& error);
    void sealSegment();
    bool append(const std::string& record, std::string& error);
    bool applyFull(const core::StoreBatch& b, std::string& error);
    // Checkpoint thread: DIR/journal.spare, the next segment's file filled with zeros.
    void prepareSpare();
    static constexpr std::int64_t kSpareRetryMs = 10'000;
    static constexpr std::uint64_t kMinSpareBytes = 1ULL << 20;

    std::unique_ptr<SqliteDb> db_;  ///< the checkpoint thread's once loaded
    std::string dir_;
    SqliteOptions options_;
    std::string recovery_report_;
    int event_fd_ = -1;
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<core::StoreBatch> queue_;
    std::vector<core::BatchResult> results_;
    bool stop_ = false;
    std::thread writer_;

    // The writer's open journal segment.
    int seg_fd_ = -1;
    std::uint64_t seg_number_ = 0;
    std::uint64_t seg_bytes_ = 0;
    bool seg_dirty_ = false;  ///< written since its last sync
    std::int64_t last_sync_ms_ = 0;
    std::string record_;

    // Shared by the writer and the checkpoint thread (under cp_mu_).
    std::mutex cp_mu_;
    std::condition_variable cp_cv_;
    struct Sealed {
        std::uint64_t number = 0;
        std::uint64_t bytes = 0;
    };
    std::deque<Sealed> sealed_;        ///< waiting for their checkpoint, oldest first
    std::uint64_t journal_bytes_ = 0;  ///< every segment file not yet deleted
    std::string cp_error_;             ///< why the last checkpoint failed ("" = it did not)
    std::uint64_t spare_bytes_ = 0;    ///< how large the next spare is made
    bool spare_ready_ = false;         ///< DIR/journal.spare is prepared
    std::int64_t spare_failed_ms_ = -kSpareRetryMs;  ///< when preparing one last failed
    std::uint64_t checkpoints_ = 0;
    std::uint64_t checkpoint_failures_ = 0;
    const core::StoreBatch* full_ = nullptr;  ///< a full batch to apply directly
    std::uint64_t full_upto_ = 0;             ///< segments it makes obsolete (<= this)
    bool full_done_ = false;
    bool full_ok_ = false;
    std::string full_error_;
    bool cp_stop_ = false;
    std::thread checkpointer_;
};

}  // namespace tundra::storage
