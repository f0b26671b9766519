// SPDX-License-Identifier: Apache-2.0
// The built-in role table and the anonymous permission sets.
#include "auth/roles.h"

#include "core/authenticator.h"

namespace tundra::auth {

namespace p = core::perm;

std::optional<std::uint32_t> rolePermissions(std::string_view role) {
    if (role == "admin") {
        return p::kAll;
    }
    if (role == "user") {
        return p::kBroadcast | p::kDirect | p::kAgentCommand | p::kImage | p::kListUsers;
    }
    if (role == "agent") {
        return p::kDirect | p::kAgentCommand | p::kImage | p::kListUsers;
    }
    if (role == "readonly") {
        return p::kListUsers;
    }
    return std::nullopt;
}

std::uint32_t permissionsOf(const std::vector<std::string>& roles, bool has_roles) {
    if (!has_roles) {
        return *rolePermissions("user");
    }
    std::uint32_t bits = 0;
    for (const auto& r : roles) {
        bits |= rolePermissions(r).value_or(0);
    }
    return bits;
}

std::optional<Anonymous> parseAnonymous(std::string_view text) {
    if (text == "off") {
        return Anonymous::Off;
    }
    if (text == "read-only") {
        return Anonymous::ReadOnly;
    }
    if (text == "direct-only") {
        return Anonymous::DirectOnly;
    }
    return std::nullopt;
}

std::uint32_t anonymousPermissions(Anonymous mode) {
    switch (mode) {
        case Anonymous::Off:
            return 0;
        case Anonymous::ReadOnly:
            return p::kListUsers;
        case Anonymous::DirectOnly:
            return p::kDirect | p::kListUsers;
    }
    return 0;
}

}  // namespace tundra::auth
