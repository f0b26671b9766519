// SPDX-License-Identifier: Apache-2.0
// The store's journal and checkpoints: records round trip, torn and damaged segments,
// compaction equal to applying batch by batch (random runs), and the SQLite store writing
// through the journal: a crash image recovers, full segments are folded in and deleted,
// --check-data and the backup see what is still only in the journal, and a journal whose
// checkpoints fail is bounded and recovers with a full batch.
#include "storage/journal.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <thread>

#include "storage/compaction.h"
#include "storage/sqlite_store.h"
#include "support/scratch_dir.h"

namespace tundra::storage {
namespace {

using core::StoreBatch;
using core::StoreOp;
using K = core::StoreOp::Kind;
using testing::ScratchDir;

SharedFrame frame(std::uint8_t fill, std::size_t n = 40) { return core::share(Bytes(n, fill)); }

StoreOp op(K kind, std::string name, std::uint64_t id = 0, SharedFrame f = nullptr,
           bool written = false) {
    StoreOp o;
    o.kind = kind;
    o.user = std::move(name);
    o.id = id;
    o.frame = std::move(f);
    o.written = written;
    return o;
}

StoreBatch batch(std::vector<StoreOp> ops, std::uint64_t seq = 1, std::uint64_t reserve = 0) {
    StoreBatch b;
    b.ops = std::move(ops);
    b.seq = seq;
    b.id_reserve = reserve;
    return b;
}

void writeFile(const std::string& path, const std::string& data) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(data.data(), static_cast<std::streamsize>(data.size()));
}

std::string segmentOf(const std::vector<std::vector<StoreBatch>>& records) {
    std::string out(kJournalMagic, sizeof kJournalMagic);
    for (const auto& r : records) {
        encodeRecord(r, out);
    }
    return out;
}

// ---- records ---------------------------------------------------------------------------------

TEST(Journal, EveryKindOfOpRoundTripsAndASharedFrameIsWrittenOnce) {
    ScratchDir dir;
    StoreOp u = op(K::UpsertUser, "bob");
    u.client_kind = ClientKind::Agent;
    u.session = Uuid{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    u.detached_wall_ms = 1234567;
    u.dropped = 9;
    u.bcast_since = 4096;
    StoreOp b = op(K::PutBroadcast, "alice", 50, frame(0xB0, 300));
    b.client_kind = ClientKind::Agent;
    const SharedFrame shared = b.frame;
    StoreBatch first =
        batch({u, b, op(K::PutEntry, "carol", 50, shared), op(K::PutEntry, "dave", 50, shared),
               op(K::PutEntry, "bob", 51, nullptr, true)},
              7, 99);
    StoreBatch second = batch({op(K::DeleteEntry, "carol", 50), op(K::TrimWindow, "bob", 51),
                               op(K::TrimBroadcasts, "", 50), op(K::DeleteUser, "dave")},
                              8);
    second.full = true;
    const std::string data = segmentOf({{first, second}});
    EXPECT_LT(data.size(), 600U) << "the 300-byte frame shared by three ops is written once";
    writeFile(segmentPath(dir.path(), 3), data);

    SegmentRead r;
    std::string error;
    ASSERT_TRUE(readSegment(segmentPath(dir.path(), 3), r, error)) << error;
    EXPECT_EQ(r.records, 1U);
    EXPECT_EQ(r.torn_bytes, 0U);
    EXPECT_EQ(r.valid_bytes, data.size());
    ASSERT_EQ(r.batches.size(), 2U);
    const StoreBatch& a = r.batches[0];
    EXPECT_EQ(a.seq, 7U);
    EXPECT_EQ(a.id_reserve, 99U);
    EXPECT_FALSE(a.full);
    ASSERT_EQ(a.ops.size(), 5U);
    EXPECT_EQ(a.ops[0].kind, K::UpsertUser);
    EXPECT_EQ(a.ops[0].user, "bob");
    EXPECT_EQ(a.ops[0].client_kind, ClientKind::Agent);
    EXPECT_EQ(a.ops[0].session, u.session);
    EXPECT_EQ(a.ops[0].detached_wall_ms, 1234567);
    EXPECT_EQ(a.ops[0].dropped, 9U);
    EXPECT_EQ(a.ops[0].bcast_since, 4096U);
    EXPECT_EQ(a.ops[1].kind, K::PutBroadcast);
    EXPECT_EQ(a.ops[1].user, "alice");
    EXPECT_EQ(a.ops[1].id, 50U);
    EXPECT_EQ(a.ops[1].client_kind, ClientKind::Agent);
    ASSERT_TRUE(a.ops[1].frame);
    EXPECT_EQ(*a.ops[1].frame, *shared);
    EXPECT_EQ(a.ops[2].frame.get(), a.ops[1].frame.get()) << "decoded as one shared frame";
    EXPECT_EQ(a.ops[3].frame.get(), a.ops[1].frame.get());
    EXPECT_EQ(a.ops[3].user, "dave");
    EXPECT_EQ(a.ops[4].id, 51U);
    EXPECT_TRUE(a.ops[4].written);
    EXPECT_FALSE(a.ops[4].frame);
    const StoreBatch& c = r.batches[1];
    EXPECT_TRUE(c.full);
    ASSERT_EQ(c.ops.size(), 4U);
    EXPECT_EQ(c.ops[0].kind, K::DeleteEntry);
    EXPECT_EQ(c.ops[0].id, 50U);
    EXPECT_EQ(c.ops[1].kind, K::TrimWindow);
    EXPECT_EQ(c.ops[2].kind, K::TrimBroadcasts);
    EXPECT_EQ(c.ops[2].id, 50U);
    EXPECT_EQ(c.ops[3].kind, K::DeleteUser);
    EXPECT_EQ(c.ops[3].user, "dave");
}

TEST(Journal, SegmentsAreListedInNumberOrderAndOtherFilesIgnored) {
    ScratchDir dir;
    for (std::uint64_t n : {12U, 3U, 1000000U}) {
        writeFile(segmentPath(dir.path(), n), "");
    }
    writeFile(dir.file("journal.tmp"), "");
    writeFile(dir.file("tundra.db"), "");
    EXPECT_EQ(listSegments(dir.path()), (std::vector<std::uint64_t>{3, 12, 1000000}));
    EXPECT_EQ(segmentPath("/d", 42), "/d/journal.000000000042");
}

TEST(Journal, ATornLastWriteIsIgnoredAndCounted) {
    ScratchDir dir;
    const std::string one = segmentOf({{batch({op(K::PutEntry, "bob", 1, frame(1))})}});
    const std::string two = segmentOf({{batch({op(K::PutEntry, "bob", 1, frame(1))})},
                                       {batch({op(K::PutEntry, "bob", 2, frame(2))})}});
    const std::string path = segmentPath(dir.path(), 1);
    std::string error;
    // Cut anywhere inside the second record: the first is read, the rest counted as torn.
    for (std::size_t cut = one.size() + 1; cut < two.size(); cut += 7) {
        writeFile(path, two.substr(0, cut));
        SegmentRead r;
        ASSERT_TRUE(readSegment(path, r, error)) << error;
        EXPECT_EQ(r.records, 1U) << "cut at " << cut;
        ASSERT_EQ(r.batches.size(), 1U);
        EXPECT_EQ(r.batches[0].ops[0].id, 1U);
        // Counted up to its last non-zero byte (a record's own bytes may end in zeros).
        EXPECT_GT(r.torn_bytes, 0U);
        EXPECT_LE(r.torn_bytes, cut - one.size());
        EXPECT_EQ(r.valid_bytes, one.size());
        // The same in a segment prepared zero-filled: the torn record is followed by zeros.
        writeFile(path, two.substr(0, cut) + std::string(4096, '\0'));
        SegmentRead prepared;
        ASSERT_TRUE(readSegment(path, prepared, error)) << error;
        EXPECT_EQ(prepared.records, 1U) << "cut at " << cut;
        EXPECT_EQ(prepared.torn_bytes, r.torn_bytes);
    }
    // The unused rest of a segment prepared zero-filled is not a torn write.
    writeFile(path, one + std::string(100, '\0'));
    SegmentRead zeros;
    ASSERT_TRUE(readSegment(path, zeros, error)) << error;
    EXPECT_EQ(zeros.records, 1U);
    EXPECT_EQ(zeros.torn_bytes, 0U);
    // The last record's length on disk with bytes that do not match its checksum (the file
    // grew before all of its data reached it).
    std::string garbled = two;
    garbled[garbled.size() - 3] ^= 0x55;
    writeFile(path, garbled);
    SegmentRead last;
    ASSERT_TRUE(readSegment(path, last, error)) << error;
    EXPECT_EQ(last.records, 1U);
    EXPECT_GT(last.torn_bytes, 0U);
    // Created (or prepared zero-filled), then a crash before the first record.
    for (const std::string& empty_file :
         {std::string("TND"), std::string(4096, '\0'), std::string(kJournalMagic, 8)}) {
        writeFile(path, empty_file);
        SegmentRead empty;
        ASSERT_TRUE(readSegment(path, empty, error)) << error;
        EXPECT_EQ(empty.records, 0U);
        EXPECT_EQ(empty.torn_bytes, 0U);
    }
}

TEST(Journal, ADamagedRecordFollowedByMoreIsRefusedWithItsOffset) {
    ScratchDir dir;
    std::string data = segmentOf({{batch({op(K::PutEntry, "bob", 1, frame(1))})},
                                  {batch({op(K::PutEntry, "bob", 2, frame(2))})}});
    data[sizeof kJournalMagic + kRecordHeaderBytes + 10] ^= 0x01;  // inside the first payload
    const std::string path = segmentPath(dir.path(), 1);
    writeFile(path, data);
    SegmentRead r;
    std::string error;
    EXPECT_FALSE(readSegment(path, r, error));
    EXPECT_NE(error.find(path), std::string::npos) << error;
    EXPECT_NE(error.find("damaged record at offset 8"), std::string::npos) << error;
    writeFile(path, data + std::string(4096, '\0'));  // in a segment prepared zero-filled
    EXPECT_FALSE(readSegment(path, r, error));
    EXPECT_NE(error.find("damaged record at offset 8"), std::string::npos) << error;

    writeFile(path, "not a journal at all, but long enough");
    EXPECT_FALSE(readSegment(path, r, error));
    EXPECT_NE(error.find("not a tundra journal segment"), std::string::npos) << error;
}

// ---- compaction ------------------------------------------------------------------------------

TEST(Compaction, AnEntryStoredAndDeletedWithinTheRunLeavesNothing) {
    Compaction c(100);  // the database holds ids up to 100
    c.add(batch({op(K::PutEntry, "bob", 101, frame(1)), op(K::PutEntry, "bob", 102, frame(2)),
                 op(K::PutEntry, "bob", 103, frame(3), true)}));
    c.add(batch({op(K::DeleteEntry, "bob", 101), op(K::TrimWindow, "bob", 103),
                 op(K::DeleteEntry, "bob", 7)}));
    const auto& log = c.entries.at("bob");
    ASSERT_EQ(log.size(), 2U);
    EXPECT_TRUE(log.at(102).present) << "offline, untouched by the trim";
    EXPECT_FALSE(log.at(7).present) << "may be in the database: deleted there";
    EXPECT_EQ(c.window_trims.at("bob"), 103U);
}

// Compares everything a load returns.
void expectSameContent(const core::StoreSnapshot& a, const core::StoreSnapshot& b,
                       const std::string& what) {
    ASSERT_EQ(a.id_reserve, b.id_reserve) << what;
    ASSERT_EQ(a.users.size(), b.users.size()) << what;
    for (std::size_t i = 0; i < a.users.size(); ++i) {
        const auto& x = a.users[i];
        const auto& y = b.users[i];
        ASSERT_EQ(x.name, y.name) << what;
        EXPECT_EQ(x.kind, y.kind) << what;
        EXPECT_EQ(x.session, y.session) << what;
        EXPECT_EQ(x.detached_wall_ms, y.detached_wall_ms) << what;
        EXPECT_EQ(x.dropped, y.dropped) << what;
        EXPECT_EQ(x.bcast_since, y.bcast_since) << what;
        ASSERT_EQ(x.entries.size(), y.entries.size()) << what << " user " << x.name;
        for (std::size_t j = 0; j < x.entries.size(); ++j) {
            EXPECT_EQ(x.entries[j].id, y.entries[j].id) << what;
            EXPECT_EQ(x.entries[j].written, y.entries[j].written) << what;
            EXPECT_EQ(*x.entries[j].frame, *y.entries[j].frame) << what;
        }
    }
    ASSERT_EQ(a.broadcasts.size(), b.broadcasts.size()) << what;
    for (std::size_t i = 0; i < a.broadcasts.size(); ++i) {
        EXPECT_EQ(a.broadcasts[i].id, b.broadcasts[i].id) << what;
        EXPECT_EQ(a.broadcasts[i].sender, b.broadcasts[i].sender) << what;
        EXPECT_EQ(a.broadcasts[i].agents_only, b.broadcasts[i].agents_only) << what;
        EXPECT_EQ(*a.broadcasts[i].frame, *b.broadcasts[i].frame) << what;
    }
}

// A random batch over a few users and ids, every kind of op, ids mostly increasing (as the
// core makes them) with rewrites of older ones (written flag changes, closed broadcast
// ranges).
StoreBatch randomBatch(std::mt19937& rng, std::uint64_t& next_id) {
    const char* names[] = {"ann", "bob", "cy", "dee"};
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
    StoreBatch b;
    const int ops = 1 + pick(6);
    for (int i = 0; i < ops; ++i) {
        const std::string name = names[pick(4)];
        const std::uint64_t old_id = next_id > 1 ? 1 + rng() % (next_id - 1) : 1;
        switch (pick(10)) {
            case 0: {
                StoreOp u = op(K::UpsertUser, name);
                u.client_kind = pick(2) == 0 ? ClientKind::User : ClientKind::Agent;
                u.dropped = static_cast<std::uint32_t>(pick(5));
                u.bcast_since = pick(2) == 0 ? 0 : old_id;
                u.detached_wall_ms = pick(1000);
                b.ops.push_back(u);
                break;
            }
            case 1:
                if (pick(4) == 0) {
                    b.ops.push_back(op(K::DeleteUser, name));
                }
                break;
            case 2: {  // a delivery to several (shared frame)
                const SharedFrame f = frame(static_cast<std::uint8_t>(next_id), 20);
                for (int k = 0; k < 2; ++k) {
                    b.ops.push_back(op(K::PutEntry, names[pick(4)], next_id, f, pick(2) == 0));
                }
                ++next_id;
                break;
            }
            case 3:
            case 4:
                b.ops.push_back(op(K::PutEntry, name, next_id,
                                   frame(static_cast<std::uint8_t>(next_id), 20), pick(2) == 0));
                ++next_id;
                break;
            case 5:  // an older entry rewritten (written flag, or a closed broadcast range)
                b.ops.push_back(op(K::PutEntry, name, old_id,
                                   frame(static_cast<std::uint8_t>(old_id), 20), pick(2) == 0));
                break;
            case 6:
                b.ops.push_back(op(K::DeleteEntry, name, old_id));
                break;
            case 7:
                b.ops.push_back(op(K::TrimWindow, name, old_id));
                break;
            case 8: {
                StoreOp bc = op(K::PutBroadcast, name, next_id,
                                frame(static_cast<std::uint8_t>(next_id), 20));
                bc.client_kind = pick(3) == 0 ? ClientKind::Agent : ClientKind::User;
                b.ops.push_back(bc);
                if (pick(2) == 0) {  // and entries of it for detached users
                    b.ops.push_back(op(K::PutEntry, names[pick(4)], next_id, bc.frame));
                }
                ++next_id;
                break;
            }
            default:
                b.ops.push_back(op(K::TrimBroadcasts, "", old_id));
                break;
        }
    }
    if (pick(5) == 0) {
        b.id_reserve = next_id + 100;
    }
    return b;
}

TEST(Compaction, FoldingARunIsTheSameAsApplyingItBatchByBatch) {
    SqliteOptions o;
    o.fsync = FsyncMode::Off;
    std::mt19937 rng(20261205);
    for (int trial = 0; trial < 60; ++trial) {
        ScratchDir one_by_one;
        ScratchDir folded;
        std::string error;
        auto a = SqliteDb::open(one_by_one.path(), o, error);
        auto b = SqliteDb::open(folded.path(), o, error);
        ASSERT_TRUE(a && b) << error;
        std::uint64_t next_id = 1;
        // A base both databases hold, then a run: batch by batch into one, folded into the
        // other.
        for (int i = 0; i < 15; ++i) {
            const StoreBatch base = randomBatch(rng, next_id);
            ASSERT_TRUE(a->apply({base}, error)) << error;
            ASSERT_TRUE(b->apply({base}, error)) << error;
        }
        std::uint64_t max_id = 0;
        ASSERT_TRUE(b->maxEntryId(max_id, error)) << error;
        Compaction c(max_id);
        for (int i = 0; i < 25; ++i) {
            StoreBatch step = randomBatch(rng, next_id);
            if (rng() % 40 == 0) {
                step.full = true;
            }
            ASSERT_TRUE(a->apply({step}, error)) << error;
            c.add(step);
        }
        ASSERT_TRUE(b->apply(c, 5, error)) << error;
        core::StoreSnapshot sa;
        core::StoreSnapshot sb;
        ASSERT_TRUE(a->load(sa, error)) << error;
        ASSERT_TRUE(b->load(sb, error)) << error;
        expectSameContent(sa, sb, "trial " + std::to_string(trial));
        if (::testing::Test::HasFailure()) {
            return;
        }
        std::uint64_t applied = 0;
        ASSERT_TRUE(b->journalApplied(applied, error));
        EXPECT_EQ(applied, 5U);
    }
}

// ---- the store through its journal -----------------------------------------------------------

std::vector<core::BatchResult> runBatches(SqliteStore& store, std::vector<StoreBatch> batches) {
    const std::size_t n = batches.size();
    std::vector<core::BatchResult> results;
    for (auto& b : batches) {
        while (!store.submit(b)) {
            pollfd p{store.completionFd(), POLLIN, 0};
            ::poll(&p, 1, 5000);
            store.takeResults(results);
        }
    }
    while (results.size() < n) {
        pollfd p{store.completionFd(), POLLIN, 0};
        if (::poll(&p, 1, 10000) != 1) {
            ADD_FAILURE() << "no completion within 10 s";
            break;
        }
        store.takeResults(results);
    }
    return results;
}

std::vector<StoreBatch> offlineMessages(const std::string& to, std::uint64_t first, int count,
                                        std::size_t bytes = 100) {
    std::vector<StoreBatch> out;
    for (int i = 0; i < count; ++i) {
        const std::uint64_t id = first + static_cast<std::uint64_t>(i);
        out.push_back(batch({op(K::PutEntry, to, id, frame(static_cast<std::uint8_t>(id), bytes))},
                            id, id + 1));
    }
    return out;
}

// Copies the data directory's files as they are now: what a crash would leave. The checkpoint
// thread may be preparing a spare segment meanwhile (journal.spare.tmp, renamed when whole): a
// file that is gone by the time it is copied is left out, as a crash a moment later would.
void crashImage(const std::string& from, const std::string& to) {
    for (const auto& e : std::filesystem::directory_iterator(from)) {
        if (e.path().filename() == "tundra.lock") {
            continue;
        }
        std::error_code ec;
        std::filesystem::copy_file(e.path(), std::filesystem::path(to) / e.path().filename(),
                                   std::filesystem::copy_options::overwrite_existing, ec);
        if (ec && std::filesystem::exists(e.path())) {
            FAIL() << "copying " << e.path() << ": " << ec.message();
        }
    }
}

TEST(JournalStore, AcknowledgedBatchesAreInTheJournalAndACrashImageRecoversThem) {
    ScratchDir dir;
    ScratchDir crashed;
    ScratchDir backup;
    std::string error;
    auto store = SqliteStore::open(dir.path(), {}, error);
    ASSERT_TRUE(store) << error;
    core::StoreSnapshot s;
    ASSERT_TRUE(store->load(s, error)) << error;
    std::vector<StoreBatch> batches = offlineMessages("bob", 10, 20);
    batches.insert(batches.begin(), batch({op(K::UpsertUser, "bob")}, 9));
    for (const auto& r : runBatches(*store, std::move(batches))) {
        ASSERT_TRUE(r.ok) << r.error;
    }
    // Acknowledged, and only in the journal: the database has no entry yet.
    crashImage(dir.path(), crashed.path());
    std::string report;
    ASSERT_TRUE(checkDataDir(crashed.path(), report)) << report;
    EXPECT_NE(report.find("0 stored deliveries"), std::string::npos) << report;
    EXPECT_NE(report.find("journal: "), std::string::npos) << report;
    EXPECT_EQ(report.find("journal: 0 records"), std::string::npos) << report;
    // The backup of the running store folds the journal into its copy.
    ASSERT_TRUE(backupDataDir(dir.path(), backup.file(kDbFileName), error)) << error;
    ASSERT_TRUE(checkDataDir(backup.path(), report)) << report;
    EXPECT_NE(report.find("1 users, 20 stored deliveries"), std::string::npos) << report;
    EXPECT_NE(report.find("journal: 0 records in 0 segments"), std::string::npos) << report;
    // A start from the crash image folds the journal in and has every message.
    auto recovered = SqliteStore::open(crashed.path(), {}, error);
    ASSERT_TRUE(recovered) << error;
    EXPECT_NE(recovered->recoveryReport().find("folded into the database"), std::string::npos)
        << recovered->recoveryReport();
    core::StoreSnapshot after;
    ASSERT_TRUE(recovered->load(after, error)) << error;
    ASSERT_EQ(after.users.size(), 1U);
    ASSERT_EQ(after.users[0].entries.size(), 20U);
    EXPECT_EQ(after.users[0].entries[19].id, 29U);
    EXPECT_EQ(after.id_reserve, 30U);
    store->close();
}

TEST(JournalStore, AStartFoldsEverySegmentInOrderAndIgnoresATornLastWrite) {
    ScratchDir dir;
    writeFile(
        segmentPath(dir.path(), 1),
        segmentOf({{batch({op(K::UpsertUser, "bob"), op(K::PutEntry, "bob", 1, frame(1))})}}));
    writeFile(segmentPath(dir.path(), 2),
              segmentOf({{batch({op(K::PutEntry, "bob", 2, frame(2))})},
                         {batch({op(K::DeleteEntry, "bob", 1)}, 2, 50)}}));
    const std::string third = segmentOf({{batch({op(K::PutEntry, "bob", 3, frame(3))})},
                                         {batch({op(K::PutEntry, "bob", 4, frame(4))})}});
    writeFile(segmentPath(dir.path(), 3), third.substr(0, third.size() - 5));
    std::string error;
    auto store = SqliteStore::open(dir.path(), {}, error);
    ASSERT_TRUE(store) << error;
    EXPECT_NE(store->recoveryReport().find("journal: 4 records (4 batches) folded"),
              std::string::npos)
        << store->recoveryReport();
    EXPECT_NE(store->recoveryReport().find("bytes of an incomplete last write"), std::string::npos)
        << store->recoveryReport();
    core::StoreSnapshot s;
    ASSERT_TRUE(store->load(s, error)) << error;
    ASSERT_EQ(s.users.size(), 1U);
    ASSERT_EQ(s.users[0].entries.size(), 2U);
    EXPECT_EQ(s.users[0].entries[0].id, 2U);
    EXPECT_EQ(s.users[0].entries[1].id, 3U) << "the torn write (id 4) was never acknowledged";
    EXPECT_EQ(s.id_reserve, 50U);
    // Folded in and gone; the new segment continues the numbering.
    EXPECT_EQ(listSegments(dir.path()), (std::vector<std::uint64_t>{4}));
}

TEST(JournalStore, FullSegmentsAreFoldedInAndDeletedAndACleanStopLeavesNoneToFold) {
    ScratchDir dir;
    std::string error;
    SqliteOptions o;
    o.checkpoint_bytes = 4096;  // a segment every ~25 messages
    {
        auto store = SqliteStore::open(dir.path(), o, error);
        ASSERT_TRUE(store) << error;
        core::StoreSnapshot s;
        ASSERT_TRUE(store->load(s, error)) << error;
        std::vector<StoreBatch> batches = offlineMessages("bob", 100, 300);
        // Half of them reach bob and are confirmed: stored and deleted within the journal.
        for (std::uint64_t id = 100; id < 250; ++id) {
            batches.push_back(batch({op(K::PutEntry, "bob", id, frame(1), true)}, 1000 + id));
        }
        batches.push_back(batch({op(K::TrimWindow, "bob", 249)}, 5000));
        for (const auto& r : runBatches(*store, std::move(batches))) {
            ASSERT_TRUE(r.ok) << r.error;
        }
        // Checkpoints run in the background: wait (bounded) until they caught up.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (listSegments(dir.path()).size() > 2 && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        EXPECT_LE(listSegments(dir.path()).size(), 2U) << "segments were not folded in";
        const auto stats = store->stats();
        EXPECT_GE(stats.checkpoints, 5U);
        EXPECT_EQ(stats.checkpoint_failures, 0U);
        EXPECT_LT(stats.journal_bytes, 3 * o.checkpoint_bytes) << "what is left: the open segment";
        store->close();
    }
    // After a clean stop the database holds everything and nothing is left to fold.
    auto db = SqliteDb::open(dir.path(), {}, error);
    ASSERT_TRUE(db) << error;
    std::string report;
    ASSERT_TRUE(db->recoverJournal(dir.path(), report, error)) << error;
    EXPECT_EQ(report, "") << "a clean stop folds the whole journal in";
    std::uint64_t applied = 0;
    ASSERT_TRUE(db->journalApplied(applied, error));
    EXPECT_GT(applied, 5U);
    core::StoreSnapshot s;
    ASSERT_TRUE(db->load(s, error)) << error;
    ASSERT_EQ(s.users.size(), 1U);
    ASSERT_EQ(s.users[0].entries.size(), 150U);
    EXPECT_EQ(s.users[0].entries.front().id, 250U);
    EXPECT_FALSE(s.users[0].entries.front().written);
}

bool waitFor(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) {
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
}

std::uint64_t fileSize(const std::string& path) {
    struct stat sb {};
    return ::stat(path.c_str(), &sb) == 0 ? static_cast<std::uint64_t>(sb.st_size) : 0;
}

TEST(JournalStore, SegmentsAreWrittenIntoFilesPreparedZeroFilledAndACrashImageOfOneRecovers) {
    ScratchDir dir;
    ScratchDir crashed;
    std::string error;
    SqliteOptions o;
    o.checkpoint_bytes = 64 * 1024;
    auto store = SqliteStore::open(dir.path(), o, error);
    ASSERT_TRUE(store) << error;
    core::StoreSnapshot s;
    ASSERT_TRUE(store->load(s, error)) << error;
    const std::string spare = dir.file("journal.spare");
    // The checkpoint thread prepares the next segment's file while idle (a background
    // thread: awaited, bounded).
    ASSERT_TRUE(waitFor([&] { return fileSize(spare) == o.checkpoint_bytes; }));
    // Fill the first segment (a file that grew) past its size: the second is the spare.
    for (const auto& r : runBatches(*store, offlineMessages("bob", 1, 500))) {
        ASSERT_TRUE(r.ok) << r.error;
    }
    const std::string second = segmentPath(dir.path(), 2);
    ASSERT_TRUE(waitFor([&] { return fileSize(second) > 0; }));
    EXPECT_GE(fileSize(second), o.checkpoint_bytes) << "written in place, not grown";
    for (const auto& r : runBatches(*store, offlineMessages("bob", 1000, 5))) {
        ASSERT_TRUE(r.ok) << r.error;
    }
    // Once the first segment is folded in, the database is not being written: copy the files
    // as a crash would leave them.
    ASSERT_TRUE(waitFor([&] { return listSegments(dir.path()).size() == 1; }));
    crashImage(dir.path(), crashed.path());
    store.reset();
    EXPECT_EQ(fileSize(spare), 0U) << "a clean stop removes the spare";
    auto recovered = SqliteStore::open(crashed.path(), {}, error);
    ASSERT_TRUE(recovered) << error;
    EXPECT_EQ(recovered->recoveryReport().find("incomplete"), std::string::npos)
        << "the zeros after the last record are no torn write: " << recovered->recoveryReport();
    ASSERT_TRUE(recovered->load(s, error)) << error;
    ASSERT_EQ(s.users.size(), 1U);
    ASSERT_EQ(s.users[0].entries.size(), 505U);
    EXPECT_EQ(s.users[0].entries.back().id, 1004U);
}

// A record the disk refuses (here: the process's file size limit, EFBIG) fails its batch and
// is cut off again, so what the core refused never comes back at the next start; the
// segment's earlier records stay, and later batches go to a fresh segment.
TEST(JournalStore, ARecordThatCannotBeWrittenFailsItsBatchAndIsNotReplayed) {
    ScratchDir dir;
    std::string error;
    SqliteOptions o;
    o.checkpoint_bytes = 1 << 20;  // no seal before the limit is reached
    auto store = SqliteStore::open(dir.path(), o, error);
    ASSERT_TRUE(store) << error;
    core::StoreSnapshot s;
    ASSERT_TRUE(store->load(s, error)) << error;
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit old{};
    ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
    rlimit small = old;
    small.rlim_cur = 48 * 1024;
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
    std::vector<core::BatchResult> results;
    for (auto& b : offlineMessages("bob", 1, 100, 1000)) {  // one record each
        auto r = runBatches(*store, {std::move(b)});
        ASSERT_EQ(r.size(), 1U);
        results.push_back(std::move(r[0]));
    }
    rlimit restore = old;
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &restore), 0);
    std::size_t stored = 0;
    while (stored < results.size() && results[stored].ok) {
        ++stored;
    }
    ASSERT_LT(stored, results.size()) << "the limit was never reached";
    EXPECT_GT(stored, 20U);
    EXPECT_NE(results[stored].error.find("journal "), std::string::npos) << results[stored].error;
    std::vector<std::uint64_t> acked;
    for (std::size_t i = 0; i < results.size(); ++i) {
        if (results[i].ok) {
            acked.push_back(1 + i);  // offlineMessages: batch i stores id 1 + i
        }
    }
    for (const auto& r : runBatches(*store, offlineMessages("bob", 500, 3))) {
        EXPECT_TRUE(r.ok) << r.error;
    }
    acked.insert(acked.end(), {500, 501, 502});
    // A crash now: only what was acknowledged comes back.
    ScratchDir crashed;
    crashImage(dir.path(), crashed.path());
    store.reset();
    auto recovered = SqliteStore::open(crashed.path(), {}, error);
    ASSERT_TRUE(recovered) << error;
    ASSERT_TRUE(recovered->load(s, error)) << error;
    ASSERT_EQ(s.users.size(), 1U);
    std::vector<std::uint64_t> ids;
    for (const auto& e : s.users[0].entries) {
        ids.push_back(e.id);
    }
    EXPECT_EQ(ids, acked);
}

