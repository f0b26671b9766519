// SPDX-License-Identifier: Apache-2.0
// makeAuthenticator, `tundrad token` and `tundrad hash-password`.
#include "server/auth_setup.h"

#include <charconv>
#include <istream>

#include "auth/accounts.h"
#include "auth/authenticators.h"
#include "auth/jwt.h"
#include "auth/roles.h"
#include "server/config_file.h"
#include "tundra/codec.h"

namespace tundra::server {

namespace {

// "a,b" -> {"a", "b"}; blanks around each name and empty names are dropped.
std::vector<std::string> splitRoles(const std::string& text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= text.size()) {
        const auto comma = text.find(',', start);
        std::string role =
            text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        role.erase(0, role.find_first_not_of(" \t"));
        role.erase(role.find_last_not_of(" \t") + 1);
        if (!role.empty()) {
            out.push_back(std::move(role));
        }
        if (comma == std::string::npos) {
            break;
        }
        start = comma + 1;
    }
    return out;
}

// tls_client_identity and tls_client_roles.
bool certificateRules(const Config& config, auth::CertificateRules& out, std::string& error) {
    out.enabled = config.tls_client_identity;
    out.roles = splitRoles(config.tls_client_roles);
    for (const auto& r : out.roles) {
        if (!auth::rolePermissions(r)) {
            error = "tls_client_roles: '" + r + "' is not a role (admin, user, agent, readonly)";
            return false;
        }
    }
    return true;
}

}  // namespace

bool makeAuthenticator(const Config& config, std::shared_ptr<const core::Authenticator>& out,
                       std::string& error) {
    out.reset();
    auth::CertificateRules certs;
    if (!certificateRules(config, certs, error)) {
        return false;
    }
    if (config.auth == "none") {
        return true;
    }
    const auth::Anonymous anonymous =
        auth::parseAnonymous(config.anonymous).value_or(auth::Anonymous::Off);
    if (config.auth == "tokens" &&
        config.token_secret_file.empty() == config.token_public_key_file.empty()) {
        error = "auth = tokens needs exactly one of token_secret_file and token_public_key_file";
        return false;
    }
    if (config.auth == "accounts" && config.accounts_file.empty()) {
        error = "auth = accounts needs accounts_file";
        return false;
    }
    if (config.auth == "tokens") {
        std::optional<auth::JwtKey> key;
        if (!config.token_secret_file.empty()) {
            key = auth::JwtKey::secretFile(config.token_secret_file, error);
            if (!key) {
                error = "token_secret_file " + error;
                return false;
            }
        } else {
            key = auth::JwtKey::publicKeyFile(config.token_public_key_file, error);
            if (!key) {
                error = "token_public_key_file " + error;
                return false;
            }
        }
        auth::JwtRules rules;
        rules.leeway_s = config.token_leeway_s;
        rules.audience = config.token_audience;
        rules.issuer = config.token_issuer;
        rules.max_token_bytes = config.token_max_bytes;
        out = std::make_shared<auth::TokenAuthenticator>(std::move(*key), std::move(rules),
                                                         anonymous, std::move(certs));
        return true;
    }
    if (config.auth == "accounts") {
        auto accounts = auth::Accounts::loadFile(config.accounts_file, error);
        if (!accounts) {
            error = "accounts_file " + error;
            return false;
        }
        out = std::make_shared<auth::AccountsAuthenticator>(std::move(*accounts), anonymous,
                                                            std::move(certs));
        return true;
    }
    error = "auth: '" + config.auth + "' is not one of none, tokens, accounts";
    return false;
}

