// SPDX-License-Identifier: Apache-2.0
// TLS against the real tundrad: two clients chat over TLS; a plaintext client on the TLS port
// and a TLS client on the plaintext port get clear errors while others chat on; a handshake
// that never finishes is closed at the deadline and counted; SIGHUP swaps the certificate for
// new connections while an established one keeps chatting (and a bad new pair keeps the old);
// mTLS refuses a client without a certificate and names the one with it; the admin listener's
// bearer token and HTTPS. Every key and certificate is generated here, at run time.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#ifdef TUNDRA_CLI_PATH
#include "integration/cli/cli_process.h"
#endif
#include "support/scratch_dir.h"
#include "support/test_pki.h"
#include "support/tundrad_process.h"
#include "tundra/client.h"

namespace tundra::client {
namespace {

using namespace std::chrono_literals;
using testing::ScratchDir;
using testing::TestCa;
using testing::TundradProcess;

// The port of a "PREFIX ADDR:PORT" log line ("tls listening on", "admin listening on").
std::uint16_t portFromLine(TundradProcess& server, const std::string& prefix) {
    auto line = server.waitForLine(prefix, 5s);
    if (!line) {
        return 0;
    }
    auto at = line->find(prefix) + prefix.size() + 1;
    auto colon = line->find(':', at);
    return static_cast<std::uint16_t>(std::stoi(line->substr(colon + 1)));
}

// A server certificate for 127.0.0.1 and localhost signed by `ca`.
struct ServerFiles {
    std::string cert;
    std::string key;
};
ServerFiles serverCert(const TestCa& ca, const ScratchDir& dir, const std::string& stem) {
    ServerFiles f{dir.file(stem + ".crt"), dir.file(stem + ".key")};
    ca.issue("tundra-test-server", "IP:127.0.0.1,DNS:localhost", f.cert, f.key);
    return f;
}

class TlsTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_FALSE(dir_.path().empty());
        ca_.writeCert(dir_.file("ca.crt"));
        files_ = serverCert(ca_, dir_, "server");
    }

    void start(std::vector<std::string> extra = {}) {
        std::vector<std::string> args{"--tls-cert", files_.cert,  "--tls-key",
                                      files_.key,   "--tls-port", "0"};
        args.insert(args.end(), extra.begin(), extra.end());
        server_ = std::make_unique<TundradProcess>(args);
        ASSERT_TRUE(server_->started()) << server_->output();
        tls_port_ = portFromLine(*server_, "tls listening on");
        ASSERT_NE(tls_port_, 0) << server_->output();
    }

    void TearDown() override {
        if (server_ && server_->started()) {
            EXPECT_EQ(server_->stop(), std::optional<int>(0)) << server_->output();
        }
    }

    Options tlsOptions(const std::string& ca_file = "") const {
        Options o;
        o.port = tls_port_;
        o.connect_timeout = 5s;
        o.request_timeout = 5s;
        o.auto_reconnect = false;
        o.tls.enabled = true;
        o.tls.ca_file = ca_file.empty() ? dir_.file("ca.crt") : ca_file;
        return o;
    }

    // clients.crt: a client CA that issued alice.crt/alice.key (CN "alice"); returns the path of
    // a token secret file for --auth tokens.
    std::string clientCaAliceAndSecret() {
        TestCa clients("tundra client CA");
        clients.writeCert(dir_.file("clients.crt"));
        clients.issue("alice", "", dir_.file("alice.crt"), dir_.file("alice.key"));
        return dir_.write("token.secret", std::string(40, 's') + "\n");
    }

    Options aliceCertOptions() const {
        Options o = tlsOptions();
        o.tls.cert_file = dir_.file("alice.crt");
        o.tls.key_file = dir_.file("alice.key");
        return o;
    }

    std::unique_ptr<Client> login(const std::string& name, Options o) {
        auto c = std::make_unique<Client>(std::move(o));
        Identity id;
        id.name = name;
        auto w = c->registerAs(id);
        EXPECT_TRUE(w) << name << ": " << w.error().message() << "\n" << server_->output();
        return w ? std::move(c) : nullptr;
    }

    // `from` sends `text` to `to`, which must receive it.
    static void expectChat(Client& from, Client& to, const std::string& to_name,
                           const std::string& text) {
        auto ack = from.sendMessage(to_name, text);
        ASSERT_TRUE(ack) << ack.error().message();
        auto deadline = std::chrono::steady_clock::now() + 5s;
        while (std::chrono::steady_clock::now() < deadline) {
            auto e = to.nextEvent(100ms);
            if (!e) {
                continue;
            }
            if (const auto* d = std::get_if<Delivery>(&*e); d != nullptr && d->text == text) {
                return;
            }
        }
        FAIL() << to_name << " did not receive '" << text << "'";
    }

