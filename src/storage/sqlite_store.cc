// SPDX-License-Identifier: Apache-2.0
// SqliteDb (schema, migrations, load, apply, check, backup) and SqliteStore (the writer
// thread). Tables: users (one row per known user, its session while it has one, and while it
// is online the id from which its window holds the stored broadcasts), entries (one row per
// delivery in a user's log, `written` = in the window, keyed by id then user; the frame inline
// when it is the delivery's only entry), broadcasts (one row per broadcast that online users'
// windows may hold: sender and audience), frames (an encoded delivery stored for several:
// shared by its broadcast and entries), meta (the id reserve).
#include "storage/sqlite_store.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <span>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "storage/journal.h"

namespace tundra::storage {

namespace {

constexpr int kApplicationId = 0x54554e44;  // "TUND"

// Migrations: step i turns schema version i into i + 1. A new version appends a step.
const char* const kMigrations[] = {
    // 0 -> 1: the first schema.
    "CREATE TABLE users(name TEXT PRIMARY KEY, kind INTEGER NOT NULL, session BLOB,"
    " detached_wall_ms INTEGER NOT NULL DEFAULT 0, dropped INTEGER NOT NULL DEFAULT 0)"
    " WITHOUT ROWID;"
    "CREATE TABLE frames(id INTEGER PRIMARY KEY, frame BLOB NOT NULL);"
    "CREATE TABLE entries(user TEXT NOT NULL, id INTEGER NOT NULL, written INTEGER NOT NULL,"
    " PRIMARY KEY(user, id)) WITHOUT ROWID;"
    "CREATE INDEX entries_by_id ON entries(id);"
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;",
    // 1 -> 2: broadcasts stored once, online windows as a range over them; entries keyed by
    // id first, so storing appends to one end of the tree instead of touching a page per
    // recipient, with a partial index over the written entries (window trims) only.
    "ALTER TABLE users ADD COLUMN bcast_since INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE broadcasts(id INTEGER PRIMARY KEY, sender TEXT NOT NULL,"
    " agents_only INTEGER NOT NULL);"
    // An entry of one recipient keeps its frame inline (one insert per stored message); a
    // frame stored for several (a broadcast) lives in frames, and the entries' frame is NULL.
    "CREATE TABLE entries2(id INTEGER NOT NULL, user TEXT NOT NULL, written INTEGER NOT NULL,"
    " frame BLOB, PRIMARY KEY(id, user)) WITHOUT ROWID;"
    "INSERT INTO entries2(id, user, written) SELECT id, user, written FROM entries;"
    "DROP TABLE entries;"
    "ALTER TABLE entries2 RENAME TO entries;"
    "CREATE INDEX entries_written ON entries(user, id) WHERE written = 1;",
};
static_assert(std::size(kMigrations) == kSchemaVersion);

std::string errorOf(sqlite3* db) { return db != nullptr ? sqlite3_errmsg(db) : "out of memory"; }

std::int64_t steadyMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// Runs a one-value query ("PRAGMA user_version"); false with `error`.
bool queryInt(sqlite3* db, const char* sql, std::int64_t& out, std::string& error) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) != SQLITE_OK) {
        error = errorOf(db);
        return false;
    }
    const int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        error = errorOf(db);
        return false;
    }
    return true;
}

bool queryText(sqlite3* db, const char* sql, std::string& out, std::string& error) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) != SQLITE_OK) {
        error = errorOf(db);
        return false;
    }
    out.clear();
    int rc = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (!out.empty()) {
            out += "; ";
        }
        const auto* t = sqlite3_column_text(st, 0);
        out += t != nullptr ? reinterpret_cast<const char*>(t) : "";
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        error = errorOf(db);
        return false;
    }
    return true;
}

}  // namespace

struct SqliteDb::Statements {
    sqlite3_stmt* upsert_user = nullptr;
    sqlite3_stmt* delete_user = nullptr;
    sqlite3_stmt* user_ids = nullptr;
    sqlite3_stmt* delete_user_entries = nullptr;
    sqlite3_stmt* put_frame = nullptr;
    sqlite3_stmt* put_entry = nullptr;
    sqlite3_stmt* delete_entry = nullptr;
    sqlite3_stmt* gc_frame = nullptr;
    sqlite3_stmt* set_reserve = nullptr;
    sqlite3_stmt* set_applied = nullptr;
    sqlite3_stmt* trim_window = nullptr;
    sqlite3_stmt* gc_below = nullptr;
    sqlite3_stmt* put_broadcast = nullptr;
    sqlite3_stmt* trim_broadcast_frames = nullptr;
    sqlite3_stmt* trim_broadcasts = nullptr;

    ~Statements() {
        for (sqlite3_stmt* s :
             {upsert_user, delete_user, user_ids, delete_user_entries, put_frame, put_entry,
              delete_entry, gc_frame, set_reserve, set_applied, trim_window, gc_below,
              put_broadcast, trim_broadcast_frames, trim_broadcasts}) {
            sqlite3_finalize(s);
        }
    }
};

SqliteDb::~SqliteDb() {
    st_.reset();
    if (db_ != nullptr) {
        sqlite3_close_v2(db_);
    }
    if (lock_fd_ >= 0) {
        ::close(lock_fd_);
    }
}

bool SqliteDb::exec(const char* sql, std::string& error) {
    char* msg = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
        error = msg != nullptr ? msg : errorOf(db_);
        sqlite3_free(msg);
        return false;
    }
    return true;
}

sqlite3_stmt* SqliteDb::prepare(const char* sql, std::string& error) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, nullptr) != SQLITE_OK) {
        error = errorOf(db_);
        return nullptr;
    }
    return st;
}

std::unique_ptr<SqliteDb> SqliteDb::open(const std::string& dir, const SqliteOptions& options,
                                         std::string& error) {
    // No allocation statistics: they cost a global mutex per SQLite malloc (the writer
    // allocates per statement step). Only possible before SQLite initializes; harmless after.
    static std::once_flag config_once;
    std::call_once(config_once, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
    struct stat sb {};
    if (::stat(dir.c_str(), &sb) != 0) {
        error = "data_dir " + dir + ": " + std::strerror(errno);
        return nullptr;
    }
    if (!S_ISDIR(sb.st_mode)) {
        error = "data_dir " + dir + ": not a directory";
        return nullptr;
    }
    if (::access(dir.c_str(), W_OK | X_OK) != 0) {
        error = "data_dir " + dir + ": not writable (" + std::strerror(errno) + ")";
        return nullptr;
    }
    const std::string lock_path = dir + "/tundra.lock";
    const int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0) {
        error = lock_path + ": " + std::strerror(errno);
        return nullptr;
    }
    if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        ::close(lock_fd);
        error = lock_path + ": data_dir in use by another tundrad";
        return nullptr;
    }
    auto db = openFile(dir + "/" + kDbFileName, options, error);
    if (!db) {
        ::close(lock_fd);
        return nullptr;
    }
    db->lock_fd_ = lock_fd;
    return db;
}

