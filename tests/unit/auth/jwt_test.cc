// SPDX-License-Identifier: Apache-2.0
// JWT verification: HS256, EdDSA and RS256 accepted; every bad token kind refused (alg none,
// algorithm confusion, bad base64, bad JSON, oversized, tampered, expired, not yet valid,
// missing or wrong claims); strict base64url.
#include "auth/jwt.h"

#include <gtest/gtest.h>

#include "auth/base64url.h"
#include "unit/auth/test_keys.h"

namespace tundra::auth {
namespace {

using testing::generateKey;

constexpr std::int64_t kNow = 1'800'000'000;
const std::string kSecret = "0123456789abcdef0123456789abcdef-secret";
constexpr std::string_view kHs = R"({"alg":"HS256","typ":"JWT"})";

JwtKey hs() {
    std::string e;
    return std::move(*JwtKey::secret(kSecret, e));
}

std::string claims(std::int64_t exp = kNow + 60, std::string extra = "") {
    return R"({"sub":"alice","exp":)" + std::to_string(exp) + extra + "}";
}

std::optional<JwtClaims> check(const JwtKey& key, const std::string& token, JwtRules rules = {},
                               std::int64_t now = kNow) {
    std::string why;
    auto c = verifyJwt(key, token, rules, now, why);
    if (!c) {
        EXPECT_FALSE(why.empty());
    }
    return c;
}

TEST(Base64urlTest, RoundTripsAndIsStrict) {
    for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\x00"}) {
        EXPECT_EQ(base64urlDecode(base64urlEncode(s)), s);
    }
    EXPECT_EQ(base64urlEncode("\xfb\xff"), "-_8");
    EXPECT_FALSE(base64urlDecode("Zm9v="));  // padding
    EXPECT_FALSE(base64urlDecode("Zm+v"));   // standard alphabet
    EXPECT_FALSE(base64urlDecode("Zm9 v"));  // whitespace
    EXPECT_FALSE(base64urlDecode("Zm9vY"));  // impossible length
    EXPECT_FALSE(base64urlDecode("Zh"));     // non-zero unused bits ("Zg" is canonical)
    EXPECT_EQ(base64urlDecode("Zg"), "f");
}

TEST(JwtTest, Hs256TokenIsAcceptedWithItsClaims) {
    JwtKey key = hs();
    JwtClaims in;
    in.sub = "alice";
    in.exp = kNow + 60;
    in.kind = "agent";
    in.roles = {"agent", "readonly"};
    in.has_roles = true;
    const std::string token = mintJwt(key, in, kNow);
    auto c = check(key, token);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->sub, "alice");
    EXPECT_EQ(c->exp, kNow + 60);
    EXPECT_EQ(c->kind, "agent");
    EXPECT_EQ(c->roles, in.roles);
    EXPECT_TRUE(c->has_roles);
}

TEST(JwtTest, WrongSecretOrTamperedTokenIsRefused) {
    JwtKey key = hs();
    std::string e;
    auto other = JwtKey::secret("another secret of at least thirty-two bytes", e);
    ASSERT_TRUE(other);
    const std::string token = key.signRaw(kHs, claims());
    EXPECT_TRUE(check(key, token));
    EXPECT_FALSE(check(*other, token));
    // Claims swapped for bob's, signature kept.
    const auto dot1 = token.find('.');
    const auto dot2 = token.find('.', dot1 + 1);
    std::string tampered = token.substr(0, dot1 + 1) +
                           base64urlEncode(R"({"sub":"bob","exp":1800000060})") +
                           token.substr(dot2);
    EXPECT_FALSE(check(key, tampered));
    std::string flipped = token;
    flipped[flipped.size() - 2] = flipped[flipped.size() - 2] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(check(key, flipped));
}

TEST(JwtTest, AlgNoneAndOtherAlgorithmsAreRefused) {
    JwtKey key = hs();
    const std::string body = base64urlEncode(claims());
    EXPECT_FALSE(check(key, base64urlEncode(R"({"alg":"none"})") + "." + body + "."));
    EXPECT_FALSE(check(key, base64urlEncode(R"({"alg":"none"})") + "." + body + ".AAAA"));
    EXPECT_FALSE(check(key, key.signRaw(R"({"alg":"HS512"})", claims())));
    EXPECT_FALSE(check(key, key.signRaw(R"({"alg":"hs256"})", claims())));
    EXPECT_FALSE(check(key, key.signRaw(R"({"typ":"JWT"})", claims())));  // no alg
    EXPECT_FALSE(check(key, key.signRaw(R"({"alg":"HS256","typ":"JWS"})", claims())));
    EXPECT_FALSE(check(key, key.signRaw(R"({"alg":"HS256","crit":["x"]})", claims())));
}

