// SPDX-License-Identifier: Apache-2.0
// The core's authentication and authorization through an injected Authenticator: REGISTER
// refused or accepted, a session UUID alone refused, the per-source lockout, token expiry and
// AUTH_REFRESH, FORBIDDEN per permission, the reduced HEALTH_RESULT; and auth = none unchanged.
#include <nlohmann/json.hpp>

#include "core/authenticator.h"
#include "unit/core/core_fixture.h"

namespace tundra::testing {
namespace {

namespace perm = core::perm;

// Tokens are "NAME:PERMS:EXP" (EXP in Unix seconds, 0 = never); anything else fails.
class FakeAuthenticator final : public core::Authenticator {
public:
    core::AuthResult verify(std::string_view username, std::string_view token, ClientKind kind,
                            std::int64_t now_s) const override {
        ++calls;
        core::AuthResult r;
        const auto c1 = token.find(':');
        const auto c2 = c1 == std::string_view::npos ? c1 : token.find(':', c1 + 1);
        if (c2 == std::string_view::npos || token.substr(0, c1) != username) {
            r.reason = "bad";
            return r;
        }
        const auto perms = std::stoul(std::string(token.substr(c1 + 1, c2 - c1 - 1)));
        const auto exp = std::stoll(std::string(token.substr(c2 + 1)));
        if (exp != 0 && now_s > exp) {
            r.reason = "expired";
            return r;
        }
        r.ok = true;
        r.identity = core::Identity{std::string(username), kind, static_cast<std::uint32_t>(perms)};
        r.expires_at_s = exp;
        return r;
    }
    // A certificate gives read-only-like permissions, so the tests can tell the two paths apart.
    core::AuthResult certificate(std::string_view username, ClientKind kind) const override {
        ++cert_calls;
        core::AuthResult r;
        r.ok = true;
        r.identity = core::Identity{std::string(username), kind, perm::kListUsers};
        return r;
    }
    mutable int calls = 0;
    mutable int cert_calls = 0;
};

std::string tok(std::string_view name, std::uint32_t perms = perm::kAll, std::int64_t exp = 0) {
    return std::string(name) + ":" + std::to_string(perms) + ":" + std::to_string(exp);
}

Bytes reg(std::string_view name, std::string_view token, Uuid session = {}) {
    return msg::encode(msg::Register{name, session, ClientKind::User, token, 0}, 1);
}

class CoreAuthTest : public CoreTest {
protected:
    CoreAuthTest() { config.auth_fail_limit = 3; }

    void useAuth() {
        auth = std::make_shared<FakeAuthenticator>();
        sm().setAuthenticator(auth);
    }
    std::int64_t nowS() const { return clock.wallMs() / 1000; }

    /// Connects `conn` from its own address (10.1.0.CONN) and registers `name` with `token`; the
    /// first frame back.
    SentFrame registerWith(ConnId conn, std::string_view name, std::string_view token,
                           Uuid session = {}) {
        sm().onConnect(conn, "10.1.0." + std::to_string(conn));
        feed(conn, reg(name, token, session));
        auto frames = take(conn);
        EXPECT_FALSE(frames.empty());
        return frames.empty() ? SentFrame{conn, core::share(rawFrame(0x15, 0, 0)), 0, {}}
                              : frames.front();
    }

