// SPDX-License-Identifier: Apache-2.0
// The client library against a scripted peer on 127.0.0.1:0: the test plays the server frame
// by frame in a thread, so request/event interleaving, automatic PONGs, reconnect with resume,
// dedupe, expiry fallback, give-up and takeover are checked exactly, without tundrad.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tundra/client.h"
#include "tundra/codec.h"
#include "tundra/messages.h"

namespace tundra::client {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

struct Frame {
    FrameHeader header;
    Bytes payload;
    [[nodiscard]] MsgType type() const { return static_cast<MsgType>(header.type); }
    [[nodiscard]] ByteSpan span() const { return {payload.data(), payload.size()}; }
};

// One accepted connection, seen from the server side.
class Peer {
public:
    explicit Peer(int fd) : fd_(fd) {}
    ~Peer() { closeNow(); }
    Peer(const Peer&) = delete;
    Peer& operator=(const Peer&) = delete;

    void closeNow() {
        if (fd_ >= 0) {
            ::close(fd_);
            fd_ = -1;
        }
    }

    bool send(const Bytes& frame) {
        return ::send(fd_, frame.data(), frame.size(), MSG_NOSIGNAL) ==
               static_cast<ssize_t>(frame.size());
    }

    // Next frame within `timeout`; nullopt on timeout or EOF (eof() tells which).
    std::optional<Frame> read(milliseconds timeout = 5s) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            DecodeResult r = decoder_.next();
            if (r.status == DecodeStatus::Frame) {
                return Frame{r.header, Bytes(r.payload.begin(), r.payload.end())};
            }
            if (r.status == DecodeStatus::Error) {
                return std::nullopt;
            }
            auto left = std::chrono::duration_cast<milliseconds>(deadline -
                                                                 std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                return std::nullopt;
            }
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
                return std::nullopt;
            }
            std::uint8_t buf[65536];
            ssize_t n = ::read(fd_, buf, sizeof buf);
            if (n <= 0) {
                eof_ = true;
                return std::nullopt;
            }
            decoder_.append(ByteSpan(buf, static_cast<std::size_t>(n)));
        }
    }

    // Waits for the client to close its end.
    bool waitEof(milliseconds timeout = 5s) {
        while (!eof_) {
            if (!read(timeout) && !eof_) {
                return false;
            }
        }
        return true;
    }

private:
    int fd_;
    FrameDecoder decoder_;
    bool eof_ = false;
};

class Listener {
public:
    Listener() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        ::listen(fd_, 16);
        socklen_t len = sizeof addr;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
        port_ = ntohs(addr.sin_port);
    }
    ~Listener() { closeNow(); }
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;

    [[nodiscard]] std::uint16_t port() const { return port_; }
    void closeNow() {
        if (fd_ >= 0) {
            ::close(fd_);
            fd_ = -1;
        }
    }

    std::unique_ptr<Peer> accept(milliseconds timeout = 5s) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) {
            return nullptr;
        }
        int fd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        return fd < 0 ? nullptr : std::make_unique<Peer>(fd);
    }

private:
    int fd_ = -1;
    std::uint16_t port_ = 0;
};

Uuid uuidOf(std::uint8_t b) {
    Uuid u{};
    u.fill(b);
    return u;
}

Bytes welcomeFrame(std::uint16_t seq, Uuid session, bool resumed = false, std::uint32_t pending = 0,
                   std::uint16_t max_payload = 65534, std::uint16_t heartbeat_s = 0) {
    msg::System s;
    s.event = SystemEvent::Welcome;
    s.text = "welcome";
    s.welcome.session = session;
    s.welcome.resumed = resumed;
    s.welcome.pending = pending;
    s.welcome.heartbeat_s = heartbeat_s;
    s.welcome.session_timeout_s = 120;
    s.welcome.max_payload = max_payload;
    return msg::encode(s, seq);
}

Bytes deliveryFrame(std::uint64_t id, std::string_view text, bool replay = false) {
    msg::Delivery d;
    d.type = MsgType::BroadcastMessage;
    d.id = id;
    d.time_ms = 1000 + id;
    d.from = "alice";
    d.to = "bob";
    d.text = text;
    return msg::encode(d, 0, replay ? flags::kReplay : 0);
}

Bytes errorFrame(std::uint16_t seq, ErrorCode code, std::string_view text) {
    return msg::encode(msg::Error{static_cast<std::uint16_t>(code), text}, seq);
}

// What a REGISTER carried, owned (msg::Register only borrows from the frame).
struct RegisterSeen {
    std::string username;
    Uuid session{};
    ClientKind kind = ClientKind::User;
    std::string token;
    std::uint64_t last_id = 0;
};