namespace {

// Options of the two commands that are not settings; the rest goes to parseArgs.
struct IdentityArgs {
    std::string user;
    ClientKind kind = ClientKind::User;
    std::vector<std::string> roles;
    bool has_roles = false;
    std::int64_t ttl_s = 3600;
    std::string private_key_file;
    std::vector<std::string> rest;
};

bool parseIdentityArgs(const std::vector<std::string>& args, bool token_options, IdentityArgs& out,
                       std::string& err) {
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        auto value = [&](std::string& v) {
            if (i + 1 >= args.size()) {
                err = a + " needs a value";
                return false;
            }
            v = args[++i];
            return true;
        };
        std::string v;
        if (a == "--user") {
            if (!value(out.user)) {
                return false;
            }
        } else if (a == "--kind") {
            if (!value(v)) {
                return false;
            }
            if (v != "user" && v != "agent") {
                err = "--kind: '" + v + "' is not user or agent";
                return false;
            }
            out.kind = v == "agent" ? ClientKind::Agent : ClientKind::User;
        } else if (a == "--roles") {
            if (!value(v)) {
                return false;
            }
            out.roles = splitRoles(v);
            out.has_roles = true;
            for (const auto& r : out.roles) {
                if (!auth::rolePermissions(r)) {
                    err = "--roles: '" + r + "' is not a role (admin, user, agent, readonly)";
                    return false;
                }
            }
        } else if (token_options && a == "--ttl") {
            if (!value(v)) {
                return false;
            }
            auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out.ttl_s);
            if (ec != std::errc{} || p != v.data() + v.size() || out.ttl_s < 1 ||
                out.ttl_s > 366LL * 86400) {
                err = "--ttl: '" + v + "' is not a number of seconds from 1 to 31622400";
                return false;
            }
        } else if (token_options && a == "--token-private-key-file") {
            if (!value(out.private_key_file)) {
                return false;
            }
        } else if (token_options) {
            out.rest.push_back(a);
        } else {
            err = "unknown option " + a;
            return false;
        }
    }
    if (!isValidName(out.user)) {
        err = "--user NAME is required: 1-32 bytes of [A-Za-z0-9_.-]";
        return false;
    }
    return true;
}

}  // namespace

int runTokenCommand(const std::vector<std::string>& args, std::int64_t now_s, std::string& out,
                    std::string& err) {
    IdentityArgs id;
    if (!parseIdentityArgs(args, true, id, err)) {
        err = "tundrad token: " + err +
              "\nUsage: tundrad token --user NAME [--kind user|agent] [--roles a,b] [--ttl "
              "SECONDS] [--config FILE | --token-secret-file FILE | --token-private-key-file "
              "FILE]\n";
        return 2;
    }
    ParsedArgs parsed = parseArgs(id.rest, loadConfigFile);
    if (parsed.action == ParsedArgs::Action::Error) {
        err = "tundrad token: " + parsed.message + "\n";
        return 2;
    }
    const Config& c = parsed.config;
    std::string error;
    std::optional<auth::JwtKey> key;
    if (!id.private_key_file.empty()) {
        key = auth::JwtKey::privateKeyFile(id.private_key_file, error);
    } else if (!c.token_secret_file.empty()) {
        key = auth::JwtKey::secretFile(c.token_secret_file, error);
    } else {
        error =
            "no key: give --token-secret-file (or token_secret_file in --config), or "
            "--token-private-key-file for EdDSA/RS256";
    }
    if (!key) {
        err = "tundrad token: " + error + "\n";
        return 2;
    }
    auth::JwtClaims claims;
    claims.sub = id.user;
    claims.exp = now_s + id.ttl_s;
    claims.kind = id.kind == ClientKind::Agent ? "agent" : "user";
    claims.roles = id.roles;
    claims.has_roles = id.has_roles;
    std::string token = auth::mintJwt(*key, claims, now_s, c.token_audience, c.token_issuer);
    if (token.empty()) {
        err = "tundrad token: signing failed\n";
        return 1;
    }
    out = token + "\n";
    return 0;
}

int runHashPasswordCommand(const std::vector<std::string>& args, std::istream& in, std::string& out,
                           std::string& err) {
    IdentityArgs id;
    if (!parseIdentityArgs(args, false, id, err)) {
        err = "tundrad hash-password: " + err +
              "\nUsage: tundrad hash-password --user NAME [--kind user|agent] [--roles a,b] "
              "< password\n";
        return 2;
    }
    std::string password;
    std::getline(in, password);
    if (!password.empty() && password.back() == '\r') {
        password.pop_back();
    }
    if (password.empty()) {
        err = "tundrad hash-password: no password on standard input\n";
        return 2;
    }
    const std::string hash = auth::hashPassword(password);
    if (hash.empty()) {
        err = "tundrad hash-password: hashing failed (out of memory?)\n";
        return 1;
    }
    out = auth::accountEntry(id.user, hash, id.kind, id.roles);
    return 0;
}

}  // namespace tundra::server