    // A number from the HEALTH_RESULT "net" object ("tls_handshakes": 2).
    static std::int64_t netField(Client& c, const std::string& field) {
        auto h = c.health();
        EXPECT_TRUE(h) << h.error().message();
        if (!h) {
            return -1;
        }
        auto pos = h->find("\"" + field + "\":");
        if (pos == std::string::npos) {
            ADD_FAILURE() << field << " not in " << *h;
            return -1;
        }
        return std::stoll(h->substr(pos + field.size() + 3));
    }

    ScratchDir dir_;
    TestCa ca_{"tundra test CA"};
    ServerFiles files_;
    std::unique_ptr<TundradProcess> server_;
    std::uint16_t tls_port_ = 0;
};

TEST_F(TlsTest, TwoClientsChatOverTls) {
    start();
    auto alice = login("alice", tlsOptions());
    auto bob = login("bob", tlsOptions());
    ASSERT_TRUE(alice && bob);
    expectChat(*alice, *bob, "bob", "hello over tls");
    expectChat(*bob, *alice, "alice", std::string(40'000, 'x'));  // several TLS records
    EXPECT_EQ(netField(*alice, "tls_handshakes"), 2);
    EXPECT_EQ(netField(*alice, "tls_connections"), 2);
    EXPECT_EQ(netField(*alice, "tls_handshake_failures"), 0);
}

TEST_F(TlsTest, WrongCaIsRefusedByTheClient) {
    start();
    TestCa other("another CA");
    other.writeCert(dir_.file("other.crt"));
    Client c(tlsOptions(dir_.file("other.crt")));
    Identity id;
    id.name = "mallory";
    auto w = c.registerAs(id);
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error().kind, ErrorKind::Connect);
    EXPECT_NE(w.error().text.find("certificate verify failed"), std::string::npos)
        << w.error().text;
    Options insecure = tlsOptions();
    insecure.tls.ca_file.clear();
    insecure.tls.insecure = true;  // a self-signed test server: encrypts, checks nothing
    EXPECT_TRUE(login("eve", insecure));
}

TEST_F(TlsTest, PlaintextClientOnTheTlsPortAndTlsClientOnThePlainPort) {
    start();
    auto alice = login("alice", tlsOptions());
    auto bob = login("bob", tlsOptions());
    ASSERT_TRUE(alice && bob);

    Options plain;
    plain.port = tls_port_;
    plain.connect_timeout = 5s;
    plain.request_timeout = 5s;
    plain.auto_reconnect = false;
    Client lost(plain);
    Identity id;
    id.name = "plain";
    auto w = lost.registerAs(id);
    ASSERT_FALSE(w);
    EXPECT_NE(w.error().text.find("TLS"), std::string::npos) << w.error().message();
    ASSERT_TRUE(server_->waitForLine("tls handshake from", 5s)) << server_->output();

    Options tls_on_plain = tlsOptions();
    tls_on_plain.port = server_->port();
    Client confused(tls_on_plain);
    id.name = "confused";
    w = confused.registerAs(id);
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error().kind, ErrorKind::Connect);
    EXPECT_NE(w.error().text.find("TLS handshake with"), std::string::npos) << w.error().message();

    expectChat(*alice, *bob, "bob", "still here");
    EXPECT_EQ(netField(*alice, "tls_handshake_failures"), 1);
    EXPECT_EQ(netField(*alice, "tls_connections"), 2);
}

TEST_F(TlsTest, AHandshakeThatNeverFinishesIsClosedAtTheDeadline) {
    start({"--tls-handshake-timeout", "0.3"});
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(tls_port_);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    const auto began = std::chrono::steady_clock::now();
    pollfd p{fd, POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 5000), 1) << "not closed within 5 s";
    char byte = 0;
    EXPECT_EQ(::recv(fd, &byte, 1, 0), 0);  // closed, nothing sent
    EXPECT_GE(std::chrono::steady_clock::now() - began, 250ms);
    ::close(fd);
    auto alice = login("alice", tlsOptions());
    ASSERT_TRUE(alice);
    EXPECT_EQ(netField(*alice, "tls_handshake_timeouts"), 1);
    EXPECT_EQ(netField(*alice, "tls_connections"), 1);
}