// Reads a REGISTER and checks it; returns its sequence (0 on failure).
std::uint16_t expectRegister(Peer& p, RegisterSeen* out = nullptr) {
    auto f = p.read();
    EXPECT_TRUE(f.has_value()) << "no REGISTER";
    if (!f) {
        return 0;
    }
    EXPECT_EQ(f->type(), MsgType::Register);
    msg::Register r;
    EXPECT_EQ(msg::parse(f->span(), r), nullptr);
    if (out != nullptr) {
        *out = RegisterSeen{std::string(r.username), r.session, r.kind, std::string(r.token),
                            r.last_id};
    }
    return f->header.sequence;
}

Options fastOptions(std::uint16_t port) {
    Options o;
    o.port = port;
    o.connect_timeout = 2s;
    o.request_timeout = 2s;
    o.backoff.initial = 1ms;
    o.backoff.max = 5ms;
    o.backoff.jitter = 0;
    return o;
}

Identity bob() {
    Identity id;
    id.name = "bob";
    return id;
}

// Collects events until `n` arrived or the deadline passed.
std::vector<Event> collect(Client& c, std::size_t n, milliseconds timeout = 5s) {
    std::vector<Event> out;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
        if (auto e = c.nextEvent(100ms)) {
            out.push_back(std::move(*e));
        }
    }
    return out;
}

std::uint64_t deliveryId(const Event& e) {
    const auto* d = std::get_if<Delivery>(&e);
    return d == nullptr ? 0 : d->id;
}

std::optional<ConnectionEvent::Kind> connectionKind(const Event& e) {
    const auto* c = std::get_if<ConnectionEvent>(&e);
    return c == nullptr ? std::nullopt : std::optional(c->kind);
}

TEST(ClientScripted, RegisterSendsIdentityAndReturnsWelcome) {
    Listener l;
    std::thread server([&] {
        auto p = l.accept();
        ASSERT_TRUE(p);
        RegisterSeen r;
        std::uint16_t seq = expectRegister(*p, &r);
        EXPECT_NE(seq, 0);  // clients number frames from 1
        EXPECT_EQ(r.username, "bot");
        EXPECT_EQ(r.kind, ClientKind::Agent);
        EXPECT_EQ(r.token, "secret");
        EXPECT_TRUE(isNil(r.session));
        EXPECT_EQ(r.last_id, 50U);
        p->send(welcomeFrame(seq, uuidOf(7), false, 1, 1000, 30));
        p->send(deliveryFrame(49, "old", true));  // at or below last_id: dropped
        p->send(deliveryFrame(51, "new", true));
        p->waitEof();
    });
    Client c(fastOptions(l.port()));
    Identity id;
    id.name = "bot";
    id.kind = ClientKind::Agent;
    id.token = "secret";
    id.last_id = 50;
    auto w = c.registerAs(id);
    ASSERT_TRUE(w) << w.error().message();
    EXPECT_EQ(w->session, uuidOf(7));
    EXPECT_FALSE(w->resumed);
    EXPECT_EQ(w->pending, 1U);
    EXPECT_EQ(w->heartbeat, std::chrono::seconds(30));
    EXPECT_EQ(w->max_payload, 1000);
    EXPECT_EQ(c.state(), ConnectionState::Registered);
    auto events = collect(c, 1);
    ASSERT_EQ(events.size(), 1U);
    const auto& d = std::get<Delivery>(events[0]);
    EXPECT_EQ(d.id, 51U);
    EXPECT_EQ(d.text, "new");
    EXPECT_EQ(d.from, "alice");
    EXPECT_TRUE(d.replayed);
    EXPECT_EQ(c.lastId(), 51U);
    c.close();
    server.join();
}

TEST(ClientScripted, RequestQueuesOtherFramesAndAnswersPingOnTheSpot) {
    Listener l;
    std::thread server([&] {
        auto p = l.accept();
        ASSERT_TRUE(p);
        p->send(welcomeFrame(expectRegister(*p), uuidOf(1)));
        auto m = p->read();
        ASSERT_TRUE(m);
        EXPECT_EQ(m->type(), MsgType::Message);
        EXPECT_EQ(m->header.flags & flags::kAck, flags::kAck);
        msg::Message parsed;
        ASSERT_EQ(msg::parse(m->span(), parsed), nullptr);
        EXPECT_EQ(parsed.to, "carol");
        EXPECT_EQ(parsed.text, "hi");
        // Before the ACK: a PING with trailing bytes, a delivery, a presence event.
        Bytes ping = FrameWriter(MsgType::Ping, 0).u64(77).u8(0xAA).u8(0xBB).finish();
        p->send(ping);
        p->send(deliveryFrame(10, "meanwhile"));
        msg::System joined;
        joined.event = SystemEvent::Joined;
        joined.name = "dave";
        p->send(msg::encode(joined, 0));
        p->send(msg::encode(msg::Ack{555, 1, 2}, m->header.sequence));
        auto pong = p->read();
        ASSERT_TRUE(pong);
        EXPECT_EQ(pong->type(), MsgType::Pong);
        EXPECT_EQ(pong->header.sequence, 0);  // echoes the PING's
        EXPECT_EQ(pong->payload, Bytes(ping.begin() + kHeaderSize, ping.end()));
        p->waitEof();
    });
    Client c(fastOptions(l.port()));
    ASSERT_TRUE(c.registerAs(bob()));
    auto ack = c.sendMessage("carol", "hi");
    ASSERT_TRUE(ack) << ack.error().message();
    EXPECT_EQ(ack->id, 555U);
    EXPECT_EQ(ack->delivered, 1U);
    EXPECT_EQ(ack->buffered, 2U);
    EXPECT_TRUE(c.hasQueuedEvents());
    auto events = collect(c, 2);
    ASSERT_EQ(events.size(), 2U);
    EXPECT_EQ(deliveryId(events[0]), 10U);
    const auto* joined = std::get_if<SystemNotice>(&events[1]);
    ASSERT_NE(joined, nullptr);
    EXPECT_EQ(joined->event, SystemEvent::Joined);
    EXPECT_EQ(joined->name, "dave");
    c.close();
    server.join();
}

