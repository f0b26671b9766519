// SPDX-License-Identifier: Apache-2.0
// TokenAuthenticator and AccountsAuthenticator.
#include "auth/authenticators.h"

#include <sodium.h>

namespace tundra::auth {

namespace {

core::AuthResult failed(std::string why) {
    core::AuthResult r;
    r.reason = std::move(why);
    return r;
}

core::AuthResult certificateResult(std::string_view username, ClientKind kind,
                                   const CertificateRules& rules) {
    if (!rules.enabled) {
        return failed("client certificates do not identify users (tls_client_identity is off)");
    }
    core::AuthResult r;
    r.ok = true;
    r.identity = core::Identity{std::string(username), kind,
                                permissionsOf(rules.roles, !rules.roles.empty())};
    return r;
}

}  // namespace

core::AuthResult anonymousResult(std::string_view username, ClientKind kind, Anonymous mode) {
    if (mode == Anonymous::Off) {
        return failed("no token (anonymous clients are off)");
    }
    if (!username.starts_with(kGuestPrefix)) {
        return failed("no token, and anonymous names must start with \"guest-\"");
    }
    core::AuthResult r;
    r.ok = true;
    r.identity = core::Identity{std::string(username), kind, anonymousPermissions(mode)};
    return r;
}

core::AuthResult TokenAuthenticator::verify(std::string_view username, std::string_view token,
                                            ClientKind kind, std::int64_t now_s) const {
    if (token.empty()) {
        return anonymousResult(username, kind, anonymous_);
    }
    std::string why;
    auto claims = verifyJwt(key_, token, rules_, now_s, why);
    if (!claims) {
        return failed(std::move(why));
    }
    if (claims->sub != username) {
        return failed("sub is not the username");
    }
    const ClientKind claimed = claims->kind == "agent" ? ClientKind::Agent : ClientKind::User;
    if (claimed != kind) {
        return failed("kind differs from the token's");
    }
    core::AuthResult r;
    r.ok = true;
    r.identity = core::Identity{claims->sub, kind, permissionsOf(claims->roles, claims->has_roles)};
    r.expires_at_s = claims->exp + rules_.leeway_s;
    return r;
}

core::AuthResult TokenAuthenticator::certificate(std::string_view username, ClientKind kind) const {
    return certificateResult(username, kind, certs_);
}

AccountsAuthenticator::AccountsAuthenticator(Accounts accounts, Anonymous anonymous,
                                             CertificateRules certs)
    : accounts_(std::move(accounts)), anonymous_(anonymous), certs_(std::move(certs)) {
    if (::sodium_init() >= 0) {
        ::randombytes_buf(cache_key_.data(), cache_key_.size());
    }
}

AccountsAuthenticator::Digest AccountsAuthenticator::digest(const Account& a,
                                                            std::string_view password) const {
    Digest d{};
    crypto_generichash_state st;
    ::crypto_generichash_init(&st, cache_key_.data(), cache_key_.size(), d.size());
    ::crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(a.hash.data()),
                                a.hash.size() + 1);  // with its NUL: a separator
    ::crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(password.data()),
                                password.size());
    ::crypto_generichash_final(&st, d.data(), d.size());
    return d;
}

core::AuthResult AccountsAuthenticator::verify(std::string_view username, std::string_view token,
                                               ClientKind kind, std::int64_t /*now_s*/) const {
    if (token.empty()) {
        return anonymousResult(username, kind, anonymous_);
    }
    const Account* a = accounts_.find(username);
    if (a == nullptr) {
        // Hash anyway, so an unknown name costs what a wrong password costs.
        static const std::string kDummy = hashPassword("tundra-dummy-password");
        (void)verifyPassword(kDummy, token);
        return failed("no such account");
    }
    const Digest d = digest(*a, token);
    auto it = verified_.find(a->name);
    const bool cached =
        it != verified_.end() && ::sodium_memcmp(it->second.data(), d.data(), d.size()) == 0;
    if (!cached) {
        if (!verifyPassword(a->hash, token)) {
            return failed("wrong password");
        }
        if (verified_.size() >= 100'000) {
            verified_.clear();
        }
        verified_[a->name] = d;
    }
    if (a->kind != kind) {
        return failed("kind differs from the account's");
    }
    core::AuthResult r;
    r.ok = true;
    r.identity = core::Identity{a->name, kind, permissionsOf(a->roles, a->has_roles)};
    return r;
}

core::AuthResult AccountsAuthenticator::certificate(std::string_view username,
                                                    ClientKind kind) const {
    core::AuthResult r = certificateResult(username, kind, certs_);
    const Account* a = r.ok ? accounts_.find(username) : nullptr;
    if (a != nullptr) {
        if (a->kind != kind) {
            return failed("kind differs from the account's");
        }
        r.identity.permissions = permissionsOf(a->roles, a->has_roles);
    }
    return r;
}

}  // namespace tundra::auth
