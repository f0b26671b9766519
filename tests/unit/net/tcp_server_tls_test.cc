// SPDX-License-Identifier: Apache-2.0
// The TLS transport of TcpServer on a real loop and loopback sockets: a connection is announced
// only after its handshake, the deliveries of one iteration still leave in one write (one TLS
// record), large transfers both ways arrive intact, a silent handshake is closed at its
// deadline and a plaintext peer gets an alert; neither is ever announced. Keys and
// certificates are generated at run time.
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <memory>
#include <string>
#include <vector>

#include "net/tcp_server.h"
#include "net/tls_context.h"
#include "support/scratch_dir.h"
#include "support/test_pki.h"
#include "unit/net/net_test_util.h"

namespace tundra::net {
namespace {

using test::LoopClient;
using test::pattern;
using test::runUntil;

class TcpServerTlsTest : public ::testing::Test {
protected:
    void SetUp() override {
        ca_.writeCert(dir_.file("ca.crt"));
        ca_.issue("server", "IP:127.0.0.1", dir_.file("s.crt"), dir_.file("s.key"));
        std::string error;
        ctx_ = TlsContext::createServer({dir_.file("s.crt"), dir_.file("s.key"), ""}, error);
        ASSERT_TRUE(ctx_) << error;
        TcpServerOptions o;
        o.tls_handshake_timeout_ms = 200;
        server_ = std::make_unique<TcpServer>(loop_, o);
        server_->setConnectCallback([this](ConnId id, const ConnInfo& info) {
            connected_.push_back(id);
            infos_.push_back(info);
        });
        server_->setDataCallback([this](ConnId, std::span<const std::uint8_t> bytes) {
            received_.append(bytes.begin(), bytes.end());
            return bytes.size();
        });
        server_->setCloseCallback(
            [this](ConnId id, CloseReason, std::vector<std::uint64_t>) { closed_.push_back(id); });
        server_->setTlsContext(ctx_);
        ASSERT_TRUE(server_->listenTls(0, error)) << error;
        client_ctx_ = SSL_CTX_new(TLS_client_method());
        SSL_CTX_load_verify_locations(client_ctx_, dir_.file("ca.crt").c_str(), nullptr);
        SSL_CTX_set_verify(client_ctx_, SSL_VERIFY_PEER, nullptr);
        SSL_CTX_set_mode(client_ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE);
    }

    void TearDown() override {
        SSL_free(ssl_);
        SSL_CTX_free(client_ctx_);
    }

    // A TLS client on a non-blocking loopback socket; the handshake is driven together with the
    // server's loop until the server has announced the connection.
    void connectTls() {
        tcp_ = std::make_unique<LoopClient>(loop_, "127.0.0.1", server_->tlsPort());
        ASSERT_TRUE(tcp_->connected());
        ssl_ = SSL_new(client_ctx_);
        SSL_set_fd(ssl_, tcp_->fd());
        bool done = false;
        ASSERT_TRUE(runUntil(loop_, [&] {
            if (!done) {
                done = SSL_connect(ssl_) == 1;
            }
            return done && !connected_.empty();
        })) << "handshake did not complete";
    }

    // Reads decrypted bytes until `n` have arrived (driving the loop meanwhile).
    std::string readTls(std::size_t n) {
        std::string got;
        char buf[16384];
        runUntil(loop_, [&] {
            for (;;) {
                const int r = SSL_read(ssl_, buf, sizeof buf);
                if (r <= 0) {
                    break;
                }
                got.append(buf, static_cast<std::size_t>(r));
            }
            return got.size() >= n;
        });
        return got;
    }

