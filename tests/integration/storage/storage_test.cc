// SPDX-License-Identifier: Apache-2.0
// Issue #11 with the real tundrad on a SQLite data directory: offline messages survive a clean
// restart and a SIGKILL (replayed in order, flagged REPLAY, same ids), a session resumes across
// a restart with only its gap replayed, startup refuses missing, corrupt and newer data with
// exit code 2, --check-data and the online backup, a full disk refuses what cannot be stored
// (STORAGE_UNAVAILABLE, /readyz 503) while online users keep chatting, and a SIGTERM drain
// sends every held ACK before SHUTDOWN.
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <set>

#include "integration/storage/storage_helpers.h"

namespace tundra::testing {
namespace {

struct Sent {
    std::uint64_t id;
    std::string text;
};

// alice sends `n` acked messages to offline bob; returns their ids and texts.
std::vector<Sent> sendToOffline(RawClient& alice, const std::string& to, int n,
                                const std::string& prefix) {
    std::vector<Sent> out;
    for (int i = 0; i < n; ++i) {
        const std::string text = prefix + std::to_string(i);
        auto f = say(alice, to, text);
        if (!f) {
            ADD_FAILURE() << "no answer to message " << i;
            break;
        }
        auto ack = asAck(*f);
        EXPECT_EQ(ack.buffered, 1U);
        out.push_back({ack.id, text});
    }
    return out;
}

struct RestartCase {
    int signo;          // how the server stops
    const char* fsync;  // a crash of the process alone loses nothing committed in any mode
};

class Restart : public ::testing::TestWithParam<RestartCase> {};

TEST_P(Restart, OfflineMessagesAreAllReplayedInOrderWithTheirIds) {
    ScratchDir dir;
    const std::vector<std::string> flags{"--fsync", GetParam().fsync};
    auto server = startOn(dir.path(), flags);
    ASSERT_TRUE(server->started()) << server->output();
    std::vector<Sent> sent;
    {
        RawClient bob(server->port());
        ASSERT_TRUE(registerOn(bob, "bob"));
        logoutAndClose(bob);
        RawClient alice(server->port());
        ASSERT_TRUE(registerOn(alice, "alice"));
        sent = sendToOffline(alice, "bob", 20, "msg ");
    }
    ASSERT_EQ(sent.size(), 20U);
    server->signal(GetParam().signo);
    const auto code = server->waitExit(10s);
    ASSERT_TRUE(code.has_value());
    if (GetParam().signo == SIGTERM) {
        EXPECT_EQ(*code, 0) << server->output();
    }

    server = startOn(dir.path(), flags);
    ASSERT_TRUE(server->started()) << server->output();
    EXPECT_TRUE(server->waitForLine("restored 2 users, 20 stored deliveries", 1s))
        << server->output();
    RawClient bob(server->port());
    auto w = registerOn(bob, "bob");
    ASSERT_TRUE(w);
    EXPECT_FALSE(w->resumed);
    EXPECT_EQ(w->pending, 20U);
    auto got = readDeliveries(bob, 20);
    ASSERT_EQ(got.size(), 20U);
    for (std::size_t i = 0; i < got.size(); ++i) {
        auto d = asDelivery(got[i]);
        EXPECT_TRUE(got[i].header.flags & flags::kReplay) << i;
        EXPECT_EQ(d.id, sent[i].id) << i;
        EXPECT_EQ(d.text, sent[i].text) << i;
        EXPECT_EQ(d.from, "alice");
    }
    // Ids keep increasing after the restart. (alice's session was restored, detached: her
    // name stays hers until it expires, so someone else sends.)
    RawClient carol(server->port());
    ASSERT_TRUE(registerOn(carol, "carol"));
    auto f = say(carol, "bob", "after");
    ASSERT_TRUE(f);
    EXPECT_GT(asAck(*f).id, sent.back().id);
    EXPECT_EQ(server->stop(), std::optional<int>(0));
}

INSTANTIATE_TEST_SUITE_P(
    Stops, Restart,
    ::testing::Values(RestartCase{SIGTERM, "always"}, RestartCase{SIGKILL, "always"},
                      RestartCase{SIGKILL, "interval"}, RestartCase{SIGKILL, "off"}),
    [](const auto& param_info) {
        return std::string(param_info.param.signo == SIGTERM ? "Sigterm" : "Sigkill") + "_fsync_" +
               param_info.param.fsync;
    });

TEST(Resume, AcrossARestartOnlyTheGapIsReplayed) {
    ScratchDir dir;
    auto server = startOn(dir.path());
    ASSERT_TRUE(server->started()) << server->output();
    Uuid session{};
    std::vector<std::uint64_t> live_ids;
    std::vector<Sent> offline;
    {
        RawClient bob(server->port());
        auto w = registerOn(bob, "bob");
        ASSERT_TRUE(w);
        session = w->session;
        RawClient alice(server->port());
        ASSERT_TRUE(registerOn(alice, "alice"));
        for (int i = 0; i < 3; ++i) {
            auto f = say(alice, "bob", "live " + std::to_string(i));
            ASSERT_TRUE(f);
            EXPECT_EQ(asAck(*f).delivered, 1U);
            live_ids.push_back(asAck(*f).id);
        }
        auto got = readDeliveries(bob, 3);
        ASSERT_EQ(got.size(), 3U);
        ::shutdown(bob.fd(), SHUT_RDWR);  // bob's connection drops: the session detaches
        // Wait until the server has noticed (a message to bob is buffered, not delivered).
        for (int tries = 0; tries < 100; ++tries) {
            auto f = say(alice, "bob", "away " + std::to_string(offline.size()));
            ASSERT_TRUE(f);
            auto a = asAck(*f);
            if (a.buffered == 1) {
                offline.push_back({a.id, "away " + std::to_string(offline.size())});
                break;
            }
            live_ids.push_back(a.id);  // still written to the dying connection: in the window
        }
        ASSERT_EQ(offline.size(), 1U);
        auto more = sendToOffline(alice, "bob", 2, "later ");
        offline.insert(offline.end(), more.begin(), more.end());
    }
    server->signal(SIGKILL);
    ASSERT_TRUE(server->waitExit(10s));

    server = startOn(dir.path());
    ASSERT_TRUE(server->started()) << server->output();
    RawClient bob(server->port());
    // bob saw everything up to the second live message: the rest of the window is the gap.
    auto w = registerOn(bob, "bob", session, live_ids[1]);
    ASSERT_TRUE(w) << server->output();
    EXPECT_TRUE(w->resumed);
    const std::size_t gap = live_ids.size() - 2 + offline.size();
    EXPECT_EQ(w->pending, gap);
    auto got = readDeliveries(bob, gap);
    ASSERT_EQ(got.size(), gap);
    std::vector<std::uint64_t> want(live_ids.begin() + 2, live_ids.end());
    for (const auto& s : offline) {
        want.push_back(s.id);
    }
    for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_TRUE(got[i].header.flags & flags::kReplay) << i;
        EXPECT_EQ(asDelivery(got[i]).id, want[i]) << i;
    }
    EXPECT_FALSE(bob.read(300ms)) << "more than the gap was replayed";
    EXPECT_EQ(server->stop(), std::optional<int>(0));
}

// Broadcasts are stored once and an online window is a range over them: after a SIGKILL while
// bob was online, his resume still gets exactly the broadcasts after his last_id.
TEST(Resume, BroadcastsInAnOnlineWindowSurviveSigkill) {
    ScratchDir dir;
    auto server = startOn(dir.path());
    ASSERT_TRUE(server->started()) << server->output();
    RawClient carol(server->port());
    ASSERT_TRUE(registerOn(carol, "carol"));
    logoutAndClose(carol);
    RawClient bob(server->port());
    auto w = registerOn(bob, "bob");
    ASSERT_TRUE(w);
    RawClient alice(server->port());
    ASSERT_TRUE(registerOn(alice, "alice"));
    std::vector<std::uint64_t> ids;
    for (int i = 0; i < 5; ++i) {
        auto f = say(alice, "", "news " + std::to_string(i));
        ASSERT_TRUE(f);
        EXPECT_EQ(asAck(*f).delivered, 1U);
        ids.push_back(asAck(*f).id);
    }
    ASSERT_EQ(readDeliveries(bob, 5).size(), 5U);
    // An ACK reporting buffered leaves once its batch is stored, and batches are stored in
    // order: after it, the broadcasts are on disk.
    ASSERT_EQ(sendToOffline(alice, "carol", 1, "sync ").size(), 1U);
    server->signal(SIGKILL);
    ASSERT_TRUE(server->waitExit(10s));

    server = startOn(dir.path());
    ASSERT_TRUE(server->started()) << server->output();
    RawClient again(server->port());
    auto r = registerOn(again, "bob", w->session, ids[1]);
    ASSERT_TRUE(r) << server->output();
    EXPECT_TRUE(r->resumed);
    EXPECT_EQ(r->pending, 3U);
    auto got = readDeliveries(again, 3);
    ASSERT_EQ(got.size(), 3U);
    for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_TRUE(got[i].header.flags & flags::kReplay) << i;
        EXPECT_EQ(asDelivery(got[i]).id, ids[i + 2]) << i;
        EXPECT_EQ(asDelivery(got[i]).text, "news " + std::to_string(i + 2)) << i;
    }
    EXPECT_FALSE(again.read(300ms)) << "more than the gap was replayed";
    EXPECT_EQ(server->stop(), std::optional<int>(0));
}

