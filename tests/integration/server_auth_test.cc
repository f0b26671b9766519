// SPDX-License-Identifier: Apache-2.0
// Identity against the real tundrad: tokens (HS256 from `tundrad token`, EdDSA and RS256 with
// keys generated here) accepted and refused, a stolen session UUID, expiry and AUTH_REFRESH,
// roles (FORBIDDEN, the connection stays open), the failure lockout, anonymous guests, the
// accounts file with `tundrad hash-password` and its SIGHUP reload, and startup errors.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "auth/jwt.h"
#include "integration/server_fixture.h"
#include "support/raw_client.h"
#include "support/scratch_dir.h"
#include "support/shell_command.h"
#include "support/tundrad_process.h"
#include "tundra/client.h"
#include "tundra/messages.h"
#include "unit/auth/test_keys.h"

namespace tundra::testing {
namespace {

using namespace std::chrono_literals;

const std::string kSecret = "an integration-test secret of more than 32 bytes";

// Runs `tundrad ARGS` through the shell (the scratch paths hold no spaces) and captures stdout.
ShellResult tundrad(const std::string& args, const std::string& stdin_text = "") {
    std::string cmd = std::string(TUNDRAD_PATH) + " " + args + " 2>&1";
    if (!stdin_text.empty()) {
        cmd = "printf '%s\\n' '" + stdin_text + "' | " + cmd;
    }
    return runShell(cmd);
}

std::int64_t nowS() { return static_cast<std::int64_t>(std::time(nullptr)); }

Bytes registerFrame(std::string_view name, std::string_view token, Uuid session = {},
                    ClientKind kind = ClientKind::User, std::uint16_t seq = 1) {
    return msg::encode(msg::Register{name, session, kind, token, 0}, seq);
}

// Sends REGISTER and returns the answer frame.
std::optional<RawFrame> registerWith(RawClient& c, std::string_view name, std::string_view token,
                                     Uuid session = {}) {
    c.send(registerFrame(name, token, session, ClientKind::User, c.nextSeq()));
    return c.read();
}

std::uint16_t errorCode(const std::optional<RawFrame>& f) {
    if (!f || f->type() != MsgType::Error) {
        ADD_FAILURE() << "expected an ERROR";
        return 0;
    }
    return asError(*f).code;
}

bool welcomed(const std::optional<RawFrame>& f) {
    return f && f->type() == MsgType::System && asSystem(*f).event == SystemEvent::Welcome;
}

constexpr auto kAuthFailed = static_cast<std::uint16_t>(ErrorCode::AuthFailed);
constexpr auto kForbidden = static_cast<std::uint16_t>(ErrorCode::Forbidden);

// The connection answers a PING: still open and served.
bool alive(RawClient& c) {
    c.send(msg::encodePing(MsgType::Ping, 77, c.nextSeq()));
    auto f = c.readUntil(MsgType::Pong, 3s);
    return f.has_value();
}

class AuthTokensTest : public ::testing::Test {
protected:
    void SetUp() override {
        secret_file_ = dir_.write("token.secret", kSecret + "\n");
        std::string e;
        key_ = std::make_unique<auth::JwtKey>(std::move(*auth::JwtKey::secret(kSecret, e)));
    }

    void start(std::vector<std::string> extra = {}) {
        std::vector<std::string> args{"--no-presence", "--auth", "tokens", "--token-secret-file",
                                      secret_file_};
        args.insert(args.end(), extra.begin(), extra.end());
        server_ = std::make_unique<TundradProcess>(args);
        ASSERT_TRUE(server_->started()) << server_->output();
    }

    void TearDown() override {
        if (server_ && server_->started()) {
            EXPECT_EQ(server_->stop(), std::optional<int>(0)) << server_->output();
        }
    }

    std::string mint(const std::string& name, std::int64_t ttl_s = 600,
                     std::vector<std::string> roles = {}, bool has_roles = false) {
        auth::JwtClaims c;
        c.sub = name;
        c.exp = nowS() + ttl_s;
        c.roles = std::move(roles);
        c.has_roles = has_roles;
        return auth::mintJwt(*key_, c, nowS());
    }