TEST(JournalStore, WhileCheckpointsFailTheJournalIsBoundedAndAFullBatchRecovers) {
    ScratchDir dir;
    std::string error;
    SqliteOptions o;
    o.checkpoint_bytes = 8192;  // bounded at 32 KiB while checkpoints fail
    o.max_page_count = 12;      // a database that cannot take much: a full disk
    auto store = SqliteStore::open(dir.path(), o, error);
    ASSERT_TRUE(store) << error;
    core::StoreSnapshot s;
    ASSERT_TRUE(store->load(s, error)) << error;
    auto results = runBatches(*store, offlineMessages("bob", 1, 200, 1000));
    std::size_t stored = 0;
    while (stored < results.size() && results[stored].ok) {
        ++stored;
    }
    ASSERT_LT(stored, results.size()) << "the journal grew without bound";
    EXPECT_GT(stored, 30U);
    EXPECT_NE(results[stored].error.find("journal full while checkpoints fail"), std::string::npos)
        << results[stored].error;
    for (std::size_t i = stored; i < results.size(); ++i) {
        EXPECT_FALSE(results[i].ok) << "batch " << i << " after the first refusal";
    }
    const auto full_disk = store->stats();
    EXPECT_GT(full_disk.checkpoint_failures, 0U);
    EXPECT_GT(full_disk.journal_bytes, 3 * o.checkpoint_bytes) << "the journal at its bound";
    // The core's resync: the whole (now small) state replaces everything; then the journal
    // takes batches again.
    StoreBatch full = batch({op(K::UpsertUser, "bob"), op(K::PutEntry, "bob", 500, frame(5))}, 900);
    full.full = true;
    std::vector<StoreBatch> after;
    after.push_back(std::move(full));
    auto more = offlineMessages("bob", 501, 3);
    after.insert(after.end(), more.begin(), more.end());
    for (const auto& r : runBatches(*store, std::move(after))) {
        EXPECT_TRUE(r.ok) << r.error;
    }
    EXPECT_LT(store->stats().journal_bytes, o.checkpoint_bytes) << "the resync freed the journal";
    store.reset();
    auto db = SqliteDb::open(dir.path(), {}, error);
    ASSERT_TRUE(db) << error;
    std::string report;
    ASSERT_TRUE(db->recoverJournal(dir.path(), report, error)) << error;
    ASSERT_TRUE(db->load(s, error)) << error;
    ASSERT_EQ(s.users.size(), 1U);
    ASSERT_EQ(s.users[0].entries.size(), 4U);
    EXPECT_EQ(s.users[0].entries.front().id, 500U);
}

}  // namespace
}  // namespace tundra::storage