std::unique_ptr<SqliteDb> SqliteDb::openFile(const std::string& file, const SqliteOptions& options,
                                             std::string& error) {
    std::unique_ptr<SqliteDb> db(new SqliteDb());
    db->path_ = file;
    const std::string& path = db->path_;
    if (sqlite3_open_v2(path.c_str(), &db->db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK) {
        error = path + ": " + errorOf(db->db_);
        return nullptr;
    }
    sqlite3_extended_result_codes(db->db_, 1);
    sqlite3_busy_timeout(db->db_, 5000);
    std::string why;
    std::int64_t app_id = 0;
    std::int64_t version = 0;
    if (!queryInt(db->db_, "PRAGMA application_id", app_id, why) ||
        !queryInt(db->db_, "PRAGMA user_version", version, why)) {
        error = path + ": cannot read it (" + why + "); corrupt or not a tundra database";
        return nullptr;
    }
    std::int64_t tables = 0;
    if (!queryInt(db->db_, "SELECT count(*) FROM sqlite_schema", tables, why)) {
        error = path + ": cannot read it (" + why + "); corrupt or not a tundra database";
        return nullptr;
    }
    if (tables > 0 && app_id != kApplicationId) {
        error = path + ": not a tundra database (application_id " + std::to_string(app_id) + ")";
        return nullptr;
    }
    if (version > kSchemaVersion) {
        error = path + ": schema version " + std::to_string(version) +
                " is newer than this tundrad knows (" + std::to_string(kSchemaVersion) +
                "); run a newer tundrad or restore a backup";
        return nullptr;
    }
    std::string check;
    if (tables > 0 && (!queryText(db->db_, "PRAGMA quick_check", check, why) || check != "ok")) {
        error = path + ": corrupt (" + (why.empty() ? check : why) +
                "); restore a backup or move the file away";
        return nullptr;
    }
    std::string mode;
    if (!queryText(db->db_, "PRAGMA journal_mode=WAL", mode, why) || mode != "wal") {
        error = path + ": cannot use WAL mode (" + (why.empty() ? mode : why) + ")";
        return nullptr;
    }
    // Checkpoints are few and large: each is synced unless fsync = off, since the journal
    // segments it holds are deleted right after.
    const char* sync =
        options.fsync == FsyncMode::Off ? "PRAGMA synchronous=OFF" : "PRAGMA synchronous=FULL";
    if (!db->exec(sync, why)) {
        error = path + ": " + why;
        return nullptr;
    }
    if (options.max_page_count > 0) {
        const std::string pragma =
            "PRAGMA max_page_count=" + std::to_string(options.max_page_count);
        db->exec(pragma.c_str(), why);
    }
    // Migrations, each with its version bump in one transaction.
    while (version < kSchemaVersion) {
        const std::string step = std::string("BEGIN IMMEDIATE;") + kMigrations[version] +
                                 "PRAGMA application_id=" + std::to_string(kApplicationId) +
                                 ";PRAGMA user_version=" + std::to_string(version + 1) + ";COMMIT;";
        if (!db->exec(step.c_str(), why)) {
            db->exec("ROLLBACK", check);
            error = path;
            error.append(": migration to schema ")
                .append(std::to_string(version + 1))
                .append(" failed: ")
                .append(why);
            return nullptr;
        }
        ++version;
    }
    auto st = std::make_unique<Statements>();
    bool ok = true;
    auto prep = [&](sqlite3_stmt*& s, const char* sql) {
        if (ok && (s = db->prepare(sql, why)) == nullptr) {
            ok = false;
        }
    };
    prep(st->upsert_user,
         "INSERT INTO users(name, kind, session, detached_wall_ms, dropped, bcast_since)"
         " VALUES(?1,?2,?3,?4,?5,?6) ON CONFLICT(name) DO UPDATE SET kind=?2, session=?3,"
         " detached_wall_ms=?4, dropped=?5, bcast_since=?6");
    prep(st->delete_user, "DELETE FROM users WHERE name=?1");
    // A user's written entries through the partial index; its offline entries are deleted
    // one by one before a DeleteUser (see StoreOp), so no statement scans the table by user.
    prep(st->user_ids, "SELECT id FROM entries WHERE user=?1 AND written=1");
    prep(st->delete_user_entries, "DELETE FROM entries WHERE user=?1 AND written=1");
    prep(st->put_frame, "INSERT OR IGNORE INTO frames(id, frame) VALUES(?1, ?2)");
    prep(st->put_entry,
         "INSERT OR REPLACE INTO entries(id, user, written, frame) VALUES(?2, ?1, ?3, ?4)");
    prep(st->delete_entry, "DELETE FROM entries WHERE id=?2 AND user=?1");
    prep(st->gc_frame,
         "DELETE FROM frames WHERE id=?1 AND NOT EXISTS (SELECT 1 FROM entries WHERE id=?1)"
         " AND NOT EXISTS (SELECT 1 FROM broadcasts WHERE id=?1)");
    prep(st->set_reserve, "INSERT OR REPLACE INTO meta(key, value) VALUES('id_reserve', ?1)");
    prep(st->set_applied, "INSERT OR REPLACE INTO meta(key, value) VALUES('journal_applied', ?1)");
    prep(st->trim_window, "DELETE FROM entries WHERE user=?1 AND id<=?2 AND written=1");
    // Frames below the oldest entry and broadcast have nothing left that uses them (ids only
    // grow): one index range per transaction instead of a check per deleted entry.
    prep(st->gc_below,
         "DELETE FROM frames WHERE id < min("
         "(SELECT coalesce(min(id), 9223372036854775807) FROM entries),"
         "(SELECT coalesce(min(id), 9223372036854775807) FROM broadcasts))");
    prep(st->put_broadcast,
         "INSERT OR IGNORE INTO broadcasts(id, sender, agents_only) VALUES(?1, ?2, ?3)");
    // A trimmed broadcast's frame goes with it unless an entry still uses it (a recipient whose
    // connection did not take it has it in its offline buffer).
    prep(st->trim_broadcast_frames,
         "DELETE FROM frames WHERE id IN (SELECT id FROM broadcasts WHERE id <= ?1)"
         " AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.id = frames.id)");
    prep(st->trim_broadcasts, "DELETE FROM broadcasts WHERE id <= ?1");
    if (!ok) {
        error = path + ": " + why;
        return nullptr;
    }
    // Frames whose entries all went (a deleted entry above the oldest one leaves its frame
    // until here).
    if (!db->exec("DELETE FROM frames WHERE id NOT IN (SELECT id FROM entries) AND id NOT IN"
                  " (SELECT id FROM broadcasts)",
                  why)) {
        error = path + ": " + why;
        return nullptr;
    }
    db->st_ = std::move(st);
    return db;
}

bool SqliteDb::load(core::StoreSnapshot& out, std::string& error) {
    out = core::StoreSnapshot{};
    std::int64_t reserve = 0;
    if (!queryInt(db_, "SELECT coalesce(max(value), 0) FROM meta WHERE key='id_reserve'", reserve,
                  error)) {
        return false;
    }
    out.id_reserve = static_cast<std::uint64_t>(reserve);
    std::map<std::string, std::size_t> index;
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_,
                           "SELECT name, kind, session, detached_wall_ms, dropped, bcast_since"
                           " FROM users ORDER BY name",
                           -1, &st, nullptr) != SQLITE_OK) {
        error = errorOf(db_);
        return false;
    }
    int rc = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        core::SnapshotUser u;
        u.name = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
        u.kind = sqlite3_column_int(st, 1) == 1 ? ClientKind::Agent : ClientKind::User;
        if (sqlite3_column_bytes(st, 2) == static_cast<int>(u.session.size())) {
            std::memcpy(u.session.data(), sqlite3_column_blob(st, 2), u.session.size());
        }
        u.detached_wall_ms = sqlite3_column_int64(st, 3);
        u.dropped = static_cast<std::uint32_t>(sqlite3_column_int64(st, 4));
        u.bcast_since = static_cast<std::uint64_t>(sqlite3_column_int64(st, 5));
        index[u.name] = out.users.size();
        out.users.push_back(std::move(u));
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        error = errorOf(db_);
        return false;
    }
    std::map<std::uint64_t, SharedFrame> frames;  // one SharedFrame per id, as in memory
    auto frameOf = [&](std::uint64_t id, int col) -> SharedFrame& {
        SharedFrame& f = frames[id];
        if (!f) {
            const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(st, col));
            f = core::share(ByteSpan(p, static_cast<std::size_t>(sqlite3_column_bytes(st, col))));
        }
        return f;
    };
    if (sqlite3_prepare_v2(db_,
                           "SELECT b.id, b.sender, b.agents_only, f.frame FROM broadcasts b"
                           " JOIN frames f ON f.id = b.id ORDER BY b.id",
                           -1, &st, nullptr) != SQLITE_OK) {
        error = errorOf(db_);
        return false;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const auto id = static_cast<std::uint64_t>(sqlite3_column_int64(st, 0));
        out.broadcasts.push_back(
            core::SnapshotBroadcast{id, reinterpret_cast<const char*>(sqlite3_column_text(st, 1)),
                                    sqlite3_column_int(st, 2) != 0, frameOf(id, 3)});
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        error = errorOf(db_);
        return false;
    }
    if (sqlite3_prepare_v2(db_,
                           "SELECT e.user, e.id, e.written, e.frame, f.frame FROM entries e"
                           " LEFT JOIN frames f ON e.frame IS NULL AND f.id = e.id"
                           " ORDER BY e.user, e.id",
                           -1, &st, nullptr) != SQLITE_OK) {
        error = errorOf(db_);
        return false;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const std::string user = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
        const auto id = static_cast<std::uint64_t>(sqlite3_column_int64(st, 1));
        SharedFrame frame;
        if (sqlite3_column_type(st, 3) != SQLITE_NULL) {  // inline: this entry's own
            const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(st, 3));
            frame = core::share(ByteSpan(p, static_cast<std::size_t>(sqlite3_column_bytes(st, 3))));
        } else if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
            frame = frameOf(id, 4);  // shared, as in memory
        } else {
            continue;  // no frame anywhere: nothing to deliver
        }
        auto it = index.find(user);
        if (it == index.end()) {  // an entry without its user row: keep it, as a user
            core::SnapshotUser u;
            u.name = user;
            it = index.emplace(user, out.users.size()).first;
            out.users.push_back(std::move(u));
        }
        out.users[it->second].entries.push_back(
            core::SnapshotEntry{id, std::move(frame), sqlite3_column_int(st, 2) != 0});
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        error = errorOf(db_);
        return false;
    }
    return true;
}