TEST(ClientScripted, ServerErrorIsATypedValue) {
    Listener l;
    std::thread server([&] {
        auto p = l.accept();
        ASSERT_TRUE(p);
        p->send(welcomeFrame(expectRegister(*p), uuidOf(1)));
        auto m = p->read();
        ASSERT_TRUE(m);
        p->send(errorFrame(m->header.sequence, ErrorCode::UnknownRecipient, "no such user"));
        p->waitEof();
    });
    Client c(fastOptions(l.port()));
    ASSERT_TRUE(c.registerAs(bob()));
    auto ack = c.sendMessage("nobody", "hi");
    ASSERT_FALSE(ack);
    EXPECT_EQ(ack.error().kind, ErrorKind::Server);
    EXPECT_FALSE(ack.error().local());
    EXPECT_EQ(ack.error().code, ErrorCode::UnknownRecipient);
    EXPECT_EQ(ack.error().text, "no such user");
    EXPECT_EQ(ack.error().message(), "UNKNOWN_RECIPIENT (6): no such user");
    EXPECT_EQ(c.state(), ConnectionState::Registered);  // the connection stays usable
    c.close();
    server.join();
}

TEST(ClientScripted, PostedMessageRefusalArrivesAsEventWithItsSequence) {
    Listener l;
    std::uint16_t refused_seq = 0;
    std::thread server([&] {
        auto p = l.accept();
        ASSERT_TRUE(p);
        p->send(welcomeFrame(expectRegister(*p), uuidOf(1)));
        auto m = p->read();
        ASSERT_TRUE(m);
        EXPECT_EQ(m->header.flags & flags::kAck, 0);
        refused_seq = m->header.sequence;
        p->send(errorFrame(m->header.sequence, ErrorCode::TooLarge, "too large"));
        p->waitEof();
    });
    Client c(fastOptions(l.port()));
    ASSERT_TRUE(c.registerAs(bob()));
    auto seq = c.postMessage("", "hello");
    ASSERT_TRUE(seq);
    auto events = collect(c, 1);
    ASSERT_EQ(events.size(), 1U);
    const auto* e = std::get_if<ErrorEvent>(&events[0]);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->error.code, ErrorCode::TooLarge);
    EXPECT_EQ(e->sequence, *seq);
    c.close();
    server.join();
    EXPECT_EQ(refused_seq, *seq);
}

TEST(ClientScripted, PayloadOverTheServersLimitIsRefusedLocally) {
    Listener l;
    std::thread server([&] {
        auto p = l.accept();
        ASSERT_TRUE(p);
        p->send(welcomeFrame(expectRegister(*p), uuidOf(1), false, 0, /*max_payload=*/100));
        auto f = p->read();  // the oversized MESSAGE never arrives; the PING does
        ASSERT_TRUE(f);
        EXPECT_EQ(f->type(), MsgType::Ping);
        p->send(FrameWriter(MsgType::Pong, f->header.sequence).tail(f->span()).finish());
        p->waitEof();
    });
    Client c(fastOptions(l.port()));
    ASSERT_TRUE(c.registerAs(bob()));
    auto ack = c.sendMessage("", std::string(200, 'x'));
    ASSERT_FALSE(ack);
    EXPECT_EQ(ack.error().kind, ErrorKind::InvalidArgument);
    EXPECT_EQ(ack.error().code, ErrorCode::TooLarge);
    EXPECT_TRUE(ack.error().local());
    auto rtt = c.ping();
    EXPECT_TRUE(rtt) << rtt.error().message();
    c.close();
    server.join();
}

