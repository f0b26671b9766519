// SPDX-License-Identifier: Apache-2.0
// The two core::Authenticator implementations: signed tokens (JWT) and the accounts file
// (passwords), each with the optional anonymous mode for names starting with "guest-".
#pragma once

#include <array>
#include <string>
#include <unordered_map>
#include <vector>

#include "auth/accounts.h"
#include "auth/jwt.h"
#include "auth/roles.h"
#include "core/authenticator.h"

namespace tundra::auth {

/// Settings tls_client_identity and tls_client_roles: whether a verified TLS client
/// certificate whose subject CN is the REGISTER username authenticates it without a token,
/// and the roles such an identity gets (an account of that name gives its own instead).
struct CertificateRules {
    bool enabled = false;
    std::vector<std::string> roles;  ///< empty: the role "user"
};

/// auth = tokens: the token is a JWT whose `sub` is the REGISTER username and whose `kind`
/// (default "user") is the REGISTER kind; `roles` give the permissions.
class TokenAuthenticator final : public core::Authenticator {
public:
    TokenAuthenticator(JwtKey key, JwtRules rules, Anonymous anonymous, CertificateRules certs = {})
        : key_(std::move(key)),
          rules_(std::move(rules)),
          anonymous_(anonymous),
          certs_(std::move(certs)) {}
    [[nodiscard]] core::AuthResult verify(std::string_view username, std::string_view token,
                                          ClientKind kind, std::int64_t now_s) const override;
    [[nodiscard]] core::AuthResult certificate(std::string_view username,
                                               ClientKind kind) const override;

private:
    JwtKey key_;
    JwtRules rules_;
    Anonymous anonymous_;
    CertificateRules certs_;
};

/// auth = accounts: the token is the account's password; kind must be the account's.
/// Verification is argon2id (tens of milliseconds of CPU on the loop thread), so a password
/// that verified once is remembered as a keyed BLAKE2b digest (with the hash it matched) and
/// later REGISTERs with it cost microseconds; failures are limited per source address by the
/// core.
class AccountsAuthenticator final : public core::Authenticator {
public:
    AccountsAuthenticator(Accounts accounts, Anonymous anonymous, CertificateRules certs = {});
    [[nodiscard]] core::AuthResult verify(std::string_view username, std::string_view token,
                                          ClientKind kind, std::int64_t now_s) const override;
    /// An account of that name gives its kind (which must match) and roles; any other name
    /// gets CertificateRules::roles.
    [[nodiscard]] core::AuthResult certificate(std::string_view username,
                                               ClientKind kind) const override;
    [[nodiscard]] std::size_t size() const { return accounts_.size(); }

private:
    using Digest = std::array<unsigned char, 32>;
    [[nodiscard]] Digest digest(const Account& a, std::string_view password) const;
    Accounts accounts_;
    Anonymous anonymous_;
    CertificateRules certs_;
    std::array<unsigned char, 32> cache_key_{};
    mutable std::unordered_map<std::string, Digest> verified_;
};

/// The anonymous rule shared by both: an empty token is accepted for a "guest-" name when
/// `mode` is not Off.
core::AuthResult anonymousResult(std::string_view username, ClientKind kind, Anonymous mode);

}  // namespace tundra::auth