    std::unique_ptr<RawClient> connect() {
        auto c = std::make_unique<RawClient>(server_->port());
        EXPECT_TRUE(c->connected());
        return c;
    }

    ScratchDir dir_;
    std::string secret_file_;
    std::unique_ptr<auth::JwtKey> key_;
    std::unique_ptr<TundradProcess> server_;
};

TEST_F(AuthTokensTest, TundradTokenOutputIsAcceptedAndOtherTokensAreRefused) {
    start();
    auto minted = tundrad("token --user alice --ttl 600 --token-secret-file " + secret_file_);
    ASSERT_EQ(minted.code, 0) << minted.out;
    ASSERT_EQ(minted.out.back(), '\n');
    const std::string token = minted.out.substr(0, minted.out.size() - 1);
    EXPECT_EQ(std::count(token.begin(), token.end(), '.'), 2) << token;

    auto c = connect();
    EXPECT_EQ(errorCode(registerWith(*c, "alice", "")), kAuthFailed);           // no token
    EXPECT_EQ(errorCode(registerWith(*c, "bob", token)), kAuthFailed);          // alice's token
    EXPECT_EQ(errorCode(registerWith(*c, "alice", token + "x")), kAuthFailed);  // tampered
    auto f = registerWith(*c, "alice", "not.a.jwt");
    ASSERT_EQ(errorCode(f), kAuthFailed);
    EXPECT_EQ(std::string(asError(*f).text), "authentication failed");  // never which part
    // The connection stayed open through the failures: the right token works on it.
    EXPECT_TRUE(welcomed(registerWith(*c, "alice", token)));
}

TEST_F(AuthTokensTest, AStolenSessionUuidWithoutTheTokenGetsAuthFailed) {
    start();
    auto alice = connect();
    auto w = registerWith(*alice, "alice", mint("alice"));
    ASSERT_TRUE(welcomed(w));
    const Uuid sid = asSystem(*w).welcome.session;
    auto thief = connect();
    EXPECT_EQ(errorCode(registerWith(*thief, "alice", "", sid)), kAuthFailed);
    EXPECT_EQ(errorCode(registerWith(*thief, "alice", mint("mallory"), sid)), kAuthFailed);
    EXPECT_TRUE(alive(*alice));  // not taken over
    // Her own client, reconnecting with her token, takes the session over.
    auto again = connect();
    auto r = registerWith(*again, "alice", mint("alice"), sid);
    ASSERT_TRUE(welcomed(r));
    EXPECT_TRUE(asSystem(*r).welcome.resumed);
}

TEST_F(AuthTokensTest, ExpiredTokensAreRefusedAndALiveOneClosesTheConnectionAtExp) {
    start({"--token-leeway", "0"});
    auto c = connect();
    EXPECT_EQ(errorCode(registerWith(*c, "alice", mint("alice", -5))), kAuthFailed);
    ASSERT_TRUE(welcomed(registerWith(*c, "alice", mint("alice", 2))));
    auto f = c->readUntil(MsgType::Error, 6s);
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(asError(*f).code, kAuthFailed);
    EXPECT_EQ(std::string(asError(*f).text), "token expired");
    EXPECT_TRUE(c->waitClosed(3s));
}

TEST_F(AuthTokensTest, AuthRefreshKeepsTheConnectionPastTheFirstExpiry) {
    start({"--token-leeway", "0"});
    auto c = connect();
    ASSERT_TRUE(welcomed(registerWith(*c, "alice", mint("alice", 2))));
    // A refresh for another name fails and changes nothing.
    c->send(msg::encode(msg::AuthRefresh{mint("bob", 600)}, c->nextSeq()));
    EXPECT_EQ(errorCode(c->read()), kAuthFailed);
    c->send(msg::encode(msg::AuthRefresh{mint("alice", 600)}, c->nextSeq()));
    auto ack = c->read();
    ASSERT_TRUE(ack && ack->type() == MsgType::Ack);
    // Past the first token's exp (at most 2 s away, plus a tick): nothing arrives, still open.
    EXPECT_FALSE(c->read(3500ms).has_value());
    EXPECT_FALSE(c->eof());
    EXPECT_TRUE(alive(*c));
}

TEST_F(AuthTokensTest, TheClientLibraryRefreshesItsToken) {
    start({"--token-leeway", "0"});
    client::Options o;
    o.port = server_->port();
    o.auto_reconnect = false;
    client::Client c(o);
    client::Identity id;
    id.name = "alice";
    id.token = mint("alice", 2);
    ASSERT_TRUE(c.registerAs(id));
    auto bad = c.refreshToken(mint("bob", 600));
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, ErrorCode::AuthFailed);
    ASSERT_TRUE(c.refreshToken(mint("alice", 600)));
    // Past the first token's exp: still registered and served.
    EXPECT_FALSE(c.nextEvent(3500ms).has_value());
    EXPECT_TRUE(c.ping());
}

TEST_F(AuthTokensTest, RolesDecideAndForbiddenKeepsTheConnectionOpen) {
    start();
    auto bob = connect();
    ASSERT_TRUE(welcomed(registerWith(*bob, "bob", mint("bob"))));
    auto ro = connect();
    ASSERT_TRUE(welcomed(registerWith(*ro, "ro", mint("ro", 600, {"readonly"}, true))));
    ro->send(msg::encode(msg::Message{"", "to all"}, ro->nextSeq(), flags::kAck));
    EXPECT_EQ(errorCode(ro->read()), kForbidden);
    ro->send(msg::encode(msg::Message{"bob", "to bob"}, ro->nextSeq(), flags::kAck));
    EXPECT_EQ(errorCode(ro->read()), kForbidden);
    // Still open, and what readonly allows works.
    ro->send(msg::encode(msg::ListUsers{""}, ro->nextSeq()));
    auto list = ro->read();
    ASSERT_TRUE(list.has_value());
    EXPECT_EQ(list->type(), MsgType::UserList);
    // bob (no roles claim: role user) may send to ro, and nothing of ro's reached bob.
    bob->send(msg::encode(msg::Message{"ro", "hello"}, bob->nextSeq(), flags::kAck));
    auto ack = bob->read();
    ASSERT_TRUE(ack.has_value());
    EXPECT_EQ(asAck(*ack).delivered, 1U);
    auto got = ro->readUntil(MsgType::BroadcastMessage, 3s);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(asDelivery(*got).from, "bob");
}

TEST_F(AuthTokensTest, RepeatedFailuresLockTheAddressOut) {
    start({"--auth-fail-limit", "2", "--auth-fail-lockout-max", "2"});
    auto c = connect();
    EXPECT_EQ(errorCode(registerWith(*c, "alice", "bad")), kAuthFailed);
    EXPECT_EQ(errorCode(registerWith(*c, "alice", "bad")), kAuthFailed);
    // Locked out now (1 s): even the right token is refused, from a new connection too.
    auto other = connect();
    EXPECT_EQ(errorCode(registerWith(*other, "alice", mint("alice"))), kAuthFailed);
    // Once the lockout has passed the right token works: poll with a deadline.
    bool ok = false;
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!ok && std::chrono::steady_clock::now() < deadline) {
        auto probe = connect();
        ok = welcomed(registerWith(*probe, "alice", mint("alice")));
        if (!ok) {
            probe->read(200ms);  // paces the retries; nothing is expected
        }
    }
    EXPECT_TRUE(ok);
}