TEST(ClientScripted, TimeoutThenTheLateAnswerIsDropped) {
    Listener l;
    std::thread server([&] {
        auto p = l.accept();
        ASSERT_TRUE(p);
        auto h = p->read();
        ASSERT_TRUE(h);
        EXPECT_EQ(h->type(), MsgType::HealthCheck);
        auto again = p->read();  // the client's next request proves it gave up waiting
        ASSERT_TRUE(again);
        p->send(msg::encode(msg::HealthResult{"{\"late\":1}"}, h->header.sequence));
        p->send(msg::encode(msg::HealthResult{"{\"status\":\"ok\"}"}, again->header.sequence));
        p->waitEof();
    });
    Options o = fastOptions(l.port());
    o.request_timeout = 200ms;
    Client c(o);
    auto first = c.health();
    ASSERT_FALSE(first);
    EXPECT_EQ(first.error().kind, ErrorKind::Timeout);
    auto second = c.health();
    ASSERT_TRUE(second) << second.error().message();
    EXPECT_EQ(*second, "{\"status\":\"ok\"}");
    EXPECT_FALSE(c.nextEvent(50ms).has_value());  // the late answer is not an event
    c.close();
    server.join();
}

TEST(ClientScripted, ReconnectResumesWithLastIdAndDropsDuplicates) {
    Listener l;
    std::thread server([&] {
        auto p1 = l.accept();
        ASSERT_TRUE(p1);
        p1->send(welcomeFrame(expectRegister(*p1), uuidOf(9)));
        p1->send(deliveryFrame(1, "one"));
        p1->send(deliveryFrame(2, "two"));
        p1->closeNow();  // the connection dies after the client got 1 and 2

        auto p2 = l.accept();
        ASSERT_TRUE(p2);
        RegisterSeen r;
        std::uint16_t seq = expectRegister(*p2, &r);
        EXPECT_EQ(r.username, "bob");
        EXPECT_EQ(r.session, uuidOf(9));
        EXPECT_EQ(r.last_id, 2U);
        p2->send(welcomeFrame(seq, uuidOf(9), /*resumed=*/true, 2));
        p2->send(deliveryFrame(2, "two", true));  // a duplicate the client must drop
        p2->send(deliveryFrame(3, "three", true));
        p2->waitEof();
    });
    Client c(fastOptions(l.port()));
    ASSERT_TRUE(c.registerAs(bob()));
    auto events = collect(c, 5);
    ASSERT_EQ(events.size(), 5U);
    EXPECT_EQ(deliveryId(events[0]), 1U);
    EXPECT_EQ(deliveryId(events[1]), 2U);
    EXPECT_EQ(connectionKind(events[2]), ConnectionEvent::Kind::Lost);
    ASSERT_EQ(connectionKind(events[3]), ConnectionEvent::Kind::Resumed);
    EXPECT_EQ(std::get<ConnectionEvent>(events[3]).attempts, 1U);
    EXPECT_EQ(std::get<ConnectionEvent>(events[3]).welcome.pending, 2U);
    EXPECT_EQ(deliveryId(events[4]), 3U);
    EXPECT_TRUE(std::get<Delivery>(events[4]).replayed);
    EXPECT_FALSE(c.nextEvent(50ms).has_value());
    EXPECT_EQ(c.reconnects(), 1U);
    EXPECT_EQ(c.state(), ConnectionState::Registered);
    c.close();
    server.join();
}

TEST(ClientScripted, ExpiredSessionIsReplacedByANewOneKeepingLastId) {
    Listener l;
    std::thread server([&] {
        auto p1 = l.accept();
        ASSERT_TRUE(p1);
        p1->send(welcomeFrame(expectRegister(*p1), uuidOf(1)));
        p1->send(deliveryFrame(5, "five"));
        p1->closeNow();

        auto p2 = l.accept();
        ASSERT_TRUE(p2);
        RegisterSeen resume;
        std::uint16_t seq = expectRegister(*p2, &resume);
        EXPECT_EQ(resume.session, uuidOf(1));
        p2->send(errorFrame(seq, ErrorCode::SessionExpired, "session expired"));
        RegisterSeen fresh;
        seq = expectRegister(*p2, &fresh);
        EXPECT_TRUE(isNil(fresh.session));
        EXPECT_EQ(fresh.last_id, 5U);
        p2->send(welcomeFrame(seq, uuidOf(2), false, 1));
        p2->send(deliveryFrame(6, "six", true));
        p2->waitEof();
    });
    Client c(fastOptions(l.port()));
    ASSERT_TRUE(c.registerAs(bob()));
    auto events = collect(c, 4);
    ASSERT_EQ(events.size(), 4U);
    EXPECT_EQ(deliveryId(events[0]), 5U);
    EXPECT_EQ(connectionKind(events[1]), ConnectionEvent::Kind::Lost);
    ASSERT_EQ(connectionKind(events[2]), ConnectionEvent::Kind::NewSession);
    EXPECT_EQ(std::get<ConnectionEvent>(events[2]).welcome.session, uuidOf(2));
    EXPECT_EQ(deliveryId(events[3]), 6U);
    EXPECT_EQ(c.welcome().session, uuidOf(2));
    c.close();
    server.join();
}

