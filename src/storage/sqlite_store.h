// SPDX-License-Identifier: Apache-2.0
// SQLite storage: SqliteDb (one database file, schema version and migrations, load, one
// transaction per group of batches, integrity check, online backup) and SqliteStore (the
// Store: a writer thread fed through a bounded queue, results back through an eventfd).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

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
    bool load(core::StoreSnapshot& out, std::string& error);
    /// Applies the batches in order in one transaction; rolled back as a whole on failure.
    bool apply(const std::vector<core::StoreBatch>& batches, std::string& error);
    /// Checkpoints the WAL into the database (syncing both).
    bool checkpoint(std::string& error);
    [[nodiscard]] const std::string& path() const { return path_; }

private:
    SqliteDb() = default;
    bool exec(const char* sql, std::string& error);
    bool applyOne(const core::StoreBatch& b, std::string& error);
    sqlite3_stmt* prepare(const char* sql, std::string& error);

    sqlite3* db_ = nullptr;
    int lock_fd_ = -1;
    std::string path_;
    struct Statements;
    std::unique_ptr<Statements> st_;
};

/// `tundrad --check-data DIR`: the integrity check and schema version of DIR/tundra.db,
/// without changing it. True if usable; `report` says what was found either way.
bool checkDataDir(const std::string& dir, std::string& report);
/// `tundrad backup --data-dir DIR FILE`: a consistent copy through SQLite's online backup API,
/// also while tundrad runs (WAL readers do not block the writer).
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

private:
    SqliteStore(std::unique_ptr<SqliteDb> db, const SqliteOptions& options);
    void run();

    std::unique_ptr<SqliteDb> db_;
    SqliteOptions options_;
    int event_fd_ = -1;
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<core::StoreBatch> queue_;
    std::vector<core::BatchResult> results_;
    bool stop_ = false;
    std::thread writer_;
};

}  // namespace tundra::storage