TEST_F(TlsTest, SighupReloadsTheCertificateWithoutDroppingConnections) {
    start();
    auto alice = login("alice", tlsOptions());
    auto bob = login("bob", tlsOptions());
    ASSERT_TRUE(alice && bob);

    // The renewed pair comes from another CA, so a client can tell which one it was shown.
    TestCa next("tundra next CA");
    next.writeCert(dir_.file("next.crt"));
    Client early(tlsOptions(dir_.file("next.crt")));
    Identity id;
    id.name = "early";
    ASSERT_FALSE(early.registerAs(id));  // still the old certificate

    ServerFiles fresh = serverCert(next, dir_, "fresh");
    ASSERT_EQ(std::rename(fresh.cert.c_str(), files_.cert.c_str()), 0);
    ASSERT_EQ(std::rename(fresh.key.c_str(), files_.key.c_str()), 0);
    const auto from = server_->lineCount();
    server_->signal(SIGHUP);
    ASSERT_TRUE(server_->waitForLine("TLS certificate loaded", 5s, from)) << server_->output();

    auto carol = login("carol", tlsOptions(dir_.file("next.crt")));
    ASSERT_TRUE(carol);
    Client stale(tlsOptions());  // trusts only the old CA
    id.name = "stale";
    EXPECT_FALSE(stale.registerAs(id));
    expectChat(*alice, *bob, "bob", "after the reload");  // established before it
    expectChat(*carol, *alice, "alice", "new cert here");

    // A bad new pair is refused; the running one stays.
    std::ofstream(files_.key, std::ios::trunc) << "not a key\n";
    const auto from2 = server_->lineCount();
    server_->signal(SIGHUP);
    ASSERT_TRUE(server_->waitForLine("TLS certificate not reloaded", 5s, from2))
        << server_->output();
    EXPECT_TRUE(login("dave", tlsOptions(dir_.file("next.crt"))));
    expectChat(*alice, *bob, "bob", "after the bad reload");
}

TEST_F(TlsTest, MutualTlsRequiresAClientCertificateAndNamesIt) {
    TestCa clients("tundra client CA");
    clients.writeCert(dir_.file("clients.crt"));
    clients.issue("alice-device", "", dir_.file("alice.crt"), dir_.file("alice.key"));
    start({"--tls-client-ca", dir_.file("clients.crt"), "--log-level", "debug"});

    Client anonymous(tlsOptions());
    Identity id;
    id.name = "anon";
    auto w = anonymous.registerAs(id);
    ASSERT_FALSE(w);
    ASSERT_TRUE(server_->waitForLine("tls handshake from", 5s)) << server_->output();

    // A certificate from the wrong CA (the server CA issues it) is refused as well.
    ca_.issue("mallory", "", dir_.file("mallory.crt"), dir_.file("mallory.key"));
    Options wrong = tlsOptions();
    wrong.tls.cert_file = dir_.file("mallory.crt");
    wrong.tls.key_file = dir_.file("mallory.key");
    Client m(wrong);
    id.name = "mallory";
    EXPECT_FALSE(m.registerAs(id));

    Options o = tlsOptions();
    o.tls.cert_file = dir_.file("alice.crt");
    o.tls.key_file = dir_.file("alice.key");
    auto alice = login("alice", o);
    ASSERT_TRUE(alice);
    EXPECT_TRUE(server_->waitForLine("cn=alice-device", 5s)) << server_->output();
    EXPECT_EQ(netField(*alice, "tls_handshake_failures"), 2);
}

// tls_client_identity: with auth = tokens, alice's client certificate (CN "alice") is her
// credential for the name "alice" only; its roles come from tls_client_roles; another name on
// that connection, or "alice" without the certificate, still needs a token.
TEST_F(TlsTest, AClientCertificateIdentifiesItsCommonNameOnly) {
    const std::string secret = clientCaAliceAndSecret();
    start({"--tls-client-ca", dir_.file("clients.crt"), "--tls-client-identity",
           "--tls-client-roles", "readonly", "--auth", "tokens", "--token-secret-file", secret});
    const Options with_cert = aliceCertOptions();

    Client other_name(with_cert);
    Identity id;
    id.name = "bob";
    auto refused = other_name.registerAs(id);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, ErrorCode::AuthFailed) << refused.error().message();

    auto alice = login("alice", with_cert);
    ASSERT_TRUE(alice);
    // readonly: she may list users but not broadcast
    EXPECT_TRUE(alice->listUsers());
    auto sent = alice->sendMessage("", "hello");
    ASSERT_FALSE(sent);
    EXPECT_EQ(sent.error().code, ErrorCode::Forbidden) << sent.error().message();
}