namespace {
// Steps a statement that returns no rows, then resets it; false with `error`.
bool run(sqlite3* db, sqlite3_stmt* st, std::string& error) {
    const int rc = sqlite3_step(st);
    sqlite3_reset(st);  // every use binds all its parameters again: no clear_bindings
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        error = errorOf(db);
        return false;
    }
    return true;
}
void bindName(sqlite3_stmt* st, int i, const std::string& s) {
    sqlite3_bind_text(st, i, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
}
void bindId(sqlite3_stmt* st, int i, std::uint64_t id) {
    sqlite3_bind_int64(st, i, static_cast<sqlite3_int64>(id));
}
// The frame's bytes (bound static: the op outlives the step), or NULL without one.
void bindFrame(sqlite3_stmt* st, int i, const SharedFrame& f) {
    if (f) {
        sqlite3_bind_blob(st, i, f->data(), static_cast<int>(f->size()), SQLITE_STATIC);
    } else {
        sqlite3_bind_null(st, i);
    }
}
}  // namespace

// Empties every table first (a full batch), then records a new id reserve (0 = none).
bool SqliteDb::wipeAndReserve(bool wipe, std::uint64_t id_reserve, std::string& error) {
    if (wipe && !exec("DELETE FROM entries; DELETE FROM broadcasts; DELETE FROM frames;"
                      " DELETE FROM users;",
                      error)) {
        return false;
    }
    if (id_reserve == 0) {
        return true;
    }
    bindId(st_->set_reserve, 1, id_reserve);
    return run(db_, st_->set_reserve, error);
}