    EventLoop loop_;
    testing::ScratchDir dir_;
    testing::TestCa ca_{"net test CA"};
    std::shared_ptr<TlsContext> ctx_;
    std::unique_ptr<TcpServer> server_;
    SSL_CTX* client_ctx_ = nullptr;
    SSL* ssl_ = nullptr;
    std::unique_ptr<LoopClient> tcp_;
    std::vector<ConnId> connected_;
    std::vector<ConnInfo> infos_;
    std::vector<ConnId> closed_;
    std::string received_;
};

TEST_F(TcpServerTlsTest, AnnouncedAfterTheHandshakeWithItsParameters) {
    connectTls();
    ASSERT_EQ(connected_.size(), 1U);
    EXPECT_TRUE(infos_[0].tls);
    EXPECT_EQ(infos_[0].tls_version, "TLSv1.3");
    EXPECT_FALSE(infos_[0].tls_cipher.empty());
    EXPECT_EQ(infos_[0].tls_peer_cn, "");  // no client certificate asked
    EXPECT_EQ(server_->tlsHandshakes(), 1U);
    EXPECT_EQ(server_->tlsOpen(), 1U);
    EXPECT_EQ(server_->connectionCount(), 1U);
}

TEST_F(TcpServerTlsTest, OneIterationsDeliveriesLeaveInOneWrite) {
    connectTls();
    const ConnId id = connected_[0];
    const std::uint64_t before = server_->writeCalls();
    std::string expected;
    for (int i = 0; i < 20; ++i) {
        const std::string part = "delivery " + std::to_string(i) + ";";
        expected += part;
        ASSERT_TRUE(server_->send(id, test::bytesOf(part)));
    }
    EXPECT_EQ(readTls(expected.size()), expected);
    EXPECT_EQ(server_->writeCalls() - before, 1U) << "20 sends, one SSL_write";
}

// sendNow() on a TLS connection takes the send() path (the iteration's flush, through
// SSL_write), so it joins the same record as what was queued with it.
TEST_F(TcpServerTlsTest, SendNowIsQueuedForTheFlushLikeSend) {
    connectTls();
    const ConnId id = connected_[0];
    const std::uint64_t before = server_->writeCalls();
    ASSERT_TRUE(server_->sendNow(id, test::bytesOf("ping;")));
    EXPECT_EQ(server_->queuedBytes(id), 5U) << "not written inside sendNow()";
    ASSERT_TRUE(server_->send(id, test::bytesOf("more;")));
    EXPECT_EQ(readTls(10), "ping;more;");
    EXPECT_EQ(server_->writeCalls() - before, 1U) << "one SSL_write for both";
}

TEST_F(TcpServerTlsTest, LargeTransfersBothWaysArriveIntact) {
    connectTls();
    const std::string big = pattern(300'000);
    ASSERT_TRUE(server_->send(connected_[0], test::bytesOf(big)));
    EXPECT_EQ(readTls(big.size()), big);

    const std::string up = pattern(200'000, 7);
    std::size_t off = 0;
    ASSERT_TRUE(runUntil(loop_, [&] {
        while (off < up.size()) {
            const int r = SSL_write(ssl_, up.data() + off, static_cast<int>(up.size() - off));
            if (r <= 0) {
                break;
            }
            off += static_cast<std::size_t>(r);
        }
        return received_.size() >= up.size();
    }));
    EXPECT_EQ(received_, up);
}

// holdReads (the storage backpressure) applies to TLS connections too: the delivery that holds
// reads is the last until the release, and the release delivers the rest (records of 5,000
// bytes, so a read can stop inside one).
TEST_F(TcpServerTlsTest, HeldReadsStopTlsInputAndReleasingDeliversTheRest) {
    connectTls();
    int while_held = 0;
    server_->setDataCallback([&](ConnId, std::span<const std::uint8_t> bytes) {
        while_held += server_->readsHeld() ? 1 : 0;
        received_.append(bytes.begin(), bytes.end());
        server_->holdReads(true);
        return bytes.size();
    });
    SSL_set_max_send_fragment(ssl_, 5000);
    const std::string up = pattern(70'000, 3);
    std::size_t off = 0;
    while (off < up.size()) {
        const int r = SSL_write(ssl_, up.data() + off, static_cast<int>(up.size() - off));
        ASSERT_GT(r, 0) << "the loopback buffer takes 70 KB at once";
        off += static_cast<std::size_t>(r);
    }
    ASSERT_TRUE(runUntil(loop_, [&] { return !received_.empty(); }));
    const std::size_t first = received_.size();
    EXPECT_LT(first, up.size());
    (void)runUntil(
        loop_, [] { return false; }, 200);  // held: nothing more may arrive
    EXPECT_EQ(received_.size(), first);
    EXPECT_EQ(while_held, 0);
    server_->setDataCallback([&](ConnId, std::span<const std::uint8_t> bytes) {
        received_.append(bytes.begin(), bytes.end());
        return bytes.size();
    });
    server_->holdReads(false);
    ASSERT_TRUE(runUntil(loop_, [&] { return received_.size() >= up.size(); }));
    EXPECT_EQ(received_, up);
}

TEST_F(TcpServerTlsTest, ASilentHandshakeIsClosedAtTheDeadlineAndNeverAnnounced) {
    LoopClient silent(loop_, "127.0.0.1", server_->tlsPort());
    ASSERT_TRUE(silent.connected());
    silent.startReading();
    ASSERT_TRUE(runUntil(loop_, [&] { return silent.eof(); }));
    EXPECT_EQ(server_->tlsHandshakeTimeouts(), 1U);
    EXPECT_TRUE(connected_.empty());
    EXPECT_TRUE(closed_.empty());
    EXPECT_EQ(server_->connectionCount(), 0U);
    EXPECT_EQ(server_->tlsOpen(), 0U);
}

TEST_F(TcpServerTlsTest, APlaintextPeerGetsAnAlertAndIsNeverAnnounced) {
    LoopClient plain(loop_, "127.0.0.1", server_->tlsPort());
    ASSERT_TRUE(plain.connected());
    plain.startReading();
    plain.sendAll(std::string("\x01\x01\x00\x00\x00\x00\x09hello-frm", 16));
    ASSERT_TRUE(runUntil(loop_, [&] { return plain.eof(); }));
    ASSERT_GE(plain.received().size(), 2U);
    EXPECT_EQ(plain.received()[0], '\x15');  // a TLS alert record
    EXPECT_EQ(plain.received()[1], '\x03');
    EXPECT_EQ(server_->tlsHandshakeFailures(), 1U);
    EXPECT_TRUE(connected_.empty());
    EXPECT_TRUE(closed_.empty());
}

TEST_F(TcpServerTlsTest, StopAcceptingClosesHandshakesInProgress) {
    LoopClient pending(loop_, "127.0.0.1", server_->tlsPort());
    ASSERT_TRUE(pending.connected());
    pending.startReading();
    loop_.runOnce();  // accepts it (the listening socket is readable)
    server_->stopAccepting();
    ASSERT_TRUE(runUntil(loop_, [&] { return pending.eof(); }));
    EXPECT_EQ(server_->tlsHandshakeTimeouts(), 0U);  // closed by stopAccepting, not the timer
    EXPECT_TRUE(closed_.empty());
}

TEST_F(TcpServerTlsTest, ABadCertificateFileIsAClearError) {
    std::string error;
    EXPECT_FALSE(TlsContext::createServer({dir_.file("nope.crt"), dir_.file("s.key"), ""}, error));
    EXPECT_NE(error.find("tls_cert"), std::string::npos) << error;
    ca_.issue("other", "", dir_.file("o.crt"), dir_.file("o.key"));
    EXPECT_FALSE(TlsContext::createServer({dir_.file("s.crt"), dir_.file("o.key"), ""}, error));
    EXPECT_NE(error.find("does not match"), std::string::npos) << error;
}

}  // namespace
}  // namespace tundra::net
