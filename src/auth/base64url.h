// SPDX-License-Identifier: Apache-2.0
// Base64url (RFC 4648 section 5) without padding, as JWTs use it: a strict decoder (no padding,
// no whitespace, no other alphabet, unused trailing bits zero) and the encoder.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tundra::auth {

/// The decoded bytes, or nullopt for anything but canonical unpadded base64url.
std::optional<std::string> base64urlDecode(std::string_view text);
std::string base64urlEncode(std::string_view bytes);

}  // namespace tundra::auth