bool SqliteDb::applyOne(const core::StoreBatch& b, std::string& error) {
    using K = core::StoreOp::Kind;
    Statements& s = *st_;
    if (!wipeAndReserve(b.full, b.id_reserve, error)) {
        return false;
    }
    std::uint64_t last_frame = 0;  // a broadcast's entries follow each other: one frame insert
    for (std::size_t i = 0; i < b.ops.size(); ++i) {
        const core::StoreOp& op = b.ops[i];
        switch (op.kind) {
            case K::UpsertUser:
                bindName(s.upsert_user, 1, op.user);
                sqlite3_bind_int(s.upsert_user, 2, op.client_kind == ClientKind::Agent ? 1 : 0);
                if (isNil(op.session)) {
                    sqlite3_bind_null(s.upsert_user, 3);
                } else {
                    sqlite3_bind_blob(s.upsert_user, 3, op.session.data(),
                                      static_cast<int>(op.session.size()), SQLITE_STATIC);
                }
                sqlite3_bind_int64(s.upsert_user, 4, op.detached_wall_ms);
                sqlite3_bind_int64(s.upsert_user, 5, op.dropped);
                bindId(s.upsert_user, 6, op.bcast_since);
                if (!run(db_, s.upsert_user, error)) {
                    return false;
                }
                break;
            case K::DeleteUser: {
                std::vector<std::uint64_t> ids;
                bindName(s.user_ids, 1, op.user);
                while (sqlite3_step(s.user_ids) == SQLITE_ROW) {
                    ids.push_back(static_cast<std::uint64_t>(sqlite3_column_int64(s.user_ids, 0)));
                }
                sqlite3_reset(s.user_ids);
                sqlite3_clear_bindings(s.user_ids);
                bindName(s.delete_user_entries, 1, op.user);
                bindName(s.delete_user, 1, op.user);
                if (!run(db_, s.delete_user_entries, error) || !run(db_, s.delete_user, error)) {
                    return false;
                }
                for (auto id : ids) {
                    bindId(s.gc_frame, 1, id);
                    if (!run(db_, s.gc_frame, error)) {
                        return false;
                    }
                }
                last_frame = 0;  // its frame may be gone now
                break;
            }
            case K::PutEntry: {
                // Several entries of one delivery (a broadcast to detached users) are recorded
                // one after the other, after its PutBroadcast if it has one: those share the
                // frames row. An entry alone keeps its frame inline.
                const bool shared = op.id == last_frame ||
                                    (i + 1 < b.ops.size() && b.ops[i + 1].kind == K::PutEntry &&
                                     b.ops[i + 1].id == op.id);
                if (shared && op.id != last_frame && op.frame) {
                    bindId(s.put_frame, 1, op.id);
                    bindFrame(s.put_frame, 2, op.frame);
                    if (!run(db_, s.put_frame, error)) {
                        return false;
                    }
                    last_frame = op.id;
                }
                bindName(s.put_entry, 1, op.user);
                bindId(s.put_entry, 2, op.id);
                sqlite3_bind_int(s.put_entry, 3, op.written ? 1 : 0);
                static const SharedFrame kNone;
                bindFrame(s.put_entry, 4, shared ? kNone : op.frame);  // no copy of the frame
                if (!run(db_, s.put_entry, error)) {
                    return false;
                }
                break;
            }
            case K::DeleteEntry:
                bindName(s.delete_entry, 1, op.user);
                bindId(s.delete_entry, 2, op.id);
                bindId(s.gc_frame, 1, op.id);
                if (!run(db_, s.delete_entry, error) || !run(db_, s.gc_frame, error)) {
                    return false;
                }
                last_frame = 0;  // its frame may be gone now
                break;
            case K::TrimWindow:
                bindName(s.trim_window, 1, op.user);
                bindId(s.trim_window, 2, op.id);
                if (!run(db_, s.trim_window, error)) {
                    return false;
                }
                break;
            case K::PutBroadcast:
                if (op.frame) {
                    bindId(s.put_frame, 1, op.id);
                    bindFrame(s.put_frame, 2, op.frame);
                    if (!run(db_, s.put_frame, error)) {
                        return false;
                    }
                    last_frame = op.id;
                }
                bindId(s.put_broadcast, 1, op.id);
                bindName(s.put_broadcast, 2, op.user);
                sqlite3_bind_int(s.put_broadcast, 3, op.client_kind == ClientKind::Agent ? 1 : 0);
                if (!run(db_, s.put_broadcast, error)) {
                    return false;
                }
                break;
            case K::TrimBroadcasts:
                bindId(s.trim_broadcast_frames, 1, op.id);
                bindId(s.trim_broadcasts, 1, op.id);
                if (!run(db_, s.trim_broadcast_frames, error) ||
                    !run(db_, s.trim_broadcasts, error)) {
                    return false;
                }
                last_frame = 0;  // its frame may be gone now
                break;
        }
    }
    return true;
}

bool SqliteDb::setJournalApplied(std::uint64_t n, std::string& error) {
    bindId(st_->set_applied, 1, n);
    return run(db_, st_->set_applied, error);
}

bool SqliteDb::apply(std::span<const core::StoreBatch> batches, std::string& error,
                     std::uint64_t journal_applied) {
    if (!exec("BEGIN IMMEDIATE", error)) {
        return false;
    }
    bool ok = true;
    for (const core::StoreBatch& b : batches) {
        ok = ok && applyOne(b, error);
    }
    ok = ok && (journal_applied == 0 || setJournalApplied(journal_applied, error)) &&
         run(db_, st_->gc_below, error) && exec("COMMIT", error);
    if (!ok) {
        std::string ignored;
        exec("ROLLBACK", ignored);
    }
    return ok;
}

bool SqliteDb::applyCompaction(const Compaction& c, std::string& error) {
    Statements& s = *st_;
    if (!wipeAndReserve(c.wipe, c.id_reserve, error)) {
        return false;
    }
    // Range deletions first, on the rows the run found (see compaction.cc).
    for (const auto& [user, id] : c.window_trims) {
        bindName(s.trim_window, 1, user);
        bindId(s.trim_window, 2, id);
        if (!run(db_, s.trim_window, error)) {
            return false;
        }
    }
    for (const std::string& user : c.deleted_users) {
        std::vector<std::uint64_t> ids;
        bindName(s.user_ids, 1, user);
        while (sqlite3_step(s.user_ids) == SQLITE_ROW) {
            ids.push_back(static_cast<std::uint64_t>(sqlite3_column_int64(s.user_ids, 0)));
        }
        sqlite3_reset(s.user_ids);
        bindName(s.delete_user_entries, 1, user);
        if (!run(db_, s.delete_user_entries, error)) {
            return false;
        }
        for (auto id : ids) {
            bindId(s.gc_frame, 1, id);
            if (!run(db_, s.gc_frame, error)) {
                return false;
            }
        }
    }
    if (c.broadcast_trim != 0) {
        bindId(s.trim_broadcast_frames, 1, c.broadcast_trim);
        bindId(s.trim_broadcasts, 1, c.broadcast_trim);
        if (!run(db_, s.trim_broadcast_frames, error) || !run(db_, s.trim_broadcasts, error)) {
            return false;
        }
    }
    // Then the last state of every row the run touched: deletions before insertions, so a
    // frame collected with a deleted entry is stored again for a new one that shares it.
    for (const auto& [user, log] : c.entries) {
        for (const auto& [id, e] : log) {
            if (e.present) {
                continue;
            }
            bindName(s.delete_entry, 1, user);
            bindId(s.delete_entry, 2, id);
            bindId(s.gc_frame, 1, id);
            if (!run(db_, s.delete_entry, error) || !run(db_, s.gc_frame, error)) {
                return false;
            }
        }
    }
    for (const auto& [user, row] : c.users) {
        if (!row) {
            bindName(s.delete_user, 1, user);
            if (!run(db_, s.delete_user, error)) {
                return false;
            }
            continue;
        }
        bindName(s.upsert_user, 1, user);
        sqlite3_bind_int(s.upsert_user, 2, row->kind == ClientKind::Agent ? 1 : 0);
        if (isNil(row->session)) {
            sqlite3_bind_null(s.upsert_user, 3);
        } else {
            sqlite3_bind_blob(s.upsert_user, 3, row->session.data(),
                              static_cast<int>(row->session.size()), SQLITE_STATIC);
        }
        sqlite3_bind_int64(s.upsert_user, 4, row->detached_wall_ms);
        sqlite3_bind_int64(s.upsert_user, 5, row->dropped);
        bindId(s.upsert_user, 6, row->bcast_since);
        if (!run(db_, s.upsert_user, error)) {
            return false;
        }
    }
    // A frame used by several rows (a broadcast, entries of one delivery) goes to frames
    // once; an entry alone keeps its frame inline.
    std::unordered_map<std::uint64_t, std::uint32_t> users_of;
    for (const auto& [id, b] : c.broadcasts) {
        ++users_of[id];
    }
    for (const auto& [user, log] : c.entries) {
        for (const auto& [id, e] : log) {
            if (e.present && e.frame) {
                ++users_of[id];
            }
        }
    }
    std::unordered_set<std::uint64_t> framed;
    auto putFrame = [&](std::uint64_t id, const SharedFrame& f) {
        if (!framed.insert(id).second) {
            return true;
        }
        bindId(s.put_frame, 1, id);
        bindFrame(s.put_frame, 2, f);
        return run(db_, s.put_frame, error);
    };
    for (const auto& [id, b] : c.broadcasts) {
        if (b.frame && !putFrame(id, b.frame)) {
            return false;
        }
        bindId(s.put_broadcast, 1, id);
        bindName(s.put_broadcast, 2, b.sender);
        sqlite3_bind_int(s.put_broadcast, 3, b.agents_only ? 1 : 0);
        if (!run(db_, s.put_broadcast, error)) {
            return false;
        }
    }
    static const SharedFrame kNone;
    for (const auto& [user, log] : c.entries) {
        for (const auto& [id, e] : log) {
            if (!e.present) {
                continue;
            }
            const bool shared = e.frame && users_of[id] > 1;
            if (shared && !putFrame(id, e.frame)) {
                return false;
            }
            bindName(s.put_entry, 1, user);
            bindId(s.put_entry, 2, id);
            sqlite3_bind_int(s.put_entry, 3, e.written ? 1 : 0);
            bindFrame(s.put_entry, 4, shared ? kNone : e.frame);
            if (!run(db_, s.put_entry, error)) {
                return false;
            }
        }
    }
    return true;
}