    std::shared_ptr<FakeAuthenticator> auth;
};

TEST_F(CoreAuthTest, WithoutAnAuthenticatorTokensAreIgnoredAndEverythingIsAllowed) {
    login(1, "alice");
    login(2, "bob");
    EXPECT_EQ(sayAck(1, "", "hi").delivered, 1U);
    EXPECT_EQ(sayAck(1, "bob", "hi").delivered, 1U);
    // AUTH_REFRESH is accepted and changes nothing: ACK with id 0.
    feed(1, msg::encode(msg::AuthRefresh{"whatever"}, 9));
    auto f = one(1);
    ASSERT_EQ(f.type(), MsgType::Ack);
    EXPECT_EQ(f.header.sequence, 9);
    EXPECT_EQ(asAck(f).id, 0U);
}

TEST_F(CoreAuthTest, RegisterNeedsAValidTokenForItsName) {
    useAuth();
    EXPECT_EQ(asError(registerWith(1, "alice", "")).code, code(ErrorCode::AuthFailed));
    EXPECT_EQ(asError(registerWith(2, "alice", tok("bob"))).code, code(ErrorCode::AuthFailed));
    const auto frame = registerWith(3, "alice", "garbage");
    auto e = asError(frame);
    EXPECT_EQ(e.code, code(ErrorCode::AuthFailed));
    EXPECT_EQ(e.text, "authentication failed");  // never which part was wrong
    EXPECT_EQ(out.closeCount(3), 0U);            // the connection stays open: it may retry
    EXPECT_EQ(asSystem(registerWith(4, "alice", tok("alice"))).event, SystemEvent::Welcome);
    EXPECT_EQ(sm().metrics().auth_failures_total, 3U);
}

TEST_F(CoreAuthTest, ASessionUuidAloneCannotResumeOrTakeOver) {
    useAuth();
    const Uuid sid = asSystem(registerWith(1, "alice", tok("alice"))).welcome.session;
    // Takeover attempt with the UUID but no token, and with bob's token.
    EXPECT_EQ(asError(registerWith(2, "alice", "", sid)).code, code(ErrorCode::AuthFailed));
    EXPECT_EQ(asError(registerWith(3, "alice", tok("bob"), sid)).code, code(ErrorCode::AuthFailed));
    EXPECT_EQ(out.closeCount(1), 0U);  // alice's live connection untouched
    disconnect(1);
    EXPECT_EQ(asError(registerWith(4, "alice", "", sid)).code, code(ErrorCode::AuthFailed));
    // With her token the resume works.
    auto w = asSystem(registerWith(5, "alice", tok("alice"), sid));
    EXPECT_EQ(w.event, SystemEvent::Welcome);
    EXPECT_TRUE(w.welcome.resumed);
}

TEST_F(CoreAuthTest, RepeatedFailuresLockTheSourceOutWithGrowingDelays) {
    useAuth();
    sm().onConnect(1, "10.0.0.1");
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(errorFor(1, reg("alice", "bad")), code(ErrorCode::AuthFailed));
    }
    // The third failure reached auth_fail_limit: locked out for 1 s; even a good token is
    // refused unchecked.
    const int calls = auth->calls;
    EXPECT_EQ(errorFor(1, reg("alice", tok("alice"))), code(ErrorCode::AuthFailed));
    EXPECT_EQ(auth->calls, calls);
    EXPECT_EQ(sm().metrics().auth_lockouts_total, 1U);
    // Another address is not affected.
    sm().onConnect(2, "10.0.0.2");
    feed(2, reg("bob", tok("bob")));
    EXPECT_EQ(asSystem(one(2)).event, SystemEvent::Welcome);
    clock.advance(1000);
    EXPECT_EQ(errorFor(1, reg("alice", "bad")), code(ErrorCode::AuthFailed));  // 4th: 2 s
    clock.advance(1500);
    EXPECT_EQ(errorFor(1, reg("alice", tok("alice"))), code(ErrorCode::AuthFailed));
    EXPECT_EQ(sm().metrics().auth_lockouts_total, 2U);
    clock.advance(500);
    feed(1, reg("alice", tok("alice")));
    EXPECT_EQ(asSystem(one(1)).event, SystemEvent::Welcome);
}

TEST_F(CoreAuthTest, TheFailureCountIsForgottenAfterAQuietPeriod) {
    config.auth_fail_lockout_max_ms = 10'000;
    useAuth();
    sm().onConnect(1, "10.0.0.1");
    EXPECT_EQ(errorFor(1, reg("alice", "bad")), code(ErrorCode::AuthFailed));
    EXPECT_EQ(errorFor(1, reg("alice", "bad")), code(ErrorCode::AuthFailed));
    clock.advance(10'001);
    EXPECT_EQ(errorFor(1, reg("alice", "bad")), code(ErrorCode::AuthFailed));  // 1st again
    feed(1, reg("alice", tok("alice")));
    EXPECT_EQ(asSystem(one(1)).event, SystemEvent::Welcome);  // not locked out
}

TEST_F(CoreAuthTest, AConnectionIsClosedWhenItsTokenExpires) {
    useAuth();
    registerWith(1, "alice", tok("alice", perm::kAll, nowS() + 5));
    advance(4000);
    EXPECT_EQ(out.closeCount(1), 0U);
    EXPECT_TRUE(take(1).empty());
    clock.setWall(clock.wallMs() + 1100);
    advance(1100);
    const auto frame = one(1);
    auto e = asError(frame);
    EXPECT_EQ(e.code, code(ErrorCode::AuthFailed));
    EXPECT_EQ(e.text, "token expired");
    EXPECT_EQ(out.closeCount(1), 1U);
    EXPECT_EQ(sm().metrics().auth_expired_total, 1U);
}

TEST_F(CoreAuthTest, ATokenExpiresWithHeartbeatsOffToo) {
    config.ping_interval_ms = 0;
    useAuth();
    registerWith(1, "alice", tok("alice", perm::kAll, nowS() + 3));
    clock.setWall(clock.wallMs() + 2900);
    advance(2900);
    EXPECT_EQ(out.closeCount(1), 0U);
    clock.setWall(clock.wallMs() + 200);
    advance(200);
    EXPECT_EQ(std::string(asError(one(1)).text), "token expired");
    EXPECT_EQ(out.closeCount(1), 1U);
}

TEST_F(CoreAuthTest, AuthRefreshMovesTheDeadlineAndAFailedRefreshKeepsTheOldOne) {
    useAuth();
    registerWith(1, "alice", tok("alice", perm::kAll, nowS() + 5));
    feed(1, msg::encode(msg::AuthRefresh{tok("alice", perm::kAll, nowS() + 60)}, 7));
    auto ack = one(1);
    ASSERT_EQ(ack.type(), MsgType::Ack);
    EXPECT_EQ(ack.header.sequence, 7);
    // A refresh for another name, or a bad one, fails; the connection stays open.
    EXPECT_EQ(errorFor(1, msg::encode(msg::AuthRefresh{tok("bob")}, 8)),
              code(ErrorCode::AuthFailed));
    EXPECT_EQ(out.closeCount(1), 0U);
    clock.setWall(clock.wallMs() + 30'000);
    advance(30'000);
    EXPECT_EQ(out.closeCount(1), 0U);  // the first deadline (5 s) passed: nothing happened
    clock.setWall(clock.wallMs() + 31'000);
    advance(31'000);
    EXPECT_EQ(std::string(asError(one(1)).text), "token expired");
    EXPECT_EQ(out.closeCount(1), 1U);
}

TEST_F(CoreAuthTest, ARefreshToAnEarlierExpiryTakesEffect) {
    useAuth();
    registerWith(1, "alice", tok("alice", perm::kAll, nowS() + 600));
    feed(1, msg::encode(msg::AuthRefresh{tok("alice", perm::kAll, nowS() + 2)}, 7));
    EXPECT_EQ(one(1).type(), MsgType::Ack);
    clock.setWall(clock.wallMs() + 2100);
    advance(2100);
    EXPECT_EQ(std::string(asError(one(1)).text), "token expired");
}

TEST_F(CoreAuthTest, RefreshChangesPermissions) {
    useAuth();
    registerWith(1, "alice", tok("alice", perm::kListUsers));
    registerWith(2, "bob", tok("bob"));
    EXPECT_EQ(asError(say(1, "bob", "hi").at(0)).code, code(ErrorCode::Forbidden));
    feed(1, msg::encode(msg::AuthRefresh{tok("alice", perm::kDirect)}, 7));
    EXPECT_EQ(one(1).type(), MsgType::Ack);
    EXPECT_EQ(sayAck(1, "bob", "hi").delivered, 1U);
}

TEST_F(CoreAuthTest, AClientCertificateAuthenticatesItsOwnNameOnly) {
    useAuth();
    // Connection 1 came with a certificate naming "alice": an empty token is enough for her,
    // and she gets the certificate's permissions.
    sm().onConnect(1, "10.1.0.1", "alice");
    feed(1, reg("alice", ""));
    ASSERT_EQ(asSystem(take(1).at(0)).event, SystemEvent::Welcome);
    EXPECT_EQ(auth->cert_calls, 1);
    EXPECT_EQ(auth->calls, 0);
    EXPECT_EQ(asError(say(1, "", "all").at(0)).code, code(ErrorCode::Forbidden));
    // The same certificate does not vouch for another name: that needs a token as usual.
    sm().onConnect(2, "10.1.0.2", "alice");
    feed(2, reg("bob", ""));
    EXPECT_EQ(asError(take(2).at(0)).code, code(ErrorCode::AuthFailed));
    feed(2, reg("bob", tok("bob")));
    EXPECT_EQ(asSystem(take(2).at(0)).event, SystemEvent::Welcome);
    // A token on a certificate connection is checked as a token (here: a bad one).
    sm().onConnect(3, "10.1.0.3", "carol");
    feed(3, reg("carol", "garbage"));
    EXPECT_EQ(asError(take(3).at(0)).code, code(ErrorCode::AuthFailed));
    // Without a certificate "alice" cannot take her session over with an empty token.
    EXPECT_EQ(asError(registerWith(4, "alice", "")).code, code(ErrorCode::AuthFailed));
    EXPECT_EQ(out.closeCount(1), 0U);
    EXPECT_EQ(auth->cert_calls, 1);
}

TEST_F(CoreAuthTest, EachPermissionGuardsItsRequestAndTheConnectionStaysOpen) {
    useAuth();
    registerWith(1, "ro", tok("ro", 0));
    registerWith(2, "bob", tok("bob"));
    take(2);
    const auto forbidden = code(ErrorCode::Forbidden);
    EXPECT_EQ(asError(say(1, "", "all").at(0)).code, forbidden);
    EXPECT_EQ(asError(say(1, "bob", "one").at(0)).code, forbidden);
    EXPECT_EQ(errorFor(1, msg::encode(msg::AgentCommand{"bob", 0, "cmd", ""}, 4, flags::kAck)),
              forbidden);
    EXPECT_EQ(errorFor(1, msg::encode(msg::Image{"bob", "image/png", "x"}, 4, flags::kAck)),
              forbidden);
    EXPECT_EQ(errorFor(1, msg::encode(msg::ListUsers{""}, 4)), forbidden);
    EXPECT_EQ(out.closeCount(1), 0U);
    EXPECT_TRUE(take(2).empty());  // nothing reached bob
    EXPECT_EQ(sm().metrics().errors_total[code(ErrorCode::Forbidden)], 5U);
    // FORBIDDEN is not a bad frame: many of them never close the connection.
    for (int i = 0; i < 40; ++i) {
        say(1, "", "again", false);
    }
    EXPECT_EQ(out.closeCount(1), 0U);
}

TEST_F(CoreAuthTest, PermissionsAllowWhatTheyName) {
    useAuth();
    registerWith(1, "d", tok("d", perm::kDirect | perm::kImage));
    registerWith(2, "bob", tok("bob"));
    EXPECT_EQ(sayAck(1, "bob", "hi").delivered, 1U);
    EXPECT_EQ(asError(say(1, "", "all").at(0)).code, code(ErrorCode::Forbidden));
    feed(1, msg::encode(msg::Image{"bob", "image/png", "x"}, 4, flags::kAck));
    EXPECT_EQ(one(1).type(), MsgType::Ack);
    feed(1, msg::encode(msg::Image{"", "image/png", "x"}, 4, flags::kAck));
    EXPECT_EQ(asError(one(1)).code, code(ErrorCode::Forbidden));
    // Agent commands to everyone need broadcast as well as agent commands.
    registerWith(3, "a", tok("a", perm::kAgentCommand | perm::kDirect));
    feed(3, msg::encode(msg::AgentCommand{"", 0, "cmd", ""}, 4, flags::kAck));
    EXPECT_EQ(asError(one(3)).code, code(ErrorCode::Forbidden));
    feed(3, msg::encode(msg::AgentCommand{"bob", 0, "cmd", ""}, 4, flags::kAck));
    EXPECT_EQ(one(3).type(), MsgType::Ack);
}

TEST_F(CoreAuthTest, HealthDetailsNeedTheirPermission) {
    useAuth();
    sm().onConnect(1, "10.0.0.1");
    feed(1, msg::encodeEmpty(MsgType::HealthCheck, 2));
    auto before = nlohmann::json::parse(asJson(one(1)));
    EXPECT_EQ(before.at("status"), "ok");
    EXPECT_FALSE(before.contains("uptime_s"));
    EXPECT_FALSE(before.contains("connections"));
    feed(1, reg("u", tok("u", perm::kAll & ~perm::kHealthDetails)));
    take(1);
    feed(1, msg::encodeEmpty(MsgType::HealthCheck, 2));
    auto limited = nlohmann::json::parse(asJson(one(1)));
    EXPECT_FALSE(limited.contains("uptime_s"));
    EXPECT_EQ(limited.at("connection").at("name"), "u");
    registerWith(2, "admin", tok("admin"));
    feed(2, msg::encodeEmpty(MsgType::HealthCheck, 2));
    auto full = nlohmann::json::parse(asJson(one(2)));
    EXPECT_TRUE(full.contains("uptime_s"));
}

}  // namespace
}  // namespace tundra::testing

namespace tundra::testing {
namespace {

class CoreEphemeralTest : public CoreTest {
protected:
    bool known(ConnId asker, std::string_view name) { return stateOf(asker, name).has_value(); }
    void ephemeralLogin(ConnId conn, std::string_view name) {
        connect(conn);
        feed(conn,
             msg::encode(msg::Register{name, {}, ClientKind::User, "", 0}, 1, flags::kEphemeral));
        EXPECT_EQ(asSystem(take(conn).at(0)).event, SystemEvent::Welcome);
    }
    void logout(ConnId conn) {
        feed(conn, msg::encodeEmpty(MsgType::Logout, 2));
        take(conn);
    }
};

TEST_F(CoreEphemeralTest, AnEphemeralUserIsForgottenAfterLogout) {
    login(1, "alice");
    ephemeralLogin(2, "cli-1");
    EXPECT_TRUE(known(1, "cli-1"));
    logout(2);
    disconnect(2);
    EXPECT_FALSE(known(1, "cli-1"));
    EXPECT_EQ(sm().gauges().users_known, 1U);
    // A plain REGISTER keeps its user after LOGOUT, as always.
    login(3, "bob");
    logout(3);
    disconnect(3);
    EXPECT_EQ(stateOf(1, "bob"), UserState::Offline);
}

TEST_F(CoreEphemeralTest, AnExistingUserOrOneWithBufferedMessagesIsKept) {
    login(1, "alice");
    login(2, "bob");
    logout(2);
    disconnect(2);
    ephemeralLogin(3, "bob");  // bob existed: not created by this REGISTER
    logout(3);
    disconnect(3);
    EXPECT_EQ(stateOf(1, "bob"), UserState::Offline);
    ephemeralLogin(4, "cli-2");
    logout(4);
    EXPECT_EQ(sayAck(1, "cli-2", "for later").buffered, 1U);  // before its close is reported
    disconnect(4);
    EXPECT_EQ(stateOf(1, "cli-2"), UserState::Offline);
}

TEST_F(CoreEphemeralTest, TheFlagIsReservedOnOtherTypes) {
    login(1, "alice");
    EXPECT_EQ(errorFor(1, msg::encode(msg::Message{"", "x"}, 3, flags::kEphemeral)),
              code(ErrorCode::InvalidFormat));
}

}  // namespace
}  // namespace tundra::testing
