// SPDX-License-Identifier: Apache-2.0
// The core with a store: mutations recorded per batch, ACKs reporting buffered > 0 held until
// their batch commits, a failed batch refused with STORAGE_UNAVAILABLE and withdrawn, degraded
// mode and its resync, and a restart that restores users, logs, sessions and the id reserve.
#include <gtest/gtest.h>

#include <algorithm>

#include "storage/memory_store.h"
#include "unit/core/core_fixture.h"

namespace tundra::testing {
namespace {

using core::StoreOp;

class CoreBatchTest : public CoreTest {
protected:
    CoreBatchTest() : store(/*model=*/true) { config.presence_events = false; }

    /// Builds the manager with the store's content restored.
    void start() {
        core::StoreSnapshot snap;
        std::string error;
        ASSERT_TRUE(store.load(snap, error));
        sm().attachStore(snap);
        commit();
    }

    /// Hands the pending batch to the store and reports its result back (as the server does
    /// at the end of a loop iteration). Returns the batch's sequence number (0: none).
    std::uint64_t commit(bool ok = true) {
        if (!sm().storePending()) {
            return 0;
        }
        core::StoreBatch b = sm().takeStoreBatch();
        last = b;
        const std::uint64_t seq = b.seq;
        if (!ok) {
            store.failNext(1);
        }
        store.submit(b);
        std::vector<core::BatchResult> results;
        store.takeResults(results);
        for (auto& r : results) {
            sm().onStoreResult(r);
        }
        return seq;
    }

    void logout(ConnId conn) {
        feed(conn, rawFrame(static_cast<std::uint8_t>(MsgType::Logout), 0, 9));
        take(conn);
        disconnect(conn);
    }

