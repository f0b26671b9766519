// SPDX-License-Identifier: Apache-2.0
// TcpServer over real loopback sockets, driven by a real EventLoop: accept, echo, partial writes
// and EPOLLOUT, output cap, close reasons, close-after-flush, bounded reads, left-over input,
// shared segments, deferred close, the spare-fd answer to EMFILE, and output coalesced into one
// writev per connection per loop iteration.
#include "net/tcp_server.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "unit/net/net_test_util.h"

namespace tundra::net {
namespace {

using test::bytesOf;
using test::LoopClient;
using test::pattern;
using test::runUntil;

// A small server-side send buffer: without it loopback autotuning lets the kernel take megabytes
// and the server's own queue (the code under test) would never be used.
TcpServerOptions backedUp() {
    TcpServerOptions o;
    o.send_buffer_bytes = 16 * 1024;
    return o;
}

struct Closed {
    ConnId id;
    CloseReason reason;
    std::vector<std::uint64_t> tags;
    std::size_t count_in_callback;
};

class TcpServerTest : public ::testing::Test {
protected:
    void start(TcpServerOptions options = {}) {
        server_ = std::make_unique<TcpServer>(loop_, std::move(options));
        server_->setConnectCallback([this](ConnId id, const ConnInfo& info) {
            connects_.push_back(id);
            peers_[id] = info.peer;
        });
        server_->setDataCallback([this](ConnId id, std::span<const std::uint8_t> bytes) {
            in_data_callback_ = true;
            std::size_t used = bytes.size();
            if (on_data_) {
                used = on_data_(id, bytes);
            }
            input_[id].append(reinterpret_cast<const char*>(bytes.data()), used);
            ++data_calls_[id];
            in_data_callback_ = false;
            return used;
        });
        server_->setCloseCallback(
            [this](ConnId id, CloseReason reason, std::vector<std::uint64_t> tags) {
                EXPECT_FALSE(in_data_callback_) << "close callback run inside a data callback";
                closes_.push_back(Closed{id, reason, std::move(tags), server_->connectionCount()});
                if (after_close_) {
                    after_close_(id);
                }
            });
        std::string error;
        ASSERT_TRUE(server_->listen(error)) << error;
        ASSERT_NE(server_->port(), 0);
    }

    // Connects a client and runs the loop until the server accepted it; id_ is its ConnId.
    std::unique_ptr<LoopClient> connect(int rcvbuf = 0, const std::string& host = "127.0.0.1") {
        const std::size_t before = connects_.size();
        auto c = std::make_unique<LoopClient>(loop_, host, server_->port(), rcvbuf);
        EXPECT_TRUE(c->connected()) << std::strerror(c->connectErrno());
        EXPECT_TRUE(runUntil(loop_, [&] { return connects_.size() > before; }));
        id_ = connects_.empty() ? 0 : connects_.back();
        return c;
    }

    // Connects `n` clients that read everything they get (appended to `clients`); their ids.
    std::vector<ConnId> connectReaders(int n, std::vector<std::unique_ptr<LoopClient>>& clients) {
        std::vector<ConnId> ids;
        for (int i = 0; i < n; ++i) {
            clients.push_back(connect());
            clients.back()->startReading();
            ids.push_back(id_);
        }
        return ids;
    }

    // What sendPieces() saw: the client (still connected), the bytes it got, what was queued
    // when the data callback returned, and the write syscalls the server made meanwhile.
    struct PiecesSent {
        std::unique_ptr<LoopClient> client;
        std::size_t bytes = 0;
        std::size_t queued_inside_callback = 0;
        std::uint64_t write_calls = 0;
        std::uint64_t gathered = 0;  // of write_calls, those that copied segments into one buffer
    };

    // Connects a reading client; when its first bytes arrive, the server sends `pieces`
    // consecutive `size`-byte slices of one pattern from inside its data callback. Runs until
    // the client has them all and checks they arrived intact and in order.
    PiecesSent sendPieces(std::size_t pieces, std::size_t size) {
        PiecesSent r;
        const std::string all = pattern(pieces * size);
        on_data_ = [&](ConnId id, std::span<const std::uint8_t> bytes) {
            for (std::size_t i = 0; i < pieces; ++i) {
                EXPECT_TRUE(server_->send(id, bytesOf(std::string_view(all).substr(i * size, size)),
                                          i + 1));
            }
            r.queued_inside_callback = server_->queuedBytes(id);
            return bytes.size();
        };
        r.client = connect();
        r.client->startReading();
        const std::uint64_t writes_before = server_->writeCalls();
        const std::uint64_t gathered_before = server_->gatheredWrites();
        r.client->sendAll("go");
        EXPECT_TRUE(runUntil(loop_, [&] { return r.client->received().size() == all.size(); }));
        EXPECT_TRUE(r.client->received() == all) << "bytes lost, duplicated or reordered";
        r.bytes = r.client->received().size();
        r.write_calls = server_->writeCalls() - writes_before;
        r.gathered = server_->gatheredWrites() - gathered_before;
        on_data_ = nullptr;
        return r;
    }

    // Runs the loop for `ms` (a few iterations when nothing happens).
    int idle(std::int64_t ms) {
        bool done = false;
        loop_.addTimer(ms, [&] { done = true; });
        int iterations = 0;
        while (!done) {
            loop_.runOnce();
            ++iterations;
        }
        return iterations;
    }

