// SPDX-License-Identifier: Apache-2.0
// The built-in roles and what each may do (docs/PROTOCOL.md, "Authorization"), and the
// permissions of anonymous clients.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tundra::auth {

/// The permission bits (core::perm) of one built-in role; nullopt for an unknown name.
std::optional<std::uint32_t> rolePermissions(std::string_view role);
/// The union of the roles' permissions; unknown names add nothing. No roles at all (the claim
/// or entry absent) means the role "user".
std::uint32_t permissionsOf(const std::vector<std::string>& roles, bool has_roles);

/// setting `anonymous`: off, read-only or direct-only.
enum class Anonymous { Off, ReadOnly, DirectOnly };
std::optional<Anonymous> parseAnonymous(std::string_view text);
std::uint32_t anonymousPermissions(Anonymous mode);
/// Anonymous clients (an empty token) may only take names with this prefix, so they can never
/// register as, and read the buffered messages of, a user with a token or an account.
inline constexpr std::string_view kGuestPrefix = "guest-";

}  // namespace tundra::auth
