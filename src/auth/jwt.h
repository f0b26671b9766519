// SPDX-License-Identifier: Apache-2.0
// JSON Web Tokens (RFC 7519) as tundrad takes them: HS256 with a shared secret, EdDSA (Ed25519)
// or RS256 with a public key, verified with OpenSSL libcrypto; claims read with nlohmann-json.
// Also signing, for `tundrad token` and the tests. Pure computation: the time is passed in.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tundra::auth {

/// Tokens longer than this are refused before any parsing (the REGISTER field allows more).
inline constexpr std::size_t kDefaultMaxTokenBytes = 4096;

/// A verification or signing key: an HS256 secret, or an Ed25519 / RSA key (public for
/// verifying, private for signing). Move-only; owns the OpenSSL key.
class JwtKey {
public:
    enum class Alg { HS256, EdDSA, RS256 };

    /// An HS256 secret (at least 32 bytes).
    static std::optional<JwtKey> secret(std::string bytes, std::string& error);
    /// A PEM public key ("BEGIN PUBLIC KEY"): Ed25519 -> EdDSA, RSA (2048 bits or more) ->
    /// RS256.
    static std::optional<JwtKey> publicKeyPem(std::string_view pem, std::string& error);
    /// A PEM private key (PKCS#8 or traditional): Ed25519 or RSA, for signing.
    static std::optional<JwtKey> privateKeyPem(std::string_view pem, std::string& error);
    /// Reads a file: secret (trailing whitespace trimmed) or PEM key.
    static std::optional<JwtKey> secretFile(const std::string& path, std::string& error);
    static std::optional<JwtKey> publicKeyFile(const std::string& path, std::string& error);
    static std::optional<JwtKey> privateKeyFile(const std::string& path, std::string& error);

    JwtKey(JwtKey&&) noexcept;
    JwtKey& operator=(JwtKey&&) noexcept;
    ~JwtKey();

    [[nodiscard]] Alg alg() const { return alg_; }
    /// "HS256", "EdDSA" or "RS256".
    [[nodiscard]] const char* algName() const;

    /// Signs `header_json`.`claims_json` (each base64url-encoded) as given, whatever they
    /// hold: the tests use it to build malformed tokens. Empty on failure (a public key).
    [[nodiscard]] std::string signRaw(std::string_view header_json,
                                      std::string_view claims_json) const;
    /// True if `sig` is a valid signature of `input` under this key.
    [[nodiscard]] bool verifySignature(std::string_view input, std::string_view sig) const;

private:
    struct Pkey;
    JwtKey(Alg alg, std::string secret, std::unique_ptr<Pkey> pkey, bool is_private);
    Alg alg_;
    std::string secret_;
    std::unique_ptr<Pkey> pkey_;
    bool private_ = false;
};

/// What tundrad requires of a token besides its signature.
struct JwtRules {
    std::int64_t leeway_s = 30;  ///< clock skew allowed on exp and nbf
    std::string audience;        ///< non-empty: `aud` must be or contain it
    std::string issuer;          ///< non-empty: `iss` must equal it
    std::size_t max_token_bytes = kDefaultMaxTokenBytes;
};

/// The claims tundrad uses.
struct JwtClaims {
    std::string sub;
    std::int64_t exp = 0;
    std::int64_t nbf = 0;            ///< 0 = absent
    std::string kind = "user";       ///< "user" or "agent"
    std::vector<std::string> roles;  ///< empty = absent
    bool has_roles = false;
};

/// Verifies `token` under `key` and `rules` at Unix time `now_s`. On failure returns nullopt
/// and sets `why` (for logs only: a client is never told which part failed).
std::optional<JwtClaims> verifyJwt(const JwtKey& key, std::string_view token, const JwtRules& rules,
                                   std::int64_t now_s, std::string& why);

/// Signs a token for `claims` (sub, exp, nbf if set, kind, roles if set; aud/iss if given) with
/// the key's algorithm. Empty if the key cannot sign.
std::string mintJwt(const JwtKey& key, const JwtClaims& claims, std::int64_t iat,
                    std::string_view audience = {}, std::string_view issuer = {});

}  // namespace tundra::auth
