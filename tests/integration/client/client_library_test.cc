// SPDX-License-Identifier: Apache-2.0
// The client library against a real tundrad: messaging, agents, images, health, errors, and
// the promise that matters most: across a dropped connection, a server-side heartbeat
// disconnect or an expired session, every delivery reaches the caller exactly once.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/tundrad_process.h"
#include "tundra/client.h"

namespace tundra::client {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using testing::TundradProcess;

class ClientLibraryTest : public ::testing::Test {
protected:
    void startServer(std::vector<std::string> args = {}) {
        server_ = std::make_unique<TundradProcess>(std::move(args));
        ASSERT_TRUE(server_->started()) << server_->output();
    }

    void SetUp() override { startServer(); }

    void TearDown() override {
        if (server_ && server_->started()) {
            EXPECT_EQ(server_->stop(), std::optional<int>(0)) << server_->output();
        }
    }

    Options options() const {
        Options o;
        o.port = server_->port();
        o.connect_timeout = 5s;
        o.request_timeout = 5s;
        o.backoff.initial = 10ms;
        o.backoff.max = 200ms;
        return o;
    }

    std::unique_ptr<Client> login(const std::string& name, ClientKind kind = ClientKind::User) {
        auto c = std::make_unique<Client>(options());
        Identity id;
        id.name = name;
        id.kind = kind;
        auto w = c->registerAs(id);
        EXPECT_TRUE(w) << name << ": " << w.error().message();
        return c;
    }

    std::unique_ptr<TundradProcess> server_;
};

// Everything `c` returns until `pred` holds for an event or the deadline passes.
template <typename Pred>
std::vector<Event> eventsUntil(Client& c, Pred pred, milliseconds timeout = 10s) {
    std::vector<Event> seen;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        auto e = c.nextEvent(50ms);
        if (!e) {
            continue;
        }
        seen.push_back(std::move(*e));
        if (pred(seen.back())) {
            break;
        }
    }
    return seen;
}

std::optional<Delivery> nextDelivery(Client& c, milliseconds timeout = 10s) {
    auto seen = eventsUntil(
        c, [](const Event& e) { return std::holds_alternative<Delivery>(e); }, timeout);
    if (seen.empty() || !std::holds_alternative<Delivery>(seen.back())) {
        return std::nullopt;
    }
    return std::get<Delivery>(seen.back());
}

// Asks the server (through `asker`) until `name` is in `state`, pacing the questions by
// waiting for `asker`'s own events; false at the deadline.
bool waitForState(Client& asker, const std::string& name, UserState state,
                  milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        auto u = asker.listUsers(name);
        if (u && u->size() == 1 && (*u)[0].state == state) {
            return true;
        }
        (void)asker.nextEvent(20ms);
    }
    return false;
}

bool hasConnectionEvent(const std::vector<Event>& events, ConnectionEvent::Kind kind) {
    return std::any_of(events.begin(), events.end(), [&](const Event& e) {
        const auto* c = std::get_if<ConnectionEvent>(&e);
        return c != nullptr && c->kind == kind;
    });
}

TEST_F(ClientLibraryTest, DirectAndBroadcastMessagesWithAcks) {
    auto alice = login("alice");
    auto bob = login("bob");
    auto direct = alice->sendMessage("bob", "hi bob");
    ASSERT_TRUE(direct) << direct.error().message();
    EXPECT_GT(direct->id, 0U);
    EXPECT_EQ(direct->delivered, 1U);
    auto d = nextDelivery(*bob);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->type, MsgType::BroadcastMessage);
    EXPECT_EQ(d->id, direct->id);
    EXPECT_EQ(d->from, "alice");
    EXPECT_EQ(d->to, "bob");
    EXPECT_EQ(d->text, "hi bob");
    EXPECT_FALSE(d->replayed);

    auto all = alice->sendMessage("", "hello everyone");
    ASSERT_TRUE(all);
    auto b = nextDelivery(*bob);
    ASSERT_TRUE(b);
    EXPECT_EQ(b->id, all->id);
    EXPECT_EQ(b->to, "");
    EXPECT_GT(b->id, d->id);
    EXPECT_EQ(bob->lastId(), all->id);
}