TEST_F(AuthTokensTest, AnonymousGuestsOnlyWhenEnabled) {
    start({"--anonymous", "read-only"});
    auto g = connect();
    EXPECT_EQ(errorCode(registerWith(*g, "alice", "")), kAuthFailed);  // not a guest- name
    ASSERT_TRUE(welcomed(registerWith(*g, "guest-1", "")));
    g->send(msg::encode(msg::Message{"", "hi"}, g->nextSeq(), flags::kAck));
    EXPECT_EQ(errorCode(g->read()), kForbidden);
    EXPECT_TRUE(alive(*g));
}

TEST(AuthPublicKeyTest, EdDsaAndRs256TokensVerifyAndConfusionIsRefused) {
    for (const char* type : {"ED25519", "RSA"}) {
        ScratchDir dir;
        auto pair = generateKey(type);
        const std::string pub = dir.write("token.pub", pair.public_pem);
        const std::string priv = dir.write("token.key", pair.private_pem);
        TundradProcess server(
            {"--no-presence", "--auth", "tokens", "--token-public-key-file", pub});
        ASSERT_TRUE(server.started()) << server.output();
        auto minted = tundrad("token --user alice --token-private-key-file " + priv);
        ASSERT_EQ(minted.code, 0) << minted.out;
        const std::string token = minted.out.substr(0, minted.out.size() - 1);
        RawClient c(server.port());
        // HS256 signed with the public key's text: the algorithm-confusion forgery.
        std::string e;
        auto forged_key = auth::JwtKey::secret(pair.public_pem, e);
        auth::JwtClaims claims;
        claims.sub = "alice";
        claims.exp = nowS() + 600;
        EXPECT_EQ(errorCode(registerWith(c, "alice", auth::mintJwt(*forged_key, claims, nowS()))),
                  kAuthFailed)
            << type;
        EXPECT_TRUE(welcomed(registerWith(c, "alice", token))) << type;
        EXPECT_EQ(server.stop(), std::optional<int>(0));
    }
}

