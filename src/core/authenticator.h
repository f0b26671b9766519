// SPDX-License-Identifier: Apache-2.0
// The identity interface the core asks at REGISTER and AUTH_REFRESH: who a token (a signed JWT
// or an account password) names, what that identity may do, and until when. Implemented
// outside the core (src/auth); the core only calls it and never sees keys or clocks.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "tundra/protocol.h"

namespace tundra::core {

/// What an identity may do (docs/PROTOCOL.md, "Authorization"). A bit set.
namespace perm {
inline constexpr std::uint32_t kBroadcast = 1U << 0;      ///< MESSAGE or IMAGE to everyone
inline constexpr std::uint32_t kDirect = 1U << 1;         ///< MESSAGE or IMAGE to one user
inline constexpr std::uint32_t kAgentCommand = 1U << 2;   ///< AGENT_COMMAND
inline constexpr std::uint32_t kImage = 1U << 3;          ///< IMAGE at all
inline constexpr std::uint32_t kListUsers = 1U << 4;      ///< LIST_USERS
inline constexpr std::uint32_t kHealthDetails = 1U << 5;  ///< the full HEALTH_RESULT
inline constexpr std::uint32_t kAll = (1U << 6) - 1;
}  // namespace perm

/// Who a verified token names.
struct Identity {
    std::string name;
    ClientKind kind = ClientKind::User;
    std::uint32_t permissions = perm::kAll;
};

struct AuthResult {
    bool ok = false;
    Identity identity;
    /// Unix seconds after which the identity is no longer valid (the token's exp plus the
    /// leeway); 0 = never (accounts, anonymous).
    std::int64_t expires_at_s = 0;
    /// Why it failed, for the server's debug log only: never sent to the client.
    std::string reason;
};

class Authenticator {
public:
    virtual ~Authenticator() = default;
    /// Verifies `token` (a JWT, or a password in accounts mode; empty = anonymous) for
    /// REGISTER as `username` with `kind` at Unix time `now_s`. Pure: no I/O.
    [[nodiscard]] virtual AuthResult verify(std::string_view username, std::string_view token,
                                            ClientKind kind, std::int64_t now_s) const = 0;
    /// REGISTER as `username` with an empty token on a connection whose verified TLS client
    /// certificate names `username` (its subject CN): the identity the certificate gives, or a
    /// failure when certificates do not identify users (the default).
    [[nodiscard]] virtual AuthResult certificate(std::string_view username, ClientKind kind) const {
        (void)username;
        (void)kind;
        AuthResult r;
        r.reason = "client certificates do not identify users";
        return r;
    }
};

}  // namespace tundra::core
