// SPDX-License-Identifier: Apache-2.0
// Names and classification of the protocol v1 constants, and the UUID text form. Pure functions,
// no allocation beyond the returned string.
#include "tundra/protocol.h"

namespace tundra {

const char* msgTypeName(std::uint8_t type) {
    switch (type) {
        case 0x01:
            return "REGISTER";
        case 0x02:
            return "MESSAGE";
        case 0x03:
            return "AGENT_COMMAND";
        case 0x04:
            return "PONG";
        case 0x05:
            return "HEALTH_CHECK";
        case 0x06:
            return "LIST_USERS";
        case 0x07:
            return "LOGOUT";
        case 0x08:
            return "AUTH_REFRESH";
        case 0x10:
            return "SYSTEM";
        case 0x11:
            return "BROADCAST_MESSAGE";
        case 0x12:
            return "BROADCAST_AGENT";
        case 0x13:
            return "IMAGE";
        case 0x14:
            return "PING";
        case 0x15:
            return "ERROR";
        case 0x16:
            return "HEALTH_RESULT";
        case 0x17:
            return "ACK";
        case 0x18:
            return "USER_LIST";
        default:
            return "UNKNOWN";
    }
}

const char* errorCodeName(ErrorCode code) {
    switch (code) {
        case ErrorCode::UsernameTaken:
            return "USERNAME_TAKEN";
        case ErrorCode::InvalidFormat:
            return "INVALID_FORMAT";
        case ErrorCode::SessionExpired:
            return "SESSION_EXPIRED";
        case ErrorCode::ServerError:
            return "SERVER_ERROR";
        case ErrorCode::NotRegistered:
            return "NOT_REGISTERED";
        case ErrorCode::UnknownRecipient:
            return "UNKNOWN_RECIPIENT";
        case ErrorCode::AlreadyRegistered:
            return "ALREADY_REGISTERED";
        case ErrorCode::InvalidName:
            return "INVALID_NAME";
        case ErrorCode::TooLarge:
            return "TOO_LARGE";
        case ErrorCode::RateLimited:
            return "RATE_LIMITED";
        case ErrorCode::ServerFull:
            return "SERVER_FULL";
        case ErrorCode::UnsupportedVersion:
            return "UNSUPPORTED_VERSION";
        case ErrorCode::UnknownType:
            return "UNKNOWN_TYPE";
        case ErrorCode::AuthFailed:
            return "AUTH_FAILED";
        case ErrorCode::StorageUnavailable:
            return "STORAGE_UNAVAILABLE";
        case ErrorCode::Forbidden:
            return "FORBIDDEN";
    }
    return "UNKNOWN";
}

bool isClientType(std::uint8_t type) {
    return (type >= 0x01 && type <= 0x08) || type == 0x13 || type == 0x14;
}

bool isKnownType(std::uint8_t type) {
    return (type >= 0x01 && type <= 0x08) || (type >= 0x10 && type <= 0x18);
}

namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

// Offsets of the dashes in the 8-4-4-4-12 text form.
constexpr bool isDashPosition(std::size_t i) { return i == 8 || i == 13 || i == 18 || i == 23; }

int hexValue(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

}  // namespace

std::string uuidToString(const Uuid& id) {
    std::string out;
    out.reserve(36);
    for (std::size_t i = 0; i < id.size(); ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            out.push_back('-');
        }
        out.push_back(kHexDigits[id[i] >> 4]);
        out.push_back(kHexDigits[id[i] & 0x0F]);
    }
    return out;
}

bool uuidFromString(std::string_view text, Uuid& out) {
    if (text.size() != 36) {
        return false;
    }
    Uuid parsed{};
    std::size_t byte = 0;
    for (std::size_t i = 0; i < text.size();) {
        if (isDashPosition(i)) {
            if (text[i] != '-') {
                return false;
            }
            ++i;
            continue;
        }
        const int hi = hexValue(text[i]);
        const int lo = hexValue(text[i + 1]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        parsed[byte++] = static_cast<std::uint8_t>((hi << 4) | lo);
        i += 2;
    }
    out = parsed;
    return true;
}

}  // namespace tundra