    storage::MemoryStore store;
    core::StoreBatch last;
};

TEST_F(CoreBatchTest, AnAckReportingBufferedWaitsForItsBatch) {
    start();
    login(1, "alice");
    login(2, "bob");
    logout(2);
    commit();
    auto early = say(1, "bob", "hi bob");
    EXPECT_TRUE(early.empty()) << "the ACK left before its batch was stored";
    ASSERT_TRUE(sm().storePending());
    core::StoreBatch b = sm().takeStoreBatch();
    auto put = std::find_if(b.ops.begin(), b.ops.end(),
                            [](const StoreOp& op) { return op.kind == StoreOp::Kind::PutEntry; });
    ASSERT_NE(put, b.ops.end());
    EXPECT_EQ(put->user, "bob");
    EXPECT_FALSE(put->written);
    EXPECT_TRUE(take(1).empty());
    core::BatchResult done{b.seq, true, "", {}};
    sm().onStoreResult(done);
    auto acks = take(1);
    ASSERT_EQ(acks.size(), 1U);
    auto a = asAck(acks[0]);
    EXPECT_EQ(a.buffered, 1U);
    EXPECT_EQ(a.id, put->id);
    EXPECT_EQ(acks[0].header.sequence, 5);
}

TEST_F(CoreBatchTest, ALiveDeliveryIsAckedAtOnceAndItsWindowEntryRecorded) {
    start();
    login(1, "alice");
    login(2, "bob");
    auto a = sayAck(1, "bob", "hi");
    EXPECT_EQ(a.delivered, 1U);
    commit();
    auto put = std::find_if(last.ops.begin(), last.ops.end(), [](const StoreOp& op) {
        return op.kind == StoreOp::Kind::PutEntry && op.user == "bob";
    });
    ASSERT_NE(put, last.ops.end());
    EXPECT_TRUE(put->written);
    EXPECT_EQ(put->id, a.id);
}

TEST_F(CoreBatchTest, WindowTrimsAreOneOpPerUserAndBatch) {
    config.max_buffered = 3;
    start();
    login(1, "alice");
    login(2, "bob");
    std::vector<std::uint64_t> ids;
    for (int i = 0; i < 8; ++i) {
        ids.push_back(sayAck(1, "bob", "m" + std::to_string(i)).id);
    }
    commit();
    const auto trims = std::count_if(last.ops.begin(), last.ops.end(), [](const StoreOp& op) {
        return op.kind == StoreOp::Kind::TrimWindow;
    });
    EXPECT_EQ(trims, 1);
    core::StoreSnapshot snap;
    std::string error;
    ASSERT_TRUE(store.load(snap, error));
    const auto bob = std::find_if(snap.users.begin(), snap.users.end(),
                                  [](const auto& u) { return u.name == "bob"; });
    ASSERT_NE(bob, snap.users.end());
    ASSERT_EQ(bob->entries.size(), 3U) << "the store holds what the window holds";
    EXPECT_EQ(bob->entries[0].id, ids[5]);
    EXPECT_EQ(bob->entries[2].id, ids[7]);
}

TEST_F(CoreBatchTest, AFailedBatchRefusesWithdrawsAndDegradesUntilAResyncCommits) {
    start();
    login(1, "alice");
    login(2, "bob");
    login(3, "carol");
    logout(2);
    commit();
    EXPECT_TRUE(say(1, "bob", "lost").empty());
    commit(/*ok=*/false);
    auto r = take(1);
    ASSERT_EQ(r.size(), 1U);
    EXPECT_EQ(asError(r[0]).code, code(ErrorCode::StorageUnavailable));
    EXPECT_EQ(r[0].header.sequence, 5);
    EXPECT_TRUE(sm().storageDegraded());
    EXPECT_EQ(sm().gauges().storage_degraded, 1U);
    EXPECT_EQ(sm().metrics().storage_errors_total, 1U);
    EXPECT_NE(sm().healthJson(0).find("\"status\":\"degraded\""), std::string::npos);

    // Degraded: what needs storing is refused at once, live chat goes on.
    r = say(1, "bob", "refused");
    ASSERT_EQ(r.size(), 1U);
    EXPECT_EQ(asError(r[0]).code, code(ErrorCode::StorageUnavailable));
    EXPECT_EQ(sayAck(1, "carol", "live").delivered, 1U);
    commit();
    EXPECT_TRUE(sm().storageDegraded()) << "only a full resync ends degraded mode";

    // The probe: a full resync batch a second later; its success ends degraded mode.
    advance(1000);
    ASSERT_TRUE(sm().storePending());
    commit();
    EXPECT_TRUE(last.full);
    EXPECT_FALSE(sm().storageDegraded());
    r = say(1, "bob", "stored");
    EXPECT_TRUE(r.empty()) << (r.empty() ? 0 : int(r[0].header.type));
    commit();
    EXPECT_EQ(asAck(one(1)).buffered, 1U);

    // bob gets only the message that was stored, not the refused ones.
    connect(4);
    feed(4, registerFrame("bob"));
    auto frames = take(4);
    ASSERT_EQ(frames.size(), 2U);
    EXPECT_EQ(asSystem(frames[0]).welcome.pending, 1U);
    EXPECT_EQ(asDelivery(frames[1]).text, "stored");
}

// A refused broadcast is withdrawn from every detached recipient's buffer, not just the first.
TEST_F(CoreBatchTest, ARefusedBroadcastIsWithdrawnFromEveryBufferItWentTo) {
    start();
    login(1, "alice");
    const msg::Welcome bob = login(2, "bob");
    const msg::Welcome carol = login(3, "carol");
    const msg::Welcome dave = login(4, "dave");
    disconnect(2);
    disconnect(3);
    disconnect(4);
    commit();
    take(1);
    EXPECT_TRUE(say(1, "", "lost").empty());
    commit(/*ok=*/false);
    EXPECT_EQ(asError(one(1)).code, code(ErrorCode::StorageUnavailable));
    advance(1000);
    commit();  // the resync
    ASSERT_FALSE(sm().storageDegraded());
    for (auto [conn, name, w] :
         {std::tuple{5, "bob", bob}, std::tuple{6, "carol", carol}, std::tuple{7, "dave", dave}}) {
        connect(conn);
        feed(conn, registerFrame(name, w.session, ClientKind::User, 0));
        auto frames = take(conn);
        ASSERT_FALSE(frames.empty());
        EXPECT_EQ(asSystem(frames[0]).welcome.pending, 0U) << name << " still has it";
    }
}

// A disk at its limit flaps: the resync fits, the next batch does not. Each failure soon after
// a recovery doubles the wait before the next resync (1 s, 2 s, 4 s ...); a failure after a
// minute of good writes waits one second again.
TEST_F(CoreBatchTest, FlappingStorageBacksOffItsResyncsAndAGoodMinuteResetsThem) {
    start();
    login(1, "alice");
    login(2, "bob");
    logout(2);
    commit();
    take(1);
    // Fails a batch that needs storing (a message to bob, offline), then waits `wait_ms`
    // and checks that the resync comes exactly then, and commits it.
    auto failThenResyncAfter = [&](std::int64_t wait_ms) {
        say(1, "bob", "x");
        commit(/*ok=*/false);
        take(1);
        ASSERT_TRUE(sm().storageDegraded());
        advance(wait_ms - 100);
        last = core::StoreBatch{};
        commit();  // whatever the tick recorded; not a resync yet
        EXPECT_FALSE(last.full) << "resync before " << wait_ms << " ms";
        EXPECT_TRUE(sm().storageDegraded());
        advance(100);
        ASSERT_NE(commit(), 0U) << "no resync after " << wait_ms << " ms";
        EXPECT_TRUE(last.full);
        EXPECT_FALSE(sm().storageDegraded());
    };
    failThenResyncAfter(1000);
    failThenResyncAfter(2000);
    failThenResyncAfter(4000);
    failThenResyncAfter(8000);
    EXPECT_EQ(sm().metrics().storage_recoveries_total, 4U);
    EXPECT_EQ(sm().metrics().storage_errors_total, 4U);

    advance(61'000);  // a good minute
    commit();
    failThenResyncAfter(1000);
    EXPECT_EQ(sm().metrics().storage_recoveries_total, 5U);
    EXPECT_NE(sm().healthJson(0).find("\"recoveries\":5"), std::string::npos);
}

TEST_F(CoreBatchTest, ARestartRestoresBuffersSessionsAndKeepsIdsIncreasing) {
    start();
    login(1, "alice");
    const msg::Welcome bob = login(2, "bob");
    auto live = sayAck(1, "bob", "one");
    EXPECT_EQ(live.delivered, 1U);
    disconnect(2);  // bob's session detaches
    EXPECT_TRUE(say(1, "bob", "two").empty());
    EXPECT_TRUE(say(1, "bob", "three").empty());
    commit();
    auto acks = take(1);
    ASSERT_EQ(acks.size(), 2U);
    const std::uint64_t last_id = asAck(acks[1]).id;

    // "Restart": a new manager over what the store holds, the wall clock stepped back.
    clock.setWall(clock.wallMs() - 3'600'000);
    resetManager();
    start();
    connect(7);
    feed(7, registerFrame("bob", bob.session, ClientKind::User, live.id));
    auto frames = take(7);
    ASSERT_EQ(frames.size(), 3U);
    auto w = asSystem(frames[0]);
    EXPECT_EQ(w.event, SystemEvent::Welcome);
    EXPECT_TRUE(w.welcome.resumed);
    EXPECT_EQ(w.welcome.pending, 2U);
    EXPECT_EQ(asDelivery(frames[1]).text, "two");
    EXPECT_EQ(asDelivery(frames[2]).text, "three");
    EXPECT_TRUE(frames[1].replay());
    EXPECT_TRUE(frames[2].replay());
    EXPECT_EQ(asDelivery(frames[2]).id, last_id);
    login(8, "carol");
    EXPECT_GT(sayAck(8, "bob", "after").id, last_id) << "ids went back after the restart";
}

std::size_t countOps(const core::StoreBatch& b, StoreOp::Kind kind) {
    return static_cast<std::size_t>(std::count_if(
        b.ops.begin(), b.ops.end(), [&](const StoreOp& op) { return op.kind == kind; }));
}

class BroadcastStoreTest : public CoreBatchTest {
protected:
    std::vector<SentFrame> resume(ConnId conn, std::string_view name, const msg::Welcome& w,
                                  std::uint64_t last_id, ClientKind kind = ClientKind::User) {
        connect(conn);
        feed(conn, registerFrame(name, w.session, kind, last_id));
        return take(conn);
    }
    /// Texts and ids of the deliveries among `frames`, each flagged REPLAY.
    static std::vector<std::string> replayedTexts(const std::vector<SentFrame>& frames) {
        std::vector<std::string> texts;
        for (const auto& f : frames) {
            if (f.type() == MsgType::BroadcastMessage || f.type() == MsgType::BroadcastAgent) {
                EXPECT_TRUE(f.replay());
                const auto d = asDelivery(f);
                texts.push_back(f.type() == MsgType::BroadcastAgent
                                    ? "cmd:" + std::string(d.command)
                                    : std::string(d.text));
            }
        }
        return texts;
    }
};

// A broadcast to online users is one stored op, not an entry per recipient: their windows are
// a range over the stored broadcasts. After a crash, each resumes with last_id and gets its gap
// from them, its own broadcasts and other audiences' left out.
TEST_F(BroadcastStoreTest, ABroadcastIsStoredOnceAndOnlineWindowsSurviveACrashAsARange) {
    start();
    const msg::Welcome alice = login(1, "alice");
    const msg::Welcome bob = login(2, "bob");
    const msg::Welcome agent = login(3, "robot", ClientKind::Agent);
    commit();
    std::vector<std::uint64_t> ids;
    for (int i = 0; i < 4; ++i) {
        auto a = sayAck(1, "", "b" + std::to_string(i));
        EXPECT_EQ(a.delivered, 2U);
        ids.push_back(a.id);
    }
    take(2);
    feed(2, msg::encode(msg::AgentCommand{"", 0, "scan", ""}, 9, flags::kAck));
    const std::uint64_t cmd_id = asAck(one(2)).id;
    ASSERT_NE(commit(), 0U);
    EXPECT_EQ(countOps(last, StoreOp::Kind::PutBroadcast), 5U);
    EXPECT_EQ(countOps(last, StoreOp::Kind::PutEntry), 0U) << "no entry per recipient";
    EXPECT_EQ(countOps(last, StoreOp::Kind::TrimWindow), 0U);
    EXPECT_EQ(store.broadcasts(), 5U);
    advance(1000);  // the trim keeps what the online windows hold
    commit();
    EXPECT_EQ(store.broadcasts(), 5U);
    take(1);
    take(2);
    take(3);

    // "Crash": a new manager over what the store holds; nobody detached first.
    resetManager();
    start();
    EXPECT_EQ(replayedTexts(resume(4, "bob", bob, ids[1])), (std::vector<std::string>{"b2", "b3"}))
        << "bob's gap, and not the agents' command";
    EXPECT_EQ(replayedTexts(resume(5, "robot", agent, ids[0], ClientKind::Agent)),
              (std::vector<std::string>{"b1", "b2", "b3", "cmd:scan"}));
    EXPECT_TRUE(replayedTexts(resume(6, "alice", alice, ids[0])).empty())
        << "the sender's own broadcasts are not in its window";
    EXPECT_GT(cmd_id, ids[3]);
}

// A user that leaves the online state takes its window with it as entries of its own, so the
// stored broadcasts can go: the trim once a second keeps only what online windows hold.
TEST_F(BroadcastStoreTest, ADetachedWindowGetsEntriesAndTheStoredBroadcastsAreTrimmed) {
    config.max_buffered = 3;
    start();
    login(1, "alice");
    const msg::Welcome bob = login(2, "bob");
    const msg::Welcome carol = login(3, "carol");
    std::vector<std::uint64_t> ids;
    for (int i = 0; i < 6; ++i) {
        ids.push_back(sayAck(1, "", "b" + std::to_string(i)).id);
    }
    commit();
    EXPECT_EQ(store.broadcasts(), 6U);
    advance(1000);
    commit();
    EXPECT_EQ(countOps(last, StoreOp::Kind::TrimBroadcasts), 1U);
    EXPECT_EQ(store.broadcasts(), 3U) << "the windows hold the newest max_buffered (3)";

    disconnect(2);  // bob detaches: his window is written as entries
    commit();
    EXPECT_EQ(countOps(last, StoreOp::Kind::PutEntry), 3U);
    disconnect(3);
    commit();
    advance(1000);
    commit();
    EXPECT_EQ(store.broadcasts(), 0U) << "no online window needs them";
    take(1);

    resetManager();
    start();
    EXPECT_EQ(replayedTexts(resume(4, "bob", bob, ids[3])), (std::vector<std::string>{"b4", "b5"}));
    EXPECT_EQ(replayedTexts(resume(5, "carol", carol, ids[2])),
              (std::vector<std::string>{"b3", "b4", "b5"}));
}

// After a resume, the window starts with entries of its own (from before the range); the trim
// looks at the oldest window entry inside the range, so older stored broadcasts can go.
TEST_F(BroadcastStoreTest, TheTrimIgnoresWindowEntriesFromBeforeTheRange) {
    start();
    login(1, "alice");
    const msg::Welcome bob = login(2, "bob");
    const auto b0 = sayAck(1, "", "b0");
    sayAck(1, "", "b1");
    disconnect(2);  // detached: b0 and b1 get entries of their own
    EXPECT_TRUE(say(1, "", "b2").empty()) << "buffered for bob: held until stored";
    commit();
    EXPECT_EQ(asAck(one(1)).buffered, 1U);
    EXPECT_EQ(replayedTexts(resume(3, "bob", bob, b0.id + 1)), (std::vector<std::string>{"b2"}));
    sayAck(1, "", "b3");
    commit();
    EXPECT_EQ(store.broadcasts(), 4U);
    advance(1000);
    commit();
    EXPECT_EQ(store.broadcasts(), 1U) << "only b3 is in bob's range";
    take(1);
    take(3);

    resetManager();
    start();
    EXPECT_EQ(replayedTexts(resume(4, "bob", bob, b0.id)),
              (std::vector<std::string>{"b1", "b2", "b3"}));
}

// A direct message in an online window is an entry of its own and is trimmed as before; the
// broadcasts around it are not, and a window pop of a broadcast alone writes no trim.
TEST_F(BroadcastStoreTest, OnlyWindowsWithEntriesOfTheirOwnWriteTrims) {
    config.max_buffered = 2;
    start();
    login(1, "alice");
    const msg::Welcome bob = login(2, "bob");
    const auto direct = sayAck(1, "bob", "direct");
    sayAck(1, "", "b0");
    commit();
    EXPECT_EQ(countOps(last, StoreOp::Kind::PutEntry), 1U);
    const auto b1 = sayAck(1, "", "b1");  // pops the direct message
    commit();
    EXPECT_EQ(countOps(last, StoreOp::Kind::TrimWindow), 1U);
    sayAck(1, "", "b2");  // pops b0: a broadcast, nothing of bob's own is left to trim
    sayAck(1, "", "b3");
    commit();
    EXPECT_EQ(countOps(last, StoreOp::Kind::TrimWindow), 0U);
    take(1);

    resetManager();
    start();
    EXPECT_EQ(replayedTexts(resume(3, "bob", bob, direct.id)),
              (std::vector<std::string>{"b2", "b3"}));
    EXPECT_GT(b1.id, direct.id);
}

// A resync after a failed batch writes every window entry and stores no broadcast: the ranges
// start again after it, and a crash then still restores every window.
TEST_F(BroadcastStoreTest, AResyncWritesWindowsAsEntriesAndRangesGoOnAfterIt) {
    start();
    login(1, "alice");
    const msg::Welcome bob = login(2, "bob");
    login(3, "carol");
    logout(3);
    commit();
    const auto b0 = sayAck(1, "", "b0");
    say(1, "carol", "offline");  // needs storing: the failed batch degrades the store
    commit(/*ok=*/false);
    ASSERT_TRUE(sm().storageDegraded());
    advance(1000);
    commit();
    ASSERT_TRUE(last.full);
    ASSERT_FALSE(sm().storageDegraded());
    EXPECT_EQ(store.broadcasts(), 0U);
    take(1);  // the refusal of the offline message
    sayAck(1, "", "b1");
    commit();
    take(1);

    resetManager();
    start();
    EXPECT_EQ(replayedTexts(resume(4, "bob", bob, b0.id - 1)),
              (std::vector<std::string>{"b0", "b1"}));
}

// A forgotten user's offline buffer goes from the store with it: one DeleteEntry per entry
// (the store has no index by user over offline entries), then the DeleteUser.
TEST_F(CoreBatchTest, AForgottenUsersOfflineEntriesAreDeletedWithIt) {
    config.max_users = 3;
    start();
    login(1, "alice");
    logout(1);
    login(2, "bob");
    logout(2);
    login(3, "carol");
    EXPECT_TRUE(say(3, "alice", "a1").empty());
    EXPECT_TRUE(say(3, "alice", "a2").empty());
    EXPECT_TRUE(say(3, "bob", "b1").empty());
    commit();
    take(3);
    login(4, "dave");  // alice waited longest with a non-empty buffer: she is forgotten
    commit();
    EXPECT_EQ(std::count_if(last.ops.begin(), last.ops.end(),
                            [](const StoreOp& op) {
                                return op.kind == StoreOp::Kind::DeleteEntry && op.user == "alice";
                            }),
              2);
    core::StoreSnapshot snap;
    std::string error;
    ASSERT_TRUE(store.load(snap, error));
    for (const auto& u : snap.users) {
        EXPECT_NE(u.name, "alice") << "her entries outlived her";
        if (u.name == "bob") {
            EXPECT_EQ(u.entries.size(), 1U);
        }
    }
}

TEST_F(CoreBatchTest, ForgottenUsersAreDeletedFromTheStore) {
    config.max_users = 2;
    start();
    login(1, "alice");
    logout(1);
    login(2, "bob");
    logout(2);
    login(3, "carol");  // alice is forgotten
    commit();
    EXPECT_TRUE(std::any_of(last.ops.begin(), last.ops.end(), [](const StoreOp& op) {
        return op.kind == StoreOp::Kind::DeleteUser && op.user == "alice";
    }));
    core::StoreSnapshot snap;
    std::string error;
    ASSERT_TRUE(store.load(snap, error));
    std::vector<std::string> names;
    for (const auto& u : snap.users) {
        names.push_back(u.name);
    }
    EXPECT_EQ(names, (std::vector<std::string>{"bob", "carol"}));
}

}  // namespace
}  // namespace tundra::testing
