// SPDX-License-Identifier: Apache-2.0
// The SQLite store: a round trip of every kind of mutation, full resync batches, schema
// migration and the refusal of newer or corrupt files, the lock against a second server, the
// writer thread with its completion descriptor, --check-data and the online backup.
#include "storage/sqlite_store.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sqlite3.h>

#include <fstream>

#include "support/scratch_dir.h"

namespace tundra::storage {
namespace {

using core::StoreBatch;
using core::StoreOp;
using testing::ScratchDir;

SharedFrame frame(std::uint8_t fill, std::size_t n = 40) { return core::share(Bytes(n, fill)); }

StoreOp user(std::string name, ClientKind kind = ClientKind::User, Uuid session = {},
             std::int64_t detached = 0, std::uint32_t dropped = 0) {
    StoreOp op;
    op.kind = StoreOp::Kind::UpsertUser;
    op.user = std::move(name);
    op.client_kind = kind;
    op.session = session;
    op.detached_wall_ms = detached;
    op.dropped = dropped;
    return op;
}

StoreOp put(std::string name, std::uint64_t id, SharedFrame f, bool written = false) {
    StoreOp op;
    op.kind = StoreOp::Kind::PutEntry;
    op.user = std::move(name);
    op.id = id;
    op.frame = std::move(f);
    op.written = written;
    return op;
}

StoreOp del(std::string name, std::uint64_t id) {
    StoreOp op;
    op.kind = StoreOp::Kind::DeleteEntry;
    op.user = std::move(name);
    op.id = id;
    return op;
}

StoreBatch batch(std::vector<StoreOp> ops, std::uint64_t reserve = 0) {
    StoreBatch b;
    b.ops = std::move(ops);
    b.id_reserve = reserve;
    return b;
}

const core::SnapshotUser* find(const core::StoreSnapshot& s, const std::string& name) {
    for (const auto& u : s.users) {
        if (u.name == name) {
            return &u;
        }
    }
    return nullptr;
}

std::int64_t countRows(const std::string& path, const char* table) {
    sqlite3* db = nullptr;
    sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
    sqlite3_stmt* st = nullptr;
    const std::string sql = std::string("SELECT count(*) FROM ") + table;
    sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr);
    std::int64_t n = -1;
    if (sqlite3_step(st) == SQLITE_ROW) {
        n = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close_v2(db);
    return n;
}

TEST(SqliteDb, EveryMutationSurvivesAReopen) {
    ScratchDir dir;
    std::string error;
    Uuid sid{};
    sid[0] = 7;
    const SharedFrame shared = frame(0xaa);
    {
        auto db = SqliteDb::open(dir.path(), {}, error);
        ASSERT_TRUE(db) << error;
        std::vector<StoreBatch> batches;
        batches.push_back(batch({user("alice"), user("bob", ClientKind::Agent, sid, 12345, 3),
                                 user("gone"), put("alice", 10, shared), put("bob", 10, shared),
                                 put("bob", 11, frame(0xbb), true), put("gone", 12, frame(1))},
                                1000));
        batches.push_back(batch({del("alice", 10), put("bob", 13, frame(0xcc))}));
        StoreOp forget;
        forget.kind = StoreOp::Kind::DeleteUser;
        forget.user = "gone";
        // The core deletes a user's offline entries before the user (DeleteUser covers only
        // the written ones, through the partial index).
        batches.push_back(
            batch({del("gone", 12), forget, put("bob", 11, frame(0xbb), false)}, 2000));
        ASSERT_TRUE(db->apply(batches, error)) << error;
    }
    auto db = SqliteDb::open(dir.path(), {}, error);
    ASSERT_TRUE(db) << error;
    core::StoreSnapshot s;
    ASSERT_TRUE(db->load(s, error)) << error;
    EXPECT_EQ(s.id_reserve, 2000U);
    ASSERT_EQ(s.users.size(), 2U);
    const auto* alice = find(s, "alice");
    const auto* bob = find(s, "bob");
    ASSERT_TRUE(alice && bob);
    EXPECT_TRUE(alice->entries.empty());
    EXPECT_EQ(bob->kind, ClientKind::Agent);
    EXPECT_EQ(bob->session, sid);
    EXPECT_EQ(bob->detached_wall_ms, 12345);
    EXPECT_EQ(bob->dropped, 3U);
    ASSERT_EQ(bob->entries.size(), 3U);
    EXPECT_EQ(bob->entries[0].id, 10U);
    EXPECT_EQ(*bob->entries[0].frame, *shared);
    EXPECT_FALSE(bob->entries[1].written) << "the second put moved it back offline";
    EXPECT_EQ(bob->entries[2].id, 13U);
    // Only the frame stored for two entries (id 10, alice's and bob's) is in `frames`, kept
    // for bob; every other entry has its frame inline (12 went with its user).
    EXPECT_EQ(countRows(db->path(), "frames"), 1);
    EXPECT_EQ(*bob->entries[1].frame, Bytes(40, 0xbb));
    EXPECT_EQ(*bob->entries[2].frame, Bytes(40, 0xcc));
}

TEST(SqliteDb, AWindowTrimDeletesOnlyWrittenEntries) {
    ScratchDir dir;
    std::string error;
    auto db = SqliteDb::open(dir.path(), {}, error);
    ASSERT_TRUE(db) << error;
    ASSERT_TRUE(db->apply(
        {batch({user("bob"), put("bob", 1, frame(1), true), put("bob", 2, frame(2), false),
                put("bob", 3, frame(3), true), put("bob", 4, frame(4), true)})},
        error))
        << error;
    StoreOp trim;
    trim.kind = StoreOp::Kind::TrimWindow;
    trim.user = "bob";
    trim.id = 3;
    ASSERT_TRUE(db->apply({batch({trim})}, error)) << error;
    core::StoreSnapshot s;
    ASSERT_TRUE(db->load(s, error));
    ASSERT_EQ(s.users.size(), 1U);
    std::vector<std::uint64_t> ids;
    for (const auto& e : s.users[0].entries) {
        ids.push_back(e.id);
    }
    EXPECT_EQ(ids, (std::vector<std::uint64_t>{2, 4})) << "the offline entry 2 stays";
    EXPECT_EQ(*s.users[0].entries[0].frame, Bytes(40, 2));
    EXPECT_EQ(*s.users[0].entries[1].frame, Bytes(40, 4));
    EXPECT_EQ(countRows(db->path(), "frames"), 0) << "one entry per frame: all inline";
}

// A delivery stored for several users (a broadcast to detached sessions: its entries are
// recorded one after the other) keeps one frame in `frames`, shared again at load; the frame
// goes with the last entry that uses it, or stays behind a trim until a sweep.
TEST(SqliteDb, AFrameOfSeveralEntriesIsStoredOnceAndGoesWithTheLast) {
    ScratchDir dir;
    std::string error;
    auto db = SqliteDb::open(dir.path(), {}, error);
    ASSERT_TRUE(db) << error;
    const SharedFrame shared = frame(5);
    ASSERT_TRUE(db->apply(
        {batch({user("bob"), user("carol"), user("dave"), put("bob", 5, shared, true),
                put("carol", 5, shared), put("dave", 5, shared), put("dave", 6, frame(6))})},
        error))
        << error;
    EXPECT_EQ(countRows(db->path(), "frames"), 1);
    core::StoreSnapshot s;
    ASSERT_TRUE(db->load(s, error)) << error;
    ASSERT_EQ(find(s, "carol")->entries.size(), 1U);
    EXPECT_EQ(*find(s, "carol")->entries[0].frame, Bytes(40, 5));
    EXPECT_EQ(find(s, "carol")->entries[0].frame, find(s, "bob")->entries[0].frame)
        << "one frame in memory too";
    EXPECT_EQ(*find(s, "dave")->entries[1].frame, Bytes(40, 6));

    StoreOp trim;
    trim.kind = StoreOp::Kind::TrimWindow;
    trim.user = "bob";
    trim.id = 5;
    ASSERT_TRUE(db->apply({batch({trim, del("carol", 5)})}, error)) << error;
    EXPECT_EQ(countRows(db->path(), "frames"), 1) << "dave's entry still uses it";
    ASSERT_TRUE(db->apply({batch({del("dave", 5)})}, error)) << error;
    EXPECT_EQ(countRows(db->path(), "frames"), 0);
    ASSERT_TRUE(db->load(s, error)) << error;
    EXPECT_TRUE(find(s, "bob")->entries.empty());
    EXPECT_TRUE(find(s, "carol")->entries.empty());
    ASSERT_EQ(find(s, "dave")->entries.size(), 1U);
    EXPECT_EQ(*find(s, "dave")->entries[0].frame, Bytes(40, 6));
}

TEST(SqliteDb, AFullBatchReplacesEverything) {
    ScratchDir dir;
    std::string error;
    auto db = SqliteDb::open(dir.path(), {}, error);
    ASSERT_TRUE(db) << error;
    ASSERT_TRUE(db->apply({batch({user("old"), put("old", 1, frame(1))})}, error)) << error;
    StoreBatch full = batch({user("new"), put("new", 2, frame(2))}, 99);
    full.full = true;
    ASSERT_TRUE(db->apply({full}, error)) << error;
    core::StoreSnapshot s;
    ASSERT_TRUE(db->load(s, error));
    ASSERT_EQ(s.users.size(), 1U);
    EXPECT_EQ(s.users[0].name, "new");
    ASSERT_EQ(s.users[0].entries.size(), 1U);
    EXPECT_EQ(*s.users[0].entries[0].frame, Bytes(40, 2));
    EXPECT_EQ(countRows(db->path(), "entries"), 1);
}

TEST(SqliteDb, AFailedBatchLeavesNothingBehind) {
    ScratchDir dir;
    std::string error;
    SqliteOptions o;
    o.max_page_count = 30;  // a tiny "disk"
    auto db = SqliteDb::open(dir.path(), o, error);
    ASSERT_TRUE(db) << error;
    ASSERT_TRUE(db->apply({batch({user("bob"), put("bob", 1, frame(1))})}, error)) << error;
    std::vector<StoreOp> big{put("bob", 2, frame(2))};
    for (std::uint64_t id = 3; id < 200; ++id) {
        big.push_back(put("bob", id, frame(static_cast<std::uint8_t>(id), 4000)));
    }
    EXPECT_FALSE(db->apply({batch(big)}, error));
    EXPECT_NE(error.find("full"), std::string::npos) << error;
    core::StoreSnapshot s;
    ASSERT_TRUE(db->load(s, error));
    ASSERT_EQ(s.users.size(), 1U);
    EXPECT_EQ(s.users[0].entries.size(), 1U) << "the failed transaction was rolled back";
    // Writes that fit succeed again.
    EXPECT_TRUE(db->apply({batch({put("bob", 2, frame(2))})}, error)) << error;
}

TEST(SqliteDb, ANewerSchemaIsRefusedWithTheFileNamed) {
    ScratchDir dir;
    std::string error;
    ASSERT_TRUE(SqliteDb::open(dir.path(), {}, error)) << error;
    const std::string path = dir.file(kDbFileName);
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(raw, "PRAGMA user_version=99", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(raw);
    EXPECT_FALSE(SqliteDb::open(dir.path(), {}, error));
    EXPECT_NE(error.find(path), std::string::npos) << error;
    EXPECT_NE(error.find("schema version 99 is newer"), std::string::npos) << error;
    std::string report;
    EXPECT_FALSE(checkDataDir(dir.path(), report));
    EXPECT_NE(report.find("newer"), std::string::npos) << report;
}

TEST(SqliteDb, AnOlderSchemaIsMigrated) {
    ScratchDir dir;
    std::string error;
    {
        // A version-0 database: empty, as an older tundrad that never wrote would leave it.
        sqlite3* raw = nullptr;
        ASSERT_EQ(sqlite3_open(dir.file(kDbFileName).c_str(), &raw), SQLITE_OK);
        sqlite3_close(raw);
    }
    auto db = SqliteDb::open(dir.path(), {}, error);
    ASSERT_TRUE(db) << error;
    std::string report;
    db.reset();
    EXPECT_TRUE(checkDataDir(dir.path(), report)) << report;
    EXPECT_NE(report.find("schema version 2"), std::string::npos) << report;
}

// A database as tundrad 0.1 (schema 1) wrote it keeps its users and logs under schema 2, and
// its users have no broadcast range (nobody is online in a file).
TEST(SqliteDb, ASchemaOneDatabaseKeepsItsContentWhenMigrated) {
    ScratchDir dir;
    {
        sqlite3* raw = nullptr;
        ASSERT_EQ(sqlite3_open(dir.file(kDbFileName).c_str(), &raw), SQLITE_OK);
        const char* v1 =
            "CREATE TABLE users(name TEXT PRIMARY KEY, kind INTEGER NOT NULL, session BLOB,"
            " detached_wall_ms INTEGER NOT NULL DEFAULT 0, dropped INTEGER NOT NULL DEFAULT 0)"
            " WITHOUT ROWID;"
            "CREATE TABLE frames(id INTEGER PRIMARY KEY, frame BLOB NOT NULL);"
            "CREATE TABLE entries(user TEXT NOT NULL, id INTEGER NOT NULL, written INTEGER NOT"
            " NULL, PRIMARY KEY(user, id)) WITHOUT ROWID;"
            "CREATE INDEX entries_by_id ON entries(id);"
            "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
            "INSERT INTO users VALUES('bob', 0, NULL, 0, 2);"
            "INSERT INTO frames VALUES(7, x'0102030405');"
            "INSERT INTO entries VALUES('bob', 7, 0);"
            "INSERT INTO meta VALUES('id_reserve', 4096);"
            "PRAGMA application_id=1414876740; PRAGMA user_version=1;";
        ASSERT_EQ(sqlite3_exec(raw, v1, nullptr, nullptr, nullptr), SQLITE_OK)
            << sqlite3_errmsg(raw);
        sqlite3_close(raw);
    }
    std::string error;
    auto db = SqliteDb::open(dir.path(), {}, error);
    ASSERT_TRUE(db) << error;
    core::StoreSnapshot snap;
    ASSERT_TRUE(db->load(snap, error)) << error;
    EXPECT_EQ(snap.id_reserve, 4096U);
    const auto* bob = find(snap, "bob");
    ASSERT_NE(bob, nullptr);
    EXPECT_EQ(bob->dropped, 2U);
    EXPECT_EQ(bob->bcast_since, 0U);
    ASSERT_EQ(bob->entries.size(), 1U);
    EXPECT_EQ(bob->entries[0].id, 7U);
    EXPECT_EQ(*bob->entries[0].frame, (Bytes{1, 2, 3, 4, 5}));
    EXPECT_TRUE(snap.broadcasts.empty());
    db.reset();
    std::string report;
    EXPECT_TRUE(checkDataDir(dir.path(), report)) << report;
    EXPECT_NE(report.find("schema version 2, 1 users, 1 stored deliveries"), std::string::npos)
        << report;
}

StoreOp broadcast(std::string sender, std::uint64_t id, SharedFrame f, bool agents_only = false) {
    StoreOp op;
    op.kind = StoreOp::Kind::PutBroadcast;
    op.user = std::move(sender);
    op.id = id;
    op.frame = std::move(f);
    op.client_kind = agents_only ? ClientKind::Agent : ClientKind::User;
    return op;
}

StoreOp trimBroadcasts(std::uint64_t id) {
    StoreOp op;
    op.kind = StoreOp::Kind::TrimBroadcasts;
    op.id = id;
    return op;
}

// Broadcasts are stored once, with their sender and audience, and an online user's row keeps
// its range start. A trim forgets the broadcasts up to an id and their frames, except a frame
// an entry still uses (a recipient that had it buffered offline).
TEST(SqliteDb, BroadcastsAreStoredOnceAndTrimmedWithTheirFramesUnlessAnEntryUsesThem) {
    ScratchDir dir;
    std::string error;
    auto db = SqliteDb::open(dir.path(), {}, error);
    ASSERT_TRUE(db) << error;
    StoreOp alice = user("alice");
    alice.bcast_since = 10;
    ASSERT_TRUE(db->apply({batch({alice, user("carol"), broadcast("bob", 10, frame(1)),
                                  broadcast("bob", 11, frame(2), /*agents_only=*/true),
                                  put("carol", 11, frame(2)), broadcast("carol", 12, frame(3))})},
                          error))
        << error;
    core::StoreSnapshot snap;
    ASSERT_TRUE(db->load(snap, error)) << error;
    EXPECT_EQ(find(snap, "alice")->bcast_since, 10U);
    EXPECT_EQ(find(snap, "carol")->bcast_since, 0U);
    ASSERT_EQ(snap.broadcasts.size(), 3U);
    EXPECT_EQ(snap.broadcasts[0].id, 10U);
    EXPECT_EQ(snap.broadcasts[0].sender, "bob");
    EXPECT_FALSE(snap.broadcasts[0].agents_only);
    EXPECT_EQ(*snap.broadcasts[0].frame, Bytes(40, 1));
    EXPECT_TRUE(snap.broadcasts[1].agents_only);
    EXPECT_EQ(snap.broadcasts[1].frame, find(snap, "carol")->entries[0].frame)
        << "one frame per id, shared as in memory";
    EXPECT_EQ(snap.broadcasts[2].sender, "carol");
    EXPECT_EQ(countRows(db->path(), "frames"), 3);

    ASSERT_TRUE(db->apply({batch({trimBroadcasts(11)})}, error)) << error;
    ASSERT_TRUE(db->load(snap, error)) << error;
    ASSERT_EQ(snap.broadcasts.size(), 1U);
    EXPECT_EQ(snap.broadcasts[0].id, 12U);
    EXPECT_EQ(countRows(db->path(), "frames"), 2) << "frame 10 goes, 11 stays for carol's entry";
    ASSERT_EQ(find(snap, "carol")->entries.size(), 1U);
    EXPECT_EQ(*find(snap, "carol")->entries[0].frame, Bytes(40, 2));

    // A deleted entry below the oldest broadcast takes its frame; the broadcast's stays.
    ASSERT_TRUE(db->apply({batch({del("carol", 11)})}, error)) << error;
    EXPECT_EQ(countRows(db->path(), "frames"), 1);
    ASSERT_TRUE(db->load(snap, error)) << error;
    ASSERT_EQ(snap.broadcasts.size(), 1U);
    EXPECT_EQ(*snap.broadcasts[0].frame, Bytes(40, 3));

    // A full batch replaces the broadcasts too.
    StoreBatch full = batch({user("alice")});
    full.full = true;
    ASSERT_TRUE(db->apply({full}, error)) << error;
    ASSERT_TRUE(db->load(snap, error)) << error;
    EXPECT_TRUE(snap.broadcasts.empty());
    EXPECT_EQ(countRows(db->path(), "frames"), 0);
}

TEST(SqliteDb, GarbageAndDamagedFilesAreRefused) {
    ScratchDir dir;
    std::string error;
    const std::string path = dir.write(kDbFileName, std::string(8192, 'z'));
    EXPECT_FALSE(SqliteDb::open(dir.path(), {}, error));
    EXPECT_NE(error.find(path), std::string::npos) << error;
    std::string report;
    EXPECT_FALSE(checkDataDir(dir.path(), report));

    // A real database with a page overwritten in the middle.
    ScratchDir dir2;
    {
        auto db = SqliteDb::open(dir2.path(), {}, error);
        ASSERT_TRUE(db) << error;
        std::vector<StoreOp> ops{user("bob")};
        for (std::uint64_t id = 1; id < 300; ++id) {
            ops.push_back(put("bob", id, frame(static_cast<std::uint8_t>(id), 500)));
        }
        ASSERT_TRUE(db->apply({batch(ops)}, error)) << error;
    }
    {
        std::fstream f(dir2.file(kDbFileName), std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(4096 * 3);
        const std::string junk(4096 * 4, '\x5a');
        f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
    }
    ::unlink(dir2.file(std::string(kDbFileName) + "-wal").c_str());
    EXPECT_FALSE(SqliteDb::open(dir2.path(), {}, error));
    EXPECT_NE(error.find(dir2.file(kDbFileName)), std::string::npos) << error;
    EXPECT_FALSE(checkDataDir(dir2.path(), report));
}

TEST(SqliteDb, MissingOrLockedDirectoriesAreRefused) {
    std::string error;
    EXPECT_FALSE(SqliteDb::open("/nonexistent/tundra-data", {}, error));
    EXPECT_NE(error.find("/nonexistent/tundra-data"), std::string::npos) << error;
    ScratchDir dir;
    auto first = SqliteDb::open(dir.path(), {}, error);
    ASSERT_TRUE(first) << error;
    EXPECT_FALSE(SqliteDb::open(dir.path(), {}, error));
    EXPECT_NE(error.find("in use"), std::string::npos) << error;
}

TEST(SqliteStore, TheWriterReportsEachBatchThroughItsDescriptor) {
    ScratchDir dir;
    std::string error;
    for (auto mode : {FsyncMode::Always, FsyncMode::Interval, FsyncMode::Off}) {
        SqliteOptions o;
        o.fsync = mode;
        o.fsync_interval_ms = 20;
        auto store = SqliteStore::open(dir.path(), o, error);
        ASSERT_TRUE(store) << error;
        core::StoreSnapshot s;
        ASSERT_TRUE(store->load(s, error)) << error;
        std::vector<core::BatchResult> results;
        for (std::uint64_t seq = 1; seq <= 5; ++seq) {
            StoreBatch b = batch({user("u" + std::to_string(seq))});
            b.seq = seq;
            ASSERT_TRUE(store->submit(b));
        }
        while (results.size() < 5) {
            pollfd p{store->completionFd(), POLLIN, 0};
            ASSERT_EQ(::poll(&p, 1, 5000), 1) << "no completion within 5 s";
            store->takeResults(results);
        }
        for (std::size_t i = 0; i < results.size(); ++i) {
            EXPECT_EQ(results[i].seq, i + 1);
            EXPECT_TRUE(results[i].ok) << results[i].error;
        }
        store->close();
        store.reset();
        auto db = SqliteDb::open(dir.path(), {}, error);
        ASSERT_TRUE(db) << error;
        ASSERT_TRUE(db->load(s, error));
        EXPECT_EQ(s.users.size(), 5U);
    }
}

TEST(SqliteStore, AFullQueueRefusesWithoutBlocking) {
    ScratchDir dir;
    std::string error;
    SqliteOptions o;
    o.queue_batches = 1;
    auto store = SqliteStore::open(dir.path(), o, error);
    ASSERT_TRUE(store) << error;
    // Not loaded: the writer thread has not started, so the queue cannot drain.
    StoreBatch a = batch({user("a")});
    StoreBatch b = batch({user("b")});
    EXPECT_TRUE(store->submit(a));
    EXPECT_FALSE(store->submit(b));
    EXPECT_EQ(b.ops.size(), 1U) << "a refused batch stays with the caller";
}

TEST(Backup, ACopyWhileTheStoreIsOpenIsComplete) {
    ScratchDir dir;
    ScratchDir out;
    std::string error;
    auto db = SqliteDb::open(dir.path(), {}, error);
    ASSERT_TRUE(db) << error;
    ASSERT_TRUE(db->apply({batch({user("bob"), put("bob", 5, frame(5))}, 77)}, error)) << error;
    ASSERT_TRUE(backupDataDir(dir.path(), out.file(kDbFileName), error)) << error;
    std::string report;
    EXPECT_TRUE(checkDataDir(out.path(), report)) << report;
    auto copy = SqliteDb::open(out.path(), {}, error);
    ASSERT_TRUE(copy) << error;
    core::StoreSnapshot s;
    ASSERT_TRUE(copy->load(s, error));
    ASSERT_EQ(s.users.size(), 1U);
    EXPECT_EQ(s.users[0].entries.size(), 1U);
    EXPECT_EQ(s.id_reserve, 77U);
    EXPECT_FALSE(backupDataDir("/nonexistent", out.file("x.db"), error));
}

}  // namespace
}  // namespace tundra::storage