// Without tls_client_identity the certificate only admits the connection: "alice" still needs
// a token, and setting it without tls_client_ca is a startup error.
TEST_F(TlsTest, ClientCertificatesDoNotIdentifyUnlessTurnedOn) {
    const std::string secret = clientCaAliceAndSecret();
    start({"--tls-client-ca", dir_.file("clients.crt"), "--auth", "tokens", "--token-secret-file",
           secret});
    const Options with_cert = aliceCertOptions();
    Client c(with_cert);
    Identity id;
    id.name = "alice";
    auto refused = c.registerAs(id);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, ErrorCode::AuthFailed) << refused.error().message();

    TundradProcess bad({"--tls-cert", files_.cert, "--tls-key", files_.key, "--tls-port", "0",
                        "--tls-client-identity"},
                       5s);
    EXPECT_EQ(bad.waitExit(5s), std::optional<int>(2)) << bad.output();
    EXPECT_NE(bad.output().find("tls_client_identity is set but tls_client_ca is not"),
              std::string::npos)
        << bad.output();
    TundradProcess bad_role({"--tls-client-roles", "user,wizard"}, 5s);
    EXPECT_EQ(bad_role.waitExit(5s), std::optional<int>(2)) << bad_role.output();
    EXPECT_NE(bad_role.output().find("tls_client_roles: 'wizard' is not a role"), std::string::npos)
        << bad_role.output();
}

#ifdef TUNDRA_CLI_PATH
TEST_F(TlsTest, TundraCliSpeaksTls) {
    start();
    const std::string port = std::to_string(tls_port_);
    auto ok = testing::runCli({"--port", port, "--ca", dir_.file("ca.crt"), "health"});
    EXPECT_EQ(ok.code, 0) << ok.out << ok.err;
    auto insecure = testing::runCli({"--port", port, "--insecure", "users"});
    EXPECT_EQ(insecure.code, 0) << insecure.out << insecure.err;
    auto plain = testing::runCli({"--port", port, "--timeout", "3", "health"});
    EXPECT_EQ(plain.code, 3) << plain.out << plain.err;
    EXPECT_NE(plain.err.find("TLS port"), std::string::npos) << plain.err;
    auto wrong = testing::runCli(
        {"--port", std::to_string(server_->port()), "--tls", "--insecure", "health"});
    EXPECT_EQ(wrong.code, 3) << wrong.out << wrong.err;
    EXPECT_NE(wrong.err.find("TLS handshake"), std::string::npos) << wrong.err;
}
#endif

TEST(TlsStartup, ABadCertificateOrKeyExitsWithTwo) {
    ScratchDir dir;
    TestCa ca("startup CA");
    ServerFiles f = serverCert(ca, dir, "s");
    ServerFiles other = serverCert(ca, dir, "o");
    {
        TundradProcess p({"--tls-cert", dir.file("missing.crt"), "--tls-key", f.key}, 5s);
        EXPECT_EQ(p.waitExit(5s), std::optional<int>(2)) << p.output();
        EXPECT_NE(p.output().find("tls_cert"), std::string::npos) << p.output();
    }
    {
        TundradProcess p({"--tls-cert", f.cert, "--tls-key", other.key}, 5s);
        EXPECT_EQ(p.waitExit(5s), std::optional<int>(2)) << p.output();
        EXPECT_NE(p.output().find("does not match"), std::string::npos) << p.output();
    }
    {
        TundradProcess p({"--tls-key", f.key}, 5s);
        EXPECT_EQ(p.waitExit(5s), std::optional<int>(2)) << p.output();
        EXPECT_NE(p.output().find("tls_key is set but tls_cert is not"), std::string::npos)
            << p.output();
    }
    {
        // Without tls_key the key is read from the tls_cert file: here it is not there.
        TundradProcess p({"--tls-cert", f.cert}, 5s);
        EXPECT_EQ(p.waitExit(5s), std::optional<int>(2)) << p.output();
        EXPECT_NE(p.output().find("tls_key"), std::string::npos) << p.output();
    }
}

// ---- admin: bearer token and HTTPS --------------------------------------------------------

struct HttpReply {
    int status = 0;
    std::string text;
};

