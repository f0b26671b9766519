// SPDX-License-Identifier: Apache-2.0
// The accounts file (TOML: [[account]] name, hash, kind, roles) and argon2id password hashes
// with libsodium (crypto_pwhash_str / crypto_pwhash_str_verify).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tundra/protocol.h"

namespace tundra::auth {

struct Account {
    std::string name;
    std::string hash;  ///< "$argon2id$v=19$..." (crypto_pwhash_str)
    ClientKind kind = ClientKind::User;
    std::vector<std::string> roles;
    bool has_roles = false;
};

class Accounts {
public:
    /// Parses an accounts file's text; nullopt with `error` as "SOURCE:LINE: message".
    static std::optional<Accounts> parse(std::string_view text, const std::string& source,
                                         std::string& error);
    static std::optional<Accounts> loadFile(const std::string& path, std::string& error);
    [[nodiscard]] const Account* find(std::string_view name) const;
    [[nodiscard]] std::size_t size() const { return accounts_.size(); }

private:
    std::map<std::string, Account, std::less<>> accounts_;
};

/// argon2id hash of `password` (t=2, m=19 MiB, p=1: the OWASP minimum); "" on failure.
std::string hashPassword(std::string_view password);
/// True if `password` matches `hash` (crypto_pwhash_str_verify; constant time in the password).
bool verifyPassword(const std::string& hash, std::string_view password);
/// An accounts-file entry, as `tundrad hash-password` prints it.
std::string accountEntry(std::string_view name, std::string_view hash, ClientKind kind,
                         const std::vector<std::string>& roles);

}  // namespace tundra::auth