TEST(AuthAccountsTest, HashPasswordEntriesWorkAndSighupReloadsTheFile) {
    ScratchDir dir;
    auto entry = tundrad("hash-password --user alice --roles user", "s3cret");
    ASSERT_EQ(entry.code, 0) << entry.out;
    EXPECT_NE(entry.out.find("$argon2id$"), std::string::npos) << entry.out;
    const std::string accounts = dir.write("accounts.toml", entry.out);
    TundradProcess server({"--no-presence", "--auth", "accounts", "--accounts-file", accounts});
    ASSERT_TRUE(server.started()) << server.output();
    RawClient a(server.port());
    EXPECT_EQ(errorCode(registerWith(a, "alice", "wrong")), kAuthFailed);
    EXPECT_TRUE(welcomed(registerWith(a, "alice", "s3cret")));
    RawClient b(server.port());
    EXPECT_EQ(errorCode(registerWith(b, "bob", "hunter2")), kAuthFailed);
    // Add bob and reload.
    auto bob = tundrad("hash-password --user bob", "hunter2");
    ASSERT_EQ(bob.code, 0) << bob.out;
    dir.write("accounts.toml", entry.out + bob.out);
    server.signal(SIGHUP);
    ASSERT_TRUE(server.waitForLine("keys and accounts re-read", 5s)) << server.output();
    EXPECT_TRUE(welcomed(registerWith(b, "bob", "hunter2")));
    EXPECT_TRUE(alive(a));  // alice's connection was not disturbed
    EXPECT_EQ(server.stop(), std::optional<int>(0));
}

TEST(AuthStartupTest, UnusableIdentitySettingsStopTheStartWithExitCode2) {
    ScratchDir dir;
    auto r = tundrad("--port 0 --auth tokens");
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.out.find("token_secret_file"), std::string::npos) << r.out;
    r = tundrad("--port 0 --auth tokens --token-secret-file " + dir.file("missing"));
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.out.find("cannot be read"), std::string::npos) << r.out;
    r = tundrad("--port 0 --auth tokens --token-secret-file " + dir.write("short", "abc"));
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.out.find("32 bytes"), std::string::npos) << r.out;
    r = tundrad("--port 0 --auth accounts --accounts-file " + dir.write("acc", "[[account]]\n"));
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.out.find("acc:"), std::string::npos) << r.out;
    r = tundrad("token --user alice");
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.out.find("no key"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace tundra::testing