// The server restarts with its wall clock stepped back: the resume is refused, the new
// session's ids are below everything seen before, and they must still be delivered.
TEST(ClientScripted, ServerRestartWithClockBehindStartsANewIdSequence) {
    Listener l;
    std::thread server([&] {
        auto p1 = l.accept();
        ASSERT_TRUE(p1);
        p1->send(welcomeFrame(expectRegister(*p1), uuidOf(1)));
        p1->send(deliveryFrame(1'000'000, "before"));
        p1->send(deliveryFrame(1'000'001, "before too"));
        p1->closeNow();  // the old process is gone

        auto p2 = l.accept();  // the new process: nothing to resume, nothing to replay
        ASSERT_TRUE(p2);
        RegisterSeen resume;
        std::uint16_t seq = expectRegister(*p2, &resume);
        EXPECT_EQ(resume.last_id, 1'000'001U);
        p2->send(errorFrame(seq, ErrorCode::SessionExpired, "session expired"));
        seq = expectRegister(*p2);
        p2->send(welcomeFrame(seq, uuidOf(2), false, 0));
        p2->send(deliveryFrame(500, "after"));
        p2->send(deliveryFrame(501, "after too"));
        p2->send(deliveryFrame(501, "after too"));  // a real duplicate: dropped
        p2->closeNow();

        auto p3 = l.accept();  // same process again: a resume with the new sequence's last id
        ASSERT_TRUE(p3);
        RegisterSeen again;
        seq = expectRegister(*p3, &again);
        EXPECT_EQ(again.session, uuidOf(2));
        EXPECT_EQ(again.last_id, 501U);
        p3->send(welcomeFrame(seq, uuidOf(2), /*resumed=*/true, 1));
        p3->send(deliveryFrame(502, "replayed", true));
        p3->send(deliveryFrame(500, "after"));  // seen in the new sequence: a duplicate
        p3->waitEof();
    });
    Client c(fastOptions(l.port()));
    ASSERT_TRUE(c.registerAs(bob()));
    auto events = collect(c, 9);
    ASSERT_EQ(events.size(), 9U);
    EXPECT_EQ(deliveryId(events[0]), 1'000'000U);
    EXPECT_EQ(deliveryId(events[1]), 1'000'001U);
    EXPECT_EQ(connectionKind(events[2]), ConnectionEvent::Kind::Lost);
    EXPECT_EQ(connectionKind(events[3]), ConnectionEvent::Kind::NewSession);
    EXPECT_EQ(deliveryId(events[4]), 500U);
    EXPECT_EQ(deliveryId(events[5]), 501U);
    EXPECT_EQ(connectionKind(events[6]), ConnectionEvent::Kind::Lost);
    EXPECT_EQ(connectionKind(events[7]), ConnectionEvent::Kind::Resumed);
    EXPECT_EQ(deliveryId(events[8]), 502U);
    EXPECT_FALSE(c.nextEvent(100ms).has_value());
    EXPECT_EQ(c.lastId(), 502U);
    EXPECT_EQ(c.stats().id_sequence_resets, 1U);
    EXPECT_EQ(c.stats().duplicates_dropped, 2U);
    c.close();
    server.join();
}

// A process that saved last_id before the server restarted with its clock behind.
TEST(ClientScripted, SavedLastIdFromBeforeARestartDoesNotHideNewMessages) {
    Listener l;
    std::thread server([&] {
        auto p = l.accept();
        ASSERT_TRUE(p);
        std::uint16_t seq = expectRegister(*p);
        p->send(errorFrame(seq, ErrorCode::SessionExpired, "session expired"));
        seq = expectRegister(*p);
        p->send(welcomeFrame(seq, uuidOf(4), false, 0));
        p->send(deliveryFrame(70, "new"));
        p->waitEof();
    });
    Client c(fastOptions(l.port()));
    Identity id = bob();
    id.session = uuidOf(3);
    id.last_id = 90;
    auto w = c.registerAs(id);
    ASSERT_TRUE(w) << w.error().message();
    EXPECT_FALSE(w->resumed);
    auto events = collect(c, 1);
    ASSERT_EQ(events.size(), 1U);
    EXPECT_EQ(deliveryId(events[0]), 70U);
    EXPECT_EQ(c.lastId(), 70U);
    c.close();
    server.join();
}

TEST(ClientScripted, ResumeRefusedWhenFallbackIsOff) {
    Listener l;
    std::thread server([&] {
        auto p = l.accept();
        ASSERT_TRUE(p);
        RegisterSeen r;
        std::uint16_t seq = expectRegister(*p, &r);
        EXPECT_EQ(r.session, uuidOf(3));
        EXPECT_EQ(r.last_id, 17U);
        p->send(errorFrame(seq, ErrorCode::SessionExpired, "expired"));
        p->waitEof();
    });
    Client c(fastOptions(l.port()));
    Identity id = bob();
    id.session = uuidOf(3);
    id.last_id = 17;
    id.new_session_if_expired = false;
    auto w = c.registerAs(id);
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error().code, ErrorCode::SessionExpired);
    EXPECT_NE(c.state(), ConnectionState::Registered);
    c.close();
    server.join();
}