TEST(JwtTest, Ed25519AndRs256TokensAreAccepted) {
    for (const char* type : {"ED25519", "RSA"}) {
        auto pair = generateKey(type);
        std::string e;
        auto priv = JwtKey::privateKeyPem(pair.private_pem, e);
        auto pub = JwtKey::publicKeyPem(pair.public_pem, e);
        ASSERT_TRUE(priv && pub) << type << ": " << e;
        EXPECT_STREQ(pub->algName(), std::string(type) == "RSA" ? "RS256" : "EdDSA");
        JwtClaims in;
        in.sub = "alice";
        in.exp = kNow + 60;
        const std::string token = mintJwt(*priv, in, kNow);
        ASSERT_FALSE(token.empty());
        EXPECT_TRUE(check(*pub, token)) << type;
        // A public key cannot sign.
        EXPECT_TRUE(mintJwt(*pub, in, kNow).empty());
        // Another key of the same type does not verify it.
        auto other = JwtKey::publicKeyPem(generateKey(type).public_pem, e);
        ASSERT_TRUE(other);
        EXPECT_FALSE(check(*other, token)) << type;
    }
}

TEST(JwtTest, AlgorithmConfusionIsRefused) {
    // The classic attack: an HS256 token whose HMAC key is the server's public key text.
    for (const char* type : {"ED25519", "RSA"}) {
        auto pair = generateKey(type);
        std::string e;
        auto pub = JwtKey::publicKeyPem(pair.public_pem, e);
        auto forged_key = JwtKey::secret(pair.public_pem, e);
        ASSERT_TRUE(pub && forged_key);
        const std::string forged = forged_key->signRaw(kHs, claims());
        EXPECT_FALSE(check(*pub, forged)) << type;
    }
    // And an EdDSA token presented to an HS256 server.
    auto pair = generateKey("ED25519");
    std::string e;
    auto priv = JwtKey::privateKeyPem(pair.private_pem, e);
    JwtClaims in;
    in.sub = "alice";
    in.exp = kNow + 60;
    EXPECT_FALSE(check(hs(), mintJwt(*priv, in, kNow)));
}

TEST(JwtTest, MalformedTokensAreRefused) {
    JwtKey key = hs();
    const std::string good = key.signRaw(kHs, claims());
    EXPECT_TRUE(check(key, good));
    EXPECT_FALSE(check(key, ""));
    EXPECT_FALSE(check(key, "abc"));
    EXPECT_FALSE(check(key, "a.b"));
    EXPECT_FALSE(check(key, good + ".x"));                               // four parts
    EXPECT_FALSE(check(key, good.substr(0, good.rfind('.') + 1)));       // empty signature
    EXPECT_FALSE(check(key, "!!!." + good.substr(good.find('.') + 1)));  // bad base64
    std::string padded = good;
    padded.insert(padded.find('.'), "=");
    EXPECT_FALSE(check(key, padded));
    EXPECT_FALSE(check(key, key.signRaw("not json", claims())));
    EXPECT_FALSE(check(key, key.signRaw(kHs, "not json")));
    EXPECT_FALSE(check(key, key.signRaw(kHs, "[1,2]")));  // not an object
    EXPECT_FALSE(check(key, key.signRaw(kHs, "{\"sub\":\"a\xff\",\"exp\":1800000060}")));
    std::string deep = std::string(200, '[') + std::string(200, ']');
    EXPECT_FALSE(
        check(key, key.signRaw(kHs, R"({"sub":"alice","exp":1800000060,"x":)" + deep + "}")));
}

TEST(JwtTest, OversizedTokensAreRefusedBeforeParsing) {
    JwtKey key = hs();
    const std::string big =
        key.signRaw(kHs, claims(kNow + 60, R"(,"pad":")" + std::string(5000, 'x') + "\""));
    EXPECT_FALSE(check(key, big));
    JwtRules roomy;
    roomy.max_token_bytes = 10'000;
    EXPECT_TRUE(check(key, big, roomy));
}

