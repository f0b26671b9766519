// SPDX-License-Identifier: Apache-2.0
// The user stories of protocol v1 against the real tundrad over loopback sockets.
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>

#include "integration/server_fixture.h"

namespace tundra::testing {
namespace {

using namespace std::chrono_literals;

TEST_F(ServerTest, RegisterGetsWelcomeWithSessionAndLimits) {
    auto c = connect();
    auto f = c->registerAs("alice");
    ASSERT_TRUE(f);
    EXPECT_EQ(f->header.sequence, 1);  // replies echo the request's sequence
    auto s = asSystem(*f);
    ASSERT_EQ(s.event, SystemEvent::Welcome);
    EXPECT_FALSE(isNil(s.welcome.session));
    EXPECT_EQ(s.welcome.session[6] >> 4, 4);  // UUID version 4
    EXPECT_FALSE(s.welcome.resumed);
    EXPECT_EQ(s.welcome.pending, 0U);
    EXPECT_EQ(s.welcome.heartbeat_s, 30);
    EXPECT_EQ(s.welcome.session_timeout_s, 120);
    EXPECT_EQ(s.welcome.max_payload, 65534);
}

TEST_F(ServerTest, SecondRegisterOfOnlineNameIsUsernameTaken) {
    auto a = login("alice");
    auto b = connect();
    auto f = b->registerAs("alice");
    ASSERT_TRUE(f);
    EXPECT_EQ(asError(*f).code, uint16_t(ErrorCode::UsernameTaken));
    // The connection stays open: a retry with another name works.
    auto g = b->registerAs("alice2");
    ASSERT_TRUE(g);
    EXPECT_EQ(asSystem(*g).event, SystemEvent::Welcome);
}

TEST_F(ServerTest, BroadcastReachesEveryoneButSenderWithAck) {
    auto a = login("alice");
    auto b = login("bob");
    auto c = login("carol");
    auto ack = say(*a, "", "hello all");
    ASSERT_TRUE(ack);
    auto ackm = asAck(*ack);
    EXPECT_EQ(ackm.delivered, 2U);
    EXPECT_EQ(ackm.buffered, 0U);
    for (auto* r : {b.get(), c.get()}) {
        auto f = r->readUntil(MsgType::BroadcastMessage);
        ASSERT_TRUE(f);
        EXPECT_EQ(f->header.sequence, 0);
        EXPECT_EQ(f->header.flags, 0);
        auto d = asDelivery(*f);
        EXPECT_EQ(d.id, ackm.id);
        EXPECT_EQ(d.from, "alice");
        EXPECT_EQ(d.to, "");
        EXPECT_EQ(d.text, "hello all");
    }
    // The sender never gets its own message back: the next thing it sees is its PONG.
    a->send(msg::encodePing(MsgType::Ping, 7, 99));
    auto p = a->read();
    ASSERT_TRUE(p);
    EXPECT_EQ(p->type(), MsgType::Pong);
}

TEST_F(ServerTest, DirectMessageAndUnknownRecipient) {
    auto a = login("alice");
    auto b = login("bob");
    auto c = login("carol");
    auto ack = say(*a, "bob", "psst");
    ASSERT_TRUE(ack);
    EXPECT_EQ(asAck(*ack).delivered, 1U);
    auto f = b->readUntil(MsgType::BroadcastMessage);
    ASSERT_TRUE(f);
    EXPECT_EQ(asDelivery(*f).to, "bob");
    auto err = say(*a, "nobody", "hi");
    ASSERT_TRUE(err);
    EXPECT_EQ(asError(*err).code, uint16_t(ErrorCode::UnknownRecipient));
    // carol saw nothing: her next frame is the answer to her own PING.
    c->send(msg::encodePing(MsgType::Ping, 1, 5));
    auto p = c->read();
    ASSERT_TRUE(p);
    EXPECT_EQ(p->type(), MsgType::Pong);
}

TEST_F(ServerTest, AgentCommandsReachAgentsAndRepliesReachUsers) {
    auto user = login("alice");
    auto bot1 = login("bot1", ClientKind::Agent);
    auto bot2 = login("bot2", ClientKind::Agent);
    auto other = login("bob");
    msg::AgentCommand cmd{"", 0, "summarize", "the channel"};
    user->send(msg::encode(cmd, user->nextSeq(), flags::kAck));
    auto ack = user->read();
    ASSERT_TRUE(ack);
    auto ackm = asAck(*ack);
    EXPECT_EQ(ackm.delivered, 2U);  // agents only
    for (auto* bot : {bot1.get(), bot2.get()}) {
        auto f = bot->readUntil(MsgType::BroadcastAgent);
        ASSERT_TRUE(f);
        auto d = asDelivery(*f);
        EXPECT_EQ(d.command, "summarize");
        EXPECT_EQ(d.args, "the channel");
        EXPECT_EQ(d.from, "alice");
    }
    // bot1 replies directly to alice.
    msg::AgentCommand reply{"alice", ackm.id, "result", "done"};
    bot1->send(msg::encode(reply, bot1->nextSeq(), flags::kAck));
    auto rack = bot1->read();
    ASSERT_TRUE(rack);
    EXPECT_EQ(asAck(*rack).delivered, 1U);
    auto r = user->readUntil(MsgType::BroadcastAgent);
    ASSERT_TRUE(r);
    auto rd = asDelivery(*r);
    EXPECT_EQ(rd.reply_to, ackm.id);
    EXPECT_EQ(rd.from, "bot1");
    // bob (a user) got neither.
    other->send(msg::encodePing(MsgType::Ping, 3, 4));
    auto p = other->read();
    ASSERT_TRUE(p);
    EXPECT_EQ(p->type(), MsgType::Pong);
}

TEST_F(ServerTest, ImageBroadcastAndBadMime) {
    auto a = login("alice");
    auto b = login("bob");
    std::string png("\x89PNG\r\n\x1a\n\0\0binary", 16);
    msg::Image img{"", "image/png", png};
    a->send(msg::encode(img, a->nextSeq(), flags::kAck));
    auto ack = a->read();
    ASSERT_TRUE(ack);
    EXPECT_EQ(asAck(*ack).delivered, 1U);
    auto f = b->readUntil(MsgType::Image);
    ASSERT_TRUE(f);
    auto d = asDelivery(*f);
    EXPECT_EQ(d.mime, "image/png");
    EXPECT_EQ(d.data, png);
    msg::Image bad{"bob", "text/plain", "x"};
    a->send(msg::encode(bad, a->nextSeq(), flags::kAck));
    auto err = a->read();
    ASSERT_TRUE(err);
    EXPECT_EQ(asError(*err).code, uint16_t(ErrorCode::InvalidFormat));
}

TEST_F(ServerTest, PingPongEchoesPayloadAndSequence) {
    auto c = connect();  // allowed before REGISTER
    Bytes ping = msg::encodePing(MsgType::Ping, 0x0102030405060708ULL, 4242);
    c->send(ping);
    auto f = c->read();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->type(), MsgType::Pong);
    EXPECT_EQ(f->header.sequence, 4242);
    EXPECT_EQ(f->payload, Bytes(ping.begin() + kHeaderSize, ping.end()));
}

TEST_F(ServerTest, HealthBeforeAndAfterRegister) {
    auto c = connect();
    c->send(msg::encodeEmpty(MsgType::HealthCheck, 9));
    auto f = c->read();
    ASSERT_TRUE(f);
    ASSERT_EQ(f->type(), MsgType::HealthResult);
    EXPECT_EQ(f->header.sequence, 9);
    std::string json(f->payload.begin(), f->payload.end());
    for (const char* key :
         {"\"status\"", "\"version\"", "\"uptime_s\"", "\"connections\"", "\"sessions\"",
          "\"online\"", "\"detached\"", "\"users_known\"", "\"messages\"", "\"bytes\"",
          "\"errors\"", "\"latency_ms\"", "\"p50\"", "\"p99\"", "\"limits\"", "\"max_clients\"",
          "\"rss_bytes\"", "\"protocol\""}) {
        EXPECT_NE(json.find(key), std::string::npos) << key << " missing in " << json;
    }
    EXPECT_EQ(json.find("\"connection\""), std::string::npos);
    ASSERT_TRUE(c->registerAs("alice"));
    c->send(msg::encodeEmpty(MsgType::HealthCheck, 10));
    auto g = c->read();
    ASSERT_TRUE(g);
    std::string json2(g->payload.begin(), g->payload.end());
    EXPECT_NE(json2.find("\"connection\""), std::string::npos) << json2;
    EXPECT_NE(json2.find("\"session\""), std::string::npos) << json2;
}

TEST_F(ServerTest, ListUsersWithPrefixAndStates) {
    auto a = login("team.alice");
    auto b = login("team.bob", ClientKind::Agent);
    auto c = login("zed");
    c->send(msg::encode(msg::ListUsers{"team."}, 77));
    auto f = c->read();
    ASSERT_TRUE(f);
    ASSERT_EQ(f->type(), MsgType::UserList);
    EXPECT_EQ(f->header.sequence, 77);
    msg::UserList list;
    ASSERT_EQ(msg::parse(f->span(), list), nullptr);
    std::set<std::string> names;
    for (const auto& u : list.users) {
        names.insert(std::string(u.name));
        EXPECT_EQ(u.state, UserState::Online);
        EXPECT_EQ(u.kind, u.name == "team.bob" ? ClientKind::Agent : ClientKind::User);
    }
    EXPECT_EQ(names, (std::set<std::string>{"team.alice", "team.bob"}));
}

TEST_F(ServerTest, LogoutSaysByeEchoingSequenceAndCloses) {
    auto a = login("alice");
    a->send(msg::encodeEmpty(MsgType::Logout, 31));
    auto f = a->read();
    ASSERT_TRUE(f);
    auto s = asSystem(*f);
    EXPECT_EQ(s.event, SystemEvent::Bye);
    EXPECT_EQ(f->header.sequence, 31);
    EXPECT_TRUE(a->waitClosed());
    // The name is free again at once.
    auto b = login("alice");
    expectOthersStillChat();
}

TEST_F(ServerTest, NotRegisteredBeforeRegister) {
    auto c = connect();
    auto m = say(*c, "", "hi");
    ASSERT_TRUE(m);
    EXPECT_EQ(asError(*m).code, uint16_t(ErrorCode::NotRegistered));
}

TEST_F(ServerTest, SigtermSendsShutdownAndExitsZero) {
    auto a = login("alice");
    auto code = server_->stop();
    auto f = a->readUntil(MsgType::System);
    ASSERT_TRUE(f);
    auto s = asSystem(*f);
    EXPECT_EQ(s.event, SystemEvent::Shutdown);
    EXPECT_GT(s.retry_after_s, 0);
    EXPECT_TRUE(a->waitClosed());
    EXPECT_EQ(code, std::optional<int>(0));
    server_.reset();
}

// IPv6: the same protocol over [::1], where the machine has an IPv6 loopback.
TEST(ServerIPv6, ChatOverIPv6Loopback) {
    {
        int probe = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in6 sa{};
        sa.sin6_family = AF_INET6;
        sa.sin6_addr = in6addr_loopback;
        bool ok = probe >= 0 && ::bind(probe, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
        if (probe >= 0) {
            ::close(probe);
        }
        if (!ok) {
            GTEST_SKIP() << "no IPv6 loopback on this machine";
        }
    }
    TundradProcess server({"--bind", "::1", "--port", "0", "--no-presence"},
                          std::chrono::seconds(10), /*default_bind=*/false);
    ASSERT_TRUE(server.started()) << server.output();
    EXPECT_NE(server.output().find("listening on [::1]:"), std::string::npos) << server.output();
    RawClient a(server.port(), 0, "::1");
    RawClient b(server.port(), 0, "::1");
    ASSERT_TRUE(a.connected());
    auto wa = a.registerAs("alice");
    ASSERT_TRUE(wa);
    EXPECT_EQ(asSystem(*wa).event, SystemEvent::Welcome);
    ASSERT_TRUE(b.registerAs("bob"));
    msg::Message m;
    m.to = "bob";
    m.text = "over v6";
    a.send(msg::encode(m, a.nextSeq()));
    auto d = b.readUntil(MsgType::BroadcastMessage);
    ASSERT_TRUE(d);
    EXPECT_EQ(asDelivery(*d).text, "over v6");
    EXPECT_EQ(server.stop(), std::optional<int>(0));
}

// ---- presence, sessions and buffers (server with presence on and short timers) ----------

class SessionStoryTest : public ServerTest {
protected:
    std::vector<std::string> serverArgs() override {
        return {"--session-timeout", "1", "--max-buffered", "3", "--ping-interval", "2"};
    }
};

class HeartbeatTest : public ServerTest {
protected:
    std::vector<std::string> serverArgs() override { return {"--ping-interval", "0.5"}; }
};

TEST_F(SessionStoryTest, PresenceJoinedAndLeft) {
    auto a = login("alice");
    auto b = login("bob");
    auto j = a->readUntil(MsgType::System);
    ASSERT_TRUE(j);
    auto js = asSystem(*j);
    EXPECT_EQ(js.event, SystemEvent::Joined);
    EXPECT_EQ(js.name, "bob");
    b->send(msg::encodeEmpty(MsgType::Logout, 1));
    ASSERT_TRUE(b->waitClosed());
    auto l = a->readUntil(MsgType::System);
    ASSERT_TRUE(l);
    auto ls = asSystem(*l);
    EXPECT_EQ(ls.event, SystemEvent::Left);
    EXPECT_EQ(ls.name, "bob");
}

TEST_F(SessionStoryTest, OfflineBufferReplaysWithDroppedOnOverflow) {
    {
        auto b = login("bob");
        b->send(msg::encodeEmpty(MsgType::Logout, 1));
        ASSERT_TRUE(b->waitClosed());
    }
    auto a = login("alice");
    std::vector<std::uint64_t> ids;
    for (int i = 0; i < 5; ++i) {
        auto ack = say(*a, "bob", "m" + std::to_string(i));
        ASSERT_TRUE(ack);
        auto am = asAck(*ack);
        EXPECT_EQ(am.delivered, 0U);
        EXPECT_EQ(am.buffered, 1U);
        ids.push_back(am.id);
    }
    auto b = connect();
    auto w = b->registerAs("bob");
    ASSERT_TRUE(w);
    auto ws = asSystem(*w);
    ASSERT_EQ(ws.event, SystemEvent::Welcome);
    EXPECT_EQ(ws.welcome.pending, 3U);
    auto d = b->read();
    ASSERT_TRUE(d);
    auto ds = asSystem(*d);
    EXPECT_EQ(ds.event, SystemEvent::Dropped);
    EXPECT_EQ(ds.dropped, 2U);
    for (int i = 2; i < 5; ++i) {
        auto f = b->read();
        ASSERT_TRUE(f);
        EXPECT_EQ(f->header.flags & flags::kReplay, flags::kReplay);
        auto dd = asDelivery(*f);
        EXPECT_EQ(dd.id, ids[static_cast<std::size_t>(i)]);
        EXPECT_EQ(dd.text, "m" + std::to_string(i));
    }
}

TEST_F(SessionStoryTest, ResumeWithinTimeoutReplaysBroadcastsWhileDetached) {
    auto a = login("alice");
    msg::Welcome w;
    Uuid session{};
    {
        auto b = login("bob", ClientKind::User, &w);
        session = w.session;
        ASSERT_TRUE(a->readUntil(MsgType::System));  // JOINED bob
    }                                                // bob's socket closes without LOGOUT: detached
    auto left = a->readUntil(MsgType::System);
    ASSERT_TRUE(left);
    EXPECT_EQ(asSystem(*left).event, SystemEvent::Left);
    auto ack = say(*a, "", "while you were away");
    ASSERT_TRUE(ack);
    EXPECT_EQ(asAck(*ack).buffered, 1U);
    auto b2 = connect();
    auto f = b2->registerAs("bob", ClientKind::User, session);
    ASSERT_TRUE(f);
    auto s = asSystem(*f);
    ASSERT_EQ(s.event, SystemEvent::Welcome);
    EXPECT_TRUE(s.welcome.resumed);
    EXPECT_EQ(s.welcome.session, session);
    EXPECT_EQ(s.welcome.pending, 1U);
    auto r = b2->read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->header.flags & flags::kReplay, flags::kReplay);
    EXPECT_EQ(asDelivery(*r).text, "while you were away");
    auto joined = a->readUntil(MsgType::System);
    ASSERT_TRUE(joined);
    EXPECT_EQ(asSystem(*joined).event, SystemEvent::Joined);
}

TEST_F(SessionStoryTest, DetachedSessionExpiresAndNameIsFreed) {
    msg::Welcome w;
    { auto b = login("bob", ClientKind::User, &w); }
    auto watcher = login("watch");
    // Wait (with a deadline) until the server reports bob offline: the session expired.
    bool expired = false;
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!expired && std::chrono::steady_clock::now() < deadline) {
        watcher->send(msg::encode(msg::ListUsers{"bob"}, watcher->nextSeq()));
        auto f = watcher->readUntil(MsgType::UserList);
        ASSERT_TRUE(f);
        msg::UserList list;
        ASSERT_EQ(msg::parse(f->span(), list), nullptr);
        ASSERT_EQ(list.users.size(), 1U);
        expired = list.users[0].state == UserState::Offline;
        if (!expired) {
            // Not yet: let the server's clock run on until the next frame it sends us (its PING).
            watcher->readUntil(MsgType::Ping, 3s);
        }
    }
    ASSERT_TRUE(expired);
    auto b2 = connect();
    auto f = b2->registerAs("bob", ClientKind::User, w.session);
    ASSERT_TRUE(f);
    EXPECT_EQ(asError(*f).code, uint16_t(ErrorCode::SessionExpired));
    auto g = b2->registerAs("bob");
    ASSERT_TRUE(g);
    EXPECT_EQ(asSystem(*g).event, SystemEvent::Welcome);
}