TEST(ClientScripted, GivesUpAfterMaxAttempts) {
    Listener l;
    std::thread server([&] {
        auto p = l.accept();
        ASSERT_TRUE(p);
        p->send(welcomeFrame(expectRegister(*p), uuidOf(1)));
        l.closeNow();  // nothing listens any more: reconnects are refused
        p->closeNow();
    });
    Options o = fastOptions(l.port());
    o.backoff.max_attempts = 3;
    Client c(o);
    ASSERT_TRUE(c.registerAs(bob()));
    server.join();
    auto events = collect(c, 2);
    ASSERT_EQ(events.size(), 2U);
    EXPECT_EQ(connectionKind(events[0]), ConnectionEvent::Kind::Lost);
    ASSERT_EQ(connectionKind(events[1]), ConnectionEvent::Kind::Closed);
    EXPECT_EQ(std::get<ConnectionEvent>(events[1]).reason.kind, ErrorKind::Connect);
    EXPECT_EQ(c.state(), ConnectionState::Closed);
    EXPECT_FALSE(c.nextEvent(0ms).has_value());
    auto send = c.sendMessage("", "x");
    ASSERT_FALSE(send);
    EXPECT_EQ(send.error().kind, ErrorKind::Closed);
}

// Each outage gets the full max_attempts: the count starts over after a successful
// reconnect. Without that, the second outage would end in Closed after its first failure.
TEST(ClientScripted, BackoffStartsOverAfterASuccessfulReconnect) {
    Listener l;
    std::thread server([&] {
        auto p = l.accept();
        ASSERT_TRUE(p);
        p->send(welcomeFrame(expectRegister(*p), uuidOf(1)));
        for (int outage = 0; outage < 2; ++outage) {
            p->closeNow();
            for (int failure = 0; failure < 2; ++failure) {  // two failed attempts: under 3
                auto busy = l.accept();
                ASSERT_TRUE(busy) << "outage " << outage << ": no attempt " << failure + 1;
                std::uint16_t seq = expectRegister(*busy);
                busy->send(errorFrame(seq, ErrorCode::ServerFull, "server full"));
                busy->waitEof();
            }
            p = l.accept();
            ASSERT_TRUE(p) << "outage " << outage << ": no third attempt";
            p->send(welcomeFrame(expectRegister(*p), uuidOf(1), /*resumed=*/true));
        }
        p->send(deliveryFrame(1, "still here"));
        p->waitEof();
    });
    Options o = fastOptions(l.port());
    o.backoff.max_attempts = 3;
    Client c(o);
    ASSERT_TRUE(c.registerAs(bob()));
    auto events = collect(c, 5);
    const ConnectionState state = c.state();
    c.close();
    server.join();  // before any ASSERT, so a failure here is a failure, not a crash
    EXPECT_EQ(state, ConnectionState::Registered);
    ASSERT_EQ(events.size(), 5U);
    for (int i : {0, 2}) {
        EXPECT_EQ(connectionKind(events[i]), ConnectionEvent::Kind::Lost) << i;
        ASSERT_EQ(connectionKind(events[i + 1]), ConnectionEvent::Kind::Resumed) << i;
        EXPECT_EQ(std::get<ConnectionEvent>(events[i + 1]).attempts, 3U) << i;
    }
    EXPECT_EQ(deliveryId(events[4]), 1U);
    EXPECT_EQ(c.reconnects(), 2U);
}

// While the application waits in request calls, what arrives is queued, up to
// max_queued_events: the oldest are discarded and the count is the next event.
TEST(ClientScripted, EventQueueIsBoundedAndReportsWhatItDropped) {
    Listener l;
    std::thread server([&] {
        auto p = l.accept();
        ASSERT_TRUE(p);
        p->send(welcomeFrame(expectRegister(*p), uuidOf(1)));
        for (int round = 0; round < 2; ++round) {
            auto m = p->read();
            ASSERT_TRUE(m);
            for (std::uint64_t i = 1; i <= 10; ++i) {
                p->send(deliveryFrame(static_cast<std::uint64_t>(round) * 100 + i, "flood"));
            }
            p->send(msg::encode(msg::Ack{1, 1, 0}, m->header.sequence));
        }
        p->waitEof();
    });
    Options o = fastOptions(l.port());
    o.max_queued_events = 4;
    Client c(o);
    ASSERT_TRUE(c.registerAs(bob()));
    ASSERT_TRUE(c.sendMessage("carol", "one"));
    ASSERT_TRUE(c.sendMessage("carol", "two"));  // 20 deliveries arrived meanwhile
    EXPECT_TRUE(c.hasQueuedEvents());
    EXPECT_EQ(c.stats().events_dropped, 16U);
    auto first = c.nextEvent(0ms);
    ASSERT_TRUE(first);
    const auto* overflow = std::get_if<ErrorEvent>(&*first);
    ASSERT_NE(overflow, nullptr);
    EXPECT_EQ(overflow->error.kind, ErrorKind::Overflow);
    EXPECT_EQ(overflow->dropped, 16U);
    EXPECT_EQ(overflow->error.message(),
              "16 event(s) discarded: more than 4 were waiting for "
              "nextEvent()");
    auto rest = collect(c, 4, 500ms);
    ASSERT_EQ(rest.size(), 4U);
    for (std::size_t i = 0; i < 4; ++i) {
        EXPECT_EQ(deliveryId(rest[i]), 107U + i);  // the newest four
    }
    EXPECT_FALSE(c.hasQueuedEvents());
    EXPECT_FALSE(c.nextEvent(50ms).has_value());  // reported once
    EXPECT_EQ(c.lastId(), 110U);
    c.close();
    server.join();
}