TEST_F(ClientLibraryTest, ServerErrorsAreTypedAndLeaveTheConnectionUsable) {
    auto alice = login("alice");
    auto r = alice->sendMessage("nobody-here", "hello?");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind, ErrorKind::Server);
    EXPECT_EQ(r.error().code, ErrorCode::UnknownRecipient);
    EXPECT_FALSE(r.error().text.empty());

    // A delivery that would not fit a frame: refused by the server, connection kept.
    auto big = alice->sendMessage("", std::string(65532, 'x'));
    ASSERT_FALSE(big);
    EXPECT_EQ(big.error().code, ErrorCode::TooLarge);
    EXPECT_EQ(big.error().kind, ErrorKind::Server);

    auto again = alice->ping();
    EXPECT_TRUE(again) << again.error().message();

    auto taken = std::make_unique<Client>(options());
    Identity id;
    id.name = "alice";
    auto w = taken->registerAs(id);
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error().code, ErrorCode::UsernameTaken);
}

TEST_F(ClientLibraryTest, PayloadOverTheConfiguredLimitIsRefusedBeforeSending) {
    TearDown();
    startServer({"--max-payload", "64"});
    auto alice = login("alice");
    EXPECT_EQ(alice->welcome().max_payload, 64);
    auto r = alice->sendMessage("", std::string(100, 'y'));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::TooLarge);
    EXPECT_TRUE(r.error().local());
    EXPECT_EQ(alice->state(), ConnectionState::Registered);
    EXPECT_TRUE(alice->sendMessage("", "small"));
}

TEST_F(ClientLibraryTest, AgentCommandAndReply) {
    auto alice = login("alice");
    auto bot = login("deploy-bot", ClientKind::Agent);
    auto ack = alice->sendAgentCommand("deploy-bot", "deploy", "prod --fast");
    ASSERT_TRUE(ack) << ack.error().message();
    auto cmd = nextDelivery(*bot);
    ASSERT_TRUE(cmd);
    EXPECT_EQ(cmd->type, MsgType::BroadcastAgent);
    EXPECT_EQ(cmd->id, ack->id);
    EXPECT_EQ(cmd->from, "alice");
    EXPECT_EQ(cmd->command, "deploy");
    EXPECT_EQ(cmd->args, "prod --fast");
    EXPECT_EQ(cmd->reply_to, 0U);

    auto replied = bot->reply(*cmd, "done", "ok in 3s");
    ASSERT_TRUE(replied) << replied.error().message();
    auto answer = nextDelivery(*alice);
    ASSERT_TRUE(answer);
    EXPECT_EQ(answer->type, MsgType::BroadcastAgent);
    EXPECT_EQ(answer->from, "deploy-bot");
    EXPECT_EQ(answer->reply_to, ack->id);
    EXPECT_EQ(answer->command, "done");
    EXPECT_EQ(answer->args, "ok in 3s");
}

TEST_F(ClientLibraryTest, ImageBytesArriveIntact) {
    auto alice = login("alice");
    auto bob = login("bob");
    std::string png("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16);
    png += std::string(3000, '\xAB');
    auto ack = alice->sendImage("bob", "image/png", png);
    ASSERT_TRUE(ack) << ack.error().message();
    auto d = nextDelivery(*bob);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->type, MsgType::Image);
    EXPECT_EQ(d->mime, "image/png");
    EXPECT_EQ(d->data, png);
}