TEST(JwtTest, TimeClaimsWithLeeway) {
    JwtKey key = hs();
    JwtRules rules;
    rules.leeway_s = 30;
    EXPECT_TRUE(check(key, key.signRaw(kHs, claims(kNow - 30)), rules));   // within leeway
    EXPECT_FALSE(check(key, key.signRaw(kHs, claims(kNow - 31)), rules));  // expired
    EXPECT_TRUE(check(key, key.signRaw(kHs, claims(kNow + 60, R"(,"nbf":1800000030)")), rules));
    EXPECT_FALSE(check(key, key.signRaw(kHs, claims(kNow + 60, R"(,"nbf":1800000031)")), rules));
    EXPECT_FALSE(check(key, key.signRaw(kHs, claims(kNow + 60, R"(,"nbf":"soon")")), rules));
    EXPECT_TRUE(check(key, key.signRaw(kHs, R"({"sub":"alice","exp":1800000060.5})"), rules));
    EXPECT_FALSE(check(key, key.signRaw(kHs, R"({"sub":"alice"})"), rules));  // no exp
    EXPECT_FALSE(check(key, key.signRaw(kHs, R"({"sub":"alice","exp":"never"})"), rules));
    EXPECT_FALSE(check(key, key.signRaw(kHs, R"({"exp":1800000060})"), rules));  // no sub
    EXPECT_FALSE(check(key, key.signRaw(kHs, R"({"sub":7,"exp":1800000060})"), rules));
}

TEST(JwtTest, AudienceIssuerKindAndRoles) {
    JwtKey key = hs();
    JwtRules rules;
    rules.audience = "chat";
    rules.issuer = "https://backend.example";
    const std::string iss = R"(,"iss":"https://backend.example")";
    EXPECT_TRUE(check(key, key.signRaw(kHs, claims(kNow + 60, R"(,"aud":"chat")" + iss)), rules));
    EXPECT_TRUE(
        check(key, key.signRaw(kHs, claims(kNow + 60, R"(,"aud":["other","chat"])" + iss)), rules));
    EXPECT_FALSE(check(key, key.signRaw(kHs, claims(kNow + 60, R"(,"aud":"other")" + iss)), rules));
    EXPECT_FALSE(check(key, key.signRaw(kHs, claims(kNow + 60, iss)), rules));  // no aud
    EXPECT_FALSE(check(key, key.signRaw(kHs, claims(kNow + 60, R"(,"aud":"chat")")), rules));
    EXPECT_FALSE(check(
        key, key.signRaw(kHs, claims(kNow + 60, R"(,"aud":"chat","iss":"https://evil")")), rules));
    EXPECT_FALSE(check(key, key.signRaw(kHs, claims(kNow + 60, R"(,"kind":"robot")"))));
    EXPECT_FALSE(check(key, key.signRaw(kHs, claims(kNow + 60, R"(,"roles":"admin")"))));
    EXPECT_FALSE(check(key, key.signRaw(kHs, claims(kNow + 60, R"(,"roles":[1])"))));
    auto c = check(key, key.signRaw(kHs, claims(kNow + 60, R"(,"roles":[])")));
    ASSERT_TRUE(c);
    EXPECT_TRUE(c->has_roles);
    EXPECT_TRUE(c->roles.empty());
}

TEST(JwtKeyTest, BadKeysAreRefusedClearly) {
    std::string e;
    EXPECT_FALSE(JwtKey::secret("short", e));
    EXPECT_NE(e.find("32 bytes"), std::string::npos);
    EXPECT_FALSE(JwtKey::publicKeyPem("not a key", e));
    auto pair = generateKey("ED25519");
    EXPECT_FALSE(JwtKey::publicKeyPem(pair.private_pem, e));  // a private key is not public
    auto small = generateKey("RSA", 1024);
    EXPECT_FALSE(JwtKey::publicKeyPem(small.public_pem, e));
    EXPECT_NE(e.find("2048"), std::string::npos);
    EXPECT_FALSE(JwtKey::secretFile("/nonexistent/secret", e));
    EXPECT_NE(e.find("cannot be read"), std::string::npos);
}

}  // namespace
}  // namespace tundra::auth