TEST(ClientScripted, UnlimitedEventQueueWhenMaxIsZero) {
    Listener l;
    std::thread server([&] {
        auto p = l.accept();
        ASSERT_TRUE(p);
        p->send(welcomeFrame(expectRegister(*p), uuidOf(1)));
        auto m = p->read();
        ASSERT_TRUE(m);
        for (std::uint64_t i = 1; i <= 50; ++i) {
            p->send(deliveryFrame(i, "x"));
        }
        p->send(msg::encode(msg::Ack{1, 1, 0}, m->header.sequence));
        p->waitEof();
    });
    Options o = fastOptions(l.port());
    o.max_queued_events = 0;
    Client c(o);
    ASSERT_TRUE(c.registerAs(bob()));
    ASSERT_TRUE(c.sendMessage("carol", "hi"));
    auto events = collect(c, 50, 1s);
    EXPECT_EQ(events.size(), 50U);
    EXPECT_EQ(c.stats().events_dropped, 0U);
    c.close();
    server.join();
}

TEST(ClientScripted, PermanentRefusalOnReconnectStopsRetrying) {
    Listener l;
    std::thread server([&] {
        auto p1 = l.accept();
        ASSERT_TRUE(p1);
        p1->send(welcomeFrame(expectRegister(*p1), uuidOf(1)));
        p1->closeNow();
        auto p2 = l.accept();
        ASSERT_TRUE(p2);
        std::uint16_t seq = expectRegister(*p2);
        p2->send(errorFrame(seq, ErrorCode::AuthFailed, "bad token"));
        EXPECT_FALSE(l.accept(200ms)) << "the client tried again after a permanent refusal";
    });
    Client c(fastOptions(l.port()));
    ASSERT_TRUE(c.registerAs(bob()));
    auto events = collect(c, 2);
    ASSERT_EQ(events.size(), 2U);
    EXPECT_EQ(connectionKind(events[0]), ConnectionEvent::Kind::Lost);
    ASSERT_EQ(connectionKind(events[1]), ConnectionEvent::Kind::Closed);
    EXPECT_EQ(std::get<ConnectionEvent>(events[1]).reason.code, ErrorCode::AuthFailed);
    server.join();
}

TEST(ClientScripted, TakenOverSessionIsNotReclaimed) {
    Listener l;
    std::thread server([&] {
        auto p = l.accept();
        ASSERT_TRUE(p);
        p->send(welcomeFrame(expectRegister(*p), uuidOf(1)));
        msg::System bye;
        bye.event = SystemEvent::Bye;
        bye.text = "taken over";
        p->send(msg::encode(bye, 0));
        p->closeNow();
        EXPECT_FALSE(l.accept(200ms)) << "the client reconnected after a takeover";
    });
    Client c(fastOptions(l.port()));
    ASSERT_TRUE(c.registerAs(bob()));
    auto events = collect(c, 2);
    ASSERT_EQ(events.size(), 2U);
    const auto* bye = std::get_if<SystemNotice>(&events[0]);
    ASSERT_NE(bye, nullptr);
    EXPECT_EQ(bye->event, SystemEvent::Bye);
    EXPECT_EQ(bye->text, "taken over");
    EXPECT_EQ(connectionKind(events[1]), ConnectionEvent::Kind::Closed);
    EXPECT_EQ(c.state(), ConnectionState::Closed);
    server.join();
}

TEST(ClientScripted, WithoutAutoReconnectALostConnectionCloses) {
    Listener l;
    std::thread server([&] {
        auto p = l.accept();
        ASSERT_TRUE(p);
        p->send(welcomeFrame(expectRegister(*p), uuidOf(1)));
        p->closeNow();
    });
    Options o = fastOptions(l.port());
    o.auto_reconnect = false;
    Client c(o);
    ASSERT_TRUE(c.registerAs(bob()));
    server.join();
    auto events = collect(c, 1);
    ASSERT_EQ(events.size(), 1U);
    EXPECT_EQ(connectionKind(events[0]), ConnectionEvent::Kind::Closed);
    EXPECT_EQ(c.state(), ConnectionState::Closed);
}