TEST_F(ClientLibraryTest, PingHealthAndUsers) {
    Client anonymous(options());
    auto rtt = anonymous.ping();  // connects on demand, no registration needed
    ASSERT_TRUE(rtt) << rtt.error().message();
    EXPECT_GT(rtt->count(), 0);
    auto h = anonymous.health();
    ASSERT_TRUE(h) << h.error().message();
    EXPECT_NE(h->find("\"status\":\"ok\""), std::string::npos) << *h;
    EXPECT_EQ(h->find("\"connection\""), std::string::npos) << *h;

    auto bob = login("bob");
    auto mine = bob->health();
    ASSERT_TRUE(mine);
    EXPECT_NE(mine->find("\"connection\""), std::string::npos) << *mine;
    auto bot = login("bot", ClientKind::Agent);
    auto users = bob->listUsers("b");
    ASSERT_TRUE(users) << users.error().message();
    std::sort(users->begin(), users->end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
    ASSERT_EQ(users->size(), 2U);
    EXPECT_EQ((*users)[0].name, "bob");
    EXPECT_EQ((*users)[0].state, UserState::Online);
    EXPECT_EQ((*users)[1].name, "bot");
    EXPECT_EQ((*users)[1].kind, ClientKind::Agent);
}

TEST_F(ClientLibraryTest, LogoutEndsTheSession) {
    auto alice = login("alice");
    auto bob = login("bob");
    ASSERT_TRUE(bob->logout());
    EXPECT_EQ(bob->state(), ConnectionState::Closed);
    auto users = alice->listUsers("bob");
    ASSERT_TRUE(users);
    ASSERT_EQ(users->size(), 1U);
    EXPECT_EQ((*users)[0].state, UserState::Offline);
    EXPECT_FALSE(bob->sendMessage("", "x"));
}

// An application that sits in request calls while messages pour in: the queue holds at most
// max_queued_events, the oldest are discarded, and the count comes first.
TEST_F(ClientLibraryTest, EventQueueStaysBoundedWhileTheAppSitsInRequests) {
    auto alice = login("alice");
    Options o = options();
    o.max_queued_events = 5;
    Client bob(o);
    Identity id;
    id.name = "bob";
    ASSERT_TRUE(bob.registerAs(id));
    std::uint64_t last = 0;
    for (int i = 0; i < 20; ++i) {
        auto ack = alice->sendMessage("bob", "m" + std::to_string(i));
        ASSERT_TRUE(ack) << ack.error().message();
        EXPECT_EQ(ack->delivered, 1U);
        last = ack->id;
    }
    // Every delivery was queued to bob's connection before this answer.
    ASSERT_TRUE(bob.listUsers());
    EXPECT_EQ(bob.stats().events_dropped, 15U);
    auto first = bob.nextEvent(0ms);
    ASSERT_TRUE(first);
    const auto* overflow = std::get_if<ErrorEvent>(&*first);
    ASSERT_NE(overflow, nullptr);
    EXPECT_EQ(overflow->error.kind, ErrorKind::Overflow);
    EXPECT_EQ(overflow->dropped, 15U);
    std::vector<std::string> texts;
    while (auto e = bob.nextEvent(0ms)) {
        if (const auto* d = std::get_if<Delivery>(&*e)) {
            texts.push_back(d->text);
        }
    }
    EXPECT_EQ(texts, (std::vector<std::string>{"m15", "m16", "m17", "m18", "m19"}));
    EXPECT_EQ(bob.lastId(), last);
}

// The server wrote frames into a connection that then died: the unread ones are lost with the
// socket. The client must get them back by resuming with its last id, once each.
TEST_F(ClientLibraryTest, DroppedConnectionLosesNothingAndDuplicatesNothing) {
    auto alice = login("alice");
    auto bob = login("bob");
    std::vector<std::uint64_t> sent;
    for (int i = 0; i < 20; ++i) {
        auto ack = alice->sendMessage("bob", "m" + std::to_string(i));
        ASSERT_TRUE(ack) << ack.error().message();
        sent.push_back(ack->id);
    }
    std::vector<Delivery> got;
    while (got.size() < 5) {
        auto d = nextDelivery(*bob);
        ASSERT_TRUE(d);
        got.push_back(*d);
    }
    bob->dropConnectionForTesting();  // 15 written frames die unread
    for (int i = 20; i < 30; ++i) {
        auto ack = alice->sendMessage("bob", "m" + std::to_string(i));
        ASSERT_TRUE(ack) << ack.error().message();
        sent.push_back(ack->id);
    }
    std::vector<Event> all;
    auto deadline = std::chrono::steady_clock::now() + 15s;
    while (got.size() < sent.size() && std::chrono::steady_clock::now() < deadline) {
        if (auto e = bob->nextEvent(50ms)) {
            if (const auto* d = std::get_if<Delivery>(&*e)) {
                got.push_back(*d);
            }
            all.push_back(std::move(*e));
        }
    }
    std::vector<std::uint64_t> ids;
    for (const auto& d : got) {
        ids.push_back(d.id);
    }
    EXPECT_EQ(ids, sent);  // every id, once, in order
    for (std::size_t i = 5; i < got.size(); ++i) {
        EXPECT_TRUE(got[i].replayed) << "id " << got[i].id << " was not marked as a replay";
    }
    EXPECT_TRUE(hasConnectionEvent(all, ConnectionEvent::Kind::Lost));
    EXPECT_TRUE(hasConnectionEvent(all, ConnectionEvent::Kind::Resumed));
    EXPECT_EQ(bob->reconnects(), 1U);
    // Nothing more is pending: no late duplicate shows up.
    auto extra = eventsUntil(
        *bob, [](const Event& e) { return std::holds_alternative<Delivery>(e); }, 300ms);
    for (const auto& e : extra) {
        EXPECT_FALSE(std::holds_alternative<Delivery>(e)) << "duplicate delivery";
    }
}

// Buffers large enough for a whole test's traffic: the server then never has to drop the
// oldest entries (SYSTEM DROPPED), however slowly the client gets back.
class BigBufferTest : public ClientLibraryTest {
protected:
    void SetUp() override { startServer({"--max-buffered", "1000"}); }
};

// Same promise while another client keeps sending during the interruption.
TEST_F(BigBufferTest, ConcurrentSenderAcrossAReconnect) {
    auto bob = login("bob");
    auto alice = login("alice");
    constexpr int kMessages = 300;
    std::vector<std::uint64_t> sent;
    std::thread sender([&] {
        for (int i = 0; i < kMessages; ++i) {
            auto ack = alice->sendMessage("bob", "n" + std::to_string(i));
            ASSERT_TRUE(ack) << ack.error().message();
            sent.push_back(ack->id);
        }
    });
    std::vector<std::uint64_t> ids;
    bool dropped = false;
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (ids.size() < kMessages && std::chrono::steady_clock::now() < deadline) {
        if (!dropped && ids.size() >= 50) {
            bob->dropConnectionForTesting();
            dropped = true;
        }
        if (auto e = bob->nextEvent(50ms)) {
            if (const auto* d = std::get_if<Delivery>(&*e)) {
                ids.push_back(d->id);
            }
            const auto* s = std::get_if<SystemNotice>(&*e);
            EXPECT_FALSE(s != nullptr && s->event == SystemEvent::Dropped) << s->dropped;
        }
    }
    sender.join();
    EXPECT_TRUE(dropped);
    EXPECT_EQ(ids.size(), sent.size());
    EXPECT_EQ(std::set<std::uint64_t>(ids.begin(), ids.end()).size(), ids.size()) << "duplicates";
    for (std::size_t i = 0; i < std::min(ids.size(), sent.size()); ++i) {
        if (ids[i] != sent[i]) {
            ADD_FAILURE() << "first difference at #" << i << ": got " << ids[i] << ", sent "
                          << sent[i];
            break;
        }
    }
}

TEST_F(ClientLibraryTest, SavedSessionAndLastIdResumeInANewClient) {
    auto alice = login("alice");
    Uuid session{};
    std::uint64_t last = 0;
    {
        auto bob = login("bob");
        ASSERT_TRUE(alice->sendMessage("bob", "first"));
        auto d = nextDelivery(*bob);
        ASSERT_TRUE(d);
        session = bob->welcome().session;
        last = bob->lastId();
        EXPECT_EQ(last, d->id);
    }  // destroyed without LOGOUT: the session detaches
    auto second = alice->sendMessage("bob", "second");
    ASSERT_TRUE(second);
    Client bob2(options());
    Identity id;
    id.name = "bob";
    id.session = session;
    id.last_id = last;
    auto w = bob2.registerAs(id);
    ASSERT_TRUE(w) << w.error().message();
    EXPECT_TRUE(w->resumed);
    EXPECT_EQ(w->session, session);
    auto d = nextDelivery(bob2);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->id, second->id);
    EXPECT_EQ(d->text, "second");
    EXPECT_TRUE(d->replayed);
}