bool SqliteDb::apply(const Compaction& c, std::uint64_t journal_applied, std::string& error) {
    if (!exec("BEGIN IMMEDIATE", error)) {
        return false;
    }
    const bool ok = applyCompaction(c, error) && setJournalApplied(journal_applied, error) &&
                    run(db_, st_->gc_below, error) && exec("COMMIT", error);
    if (!ok) {
        std::string ignored;
        exec("ROLLBACK", ignored);
    }
    return ok;
}

bool SqliteDb::journalApplied(std::uint64_t& out, std::string& error) {
    std::int64_t v = 0;
    if (!queryInt(db_, "SELECT coalesce(max(value), 0) FROM meta WHERE key='journal_applied'", v,
                  error)) {
        return false;
    }
    out = static_cast<std::uint64_t>(v);
    return true;
}

bool SqliteDb::maxEntryId(std::uint64_t& out, std::string& error) {
    std::int64_t v = 0;
    if (!queryInt(db_, "SELECT coalesce(max(id), 0) FROM entries", v, error)) {
        return false;
    }
    out = static_cast<std::uint64_t>(v);
    return true;
}

namespace {
// Folds the segments of `dir` numbered above `applied` into `c`; false with `error` for a
// damaged one. `last` is the highest number folded (or `applied`).
bool foldSegments(const std::string& dir, std::uint64_t applied, Compaction& c, std::uint64_t& last,
                  std::size_t& records, std::uint64_t& torn, std::string& error) {
    last = applied;
    records = 0;
    torn = 0;
    for (std::uint64_t n : listSegments(dir)) {
        if (n <= applied) {
            continue;
        }
        SegmentRead r;
        if (!readSegment(segmentPath(dir, n), r, error)) {
            return false;
        }
        for (const core::StoreBatch& b : r.batches) {
            c.add(b);
        }
        records += r.records;
        torn += r.torn_bytes;
        last = n;
    }
    return true;
}
}  // namespace

bool SqliteDb::recoverJournal(const std::string& dir, std::string& report, std::string& error) {
    report.clear();
    std::uint64_t applied = 0;
    if (!journalApplied(applied, error)) {
        error = path_ + ": " + error;
        return false;
    }
    // One segment at a time, each in its own transaction: memory stays bounded by a segment
    // whatever the journal grew to, and a failure leaves the database at a segment boundary.
    std::size_t records = 0;
    std::size_t batches = 0;
    std::uint64_t torn = 0;
    for (std::uint64_t n : listSegments(dir)) {
        if (n <= applied) {
            continue;
        }
        SegmentRead r;
        std::uint64_t base = 0;
        if (!readSegment(segmentPath(dir, n), r, error)) {
            error += "; move it away to start without the messages it holds";
            return false;
        }
        if (!maxEntryId(base, error)) {
            error.insert(0, path_ + ": ");
            return false;
        }
        Compaction c(base);
        for (const core::StoreBatch& b : r.batches) {
            c.add(b);
        }
        r.batches.clear();
        if (!apply(c, n, error)) {
            error.insert(0, path_ + ": folding the journal in failed: ");
            return false;
        }
        records += r.records;
        batches += c.batches();
        torn += r.torn_bytes;
    }
    if (records > 0 || torn > 0) {
        report = "journal: " + std::to_string(records) + " records (" + std::to_string(batches) +
                 " batches) folded into the database";
        if (torn > 0) {
            report += "; " + std::to_string(torn) +
                      " bytes of an incomplete last write (never acknowledged) ignored";
        }
    }
    for (std::uint64_t n : listSegments(dir)) {
        ::unlink(segmentPath(dir, n).c_str());
    }
    // Zeros prepared for a segment, never used (and one a crash left half written).
    ::unlink((dir + "/journal.spare").c_str());
    ::unlink((dir + "/journal.spare.tmp").c_str());
    return true;
}

bool checkDataDir(const std::string& dir, std::string& report) {
    const std::string path = dir + "/" + kDbFileName;
    struct stat sb {};
    if (::stat(path.c_str(), &sb) != 0) {
        report = path + ": " + std::strerror(errno);
        return false;
    }
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
        report = path + ": " + errorOf(db);
        sqlite3_close_v2(db);
        return false;
    }
    std::string why;
    std::int64_t version = 0;
    std::int64_t app_id = 0;
    std::string check;
    bool ok = queryInt(db, "PRAGMA application_id", app_id, why) &&
              queryInt(db, "PRAGMA user_version", version, why) &&
              queryText(db, "PRAGMA integrity_check", check, why);
    std::int64_t users = 0;
    std::int64_t entries = 0;
    std::int64_t broadcasts = 0;
    std::int64_t applied = 0;
    if (ok && check == "ok" && app_id == kApplicationId) {
        ok = queryInt(db, "SELECT count(*) FROM users", users, why) &&
             queryInt(db, "SELECT count(*) FROM entries", entries, why) &&
             (version < 2 || queryInt(db, "SELECT count(*) FROM broadcasts", broadcasts, why)) &&
             queryInt(db, "SELECT coalesce(max(value), 0) FROM meta WHERE key='journal_applied'",
                      applied, why);
    }
    sqlite3_close_v2(db);
    if (!ok) {
        report = path + ": corrupt or unreadable (" + why + ")";
        return false;
    }
    if (check != "ok") {
        report = path + ": integrity check failed: " + check;
        return false;
    }
    if (app_id != kApplicationId) {
        report = path + ": not a tundra database";
        return false;
    }
    if (version > kSchemaVersion) {
        report = path + ": schema version " + std::to_string(version) +
                 " is newer than this tundrad knows (" + std::to_string(kSchemaVersion) + ")";
        return false;
    }
    // The journal segments a start would fold in: each must read back whole.
    std::size_t segments = 0;
    std::size_t records = 0;
    std::uint64_t torn = 0;
    for (std::uint64_t n : listSegments(dir)) {
        if (n <= static_cast<std::uint64_t>(applied)) {
            continue;
        }
        SegmentRead r;
        std::string error;
        if (!readSegment(segmentPath(dir, n), r, error)) {
            report = error;
            return false;
        }
        ++segments;
        records += r.records;
        torn += r.torn_bytes;
    }
    report = path + ": ok (schema version " + std::to_string(version) + ", " +
             std::to_string(users) + " users, " + std::to_string(entries) + " stored deliveries, " +
             std::to_string(broadcasts) +
             " stored broadcasts); journal: " + std::to_string(records) + " records in " +
             std::to_string(segments) + " segments not yet folded in";
    if (torn > 0) {
        report += ", " + std::to_string(torn) + " bytes of an incomplete last write";
    }
    return true;
}