TEST_F(SessionStoryTest, TakeoverClosesOldConnectionWithBye) {
    msg::Welcome w;
    auto b1 = login("bob", ClientKind::User, &w);
    auto b2 = connect();
    auto f = b2->registerAs("bob", ClientKind::User, w.session);
    ASSERT_TRUE(f);
    auto s = asSystem(*f);
    ASSERT_EQ(s.event, SystemEvent::Welcome);
    EXPECT_TRUE(s.welcome.resumed);
    auto bye = b1->readUntil(MsgType::System);
    ASSERT_TRUE(bye);
    EXPECT_EQ(asSystem(*bye).event, SystemEvent::Bye);
    EXPECT_TRUE(b1->waitClosed());
}

TEST_F(SessionStoryTest, LastIdReplaysDeliveriesASilentlyDeadConnectionMayHaveLost) {
    auto a = login("alice");
    msg::Welcome w;
    auto b = login("bob", ClientKind::User, &w);
    ASSERT_TRUE(a->readUntil(MsgType::System));  // JOINED bob
    std::vector<std::uint64_t> ids;
    for (int i = 0; i < 3; ++i) {
        auto ack = say(*a, "bob", "w" + std::to_string(i));
        ASSERT_TRUE(ack);
        ids.push_back(asAck(*ack).id);
        ASSERT_TRUE(b->readUntil(MsgType::BroadcastMessage));
    }
    // bob's client only processed the first one; it takes over with last_id = ids[0].
    auto b2 = connect();
    auto f = b2->registerAs("bob", ClientKind::User, w.session, ids[0]);
    ASSERT_TRUE(f);
    auto s = asSystem(*f);
    ASSERT_EQ(s.event, SystemEvent::Welcome);
    EXPECT_EQ(s.welcome.pending, 2U);
    for (int i = 1; i < 3; ++i) {
        auto r = b2->read();
        ASSERT_TRUE(r);
        EXPECT_EQ(r->header.flags & flags::kReplay, flags::kReplay);
        EXPECT_EQ(asDelivery(*r).id, ids[static_cast<std::size_t>(i)]);
    }
}