class HeartbeatTest : public ClientLibraryTest {
protected:
    void SetUp() override { startServer({"--ping-interval", "0.3"}); }
};

// The server declares bob dead (no PONG) and closes; bob finds out on its next call and
// resumes; what was sent meanwhile is replayed once.
TEST_F(HeartbeatTest, ServerSideDisconnectIsResumedWithoutLoss) {
    auto bob = login("bob");
    auto alice = login("alice");
    // Bob makes no calls now. Alice keeps answering PINGs while she waits for bob to leave.
    auto seen = eventsUntil(*alice, [](const Event& e) {
        const auto* s = std::get_if<SystemNotice>(&e);
        return s != nullptr && s->event == SystemEvent::Left && s->name == "bob";
    });
    ASSERT_FALSE(seen.empty());
    const auto* left = std::get_if<SystemNotice>(&seen.back());
    ASSERT_TRUE(left != nullptr && left->event == SystemEvent::Left) << "bob never left";
    std::vector<std::uint64_t> sent;
    for (int i = 0; i < 5; ++i) {
        auto ack = alice->sendMessage("bob", "while away " + std::to_string(i));
        ASSERT_TRUE(ack) << ack.error().message();
        EXPECT_EQ(ack->delivered, 0U);
        EXPECT_EQ(ack->buffered, 1U);
        sent.push_back(ack->id);
    }
    std::vector<std::uint64_t> ids;
    std::vector<Event> all;
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (ids.size() < sent.size() && std::chrono::steady_clock::now() < deadline) {
        if (auto e = bob->nextEvent(50ms)) {
            if (const auto* d = std::get_if<Delivery>(&*e)) {
                ids.push_back(d->id);
                EXPECT_TRUE(d->replayed);
            }
            all.push_back(std::move(*e));
        }
    }
    EXPECT_EQ(ids, sent);
    EXPECT_TRUE(hasConnectionEvent(all, ConnectionEvent::Kind::Lost));
    EXPECT_TRUE(hasConnectionEvent(all, ConnectionEvent::Kind::Resumed));
}