    EventLoop loop_;
    std::unique_ptr<TcpServer> server_;
    ConnId id_ = 0;
    std::vector<ConnId> connects_;
    std::map<ConnId, std::string> peers_;
    std::map<ConnId, std::string> input_;  // consumed bytes, per connection
    std::map<ConnId, int> data_calls_;
    std::function<std::size_t(ConnId, std::span<const std::uint8_t>)> on_data_;
    bool in_data_callback_ = false;
    std::vector<Closed> closes_;
    std::function<void(ConnId)> after_close_;  // runs inside the close callback
};

TEST_F(TcpServerTest, EchoOverIPv4) {
    start();
    on_data_ = [this](ConnId id, std::span<const std::uint8_t> bytes) {
        EXPECT_TRUE(server_->send(id, SharedBytes::copyOf(bytes)));
        return bytes.size();
    };
    auto c = connect();
    EXPECT_EQ(peers_[id_].rfind("127.0.0.1:", 0), 0U) << peers_[id_];
    EXPECT_EQ(server_->connectionCount(), 1U);
    c->startReading();
    c->sendAll("hello, tundra");
    ASSERT_TRUE(runUntil(loop_, [&] { return c->received() == "hello, tundra"; }));
    EXPECT_EQ(server_->bytesIn(), 13U);
    EXPECT_EQ(server_->bytesOut(), 13U);
    EXPECT_LT(server_->heapBytes(id_), 300U) << "an idle connection must hold no buffers";
}

// Ids are never reused: a connection that takes over a closed one's table slot gets a new
// id, and the old id reaches nothing.
TEST_F(TcpServerTest, AClosedConnectionsIdReachesNothingEvenWhenItsSlotIsReused) {
    start();
    auto a = connect();
    const ConnId old_id = id_;
    server_->close(old_id);
    ASSERT_TRUE(runUntil(loop_, [&] { return !closes_.empty(); }));
    auto b = connect();
    const ConnId new_id = id_;
    EXPECT_NE(new_id, old_id);
    b->startReading();
    EXPECT_FALSE(server_->send(old_id, bytesOf("xxx")));
    EXPECT_EQ(server_->queuedBytes(old_id), 0U);
    EXPECT_EQ(server_->heapBytes(old_id), 0U);
    server_->close(old_id);  // no effect on b
    EXPECT_TRUE(server_->send(new_id, bytesOf("yy")));
    ASSERT_TRUE(runUntil(loop_, [&] { return b->received() == "yy"; }));
    EXPECT_EQ(closes_.size(), 1U);
    EXPECT_EQ(server_->connectionCount(), 1U);
}

// The owner's backpressure (a full storage queue): nothing is read from any connection, new
// ones included, while output still flows; releasing delivers what waited.
TEST_F(TcpServerTest, HeldReadsDeliverNothingUntilReleasedWhileOutputFlows) {
    start();
    auto a = connect();
    const ConnId id_a = id_;
    server_->holdReads(true);
    EXPECT_TRUE(server_->readsHeld());
    auto b = connect();
    const ConnId id_b = id_;
    a->startReading();
    a->sendAll("from a");
    b->sendAll("from b");
    EXPECT_TRUE(server_->send(id_a, bytesOf("xxx")));
    ASSERT_TRUE(runUntil(loop_, [&] { return a->received() == "xxx"; }));
    idle(100);
    EXPECT_EQ(input_[id_a], "");
    EXPECT_EQ(input_[id_b], "");
    server_->holdReads(false);
    EXPECT_TRUE(
        runUntil(loop_, [&] { return input_[id_a] == "from a" && input_[id_b] == "from b"; }));
}

TEST_F(TcpServerTest, EchoOverIPv6Loopback) {
    TcpServerOptions o;
    o.bind = "::1";
    auto probe = std::make_unique<TcpServer>(loop_, o);
    std::string error;
    if (!probe->listen(error)) {
        GTEST_SKIP() << "no IPv6 loopback here: " << error;
    }
    probe.reset();
    start(o);
    on_data_ = [this](ConnId id, std::span<const std::uint8_t> bytes) {
        server_->send(id, SharedBytes::copyOf(bytes));
        return bytes.size();
    };
    auto c = connect(0, "::1");
    EXPECT_EQ(peers_[id_].rfind("[::1]:", 0), 0U) << peers_[id_];
    c->startReading();
    c->sendAll("over v6");
    ASSERT_TRUE(runUntil(loop_, [&] { return c->received() == "over v6"; }));
}

TEST_F(TcpServerTest, ListenErrorNamesTheAddressAndTheCause) {
    start();
    TcpServerOptions o;
    o.port = server_->port();
    TcpServer second(loop_, o);
    std::string error;
    EXPECT_FALSE(second.listen(error));
    EXPECT_EQ(error, "bind 127.0.0.1:" + std::to_string(o.port) + ": Address already in use");

    TcpServerOptions bad;
    bad.bind = "localhost";
    TcpServer third(loop_, bad);
    EXPECT_FALSE(third.listen(error));
    EXPECT_NE(error.find("invalid bind address 'localhost'"), std::string::npos) << error;
}

TEST_F(TcpServerTest, StopAcceptingRefusesNewPeersAndKeepsExistingOnes) {
    start();
    on_data_ = [this](ConnId id, std::span<const std::uint8_t> bytes) {
        server_->send(id, SharedBytes::copyOf(bytes));
        return bytes.size();
    };
    auto c = connect();
    server_->stopAccepting();
    LoopClient late(loop_, "127.0.0.1", server_->port());
    EXPECT_FALSE(late.connected());
    EXPECT_EQ(late.connectErrno(), ECONNREFUSED);
    c->startReading();
    c->sendAll("still here");
    ASSERT_TRUE(runUntil(loop_, [&] { return c->received() == "still here"; }));
    EXPECT_EQ(connects_.size(), 1U);
}

TEST_F(TcpServerTest, SendToUnknownConnectionReturnsFalse) {
    start();
    EXPECT_FALSE(server_->send(42, bytesOf("x")));
    EXPECT_EQ(server_->queuedBytes(42), 0U);
    EXPECT_EQ(server_->heapBytes(42), 0U);
    server_->close(42);            // no-op
    server_->closeAfterFlush(42);  // no-op
    EXPECT_TRUE(closes_.empty());
}

TEST_F(TcpServerTest, PartialWritesQueueThenDrainInOrderOnEpollout) {
    start(backedUp());
    auto c = connect(4096);  // small receive window, and the client does not read yet
    const std::size_t idle_heap = server_->heapBytes(id_);
    constexpr std::size_t kSegment = 8192;
    constexpr std::size_t kSegments = 200;  // more than one 64-iovec writev
    const std::string all = pattern(kSegment * kSegments);
    for (std::size_t i = 0; i < kSegments; ++i) {
        ASSERT_TRUE(server_->send(
            id_, bytesOf(std::string_view(all).substr(i * kSegment, kSegment)), i + 1));
    }
    ASSERT_GT(server_->queuedBytes(id_), 0U) << "precondition: the kernel buffer filled up";
    EXPECT_GT(server_->heapBytes(id_), idle_heap);

    c->startReading();
    ASSERT_TRUE(runUntil(loop_, [&] { return c->received().size() == all.size(); }));
    EXPECT_TRUE(c->received() == all) << "bytes lost, duplicated or reordered";
    EXPECT_EQ(server_->queuedBytes(id_), 0U);
    EXPECT_EQ(server_->bytesOut(), all.size());
    EXPECT_EQ(server_->heapBytes(id_), idle_heap) << "drained output storage must be released";
    EXPECT_TRUE(closes_.empty());
    // EPOLLOUT is off again: with it stuck on, a writable socket would wake every iteration.
    EXPECT_LT(idle(30), 10);
}

TEST_F(TcpServerTest, SlowConsumerIsClosedAndUnwrittenTagsAreReportedInOrder) {
    TcpServerOptions o = backedUp();
    o.output_cap = 64 * 1024;
    start(o);
    auto c = connect(4096);
    const auto segment = bytesOf(pattern(16 * 1024));
    std::vector<std::uint64_t> accepted_tags;
    bool refused = false;
    for (std::uint64_t i = 1; i <= 200; ++i) {
        const std::uint64_t tag = (i % 3 == 0) ? 0 : i;  // some untagged segments
        if (!server_->send(id_, segment, tag)) {
            refused = true;
            break;
        }
        if (tag != 0) {
            accepted_tags.push_back(tag);
        }
    }
    ASSERT_TRUE(refused) << "sends past the cap must be refused once the connection is closing";
    EXPECT_TRUE(closes_.empty()) << "the close callback is deferred, never run inside send()";
    ASSERT_TRUE(runUntil(loop_, [&] { return !closes_.empty(); }));
    ASSERT_EQ(closes_.size(), 1U);
    EXPECT_EQ(closes_[0].id, id_);
    EXPECT_EQ(closes_[0].reason, CloseReason::SlowConsumer);
    const auto& tags = closes_[0].tags;
    ASSERT_FALSE(tags.empty());
    ASSERT_LE(tags.size(), accepted_tags.size());
    // The unwritten ones are exactly the newest accepted tags, oldest first.
    const std::vector<std::uint64_t> suffix(accepted_tags.end() - static_cast<long>(tags.size()),
                                            accepted_tags.end());
    EXPECT_EQ(tags, suffix);
    EXPECT_EQ(server_->connectionCount(), 0U);
    EXPECT_EQ(segment.use_count(), 1) << "queued references must be released at reap";
    idle(10);
    EXPECT_EQ(closes_.size(), 1U) << "exactly one close callback per connection";
}

// A queue of many tiny segments is charged for their memory, not only their bytes.
TEST_F(TcpServerTest, OutputCapChargesThePerSegmentOverhead) {
    TcpServerOptions o = backedUp();
    o.output_cap = 256 * 1024;
    start(o);
    auto c = connect(4096);
    const auto pong = bytesOf(pattern(15));
    std::size_t sent = 0;
    // send() offers the queue to the kernel before judging the cap, so the kernel's share is
    // taken out first.
    while (sent < 100000 && server_->send(id_, pong)) {
        ++sent;
    }
    ASSERT_TRUE(runUntil(loop_, [&] { return !closes_.empty(); }));
    EXPECT_EQ(closes_[0].reason, CloseReason::SlowConsumer);
    // 15 bytes counted per frame would have allowed over 17,000 frames past the kernel's share;
    // 15 + kSegmentOverhead allows about 3,700 (plus the kernel's share, about 2,000).
    EXPECT_LT(sent, 8000U) << sent << " frames queued";
    EXPECT_LT(sent * (15 + OutputQueue::kSegmentOverhead), 2 * o.output_cap) << sent;
    EXPECT_EQ(server_->queuedTotal(), 0U);
}

// Over the server-wide soft cap the connection with the largest queue is no longer read until
// that queue has drained; then reading resumes and nothing it sent is lost.
TEST_F(TcpServerTest, OverTheTotalSoftCapTheLargestQueueStopsBeingReadUntilDrained) {
    TcpServerOptions o = backedUp();
    o.output_total_soft = 512 * 1024;
    o.output_total_hard = 0;
    start(o);
    auto quiet = connect();
    const ConnId quiet_id = id_;
    auto c = connect(4096);
    const ConnId heavy = id_;
    const auto chunk = bytesOf(pattern(16 * 1024));
    on_data_ = [&](ConnId id, std::span<const std::uint8_t> bytes) {
        if (id == heavy && bytes.size() > 0 && bytes[0] == 'x') {
            for (int i = 0; i < 64; ++i) {  // 1 MiB of answers to a peer that does not read
                server_->send(id, chunk);
            }
        }
        return bytes.size();
    };
    c->sendAll("x");
    ASSERT_TRUE(runUntil(loop_, [&] { return server_->outputPaused() == 1; }));
    EXPECT_EQ(server_->outputPauses(), 1U);
    c->sendAll("y");
    quiet->sendAll("q");
    ASSERT_TRUE(runUntil(loop_, [&] { return input_[quiet_id] == "q"; }));
    idle(20);
    EXPECT_EQ(input_[heavy], "x") << "a paused connection is not read";
    c->startReading();
    ASSERT_TRUE(runUntil(loop_, [&] { return input_[heavy] == "xy"; }));
    EXPECT_EQ(server_->outputPaused(), 0U);
    EXPECT_EQ(c->received().size(), 64U * 16 * 1024);
    EXPECT_TRUE(closes_.empty());
}

// Over the server-wide hard cap the largest queues are closed as slow consumers; a smaller
// one stays.
TEST_F(TcpServerTest, OverTheTotalHardCapTheLargestQueueIsCut) {
    TcpServerOptions o = backedUp();
    o.output_total_soft = 0;
    o.output_total_hard = 2560 * 1024;
    start(o);
    auto a = connect(4096);
    const ConnId small = id_;
    auto b = connect(4096);
    const ConnId large = id_;
    const auto chunk = bytesOf(pattern(16 * 1024));
    for (int i = 0; i < 64; ++i) {  // 1 MiB
        ASSERT_TRUE(server_->send(small, chunk));
    }
    for (int i = 0; i < 128 && server_->send(large, chunk); ++i) {  // up to 2 MiB
    }
    ASSERT_TRUE(runUntil(loop_, [&] { return !closes_.empty(); }));
    ASSERT_EQ(closes_.size(), 1U);
    EXPECT_EQ(closes_[0].id, large);
    EXPECT_EQ(closes_[0].reason, CloseReason::SlowConsumer);
    EXPECT_EQ(server_->outputCuts(), 1U);
    EXPECT_GT(server_->queuedBytes(small), 0U);
    EXPECT_LE(server_->queuedTotal(), o.output_total_hard);
}

// A peer that half-closes after pipelining still gets every answer: EOF flushes, then closes.
TEST_F(TcpServerTest, HalfClosedPeerGetsEverythingQueuedBeforeTheClose) {
    start(backedUp());
    auto c = connect(4096);
    const auto answer = bytesOf(pattern(15));
    constexpr std::size_t kAnswers = 5000;
    on_data_ = [&](ConnId id, std::span<const std::uint8_t> bytes) {
        for (std::size_t i = 0; i < bytes.size(); ++i) {
            server_->send(id, answer);
        }
        return bytes.size();
    };
    c->sendAll(std::string(kAnswers, 'p'));
    c->shutdownWrite();
    ASSERT_TRUE(runUntil(loop_, [&] { return input_[id_].size() == kAnswers; }));
    c->startReading();
    ASSERT_TRUE(runUntil(loop_, [&] { return c->eof() && !closes_.empty(); }));
    EXPECT_EQ(c->received().size(), kAnswers * 15);
    EXPECT_EQ(closes_[0].reason, CloseReason::PeerClosed);
}

TEST_F(TcpServerTest, PeerCloseIsReportedAsPeerClosed) {
    start();
    auto c = connect();
    c->sendAll("bye");
    c->closeNow();
    ASSERT_TRUE(runUntil(loop_, [&] { return !closes_.empty(); }));
    EXPECT_EQ(closes_[0].reason, CloseReason::PeerClosed);
    EXPECT_TRUE(closes_[0].tags.empty());
    EXPECT_EQ(input_[id_], "bye") << "bytes before the EOF are still delivered";
    EXPECT_EQ(server_->connectionCount(), 0U);
}

TEST_F(TcpServerTest, ResetIsReportedAsError) {
    start();
    auto c = connect();
    c->reset();
    ASSERT_TRUE(runUntil(loop_, [&] { return !closes_.empty(); }));
    EXPECT_EQ(closes_[0].reason, CloseReason::Error);
}

TEST_F(TcpServerTest, ConnectionCountExcludesTheConnectionInsideItsCloseCallback) {
    start();
    auto a = connect();
    auto b = connect();
    EXPECT_EQ(server_->connectionCount(), 2U);
    a->closeNow();
    b->closeNow();
    ASSERT_TRUE(runUntil(loop_, [&] { return closes_.size() == 2; }));
    std::vector<std::size_t> counts{closes_[0].count_in_callback, closes_[1].count_in_callback};
    EXPECT_EQ(counts, (std::vector<std::size_t>{1, 0}));
}

TEST_F(TcpServerTest, CloseAfterFlushDeliversEveryByteThenCloses) {
    start(backedUp());
    auto c = connect(4096);
    const std::string all = pattern(512 * 1024);
    for (std::size_t i = 0; i < 32; ++i) {
        server_->send(id_, bytesOf(std::string_view(all).substr(i * 16384, 16384)), i + 1);
    }
    ASSERT_GT(server_->queuedBytes(id_), 0U) << "precondition: output is backed up";
    server_->closeAfterFlush(id_);
    EXPECT_FALSE(server_->send(id_, bytesOf("late"))) << "closing connections refuse output";
    EXPECT_EQ(server_->connectionCount(), 1U);
    c->startReading();
    ASSERT_TRUE(runUntil(loop_, [&] { return c->eof() && !closes_.empty(); }));
    EXPECT_TRUE(c->received() == all);
    EXPECT_EQ(closes_[0].reason, CloseReason::Local);
    EXPECT_TRUE(closes_[0].tags.empty());
}

TEST_F(TcpServerTest, CloseAfterFlushWithNothingQueuedClosesAtOnce) {
    start();
    auto c = connect();
    c->startReading();
    server_->closeAfterFlush(id_);
    ASSERT_TRUE(runUntil(loop_, [&] { return c->eof() && !closes_.empty(); }));
    EXPECT_EQ(closes_[0].reason, CloseReason::Local);
}

TEST_F(TcpServerTest, CloseAfterFlushStopsReadingAndTimesOut) {
    TcpServerOptions o = backedUp();
    o.flush_timeout_ms = 50;
    start(o);
    auto c = connect(4096);  // never reads
    const auto segment = bytesOf(pattern(64 * 1024));
    for (std::uint64_t tag = 1; tag <= 16; ++tag) {
        server_->send(id_, segment, tag);
    }
    ASSERT_GT(server_->queuedBytes(id_), 0U);
    server_->closeAfterFlush(id_);
    c->sendAll("ignored");
    ASSERT_TRUE(runUntil(loop_, [&] { return !closes_.empty(); }));
    EXPECT_EQ(closes_[0].reason, CloseReason::FlushTimeout);
    ASSERT_FALSE(closes_[0].tags.empty());
    EXPECT_EQ(closes_[0].tags.back(), 16U);
    EXPECT_EQ(data_calls_[id_], 0) << "no input is delivered after closeAfterFlush";
}

TEST_F(TcpServerTest, BoundedReadsDoNotLetOneFastPeerStarveAnother) {
    TcpServerOptions o;
    o.max_reads_per_wakeup = 1;
    start(o);
    auto fast = connect();
    const ConnId fast_id = id_;
    auto slow = connect();
    const ConnId slow_id = id_;
    int sndbuf = 1 << 20;
    ::setsockopt(fast->fd(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    const std::string bulk = pattern(1 << 20);
    const std::size_t sent = fast->sendSome(bulk);
    ASSERT_GT(sent, 3U * 65536U) << "precondition: several reads' worth is in flight";
    slow->sendAll("hi");
    ASSERT_TRUE(runUntil(loop_, [&] { return input_[slow_id] == "hi"; }));
    EXPECT_LT(input_[fast_id].size(), sent) << "the slow peer waited for the fast one";
    ASSERT_TRUE(runUntil(loop_, [&] { return input_[fast_id].size() == sent; }));
    EXPECT_TRUE(input_[fast_id] == bulk.substr(0, sent));
}

TEST_F(TcpServerTest, LeftoverPartialInputIsPresentedAgainWithTheNextBytes) {
    start();
    std::vector<std::string> presented;
    on_data_ = [&](ConnId, std::span<const std::uint8_t> bytes) {
        std::string s(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        presented.push_back(s);
        const auto nl = s.rfind('\n');
        return nl == std::string::npos ? std::size_t{0} : nl + 1;  // whole lines only
    };
    auto c = connect();
    const std::size_t idle_heap = server_->heapBytes(id_);
    c->sendAll("abc");
    ASSERT_TRUE(runUntil(loop_, [&] { return presented.size() == 1; }));
    EXPECT_EQ(presented[0], "abc");
    EXPECT_GT(server_->heapBytes(id_), idle_heap) << "the partial line is kept";
    c->sendAll("def\nxy");
    ASSERT_TRUE(runUntil(loop_, [&] { return presented.size() == 2; }));
    EXPECT_EQ(presented[1], "abcdef\nxy");
    c->sendAll("z\n");
    ASSERT_TRUE(runUntil(loop_, [&] { return presented.size() == 3; }));
    EXPECT_EQ(presented[2], "xyz\n");
    EXPECT_EQ(input_[id_], "abcdef\nxyz\n");
    EXPECT_EQ(server_->heapBytes(id_), idle_heap) << "consumed input storage must be released";
    EXPECT_LT(server_->heapBytes(id_), 300U);
}

TEST_F(TcpServerTest, SharedSegmentIsQueuedToTwoConnectionsWithoutCopying) {
    start(backedUp());
    auto a = connect(4096);
    const ConnId a_id = id_;
    auto b = connect(4096);
    const ConnId b_id = id_;
    const auto frame = bytesOf(pattern(1 << 20));
    ASSERT_TRUE(server_->send(a_id, frame, 1));
    ASSERT_TRUE(server_->send(b_id, frame, 1));
    ASSERT_GT(server_->queuedBytes(a_id), 0U);
    ASSERT_GT(server_->queuedBytes(b_id), 0U);
    EXPECT_EQ(frame.use_count(), 3) << "both queues hold the same buffer";
    a->startReading();
    b->startReading();
    ASSERT_TRUE(runUntil(loop_, [&] {
        return a->received().size() == frame->size() && b->received().size() == frame->size();
    }));
    const std::string expect(frame->begin(), frame->end());
    EXPECT_TRUE(a->received() == expect);
    EXPECT_TRUE(b->received() == expect);
    EXPECT_EQ(frame.use_count(), 1) << "written segments are released";
}

TEST_F(TcpServerTest, CloseFromInsideTheDataCallbackIsSafeAndReportedOnce) {
    start();
    on_data_ = [this](ConnId id, std::span<const std::uint8_t> bytes) {
        server_->close(id);
        server_->close(id);            // again: still one close
        server_->closeAfterFlush(id);  // no-op on a closed connection
        EXPECT_FALSE(server_->send(id, bytesOf("x")));
        EXPECT_TRUE(closes_.empty()) << "never destroyed inside its own callback";
        EXPECT_EQ(server_->connectionCount(), 1U);
        return bytes.size();
    };
    auto c = connect();
    c->startReading();
    c->sendAll("first");
    ASSERT_TRUE(runUntil(loop_, [&] { return !closes_.empty(); }));
    EXPECT_EQ(closes_[0].reason, CloseReason::Local);
    EXPECT_EQ(server_->connectionCount(), 0U);
    ASSERT_TRUE(runUntil(loop_, [&] { return c->eof() || c->readErrno() != 0; }));
    idle(10);
    EXPECT_EQ(closes_.size(), 1U);
    EXPECT_EQ(data_calls_[id_], 1);
}

TEST_F(TcpServerTest, CloseOfAnotherConnectionFromADataCallbackSkipsItsPendingEvents) {
    start();
    auto a = connect();
    const ConnId a_id = id_;
    auto b = connect();
    const ConnId b_id = id_;
    // Both peers have input in the same epoll batch; whichever runs first closes the other.
    on_data_ = [&](ConnId id, std::span<const std::uint8_t> bytes) {
        server_->close(id == a_id ? b_id : a_id);
        return bytes.size();
    };
    a->sendAll("a");
    b->sendAll("b");
    ASSERT_TRUE(runUntil(loop_, [&] { return !closes_.empty(); }));
    idle(10);
    ASSERT_EQ(closes_.size(), 1U);
    EXPECT_EQ(data_calls_[a_id] + data_calls_[b_id], 1) << "the closed one got no data";
    EXPECT_EQ(closes_[0].reason, CloseReason::Local);
}

TEST_F(TcpServerTest, CloseDiscardsQueuedOutputAndReportsItsTags) {
    start(backedUp());
    auto c = connect(4096);
    const auto segment = bytesOf(pattern(64 * 1024));
    for (std::uint64_t tag = 1; tag <= 8; ++tag) {
        server_->send(id_, segment, tag);
    }
    ASSERT_GT(server_->queuedBytes(id_), 0U);
    server_->close(id_);
    ASSERT_TRUE(runUntil(loop_, [&] { return !closes_.empty(); }));
    EXPECT_EQ(closes_[0].reason, CloseReason::Local);
    ASSERT_FALSE(closes_[0].tags.empty());
    EXPECT_EQ(closes_[0].tags.back(), 8U);
}

// ---------------------------------------------------------------------------------------------
// Output coalescing: send() queues and marks; the connection is flushed once at the end of the
// loop iteration, with one writev of everything queued in it.

TEST_F(TcpServerTest, SendsOfOneIterationLeaveInOneWritevIntactAndInOrder) {
    start();
    const PiecesSent sent = sendPieces(20, 100);
    ASSERT_EQ(sent.bytes, 2000U);
    EXPECT_EQ(sent.queued_inside_callback, 2000U) << "send() must queue, not write";
    EXPECT_EQ(sent.write_calls, 1U) << "20 sends, one writev";
    EXPECT_EQ(server_->bytesOut(), 2000U);
    EXPECT_EQ(server_->queuedBytes(id_), 0U);
    EXPECT_TRUE(closes_.empty());
    EXPECT_LT(idle(30), 10) << "no EPOLLOUT left on after a complete write";
}

// A fan-out iteration queues hundreds of small frames per connection: they leave in one
// sendmsg of up to IOV_MAX segments, not one call per few dozen (every call costs a TCP push).
TEST_F(TcpServerTest, HundredsOfSmallFramesOfOneIterationLeaveInOneWritev) {
    start();
    const PiecesSent sent = sendPieces(800, 10);
    ASSERT_EQ(sent.bytes, 8000U);
    EXPECT_EQ(sent.write_calls, 1U) << "800 frames, one sendmsg";
}

// Small segments are copied into one buffer and leave as one iovec (the kernel's cost per iovec
// is larger than the copy); output too big for the staging buffer is offered as it is.
TEST_F(TcpServerTest, SmallSegmentsOfOneIterationAreGatheredIntoOneBuffer) {
    start();
    const PiecesSent small = sendPieces(100, 120);  // 12,000 bytes: fits the 16 KiB buffer
    EXPECT_EQ(small.write_calls, 1U);
    EXPECT_EQ(small.gathered, 1U);
    const PiecesSent big = sendPieces(20, 1000);  // 20,000 bytes
    EXPECT_EQ(big.write_calls, 1U);
    EXPECT_EQ(big.gathered, 0U) << "too big to gather: the segments go out as they are";
    const PiecesSent one = sendPieces(1, 100);
    EXPECT_EQ(one.gathered, 0U) << "a single segment is never copied";
}

// A gathered write the kernel takes only part of: the rest stays queued, and what follows
// (gathered again from the middle of a segment) continues exactly where it stopped.
TEST_F(TcpServerTest, PartlyWrittenGatheredOutputContinuesWhereTheKernelStopped) {
    start(backedUp());
    auto c = connect(4096);  // the client does not read yet
    const std::uint64_t gathered_before = server_->gatheredWrites();
    constexpr std::size_t kPiece = 97;  // odd, so the cut falls inside a segment
    constexpr std::size_t kPieces = 2000;
    const std::string all = pattern(kPiece * kPieces);
    for (std::size_t i = 0; i < kPieces; ++i) {
        ASSERT_TRUE(
            server_->send(id_, bytesOf(std::string_view(all).substr(i * kPiece, kPiece)), i + 1));
        if (i % 100 == 99) {
            idle(0);  // one flush per 100 pieces (9,700 bytes: gathered)
        }
    }
    ASSERT_GT(server_->queuedBytes(id_), 0U) << "precondition: the kernel buffer filled up";
    c->startReading();
    ASSERT_TRUE(runUntil(loop_, [&] { return c->received().size() == all.size(); }));
    EXPECT_TRUE(c->received() == all) << "bytes lost, duplicated or reordered";
    EXPECT_GT(server_->gatheredWrites() - gathered_before, 1U);
    EXPECT_EQ(server_->queuedBytes(id_), 0U);
    EXPECT_TRUE(closes_.empty());
}

// sendNow(): a connection with nothing queued is written to at once, so a burst of them (a
// heartbeat tick pinging every idle connection) takes no queue storage; send() holds each
// frame in a queue until the iteration's flush, and the drained queues' storage stays pooled.
TEST_F(TcpServerTest, SendNowWritesAtOnceAndTakesNoQueueStorage) {
    start();
    std::vector<std::unique_ptr<LoopClient>> clients;
    const std::vector<ConnId> ids = connectReaders(20, clients);
    const auto ping = bytesOf("ping!");
    const std::size_t spares_before = server_->spareQueueStorage();
    const std::uint64_t writes_before = server_->writeCalls();
    for (ConnId id : ids) {
        ASSERT_TRUE(server_->sendNow(id, ping));
        EXPECT_EQ(server_->queuedBytes(id), 0U) << "written inside sendNow()";
    }
    EXPECT_EQ(server_->writeCalls() - writes_before, ids.size());
    EXPECT_EQ(ping.use_count(), 1) << "no queue holds the frame";
    const auto allGot = [&](std::size_t n) {
        return std::all_of(clients.begin(), clients.end(),
                           [n](const auto& c) { return c->received().size() == n; });
    };
    ASSERT_TRUE(runUntil(loop_, [&] { return allGot(5); }));
    EXPECT_EQ(server_->spareQueueStorage(), spares_before) << "no queue storage was taken";

    // The same with send(): queued until the flush, whose drained queues go to the pool.
    for (ConnId id : ids) {
        ASSERT_TRUE(server_->send(id, ping));
        EXPECT_EQ(server_->queuedBytes(id), 5U);
    }
    ASSERT_TRUE(runUntil(loop_, [&] { return allGot(10); }));
    EXPECT_EQ(server_->spareQueueStorage(), spares_before + ids.size());
    for (const auto& c : clients) {
        EXPECT_EQ(c->received(), "ping!ping!");
    }
    EXPECT_FALSE(server_->sendNow(id_ + 1000, ping)) << "unknown connection";
    EXPECT_TRUE(closes_.empty());
}

// sendNow() behind output already queued keeps the order: it joins the queue and the flush.
TEST_F(TcpServerTest, SendNowQueuesBehindOutputAlreadyQueued) {
    start();
    auto c = connect();
    c->startReading();
    const std::uint64_t writes_before = server_->writeCalls();
    ASSERT_TRUE(server_->send(id_, bytesOf("first;")));
    ASSERT_TRUE(server_->sendNow(id_, bytesOf("second;")));
    EXPECT_EQ(server_->queuedBytes(id_), 13U) << "queued behind the first, not written ahead";
    EXPECT_EQ(server_->writeCalls(), writes_before);
    ASSERT_TRUE(runUntil(loop_, [&] { return c->received().size() == 13; }));
    EXPECT_EQ(c->received(), "first;second;");
    EXPECT_EQ(server_->writeCalls() - writes_before, 1U) << "one flush for both";
}

// What the kernel does not take from a sendNow() is queued from where it stopped, and what is
// sent next goes behind it; a close before it is written reports its tag.
TEST_F(TcpServerTest, SendNowQueuesWhatTheKernelDoesNotTake) {
    start(backedUp());
    auto c = connect(4096);  // the client does not read yet
    const std::string big = pattern(1 << 20);
    ASSERT_TRUE(server_->sendNow(id_, bytesOf(big), 7));
    const std::size_t left = server_->queuedBytes(id_);
    ASSERT_GT(left, 0U) << "precondition: the kernel could not take a MiB";
    ASSERT_LT(left, big.size()) << "the kernel took the start at once";
    ASSERT_TRUE(server_->sendNow(id_, bytesOf("tail"), 8));
    EXPECT_EQ(server_->queuedBytes(id_), left + 4) << "behind the rest, not written ahead";
    c->startReading();
    ASSERT_TRUE(runUntil(loop_, [&] { return c->received().size() == big.size() + 4; }));
    EXPECT_TRUE(c->received() == big + "tail") << "bytes lost, duplicated or reordered";
    EXPECT_EQ(server_->queuedBytes(id_), 0U);

    // Not read again: the queued rest of a sendNow() is reported when the connection closes.
    c->stopReading();
    ASSERT_TRUE(server_->sendNow(id_, bytesOf(big), 9));
    ASSERT_GT(server_->queuedBytes(id_), 0U);
    server_->close(id_);
    ASSERT_TRUE(runUntil(loop_, [&] { return !closes_.empty(); }));
    EXPECT_EQ(closes_[0].tags, std::vector<std::uint64_t>{9});
}

TEST_F(TcpServerTest, FanOutWithinOneIterationIsOneWritevPerRecipient) {
    start();
    std::vector<std::unique_ptr<LoopClient>> clients;
    const std::vector<ConnId> ids = connectReaders(3, clients);
    // Ten broadcasts, each one shared frame queued to every recipient, as the core does.
    std::string expect;
    const std::uint64_t writes_before = server_->writeCalls();
    for (std::uint64_t m = 1; m <= 10; ++m) {
        const std::string text = "message " + std::to_string(m) + "\n";
        const auto frame = bytesOf(text);
        expect += text;
        for (ConnId id : ids) {
            ASSERT_TRUE(server_->send(id, frame, m));
        }
        EXPECT_EQ(frame.use_count(), 4) << "queued by reference, not copied";
    }
    ASSERT_TRUE(runUntil(loop_, [&] {
        for (const auto& c : clients) {
            if (c->received().size() < expect.size()) {
                return false;
            }
        }
        return true;
    }));
    for (const auto& c : clients) {
        EXPECT_EQ(c->received(), expect);
    }
    EXPECT_EQ(server_->writeCalls() - writes_before, 3U) << "30 deliveries, 3 writevs";
    EXPECT_EQ(server_->bytesOut(), 3 * expect.size());
}

TEST_F(TcpServerTest, SendThenCloseInTheSameIterationOffersTheOutputOnceThenCloses) {
    start();
    on_data_ = [this](ConnId id, std::span<const std::uint8_t> bytes) {
        EXPECT_TRUE(server_->send(id, bytesOf("last words"), 7));
        server_->close(id);
        return bytes.size();
    };
    auto c = connect();
    c->startReading();
    const std::uint64_t writes_before = server_->writeCalls();
    c->sendAll("x");
    ASSERT_TRUE(runUntil(loop_, [&] { return !closes_.empty(); }));
    ASSERT_TRUE(runUntil(loop_, [&] { return c->eof() || c->readErrno() != 0; }));
    EXPECT_EQ(c->received(), "last words") << "as the direct write before batching did";
    EXPECT_EQ(closes_[0].reason, CloseReason::Local);
    EXPECT_TRUE(closes_[0].tags.empty()) << "the segment was written";
    EXPECT_EQ(server_->writeCalls() - writes_before, 1U) << "the flush must skip it afterwards";
    EXPECT_EQ(server_->connectionCount(), 0U);
    idle(10);
    EXPECT_EQ(closes_.size(), 1U);
}

TEST_F(TcpServerTest, MarkedConnectionReapedBeforeTheFlushIsNotTouched) {
    start();
    auto a = connect();
    const ConnId a_id = id_;
    auto b = connect();
    const ConnId b_id = id_;
    a->startReading();
    // Order of the deferred work: b's reap first, then the flush, so when a is closed after
    // being marked, the reap destroys it before the flush runs over its id.
    server_->close(b_id);
    ASSERT_TRUE(server_->send(a_id, bytesOf("to a"), 3));
    server_->close(a_id);
    EXPECT_FALSE(server_->send(a_id, bytesOf("refused")));
    const std::uint64_t writes_before = server_->writeCalls();
    loop_.runOnce();  // deferred work pending: epoll_wait does not block
    EXPECT_EQ(server_->writeCalls(), writes_before);
    ASSERT_EQ(closes_.size(), 2U);
    EXPECT_EQ(server_->connectionCount(), 0U);
    ASSERT_TRUE(runUntil(loop_, [&] { return a->eof() || a->readErrno() != 0; }));
    EXPECT_EQ(a->received(), "to a") << "close() offered the marked output once";
}

TEST_F(TcpServerTest, SendThenCloseAfterFlushInTheSameIterationDeliversAllThenCloses) {
    start();
    const std::string all = pattern(5000);
    on_data_ = [&](ConnId id, std::span<const std::uint8_t> bytes) {
        for (std::size_t i = 0; i < 10; ++i) {
            EXPECT_TRUE(
                server_->send(id, bytesOf(std::string_view(all).substr(i * 500, 500)), i + 1));
        }
        server_->closeAfterFlush(id);
        EXPECT_FALSE(server_->send(id, bytesOf("late"))) << "closing connections refuse output";
        return bytes.size();
    };
    auto c = connect();
    c->startReading();
    const std::uint64_t writes_before = server_->writeCalls();
    c->sendAll("bye");
    ASSERT_TRUE(runUntil(loop_, [&] { return c->eof() && !closes_.empty(); }));
    EXPECT_TRUE(c->received() == all);
    EXPECT_EQ(closes_[0].reason, CloseReason::Local);
    EXPECT_TRUE(closes_[0].tags.empty());
    EXPECT_EQ(server_->writeCalls() - writes_before, 1U);
}

TEST_F(TcpServerTest, CloseAfterFlushOfAMarkedBackedUpConnectionDrainsOnEpollout) {
    start(backedUp());
    auto c = connect(4096);
    const std::string all = pattern(256 * 1024);
    on_data_ = [&](ConnId id, std::span<const std::uint8_t> bytes) {
        for (std::size_t i = 0; i < 16; ++i) {
            server_->send(id, bytesOf(std::string_view(all).substr(i * 16384, 16384)), i + 1);
        }
        server_->closeAfterFlush(id);
        return bytes.size();
    };
    c->sendAll("go");
    ASSERT_TRUE(runUntil(loop_, [&] { return server_->queuedBytes(id_) > 0; }));
    EXPECT_LT(server_->queuedBytes(id_), all.size()) << "written up to the kernel's limit";
    EXPECT_EQ(server_->connectionCount(), 1U);
    c->startReading();
    ASSERT_TRUE(runUntil(loop_, [&] { return c->eof() && !closes_.empty(); }));
    EXPECT_TRUE(c->received() == all);
    EXPECT_EQ(closes_[0].reason, CloseReason::Local);
}

TEST_F(TcpServerTest, OutputCapCountsOnlyWhatTheKernelRefusedWithinOneIteration) {
    TcpServerOptions o;
    o.output_cap = 64 * 1024;
    start(o);
    auto c = connect();
    c->startReading();
    // 192 KiB in one iteration to a peer whose socket buffers take it: queued all at once it
    // would exceed the cap before the end-of-iteration flush, but it is no slow consumer.
    const std::string all = pattern(192 * 1024);
    for (std::size_t i = 0; i < 12; ++i) {
        ASSERT_TRUE(
            server_->send(id_, bytesOf(std::string_view(all).substr(i * 16384, 16384)), i + 1));
        ASSERT_LE(server_->queuedBytes(id_), o.output_cap);
    }
    EXPECT_GT(server_->writeCalls(), 0U) << "the queue was flushed before judging the cap";
    ASSERT_TRUE(runUntil(loop_, [&] { return c->received().size() == all.size(); }));
    EXPECT_TRUE(c->received() == all);
    EXPECT_TRUE(closes_.empty());
}

TEST_F(TcpServerTest, FlushScheduledByACloseCallbackRunsInTheSameIteration) {
    start();
    auto a = connect();
    const ConnId a_id = id_;
    auto b = connect();
    const ConnId b_id = id_;
    b->startReading();
    // Like the server's LEFT presence event: the close callback (itself deferred work) sends.
    after_close_ = [&](ConnId id) {
        if (id == a_id) {
            EXPECT_TRUE(server_->send(b_id, bytesOf("a left"), 9));
        }
    };
    a->closeNow();
    const std::uint64_t writes_before = server_->writeCalls();
    ASSERT_TRUE(runUntil(loop_, [&] { return !closes_.empty(); }));
    // No further iteration: the flush ran in a later deferred round of the one that reaped a.
    EXPECT_EQ(server_->queuedBytes(b_id), 0U);
    EXPECT_EQ(server_->writeCalls() - writes_before, 1U);
    ASSERT_TRUE(runUntil(loop_, [&] { return b->received() == "a left"; }));
}

TEST_F(TcpServerTest, FlushScheduledByDeeplyNestedDeferredWorkDoesNotWaitForAWakeup) {
    start();
    auto c = connect();
    c->startReading();
    // Nothing else would wake the loop for 10 s.
    const TimerId far = loop_.addTimer(10000, [] {});
    // Deferred callbacks deferring each other for more rounds than one iteration runs; the
    // last one sends.
    int depth = 0;
    std::function<void()> nest = [&] {
        if (++depth < 20) {
            loop_.defer(nest);
        } else {
            server_->send(id_, bytesOf("deep"), 1);
        }
    };
    loop_.defer(nest);
    const std::uint64_t writes_before = server_->writeCalls();
    const auto t0 = std::chrono::steady_clock::now();
    int iterations = 0;
    while (server_->writeCalls() == writes_before && iterations < 10) {
        loop_.runOnce();
        ++iterations;
    }
    const auto elapsed = std::chrono::steady_clock::now() - t0;
    EXPECT_EQ(server_->writeCalls() - writes_before, 1U);
    EXPECT_EQ(server_->queuedBytes(id_), 0U);
    EXPECT_LT(elapsed, std::chrono::seconds(1)) << "the loop slept with a flush pending";
    loop_.cancelTimer(far);
    ASSERT_TRUE(runUntil(loop_, [&] { return c->received() == "deep"; }));
}

TEST_F(TcpServerTest, ResetPeerWithMarkedOutputIsAnErrorAndReportsTheUnwrittenTags) {
    start();
    auto c = connect();
    c->reset();  // RST: reading reports ECONNRESET, and writing fails too
    // Sent before the server noticed the reset (no iteration ran since), as the old direct
    // write did; the read error closes it, the marked output cannot be written, its tags are
    // reported in order.
    ASSERT_TRUE(server_->send(id_, bytesOf("one"), 1));
    ASSERT_TRUE(server_->send(id_, bytesOf("two"), 2));
    ASSERT_TRUE(runUntil(loop_, [&] { return !closes_.empty(); }));
    EXPECT_EQ(closes_[0].reason, CloseReason::Error);
    EXPECT_EQ(closes_[0].tags, (std::vector<std::uint64_t>{1, 2}));
}

TEST_F(TcpServerTest, DestroyingTheServerOffersMarkedOutputOnce) {
    start();
    auto c = connect();
    c->startReading();
    ASSERT_TRUE(server_->send(id_, bytesOf("before the end"), 1));
    server_.reset();  // no iteration ran: the output was only marked
    ASSERT_TRUE(runUntil(loop_, [&] { return c->eof() || c->readErrno() != 0; }));
    EXPECT_EQ(c->received(), "before the end");
    EXPECT_TRUE(closes_.empty()) << "destruction runs no callbacks";
}

// Lowers RLIMIT_NOFILE for one test and restores it.
class FdLimit {
public:
    explicit FdLimit(rlim_t soft) {
        ::getrlimit(RLIMIT_NOFILE, &saved_);
        rlimit lowered = saved_;
        lowered.rlim_cur = soft;
        ok_ = ::setrlimit(RLIMIT_NOFILE, &lowered) == 0;
    }
    ~FdLimit() { ::setrlimit(RLIMIT_NOFILE, &saved_); }
    FdLimit(const FdLimit&) = delete;
    FdLimit& operator=(const FdLimit&) = delete;
    [[nodiscard]] bool ok() const { return ok_; }

private:
    rlimit saved_{};
    bool ok_ = false;
};

TEST_F(TcpServerTest, AcceptAtTheFdLimitShedsTheConnectionWithTheSpareFd) {
    start();
    std::vector<int> fillers;
    std::unique_ptr<LoopClient> client;
    {
        FdLimit limit(64);
        ASSERT_TRUE(limit.ok());
        for (;;) {
            const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                break;
            }
            fillers.push_back(fd);
        }
        ASSERT_FALSE(fillers.empty());
        ::close(fillers.back());  // exactly one free slot: the client's socket takes it
        fillers.pop_back();
        client = std::make_unique<LoopClient>(loop_, "127.0.0.1", server_->port());
        ASSERT_TRUE(client->connected());
        // The server's accept4 now fails with EMFILE; it must shed the peer, not spin.
        ASSERT_TRUE(runUntil(loop_, [&] { return server_->acceptErrors() >= 1; }));
        client->startReading();
        ASSERT_TRUE(runUntil(loop_, [&] { return client->eof() || client->readErrno() != 0; }));
        EXPECT_TRUE(connects_.empty());
        EXPECT_EQ(server_->connectionCount(), 0U);
    }
    for (int fd : fillers) {
        ::close(fd);
    }
    client.reset();
    auto ok = connect();  // the spare fd was reopened and accepting works again
    EXPECT_EQ(connects_.size(), 1U);
}

// accept4 fails with EMFILE even when nobody waits, so counting every EMFILE as a shed (and
// running a full round of syscalls for it) inflated the counter far beyond the real peers.
TEST_F(TcpServerTest, SheddingAtTheFdLimitCountsOnlyRealPeers) {
    start();
    constexpr std::size_t kPeers = 5;
    std::vector<int> fillers;
    std::vector<std::unique_ptr<LoopClient>> clients;
    {
        FdLimit limit(64);
        ASSERT_TRUE(limit.ok());
        for (;;) {
            const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                break;
            }
            fillers.push_back(fd);
        }
        ASSERT_GT(fillers.size(), kPeers);
        for (std::size_t i = 0; i < kPeers; ++i) {
            ::close(fillers.back());  // one free slot per client socket
            fillers.pop_back();
        }
        // Connected from the backlog before the server runs at all: one wakeup sees them all.
        for (std::size_t i = 0; i < kPeers; ++i) {
            clients.push_back(std::make_unique<LoopClient>(loop_, "127.0.0.1", server_->port()));
            ASSERT_TRUE(clients.back()->connected());
        }
        ASSERT_TRUE(runUntil(loop_, [&] { return server_->acceptShed() >= kPeers; }));
        // More wakeups with an empty backlog (the fd table still full) shed nobody.
        idle(50);
        EXPECT_EQ(server_->acceptShed(), kPeers);
        EXPECT_EQ(server_->acceptErrors(), kPeers);
        EXPECT_TRUE(connects_.empty());
    }
    for (int fd : fillers) {
        ::close(fd);
    }
    clients.clear();
    auto ok = connect();
    EXPECT_EQ(connects_.size(), 1U);
    EXPECT_EQ(server_->acceptShed(), kPeers);
}

}  // namespace
}  // namespace tundra::net