namespace {
bool copyDatabase(const std::string& dir, const std::string& file, std::string& error) {
    const std::string path = dir + "/" + kDbFileName;
    struct stat sb {};
    if (::stat(path.c_str(), &sb) != 0) {
        error = path + ": " + std::strerror(errno);
        return false;
    }
    sqlite3* src = nullptr;
    sqlite3* dst = nullptr;
    auto done = [&](bool ok) {
        sqlite3_close_v2(dst);
        sqlite3_close_v2(src);
        return ok;
    };
    if (sqlite3_open_v2(path.c_str(), &src, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
        error = path + ": " + errorOf(src);
        return done(false);
    }
    sqlite3_busy_timeout(src, 5000);
    if (sqlite3_open_v2(file.c_str(), &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
        SQLITE_OK) {
        error = file + ": " + errorOf(dst);
        return done(false);
    }
    sqlite3_backup* b = sqlite3_backup_init(dst, "main", src, "main");
    if (b == nullptr) {
        error = file + ": " + errorOf(dst);
        return done(false);
    }
    int rc = 0;
    do {
        rc = sqlite3_backup_step(b, 256);
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
            sqlite3_sleep(10);
        }
    } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
    sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE) {
        error = file + ": " + errorOf(dst);
        return done(false);
    }
    // The copy is a rollback-journal file of the same schema; make it a WAL database again.
    sqlite3_exec(dst, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
    return done(true);
}
}  // namespace

bool backupDataDir(const std::string& dir, const std::string& file, std::string& error) {
    // The database copy, then the journal segments it does not hold. A checkpoint between the
    // two can fold and delete a segment the copy lacks: then the next segment found is not
    // the one after the copy's last, and the copy is taken again.
    for (int attempt = 0; attempt < 20; ++attempt) {
        ::unlink(file.c_str());
        ::unlink((file + "-wal").c_str());
        ::unlink((file + "-shm").c_str());
        if (!copyDatabase(dir, file, error)) {
            return false;
        }
        SqliteOptions o;
        o.fsync = FsyncMode::Always;
        auto copy = SqliteDb::openFile(file, o, error);
        std::uint64_t applied = 0;
        std::uint64_t base = 0;
        if (!copy || !copy->journalApplied(applied, error) || !copy->maxEntryId(base, error)) {
            error.insert(0, file + ": ");
            return false;
        }
        const auto segments = listSegments(dir);
        const auto first = std::find_if(segments.begin(), segments.end(),
                                        [&](std::uint64_t n) { return n > applied; });
        if (first != segments.end() && *first != applied + 1) {
            continue;  // folded meanwhile: copy again
        }
        Compaction c(base);
        std::uint64_t last = 0;
        std::size_t records = 0;
        std::uint64_t torn = 0;
        if (!foldSegments(dir, applied, c, last, records, torn, error)) {
            if (::access(dir.c_str(), F_OK) == 0 &&
                error.find("No such file") != std::string::npos) {
                continue;  // deleted by a checkpoint while read: copy again
            }
            return false;
        }
        if (last > applied && !copy->apply(c, last, error)) {
            error.insert(0, file + ": ");
            return false;
        }
        return true;
    }
    error = dir + ": the journal kept moving under the backup; try again";
    return false;
}

// ---- SqliteStore: the writer and checkpoint threads ------------------------------------------

SqliteStore::SqliteStore(std::unique_ptr<SqliteDb> db, std::string dir,
                         const SqliteOptions& options)
    : db_(std::move(db)), dir_(std::move(dir)), options_(options) {
    spare_bytes_ = std::min(kMinSpareBytes, options_.checkpoint_bytes);
    event_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

std::unique_ptr<SqliteStore> SqliteStore::open(const std::string& dir, const SqliteOptions& options,
                                               std::string& error) {
    auto db = SqliteDb::open(dir, options, error);
    if (!db) {
        return nullptr;
    }
    std::string report;
    if (!db->recoverJournal(dir, report, error)) {
        return nullptr;
    }
    std::unique_ptr<SqliteStore> s(new SqliteStore(std::move(db), dir, options));
    s->recovery_report_ = std::move(report);
    if (s->event_fd_ < 0) {
        error = std::string("eventfd: ") + std::strerror(errno);
        return nullptr;
    }
    return s;
}

SqliteStore::~SqliteStore() {
    close();
    if (seg_fd_ >= 0) {
        ::close(seg_fd_);
    }
    if (event_fd_ >= 0) {
        ::close(event_fd_);
    }
}

bool SqliteStore::load(core::StoreSnapshot& out, std::string& error) {
    if (writer_.joinable()) {
        error = "already loaded";
        return false;
    }
    if (!db_->load(out, error)) {
        error = db_->path() + ": " + error;
        return false;
    }
    std::uint64_t applied = 0;
    if (!db_->journalApplied(applied, error)) {
        error = db_->path() + ": " + error;
        return false;
    }
    seg_number_ = applied + 1;
    if (!openSegment(error)) {
        return false;
    }
    // The threads take no signals: they belong to the reactor's signalfd (blocked there only
    // later, so block them around the threads' creation, which they inherit).
    sigset_t all;
    sigset_t old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    writer_ = std::thread([this] { run(); });
    checkpointer_ = std::thread([this] { runCheckpoints(); });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return true;
}

bool SqliteStore::submit(core::StoreBatch& batch) {
    {
        std::lock_guard lock(mu_);
        if (queue_.size() >= options_.queue_batches) {
            return false;
        }
        queue_.push_back(std::move(batch));
    }
    batch = core::StoreBatch{};
    cv_.notify_one();
    return true;
}

void SqliteStore::takeResults(std::vector<core::BatchResult>& out) {
    std::uint64_t n = 0;
    [[maybe_unused]] auto r = ::read(event_fd_, &n, sizeof n);
    std::lock_guard lock(mu_);
    for (auto& res : results_) {
        out.push_back(std::move(res));
    }
    results_.clear();
}

namespace {
bool syncFd(int fd) { return ::fdatasync(fd) == 0; }

bool writeAll(int fd, const char* p, std::size_t n, std::uint64_t offset) {
    while (n > 0) {
        const ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(offset));
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            if (w == 0) {
                errno = ENOSPC;
            }
            return false;
        }
        p += w;
        n -= static_cast<std::size_t>(w);
        offset += static_cast<std::uint64_t>(w);
    }
    return true;
}

std::string sparePath(const std::string& dir) { return dir + "/journal.spare"; }
}  // namespace