class ExpiryTest : public ClientLibraryTest {
protected:
    void SetUp() override { startServer({"--session-timeout", "0.3"}); }
};

TEST_F(ExpiryTest, ExpiredSessionRestartsWithLastIdAndNoLoss) {
    auto alice = login("alice");
    auto bob = login("bob");
    auto first = alice->sendMessage("bob", "before");
    ASSERT_TRUE(first);
    auto d1 = nextDelivery(*bob);
    ASSERT_TRUE(d1);
    bob->dropConnectionForTesting();
    // Wait (on alice's answers, with a deadline) until the server forgot bob's session.
    ASSERT_TRUE(waitForState(*alice, "bob", UserState::Offline)) << "bob's session never expired";
    std::vector<std::uint64_t> sent;
    for (int i = 0; i < 3; ++i) {
        auto ack = alice->sendMessage("bob", "after " + std::to_string(i));
        ASSERT_TRUE(ack);
        sent.push_back(ack->id);
    }
    std::vector<std::uint64_t> ids;
    std::vector<Event> all;
    auto until = std::chrono::steady_clock::now() + 10s;
    while (ids.size() < sent.size() && std::chrono::steady_clock::now() < until) {
        if (auto e = bob->nextEvent(50ms)) {
            if (const auto* d = std::get_if<Delivery>(&*e)) {
                ids.push_back(d->id);
            }
            all.push_back(std::move(*e));
        }
    }
    EXPECT_EQ(ids, sent);  // "before" is not seen again
    EXPECT_TRUE(hasConnectionEvent(all, ConnectionEvent::Kind::NewSession));
    EXPECT_FALSE(hasConnectionEvent(all, ConnectionEvent::Kind::Resumed));
}

}  // namespace
}  // namespace tundra::client