// SIGTERM while acked messages to an offline user are in flight (fsync = always): every
// message the server stored had its ACK sent before SYSTEM SHUTDOWN, and every ACKed one is
// replayed after the restart. (The drain waits for the writer's last batch: before, its ACKs
// could be dropped with the closing connections, so a stored message looked unaccepted.)
TEST(Drain, EveryStoredMessageIsAckedBeforeTheShutdown) {
    ScratchDir dir;
    const std::vector<std::string>& flags = kFloodFlags;
    for (int round = 0; round < 4; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        const std::string rcpt = "drain" + std::to_string(round);
        auto server = startOn(dir.path(), flags);
        ASSERT_TRUE(server->started()) << server->output();
        {
            RawClient r(server->port());
            ASSERT_TRUE(registerOn(r, rcpt));
            logoutAndClose(r);
        }
        RawClient sender(server->port());
        ASSERT_TRUE(registerOn(sender, "sender" + std::to_string(round)));
        for (int i = 0; i < 400; ++i) {  // pipelined: many batches are in flight at once
            const std::string text = "m" + std::to_string(i);
            ASSERT_TRUE(
                sender.send(msg::encode(msg::Message{rcpt, text}, sender.nextSeq(), flags::kAck)));
        }
        server->signal(SIGTERM);
        std::set<std::uint64_t> acked;
        bool shutdown_seen = false;
        while (auto f = sender.read(10s)) {
            if (f->type() == MsgType::Ack) {
                EXPECT_FALSE(shutdown_seen) << "an ACK after SYSTEM SHUTDOWN";
                EXPECT_EQ(asAck(*f).buffered, 1U);
                acked.insert(asAck(*f).id);
            } else if (f->type() == MsgType::System &&
                       asSystem(*f).event == SystemEvent::Shutdown) {
                shutdown_seen = true;
            }
        }
        EXPECT_TRUE(shutdown_seen);
        ASSERT_EQ(server->waitExit(10s), std::optional<int>(0)) << server->output();

        server = startOn(dir.path(), flags);
        ASSERT_TRUE(server->started()) << server->output();
        RawClient r(server->port());
        auto w = registerOn(r, rcpt);
        ASSERT_TRUE(w);
        EXPECT_EQ(w->pending, acked.size()) << "stored but never acknowledged, or the reverse";
        std::set<std::uint64_t> replayed;
        for (const auto& d : readDeliveries(r, w->pending)) {
            replayed.insert(asDelivery(d).id);
        }
        EXPECT_EQ(replayed, acked);
        EXPECT_EQ(server->stop(), std::optional<int>(0));
    }
}