// One GET on 127.0.0.1:`port`, over TLS when `tls_ca` is set (verified against it).
std::optional<HttpReply> get(std::uint16_t port, const std::string& path,
                             const std::string& auth = "", const std::string& tls_ca = "") {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        ::close(fd);
        return std::nullopt;
    }
    SSL_CTX* ctx = nullptr;
    SSL* ssl = nullptr;
    if (!tls_ca.empty()) {
        ctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_load_verify_locations(ctx, tls_ca.c_str(), nullptr);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
        ssl = SSL_new(ctx);
        SSL_set_fd(ssl, fd);
        if (SSL_connect(ssl) != 1) {
            SSL_free(ssl);
            SSL_CTX_free(ctx);
            ::close(fd);
            return std::nullopt;
        }
    }
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n";
    if (!auth.empty()) {
        req += "Authorization: " + auth + "\r\n";
    }
    req += "\r\n";
    if (ssl != nullptr) {
        SSL_write(ssl, req.data(), static_cast<int>(req.size()));
    } else {
        ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    }
    std::string all;
    char buf[4096];
    for (;;) {
        const long n =
            ssl != nullptr ? SSL_read(ssl, buf, sizeof buf) : ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
            break;
        }
        all.append(buf, static_cast<std::size_t>(n));
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    ::close(fd);
    if (all.size() < 12) {
        return std::nullopt;
    }
    return HttpReply{std::stoi(all.substr(9, 3)), all};
}

TEST_F(TlsTest, AdminBearerTokenGuardsMetricsButNotTheProbes) {
    std::ofstream(dir_.file("admin.token")) << "s3cret-token\n";
    start({"--admin", "127.0.0.1:0", "--admin-token-file", dir_.file("admin.token")});
    const auto admin = portFromLine(*server_, "admin listening on");
    ASSERT_NE(admin, 0);
    auto r = get(admin, "/metrics");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401);
    EXPECT_NE(r->text.find("WWW-Authenticate: Bearer"), std::string::npos);
    r = get(admin, "/metrics", "Bearer wrong-token!");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401);
    r = get(admin, "/metrics", "Bearer s3cret-token");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_NE(r->text.find("tundra_tls_handshakes_total"), std::string::npos);
    r = get(admin, "/healthz");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
}

TEST_F(TlsTest, SighupWithAConfigFileFollowsNewPathsAndTheAdminToken) {
    TestCa next("config CA");
    next.writeCert(dir_.file("next.crt"));
    ServerFiles fresh = serverCert(next, dir_, "fresh");
    std::ofstream(dir_.file("admin.token")) << "first\n";
    const std::string conf = dir_.file("tundra.conf");
    auto writeConf = [&](const ServerFiles& f) {
        std::ofstream(conf, std::ios::trunc)
            << "tls_cert = \"" << f.cert << "\"\ntls_key = \"" << f.key << "\"\ntls_port = 0\n"
            << "admin = \"127.0.0.1:0\"\nadmin_token_file = \"" << dir_.file("admin.token")
            << "\"\n";
    };
    writeConf(files_);
    server_ = std::make_unique<TundradProcess>(std::vector<std::string>{"--config", conf});
    ASSERT_TRUE(server_->started()) << server_->output();
    tls_port_ = portFromLine(*server_, "tls listening on");
    const auto admin = portFromLine(*server_, "admin listening on");
    ASSERT_NE(tls_port_, 0);
    ASSERT_NE(admin, 0);
    auto alice = login("alice", tlsOptions());
    ASSERT_TRUE(alice);

    writeConf(fresh);
    std::ofstream(dir_.file("admin.token"), std::ios::trunc) << "second\n";
    const auto from = server_->lineCount();
    server_->signal(SIGHUP);
    ASSERT_TRUE(server_->waitForLine("reloaded", 5s, from)) << server_->output();
    EXPECT_TRUE(login("bob", tlsOptions(dir_.file("next.crt"))));  // the new path's certificate
    auto r = get(admin, "/metrics", "Bearer first");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401);
    r = get(admin, "/metrics", "Bearer second");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    auto ack = alice->sendMessage("bob", "still connected");
    EXPECT_TRUE(ack) << ack.error().message();
}

TEST_F(TlsTest, AdminOverTlsWithTheSameCertificate) {
    std::ofstream(dir_.file("admin.token")) << "tok\n";
    start(
        {"--admin", "127.0.0.1:0", "--admin-tls", "--admin-token-file", dir_.file("admin.token")});
    const auto admin = portFromLine(*server_, "admin listening on");
    ASSERT_NE(admin, 0);
    auto r = get(admin, "/metrics", "Bearer tok", dir_.file("ca.crt"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_FALSE(get(admin, "/healthz"));  // plain HTTP on the HTTPS port gets no answer
}

}  // namespace
}  // namespace tundra::client