// A segment is written in place into a file already filled with zeros (prepared by the
// checkpoint thread): its fdatasync then flushes data only, no file size or block allocation
// to commit, about a third less time and kernel CPU per sync on ext4. Without a spare ready
// (fsync = off, a full disk, the first segment) the file simply grows.
bool SqliteStore::openSegment(std::string& error) {
    const std::string path = segmentPath(dir_, seg_number_);
    bool prepared = false;
    {
        std::lock_guard lock(cp_mu_);
        if (spare_ready_ && ::rename(sparePath(dir_).c_str(), path.c_str()) == 0) {
            prepared = true;
        }
        spare_ready_ = false;
    }
    cp_cv_.notify_all();  // the checkpoint thread prepares the next one
    seg_fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (prepared ? 0 : O_TRUNC), 0600);
    if (seg_fd_ < 0) {
        error = path + ": " + std::strerror(errno);
        return false;
    }
    if (!writeAll(seg_fd_, kJournalMagic, sizeof kJournalMagic, 0)) {
        error = path + ": " + std::strerror(errno);
        ::close(seg_fd_);
        seg_fd_ = -1;
        ::unlink(path.c_str());
        return false;
    }
    seg_bytes_ = sizeof kJournalMagic;
    seg_dirty_ = true;
    if (options_.fsync != FsyncMode::Off) {
        // The new file's name must survive a power loss as well as its records.
        const int d = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (d >= 0) {
            ::fsync(d);
            ::close(d);
        }
    }
    std::lock_guard lock(cp_mu_);
    journal_bytes_ += seg_bytes_;
    return true;
}

void SqliteStore::prepareSpare() {
    // Written under a temporary name: DIR/journal.spare exists only once it is whole.
    const std::string tmp = sparePath(dir_) + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0;
    static const std::string kZeros(1 << 20, static_cast<char>(0));
    std::uint64_t size = 0;
    {
        std::lock_guard lock(cp_mu_);
        size = spare_bytes_;
    }
    for (std::uint64_t at = 0; ok && at < size; at += kZeros.size()) {
        const std::size_t n =
            static_cast<std::size_t>(std::min<std::uint64_t>(kZeros.size(), size - at));
        ok = writeAll(fd, kZeros.data(), n, at);
    }
    ok = ok && ::fdatasync(fd) == 0;
    if (fd >= 0) {
        ::close(fd);
    }
    std::lock_guard lock(cp_mu_);
    ok = ok && ::rename(tmp.c_str(), sparePath(dir_).c_str()) == 0;
    if (!ok) {
        ::unlink(tmp.c_str());  // no room: segments grow as they are written
        spare_failed_ms_ = steadyMs();
    }
    spare_ready_ = ok;
}

void SqliteStore::sealSegment() {
    if (seg_fd_ < 0 || seg_bytes_ <= sizeof kJournalMagic) {
        return;  // nothing in it yet: keep appending to it
    }
    if (options_.fsync != FsyncMode::Off) {
        syncFd(seg_fd_);
    }
    ::close(seg_fd_);
    seg_fd_ = -1;
    {
        std::lock_guard lock(cp_mu_);
        sealed_.push_back(Sealed{seg_number_, seg_bytes_});
        // The next spares as large as this segment grew (twice, up to a full segment): a
        // server with little traffic does not write 64 MiB of zeros for nothing.
        spare_bytes_ = std::clamp<std::uint64_t>(
            2 * seg_bytes_, std::min(kMinSpareBytes, options_.checkpoint_bytes),
            options_.checkpoint_bytes);
    }
    cp_cv_.notify_all();
    ++seg_number_;
    std::string error;
    if (!openSegment(error)) {
        spdlog::warn("storage: {}", error);  // retried at the next append
    }
}

bool SqliteStore::append(const std::string& record, std::string& error) {
    {
        // Bounded: while checkpoints are behind, wait for them; while they fail, refuse.
        std::unique_lock lock(cp_mu_);
        const std::uint64_t cap = 4 * options_.checkpoint_bytes;
        cp_cv_.wait(lock, [&] {
            return journal_bytes_ + record.size() <= cap || !cp_error_.empty() || sealed_.empty() ||
                   cp_stop_;
        });
        if (journal_bytes_ + record.size() > cap && !cp_error_.empty()) {
            error = "journal full while checkpoints fail: " + cp_error_;
            return false;
        }
    }
    if (seg_fd_ < 0 && !openSegment(error)) {
        return false;
    }
    // A record that could not be written or synced is cut off again: its batch is reported
    // failed (the core refuses those messages), so it must not come back at the next start.
    // The segment is then sealed (its earlier records are folded in as usual) and the next
    // append goes to a fresh file.
    auto fail = [&](const char* what) {
        error = "journal " + segmentPath(dir_, seg_number_) + ": " + what + std::strerror(errno);
        [[maybe_unused]] const int cut = ::ftruncate(seg_fd_, static_cast<off_t>(seg_bytes_));
        // (if even that fails, the partial record is a torn tail: nothing intact follows it)
        sealSegment();
        return false;
    };
    if (!writeAll(seg_fd_, record.data(), record.size(), seg_bytes_)) {
        return fail("");
    }
    if (options_.fsync == FsyncMode::Always && !syncFd(seg_fd_)) {
        return fail("fsync: ");
    }
    seg_bytes_ += record.size();
    seg_dirty_ = options_.fsync != FsyncMode::Always;
    std::lock_guard lock(cp_mu_);
    journal_bytes_ += record.size();
    return true;
}

bool SqliteStore::applyFull(const core::StoreBatch& b, std::string& error) {
    // A full batch replaces everything: it goes straight into the database, and every
    // segment before the open one is obsolete with it (after it, nothing older is folded in).
    sealSegment();
    std::unique_lock lock(cp_mu_);
    while (!sealed_.empty() && sealed_.back().number < seg_number_ && sealed_.size() > 1) {
        sealed_.pop_back();  // not started yet; the one being folded (front) finishes first
    }
    full_ = &b;
    full_upto_ = seg_number_ - 1;
    full_done_ = false;
    cp_cv_.notify_all();
    cp_cv_.wait(lock, [&] { return full_done_; });
    full_ = nullptr;
    if (!full_ok_) {
        error = full_error_;
    }
    return full_ok_;
}