// ---- startup errors, --check-data, backup ---------------------------------------------------

struct Run {
    std::optional<int> code;
    std::string output;
};

Run runToExit(std::vector<std::string> args) {
    TundradProcess p(std::move(args), 10s, /*default_bind=*/false);
    Run r;
    r.code = p.waitExit(10s);
    r.output = p.output();
    return r;
}

TEST(Startup, AMissingDataDirectoryIsExitTwoNamingIt) {
    auto r = runToExit({"--port", "0", "--data-dir", "/nonexistent/tundra-data"});
    EXPECT_EQ(r.code, std::optional<int>(2)) << r.output;
    EXPECT_NE(r.output.find("/nonexistent/tundra-data"), std::string::npos) << r.output;
}

TEST(Startup, ACorruptFileIsExitTwoNamingItAndLeftUntouched) {
    ScratchDir dir;
    const std::string garbage(16384, 'q');
    const std::string path = dir.write("tundra.db", garbage);
    auto r = runToExit({"--port", "0", "--data-dir", dir.path()});
    EXPECT_EQ(r.code, std::optional<int>(2)) << r.output;
    EXPECT_NE(r.output.find(path), std::string::npos) << r.output;
    std::ifstream in(path, std::ios::binary);
    std::string after((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(after, garbage) << "the corrupt file was changed";
    auto check = runToExit({"--check-data", dir.path()});
    EXPECT_EQ(check.code, std::optional<int>(1)) << check.output;
}

// Acknowledged messages live in the journal until a checkpoint: a crash leaves them there,
// and the next start folds them in (the Restart tests). A journal record damaged in the
// middle is a startup error naming the segment and the offset, never a silent loss; the
// file is left as it is, and moving it away starts without what it held.
TEST(Startup, ADamagedJournalIsExitTwoNamingItAndLeftUntouched) {
    ScratchDir dir;
    {
        auto server = startOn(dir.path());
        ASSERT_TRUE(server->started()) << server->output();
        RawClient bob(server->port());
        ASSERT_TRUE(registerOn(bob, "bob"));
        logoutAndClose(bob);
        RawClient alice(server->port());
        ASSERT_TRUE(registerOn(alice, "alice"));
        ASSERT_EQ(sendToOffline(alice, "bob", 4, "journal ").size(), 4U);  // one record each
        server->signal(SIGKILL);
        ASSERT_TRUE(server->waitExit(10s));
    }
    const std::string segment = dir.file("journal.000000000001");
    std::string data;
    {
        std::ifstream in(segment, std::ios::binary);
        data.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    ASSERT_GT(data.size(), 200U) << "the acknowledged messages are not in the journal";
    data[24] = static_cast<char>(data[24] ^ 0x40);  // inside the first record
    {
        std::ofstream out(segment, std::ios::binary | std::ios::trunc);
        out.write(data.data(), static_cast<std::streamsize>(data.size()));
    }
    auto r = runToExit({"--port", "0", "--data-dir", dir.path()});
    EXPECT_EQ(r.code, std::optional<int>(2)) << r.output;
    EXPECT_NE(r.output.find(segment + ": damaged record at offset 8"), std::string::npos)
        << r.output;
    std::ifstream in(segment, std::ios::binary);
    std::string after((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(after, data) << "the damaged segment was changed";
    auto check = runToExit({"--check-data", dir.path()});
    EXPECT_EQ(check.code, std::optional<int>(1)) << check.output;
    EXPECT_NE(check.output.find(segment), std::string::npos) << check.output;

    ASSERT_EQ(::rename(segment.c_str(), (segment + ".damaged").c_str()), 0);
    auto server = startOn(dir.path());
    ASSERT_TRUE(server->started()) << server->output();
    EXPECT_EQ(server->stop(), std::optional<int>(0));
}

TEST(Startup, ANewerSchemaIsExitTwo) {
    ScratchDir dir;
    {
        auto server = startOn(dir.path());
        ASSERT_TRUE(server->started()) << server->output();
        EXPECT_EQ(server->stop(), std::optional<int>(0));
    }
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(dir.file("tundra.db").c_str(), &db), SQLITE_OK);
    sqlite3_exec(db, "PRAGMA user_version=7", nullptr, nullptr, nullptr);
    sqlite3_close(db);
    auto r = runToExit({"--port", "0", "--data-dir", dir.path()});
    EXPECT_EQ(r.code, std::optional<int>(2)) << r.output;
    EXPECT_NE(r.output.find("schema version 7 is newer"), std::string::npos) << r.output;
}

TEST(Startup, WithoutADataDirectoryItRunsInMemoryAndSaysSo) {
    TundradProcess server({"--no-presence"});
    ASSERT_TRUE(server.started()) << server.output();
    EXPECT_TRUE(server.waitForLine("no data_dir configured, running in memory", 1s))
        << server.output();
    EXPECT_EQ(server.stop(), std::optional<int>(0));
}

TEST(Backup, ACopyTakenWhileRunningRestoresTheMessages) {
    ScratchDir dir;
    ScratchDir restored;
    auto server = startOn(dir.path());
    ASSERT_TRUE(server->started()) << server->output();
    RawClient bob(server->port());
    ASSERT_TRUE(registerOn(bob, "bob"));
    logoutAndClose(bob);
    RawClient alice(server->port());
    ASSERT_TRUE(registerOn(alice, "alice"));
    auto sent = sendToOffline(alice, "bob", 5, "kept ");
    auto r = runToExit({"backup", "--data-dir", dir.path(), restored.file("tundra.db")});
    EXPECT_EQ(r.code, std::optional<int>(0)) << r.output;
    auto check = runToExit({"--check-data", restored.path()});
    EXPECT_EQ(check.code, std::optional<int>(0)) << check.output;
    EXPECT_NE(check.output.find(
                  "ok (schema version 2, 2 users, 5 stored deliveries, 0 stored broadcasts)"),
              std::string::npos)
        << check.output;
    // The running server still works, and the copy serves bob's messages.
    auto f = say(alice, "bob", "still running");
    ASSERT_TRUE(f);
    EXPECT_EQ(asAck(*f).buffered, 1U);
    auto copy = startOn(restored.path());
    ASSERT_TRUE(copy->started()) << copy->output();
    RawClient bob2(copy->port());
    auto w = registerOn(bob2, "bob");
    ASSERT_TRUE(w);
    EXPECT_EQ(w->pending, 5U);
    auto got = readDeliveries(bob2, 5);
    ASSERT_EQ(got.size(), 5U);
    EXPECT_EQ(asDelivery(got[4]).id, sent[4].id);
    EXPECT_EQ(copy->stop(), std::optional<int>(0));
    EXPECT_EQ(server->stop(), std::optional<int>(0));
}

// ---- a full disk ------------------------------------------------------------------------------

TEST(DiskFull, WhatCannotBeStoredIsRefusedOnlineChatGoesOnAndItRecovers) {
    ScratchDir dir;
    // A database that cannot grow past 60 pages of 4 KiB (a hidden test knob for
    // PRAGMA max_page_count), standing in for a full disk, and a journal checkpointed every
    // 32 KiB: once checkpoints fail, it may grow to 128 KiB, and then nothing more is stored.
    ::setenv("TUNDRA_TEST_MAX_PAGE_COUNT", "60", 1);
    ::setenv("TUNDRA_TEST_CHECKPOINT_BYTES", "32768", 1);
    auto server = startOn(dir.path(), {"--admin", "127.0.0.1:0", "--ping-interval", "1",
                                       "--max-buffered", "1000", "--rate-messages-per-s", "0"});
    ::unsetenv("TUNDRA_TEST_MAX_PAGE_COUNT");
    ::unsetenv("TUNDRA_TEST_CHECKPOINT_BYTES");
    ASSERT_TRUE(server->started()) << server->output();
    const std::uint16_t admin = adminPortOf(*server);
    ASSERT_NE(admin, 0);
    {
        RawClient bob(server->port());
        ASSERT_TRUE(registerOn(bob, "bob"));
        logoutAndClose(bob);
    }
    RawClient alice(server->port());
    ASSERT_TRUE(registerOn(alice, "alice"));
    RawClient carol(server->port());
    ASSERT_TRUE(registerOn(carol, "carol"));
    const std::string big(6000, 'x');
    int stored = 0;
    bool refused = false;
    for (int i = 0; i < 200 && !refused; ++i) {
        auto f = say(alice, "bob", big);
        ASSERT_TRUE(f);
        if (f->type() == MsgType::Error) {
            EXPECT_EQ(asError(*f).code, static_cast<std::uint16_t>(ErrorCode::StorageUnavailable));
            refused = true;
        } else {
            EXPECT_EQ(asAck(*f).buffered, 1U);
            ++stored;
        }
    }
    ASSERT_TRUE(refused) << "the store never filled up";
    EXPECT_GT(stored, 5);
    EXPECT_TRUE(server->waitForLine("not stored", 2s)) << server->output();
    // Degraded: /readyz 503, the gauge, the health status; a message to an offline user is
    // refused at once, while alice and carol keep chatting.
    auto ready = httpGet(admin, "/readyz");
    ASSERT_TRUE(ready);
    EXPECT_EQ(ready->status, 503);
    auto metrics = httpGet(admin, "/metrics");
    ASSERT_TRUE(metrics);
    EXPECT_NE(metrics->body.find("\ntundra_storage_degraded 1"), std::string::npos);
    EXPECT_EQ(metrics->body.find("\ntundra_storage_checkpoint_failures_total 0\n"),
              std::string::npos)
        << "the database is full: its checkpoints fail";
    EXPECT_NE(metrics->body.find("\ntundra_storage_checkpoint_failures_total "), std::string::npos);
    auto live = say(alice, "carol", "we still chat");
    ASSERT_TRUE(live);
    EXPECT_EQ(asAck(*live).delivered, 1U);
    auto got = carol.readUntil(MsgType::BroadcastMessage, 5s);
    ASSERT_TRUE(got);
    EXPECT_EQ(asDelivery(*got).text, "we still chat");

    // Space returns: bob reads his messages and answers the server's PINGs, which confirms
    // them and frees their rows. The server notices by itself (a resync once a second) and
    // stores again.
    RawClient bob(server->port());
    auto w = registerOn(bob, "bob");
    ASSERT_TRUE(w);
    EXPECT_EQ(w->pending, static_cast<std::uint32_t>(stored)) << "refused messages were kept";
    auto deadline = std::chrono::steady_clock::now() + 20s;
    bool recovered = false;
    while (!recovered && std::chrono::steady_clock::now() < deadline) {
        for (RawClient* c : {&bob, &alice, &carol}) {
            while (auto f = c->read(20ms)) {
                answerPing(*c, *f);
            }
        }
        // Recovered: ready again, and every delivery confirmed (its rows deleted).
        auto r = httpGet(admin, "/readyz");
        auto m = httpGet(admin, "/metrics");
        recovered = r && r->status == 200 && m &&
                    m->body.find("\ntundra_window_messages 0\n") != std::string::npos &&
                    m->body.find("\ntundra_buffered_messages 0\n") != std::string::npos;
    }
    ASSERT_TRUE(recovered) << server->output();
    RawClient dave(server->port());
    ASSERT_TRUE(registerOn(dave, "dave"));
    logoutAndClose(dave);
    auto f = say(alice, "dave", "stored again");
    ASSERT_TRUE(f);
    ASSERT_EQ(f->type(), MsgType::Ack) << "still refused after recovery";
    EXPECT_EQ(asAck(*f).buffered, 1U);
    EXPECT_EQ(server->stop(), std::optional<int>(0));
}

}  // namespace
}  // namespace tundra::testing