TEST(ClientScripted, LogoutWaitsForByeAndCloses) {
    Listener l;
    std::thread server([&] {
        auto p = l.accept();
        ASSERT_TRUE(p);
        p->send(welcomeFrame(expectRegister(*p), uuidOf(1)));
        auto f = p->read();
        ASSERT_TRUE(f);
        EXPECT_EQ(f->type(), MsgType::Logout);
        msg::System bye;
        bye.event = SystemEvent::Bye;
        bye.text = "bye";
        p->send(msg::encode(bye, f->header.sequence));
        EXPECT_TRUE(p->waitEof());
    });
    Client c(fastOptions(l.port()));
    ASSERT_TRUE(c.registerAs(bob()));
    auto r = c.logout();
    EXPECT_TRUE(r) << r.error().message();
    EXPECT_EQ(c.state(), ConnectionState::Closed);
    EXPECT_EQ(c.fd(), -1);
    EXPECT_FALSE(c.hasQueuedEvents());  // our own BYE is an answer, not an event
    server.join();
}

TEST(ClientScripted, PingsTheServerAfterAHeartbeatOfSilence) {
    Listener l;
    std::thread server([&] {
        auto p = l.accept();
        ASSERT_TRUE(p);
        p->send(welcomeFrame(expectRegister(*p), uuidOf(1), false, 0, 65534, /*heartbeat=*/1));
        auto f = p->read(3s);
        ASSERT_TRUE(f) << "no keepalive PING";
        EXPECT_EQ(f->type(), MsgType::Ping);
        p->send(FrameWriter(MsgType::Pong, f->header.sequence).tail(f->span()).finish());
        p->send(deliveryFrame(1, "done"));
        p->waitEof();
    });
    Client c(fastOptions(l.port()));
    ASSERT_TRUE(c.registerAs(bob()));
    auto events = collect(c, 1, 5s);  // idle in nextEvent: the keepalive runs inside it
    ASSERT_EQ(events.size(), 1U);
    EXPECT_EQ(deliveryId(events[0]), 1U);
    EXPECT_EQ(c.state(), ConnectionState::Registered);
    c.close();
    server.join();
}

TEST(ClientScripted, RefusedConnectionSaysWhere) {
    std::uint16_t port = 0;
    {
        Listener l;
        port = l.port();
    }
    Client c(fastOptions(port));
    auto r = c.connect();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind, ErrorKind::Connect);
    EXPECT_EQ(r.error().text,
              "cannot connect to 127.0.0.1:" + std::to_string(port) + ": Connection refused");
    auto h = c.health();
    ASSERT_FALSE(h);
    EXPECT_EQ(h.error().kind, ErrorKind::Connect);
}

TEST(ClientScripted, SequenceNumbersStartAtOneAndGrow) {
    Listener l;
    std::vector<std::uint16_t> seqs;
    std::thread server([&] {
        auto p = l.accept();
        ASSERT_TRUE(p);
        for (int i = 0; i < 3; ++i) {
            auto f = p->read();
            ASSERT_TRUE(f);
            seqs.push_back(f->header.sequence);
            p->send(FrameWriter(MsgType::Pong, f->header.sequence).tail(f->span()).finish());
        }
        p->waitEof();
    });
    Client c(fastOptions(l.port()));
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(c.ping());
    }
    c.close();
    server.join();
    EXPECT_EQ(seqs, (std::vector<std::uint16_t>{1, 2, 3}));
}

TEST(ClientErrorTest, MessageFormats) {
    ClientError server{ErrorKind::Server, ErrorCode::UsernameTaken, "alice is online"};
    EXPECT_EQ(server.message(), "USERNAME_TAKEN (1): alice is online");
    ClientError unknown{ErrorKind::Server, static_cast<ErrorCode>(999), ""};
    EXPECT_EQ(unknown.message(), "UNKNOWN (999)");
    ClientError local{ErrorKind::Timeout, {}, "no answer"};
    EXPECT_TRUE(local.local());
    EXPECT_EQ(local.message(), "no answer");
    EXPECT_STREQ(errorKindName(ErrorKind::Disconnected), "disconnected");
    EXPECT_STREQ(errorKindName(ErrorKind::Overflow), "overflow");
}

TEST(ClientErrorTest, ResultHoldsValueOrError) {
    Result<int> ok(5);
    EXPECT_TRUE(ok);
    EXPECT_EQ(*ok, 5);
    Result<int> bad(ClientError{ErrorKind::Closed, {}, "closed"});
    EXPECT_FALSE(bad);
    EXPECT_EQ(bad.error().text, "closed");
    EXPECT_THROW((void)bad.value(), std::bad_variant_access);
    Result<void> fine;
    EXPECT_TRUE(fine);
    Result<void> failed(ClientError{});
    EXPECT_FALSE(failed);
}

}  // namespace
}  // namespace tundra::client