void SqliteStore::run() {
    pthread_setname_np(pthread_self(), "tundra-writer");
    const bool interval = options_.fsync == FsyncMode::Interval;
    std::vector<core::StoreBatch> work;
    for (;;) {
        bool stopping = false;
        {
            std::unique_lock lock(mu_);
            auto ready = [&] { return stop_ || !queue_.empty(); };
            if (interval && seg_dirty_) {
                const auto wait = std::max<std::int64_t>(
                    last_sync_ms_ + options_.fsync_interval_ms - steadyMs(), 0);
                cv_.wait_for(lock, std::chrono::milliseconds(wait), ready);
            } else {
                cv_.wait(lock, ready);
            }
            work.swap(queue_);  // every batch waiting: one record, one sync (group commit)
            stopping = stop_ && work.empty();
        }
        if (!work.empty()) {
            std::vector<bool> ok(work.size(), false);
            std::vector<std::string> errors(work.size());
            std::size_t i = 0;
            while (i < work.size()) {
                if (work[i].full) {
                    ok[i] = applyFull(work[i], errors[i]);
                    ++i;
                    continue;
                }
                std::size_t j = i;
                while (j < work.size() && !work[j].full) {
                    ++j;
                }
                record_.clear();
                encodeRecord(std::span<const core::StoreBatch>(work.data() + i, j - i), record_);
                std::string error;
                const bool done = append(record_, error);
                for (; i < j; ++i) {
                    ok[i] = done;
                    errors[i] = error;
                }
            }
            {
                std::lock_guard lock(mu_);
                for (std::size_t k = 0; k < work.size(); ++k) {
                    auto& b = work[k];
                    b.ops.clear();  // frames and names are released here, off the reactor
                    results_.push_back(
                        core::BatchResult{b.seq, ok[k], std::move(errors[k]), std::move(b.ops)});
                }
            }
            work.clear();
            const std::uint64_t one = 1;
            [[maybe_unused]] auto w = ::write(event_fd_, &one, sizeof one);
            if (seg_bytes_ >= options_.checkpoint_bytes) {
                sealSegment();
            }
        }
        if (interval && seg_dirty_ && seg_fd_ >= 0 &&
            steadyMs() >= last_sync_ms_ + options_.fsync_interval_ms) {
            syncFd(seg_fd_);  // at most one interval of accepted messages at risk
            seg_dirty_ = false;
            last_sync_ms_ = steadyMs();
        }
        if (stopping) {
            // A clean stop folds the whole journal in: the next start reads no segment.
            sealSegment();
            if (seg_fd_ >= 0) {
                ::close(seg_fd_);
                seg_fd_ = -1;
            }
            {
                std::lock_guard lock(cp_mu_);
                cp_stop_ = true;
            }
            cp_cv_.notify_all();
            return;
        }
    }
}

void SqliteStore::runCheckpoints() {
    pthread_setname_np(pthread_self(), "tundra-ckpt");
    std::int64_t last_warning = 0;
    std::unique_lock lock(cp_mu_);
    for (;;) {
        if (full_ != nullptr && !full_done_) {
            const core::StoreBatch* b = full_;
            const std::uint64_t upto = full_upto_;
            lock.unlock();
            std::string error;
            const bool ok = db_->apply(std::span<const core::StoreBatch>(b, 1), error, upto);
            if (ok) {
                for (std::uint64_t n : listSegments(dir_)) {
                    if (n <= upto) {
                        ::unlink(segmentPath(dir_, n).c_str());
                    }
                }
            }
            lock.lock();
            if (ok) {
                while (!sealed_.empty() && sealed_.front().number <= upto) {
                    sealed_.pop_front();
                }
                // What is left: the open segment (its writer waits for this) and nothing
                // sealed before it.
                journal_bytes_ = seg_fd_ >= 0 ? seg_bytes_ : 0;
                for (const Sealed& left : sealed_) {
                    journal_bytes_ += left.bytes;
                }
                cp_error_.clear();
            }
            full_ok_ = ok;
            full_error_ = error;
            full_done_ = true;
            cp_cv_.notify_all();
            continue;
        }
        if (sealed_.empty()) {
            if (cp_stop_) {
                lock.unlock();
                ::unlink(sparePath(dir_).c_str());  // a clean stop leaves no spare behind
                return;
            }
            // Idle: have the next segment's file ready (after a failure, at most every 10 s).
            if (!spare_ready_ && options_.fsync != FsyncMode::Off &&
                steadyMs() - spare_failed_ms_ >= kSpareRetryMs) {
                lock.unlock();
                prepareSpare();
                lock.lock();
                continue;
            }
            if (spare_ready_ || options_.fsync == FsyncMode::Off) {
                cp_cv_.wait(lock);
            } else {
                cp_cv_.wait_for(lock, std::chrono::milliseconds(kSpareRetryMs));
            }
            continue;
        }
        const Sealed seg = sealed_.front();
        lock.unlock();
        // Fold the segment in: its net effect, in one transaction.
        const std::string path = segmentPath(dir_, seg.number);
        std::string error;
        SegmentRead r;
        std::uint64_t base = 0;
        bool ok = readSegment(path, r, error) && db_->maxEntryId(base, error);
        if (ok) {
            Compaction c(base);
            for (const core::StoreBatch& b : r.batches) {
                c.add(b);
            }
            r.batches.clear();
            ok = db_->apply(c, seg.number, error);
        }
        if (ok) {
            ::unlink(path.c_str());
        }
        lock.lock();
        if (ok) {
            if (!sealed_.empty() && sealed_.front().number == seg.number) {
                sealed_.pop_front();
                journal_bytes_ -= std::min(journal_bytes_, seg.bytes);
            }
            cp_error_.clear();
            ++checkpoints_;
        } else {
            cp_error_ = error;
            ++checkpoint_failures_;
            if (steadyMs() - last_warning >= 1000) {
                last_warning = steadyMs();
                spdlog::warn(
                    "storage: checkpoint of {} failed: {} (retrying; the journal keeps "
                    "the messages)",
                    path, error);
            }
        }
        cp_cv_.notify_all();
        if (!ok) {
            // Retry in a second, or at once for a full batch or the stop.
            cp_cv_.wait_for(lock, std::chrono::seconds(1),
                            [&] { return (full_ != nullptr && !full_done_) || cp_stop_; });
            if (cp_stop_ && full_ == nullptr) {
                lock.unlock();
                ::unlink(sparePath(dir_).c_str());
                return;  // the journal keeps it for the next start
            }
        }
    }
}

Store::Stats SqliteStore::stats() {
    std::lock_guard lock(cp_mu_);
    return Stats{journal_bytes_, checkpoints_, checkpoint_failures_};
}

void SqliteStore::close() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_.notify_one();
    if (writer_.joinable()) {
        writer_.join();
    }
    if (checkpointer_.joinable()) {
        checkpointer_.join();
    }
}

}  // namespace tundra::storage
