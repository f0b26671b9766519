// SPDX-License-Identifier: Apache-2.0
// The accounts file, argon2id hashes, the built-in roles and both authenticators (tokens and
// accounts), anonymous guests included.
#include "auth/accounts.h"

#include <gtest/gtest.h>

#include "auth/authenticators.h"
#include "auth/roles.h"

namespace tundra::auth {
namespace {

namespace perm = core::perm;
constexpr std::int64_t kNow = 1'800'000'000;

TEST(PasswordTest, HashVerifiesOnlyItsPassword) {
    const std::string h = hashPassword("correct horse");
    ASSERT_TRUE(h.starts_with("$argon2id$")) << h;
    EXPECT_TRUE(verifyPassword(h, "correct horse"));
    EXPECT_FALSE(verifyPassword(h, "correct horsE"));
    EXPECT_FALSE(verifyPassword(h, ""));
    EXPECT_FALSE(verifyPassword("$argon2id$garbage", "correct horse"));
    EXPECT_NE(hashPassword("correct horse"), h);  // salted
}

TEST(AccountsTest, ParsesWhatHashPasswordPrints) {
    const std::string h = hashPassword("pw");
    const std::string text = accountEntry("alice", h, ClientKind::User, {"admin"}) + "\n" +
                             accountEntry("bot", h, ClientKind::Agent, {});
    std::string e;
    auto a = Accounts::parse(text, "accounts.toml", e);
    ASSERT_TRUE(a) << e;
    EXPECT_EQ(a->size(), 2U);
    ASSERT_NE(a->find("alice"), nullptr);
    EXPECT_EQ(a->find("alice")->roles, std::vector<std::string>{"admin"});
    EXPECT_TRUE(a->find("alice")->has_roles);
    EXPECT_EQ(a->find("bot")->kind, ClientKind::Agent);
    EXPECT_FALSE(a->find("bot")->has_roles);
    EXPECT_EQ(a->find("carol"), nullptr);
    EXPECT_TRUE(Accounts::parse("", "empty", e));
}

TEST(AccountsTest, BadFilesNameTheProblemAndTheLine) {
    const std::string h = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
    auto bad = [&](const std::string& text, const std::string& expect) {
        std::string e;
        EXPECT_FALSE(Accounts::parse(text, "acc", e)) << text;
        EXPECT_NE(e.find(expect), std::string::npos) << e;
        EXPECT_TRUE(e.starts_with("acc:")) << e;
    };
    bad("[[account]]\nname = \"a\"\nhash = \"plain\"\n", "argon2id");
    bad("[[account]]\nname = \"a b\"\nhash = \"" + h + "\"\n", "name");
    bad("[[account]]\nname = \"a\"\nhash = \"" + h + "\"\nkind = \"robot\"\n", "kind");
    bad("[[account]]\nname = \"a\"\nhash = \"" + h + "\"\nroles = [\"root\"]\n", "roles");
    bad("[[account]]\nname = \"a\"\nhash = \"" + h + "\"\npassword = \"x\"\n", "password");
    bad("[[account]]\nname = \"a\"\nhash = \"" + h + "\"\n[[account]]\nname = \"a\"\nhash = \"" +
            h + "\"\n",
        "twice");
    bad("user = 1\n", "unknown key");
    bad("[[account]\n", "acc:1");
}

TEST(RolesTest, BuiltInTable) {
    EXPECT_EQ(*rolePermissions("admin"), perm::kAll);
    EXPECT_EQ(*rolePermissions("user"), perm::kAll & ~perm::kHealthDetails);
    EXPECT_EQ(*rolePermissions("agent"),
              perm::kDirect | perm::kAgentCommand | perm::kImage | perm::kListUsers);
    EXPECT_EQ(*rolePermissions("readonly"), perm::kListUsers);
    EXPECT_FALSE(rolePermissions("root"));
    EXPECT_EQ(permissionsOf({}, false), *rolePermissions("user"));  // no claim: user
    EXPECT_EQ(permissionsOf({}, true), 0U);                         // empty list: nothing
    EXPECT_EQ(permissionsOf({"readonly", "root"}, true), perm::kListUsers);
    EXPECT_EQ(anonymousPermissions(Anonymous::ReadOnly), perm::kListUsers);
    EXPECT_EQ(anonymousPermissions(Anonymous::DirectOnly), perm::kDirect | perm::kListUsers);
    EXPECT_EQ(parseAnonymous("direct-only"), Anonymous::DirectOnly);
    EXPECT_FALSE(parseAnonymous("yes"));
}

TEST(TokenAuthenticatorTest, SubAndKindMustMatchTheRegister) {
    std::string e;
    auto key = JwtKey::secret(std::string(32, 'k'), e);
    auto signer = JwtKey::secret(std::string(32, 'k'), e);
    TokenAuthenticator a(std::move(*key), JwtRules{}, Anonymous::Off);
    JwtClaims c;
    c.sub = "alice";
    c.exp = kNow + 60;
    c.roles = {"readonly"};
    c.has_roles = true;
    const std::string t = mintJwt(*signer, c, kNow);
    auto ok = a.verify("alice", t, ClientKind::User, kNow);
    ASSERT_TRUE(ok.ok) << ok.reason;
    EXPECT_EQ(ok.identity.permissions, perm::kListUsers);
    EXPECT_EQ(ok.expires_at_s, kNow + 60 + 30);  // exp + leeway
    EXPECT_FALSE(a.verify("bob", t, ClientKind::User, kNow).ok);
    EXPECT_FALSE(a.verify("alice", t, ClientKind::Agent, kNow).ok);
    EXPECT_FALSE(a.verify("alice", "", ClientKind::User, kNow).ok);
    EXPECT_FALSE(a.verify("guest-1", "", ClientKind::User, kNow).ok);  // anonymous off
}

TEST(TokenAuthenticatorTest, AnonymousGuestsOnlyWithTheirPrefix) {
    std::string e;
    TokenAuthenticator a(std::move(*JwtKey::secret(std::string(32, 'k'), e)), JwtRules{},
                         Anonymous::ReadOnly);
    auto g = a.verify("guest-7", "", ClientKind::User, kNow);
    ASSERT_TRUE(g.ok);
    EXPECT_EQ(g.identity.permissions, perm::kListUsers);
    EXPECT_EQ(g.expires_at_s, 0);
    EXPECT_FALSE(a.verify("alice", "", ClientKind::User, kNow).ok);
}

TEST(AccountsAuthenticatorTest, PasswordKindAndRoles) {
    const std::string h = hashPassword("s3cret");
    std::string e;
    auto accounts = Accounts::parse(accountEntry("alice", h, ClientKind::User, {"admin"}) +
                                        accountEntry("bot", h, ClientKind::Agent, {}),
                                    "acc", e);
    ASSERT_TRUE(accounts) << e;
    AccountsAuthenticator a(std::move(*accounts), Anonymous::DirectOnly);
    auto ok = a.verify("alice", "s3cret", ClientKind::User, kNow);
    ASSERT_TRUE(ok.ok) << ok.reason;
    EXPECT_EQ(ok.identity.permissions, perm::kAll);
    EXPECT_EQ(ok.expires_at_s, 0);
    EXPECT_TRUE(a.verify("alice", "s3cret", ClientKind::User, kNow).ok);  // cached path
    EXPECT_FALSE(a.verify("alice", "s3cret!", ClientKind::User, kNow).ok);
    EXPECT_FALSE(a.verify("alice", "s3cret", ClientKind::Agent, kNow).ok);
    EXPECT_FALSE(a.verify("carol", "s3cret", ClientKind::User, kNow).ok);
    auto bot = a.verify("bot", "s3cret", ClientKind::Agent, kNow);
    ASSERT_TRUE(bot.ok);
    EXPECT_EQ(bot.identity.permissions, *rolePermissions("user"));
    auto guest = a.verify("guest-1", "", ClientKind::User, kNow);
    ASSERT_TRUE(guest.ok);
    EXPECT_EQ(guest.identity.permissions, perm::kDirect | perm::kListUsers);
}

TEST(TokenAuthenticatorTest, ClientCertificatesIdentifyOnlyWhenTurnedOn) {
    std::string e;
    TokenAuthenticator off(std::move(*JwtKey::secret(std::string(32, 'k'), e)), JwtRules{},
                           Anonymous::Off);
    EXPECT_FALSE(off.certificate("alice", ClientKind::User).ok);
    TokenAuthenticator on(std::move(*JwtKey::secret(std::string(32, 'k'), e)), JwtRules{},
                          Anonymous::Off, CertificateRules{true, {"readonly"}});
    auto r = on.certificate("alice", ClientKind::Agent);
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_EQ(r.identity.name, "alice");
    EXPECT_EQ(r.identity.kind, ClientKind::Agent);
    EXPECT_EQ(r.identity.permissions, *rolePermissions("readonly"));
    EXPECT_EQ(r.expires_at_s, 0);
    TokenAuthenticator default_roles(std::move(*JwtKey::secret(std::string(32, 'k'), e)),
                                     JwtRules{}, Anonymous::Off, CertificateRules{true, {}});
    EXPECT_EQ(default_roles.certificate("bob", ClientKind::User).identity.permissions,
              *rolePermissions("user"));
}

TEST(AccountsAuthenticatorTest, ACertificateForAnAccountGetsTheAccountsRolesAndKind) {
    std::string e;
    auto accounts = Accounts::parse(
        accountEntry("alice", hashPassword("pw"), ClientKind::User, {"admin"}), "acc", e);
    ASSERT_TRUE(accounts) << e;
    AccountsAuthenticator a(std::move(*accounts), Anonymous::Off,
                            CertificateRules{true, {"readonly"}});
    auto alice = a.certificate("alice", ClientKind::User);
    ASSERT_TRUE(alice.ok) << alice.reason;
    EXPECT_EQ(alice.identity.permissions, perm::kAll);           // the account's admin
    EXPECT_FALSE(a.certificate("alice", ClientKind::Agent).ok);  // not the account's kind
    auto dev = a.certificate("device-7", ClientKind::Agent);     // no account: the setting
    ASSERT_TRUE(dev.ok) << dev.reason;
    EXPECT_EQ(dev.identity.permissions, *rolePermissions("readonly"));
}

}  // namespace
}  // namespace tundra::auth
