// SPDX-License-Identifier: Apache-2.0
// Parsing the accounts file with toml++, and argon2id hashing and verification with libsodium.
#include "auth/accounts.h"

#include <sodium.h>
#include <toml++/toml.h>

#include <fstream>
#include <sstream>

#include "auth/roles.h"
#include "tundra/codec.h"

namespace tundra::auth {

namespace {

constexpr unsigned long long kOpsLimit = 2;
constexpr std::size_t kMemLimit = 19U << 20;

bool sodiumReady() {
    static const bool ok = ::sodium_init() >= 0;
    return ok;
}

std::string at(const std::string& source, const toml::source_region& where) {
    return source + ":" + std::to_string(where.begin.line) + ": ";
}

}  // namespace

std::optional<Accounts> Accounts::parse(std::string_view text, const std::string& source,
                                        std::string& error) {
    toml::table root;
    try {
        root = toml::parse(text, source);
    } catch (const toml::parse_error& e) {
        error = at(source, e.source()) + std::string(e.description());
        return std::nullopt;
    }
    Accounts out;
    for (const auto& [key, node] : root) {
        if (key.str() != "account") {
            error = at(source, node.source()) + "unknown key '" + std::string(key.str()) +
                    "' (only [[account]] tables)";
            return std::nullopt;
        }
    }
    const toml::array* list = root["account"].as_array();
    if (root.contains("account") && list == nullptr) {
        error = source + ": 'account' must be an array of tables ([[account]])";
        return std::nullopt;
    }
    if (list == nullptr) {
        return out;
    }
    for (const auto& node : *list) {
        const toml::table* t = node.as_table();
        if (t == nullptr) {
            error = at(source, node.source()) + "each account is a table";
            return std::nullopt;
        }
        const std::string where = at(source, t->source());
        Account a;
        for (const auto& [key, value] : *t) {
            const auto k = key.str();
            if (k == "name" && value.is_string()) {
                a.name = value.as_string()->get();
            } else if (k == "hash" && value.is_string()) {
                a.hash = value.as_string()->get();
            } else if (k == "kind" && value.is_string()) {
                const std::string& kind = value.as_string()->get();
                if (kind != "user" && kind != "agent") {
                    error = where + "kind must be \"user\" or \"agent\"";
                    return std::nullopt;
                }
                a.kind = kind == "agent" ? ClientKind::Agent : ClientKind::User;
            } else if (k == "roles" && value.is_array()) {
                a.has_roles = true;
                for (const auto& r : *value.as_array()) {
                    if (!r.is_string() || !rolePermissions(r.as_string()->get())) {
                        error = where +
                                "roles must be built-in role names (admin, user, agent, "
                                "readonly)";
                        return std::nullopt;
                    }
                    a.roles.push_back(r.as_string()->get());
                }
            } else {
                error = where + "unknown or mistyped key '" + std::string(k) + "'";
                return std::nullopt;
            }
        }
        if (!isValidName(a.name)) {
            error = where + "name must be 1-32 bytes of [A-Za-z0-9_.-]";
            return std::nullopt;
        }
        if (!a.hash.starts_with("$argon2id$")) {
            error = where + "hash must be an argon2id hash (tundrad hash-password prints one)";
            return std::nullopt;
        }
        const std::string name = a.name;
        if (!out.accounts_.emplace(name, std::move(a)).second) {
            error = where;
            error.append("account '").append(name).append("' listed twice");
            return std::nullopt;
        }
    }
    return out;
}

std::optional<Accounts> Accounts::loadFile(const std::string& path, std::string& error) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        error = path + ": cannot be read";
        return std::nullopt;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    return parse(ss.str(), path, error);
}

const Account* Accounts::find(std::string_view name) const {
    auto it = accounts_.find(name);
    return it == accounts_.end() ? nullptr : &it->second;
}

std::string hashPassword(std::string_view password) {
    if (!sodiumReady()) {
        return {};
    }
    char out[crypto_pwhash_STRBYTES];
    if (::crypto_pwhash_str_alg(out, password.data(), password.size(), kOpsLimit, kMemLimit,
                                crypto_pwhash_ALG_ARGON2ID13) != 0) {
        return {};
    }
    return std::string(out);
}

bool verifyPassword(const std::string& hash, std::string_view password) {
    return sodiumReady() &&
           ::crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

std::string accountEntry(std::string_view name, std::string_view hash, ClientKind kind,
                         const std::vector<std::string>& roles) {
    std::string out = "[[account]]\nname = \"" + std::string(name) + "\"\nhash = \"" +
                      std::string(hash) + "\"\nkind = \"" +
                      (kind == ClientKind::Agent ? "agent" : "user") + "\"\n";
    if (!roles.empty()) {
        out += "roles = [";
        for (std::size_t i = 0; i < roles.size(); ++i) {
            out += (i > 0 ? ", \"" : "\"") + roles[i] + "\"";
        }
        out += "]\n";
    }
    return out;
}

}  // namespace tundra::auth