TEST_F(HeartbeatTest, ServerPingsSilentConnectionAndDropsTheDeadOne) {
    auto a = login("alice");
    auto b = login("bob");
    // Alice answers her PINGs; bob answers nothing and must be declared dead (LEFT).
    auto deadline = std::chrono::steady_clock::now() + 5s;
    bool saw_left = false;
    int pings = 0;
    while (!saw_left && std::chrono::steady_clock::now() < deadline) {
        auto f = a->read(3s);
        ASSERT_TRUE(f);
        if (f->type() == MsgType::Ping) {
            ++pings;
            EXPECT_EQ(f->header.sequence, 0);
            FrameWriter wr(MsgType::Pong, f->header.sequence);
            wr.tail(ByteSpan(f->payload.data(), f->payload.size()));
            a->send(wr.finish());
        } else if (f->type() == MsgType::System) {
            auto s = asSystem(*f);
            saw_left = s.event == SystemEvent::Left && s.name == "bob";
        }
    }
    EXPECT_TRUE(saw_left);
    EXPECT_GE(pings, 1);
    auto ping = b->readUntil(MsgType::Ping, 1s);  // what bob ignored
    ASSERT_TRUE(ping);
    EXPECT_EQ(ping->payload.size(), 8U);
    EXPECT_TRUE(b->waitClosed(2s));
    // Alice's PONGs gave the server RTT samples.
    a->send(msg::encodeEmpty(MsgType::HealthCheck, 2));
    auto h = a->readUntil(MsgType::HealthResult);
    ASSERT_TRUE(h);
    std::string json(h->payload.begin(), h->payload.end());
    EXPECT_EQ(json.find("\"samples\":0"), std::string::npos) << json;
    expectOthersStillChat();
}

class FullServerTest : public ServerTest {
protected:
    std::vector<std::string> serverArgs() override {
        return {"--no-presence", "--max-clients", "2"};
    }
};

TEST_F(FullServerTest, ConnectionsBeyondMaxClientsGetServerFull) {
    auto a = login("alice");
    auto b = login("bob");
    auto c = connect();
    auto f = c->read();
    ASSERT_TRUE(f);
    EXPECT_EQ(asError(*f).code, uint16_t(ErrorCode::ServerFull));
    EXPECT_TRUE(c->waitClosed());
    auto ack = say(*a, "bob", "still here");
    ASSERT_TRUE(ack);
    EXPECT_EQ(asAck(*ack).delivered, 1U);
}

}  // namespace
}  // namespace tundra::testing
