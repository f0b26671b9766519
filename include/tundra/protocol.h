// SPDX-License-Identifier: Apache-2.0
// Wire constants of the Tundra Chat Protocol v1: message types, flags, error codes, events and
// limits. The byte layout itself is specified once, in docs/PROTOCOL.md; this header only names it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tundra {

/// Protocol version carried in byte 0 of every frame.
inline constexpr std::uint8_t kProtocolVersion = 1;
/// Size of the fixed frame header: version, flags, sequence(u16), length(u16), type.
inline constexpr std::size_t kHeaderSize = 7;
/// Largest payload the wire format can carry (length field 0xFFFF minus the type byte).
inline constexpr std::size_t kMaxPayload = 65534;
/// Longest user or agent name in bytes.
inline constexpr std::size_t kMaxNameLength = 32;

/// Message type codes (byte 6 of the header). Some codes are used in both directions.
enum class MsgType : std::uint8_t {
    Register = 0x01,
    Message = 0x02,
    AgentCommand = 0x03,
    Pong = 0x04,
    HealthCheck = 0x05,
    ListUsers = 0x06,
    Logout = 0x07,
    AuthRefresh = 0x08,  ///< v1 extension: a new token for the live connection
    System = 0x10,
    BroadcastMessage = 0x11,
    BroadcastAgent = 0x12,
    Image = 0x13,
    Ping = 0x14,
    Error = 0x15,
    HealthResult = 0x16,
    Ack = 0x17,
    UserList = 0x18,
};

/// Header flag bits.
namespace flags {
inline constexpr std::uint8_t kAck = 0x01;     ///< client asks for an ACK
inline constexpr std::uint8_t kReplay = 0x02;  ///< server: delivery comes from a buffer
inline constexpr std::uint8_t kKnown = kAck | kReplay;
/// REGISTER only (v1 extension): a new user created by this REGISTER is forgotten when the
/// session logs out with nothing buffered (one-shot tools). Reserved on every other type.
inline constexpr std::uint8_t kEphemeral = 0x04;
}  // namespace flags

/// Error codes carried by an ERROR frame.
enum class ErrorCode : std::uint16_t {
    UsernameTaken = 1,
    InvalidFormat = 2,
    SessionExpired = 3,
    ServerError = 4,
    NotRegistered = 5,
    UnknownRecipient = 6,
    AlreadyRegistered = 7,
    InvalidName = 8,
    TooLarge = 9,
    RateLimited = 10,
    ServerFull = 11,
    UnsupportedVersion = 12,
    UnknownType = 13,
    AuthFailed = 14,
    StorageUnavailable = 15,
    Forbidden = 16,
};
inline constexpr std::uint16_t kMaxErrorCode = 16;

/// SYSTEM frame events.
enum class SystemEvent : std::uint8_t {
    Welcome = 1,
    Joined = 2,
    Left = 3,
    Dropped = 4,
    Shutdown = 5,
    Notice = 6,
    Bye = 7,
};

/// REGISTER `kind`.
enum class ClientKind : std::uint8_t { User = 0, Agent = 1 };

/// USER_LIST entry state.
enum class UserState : std::uint8_t { Offline = 0, Online = 1, Detached = 2 };

/// A session UUID in binary RFC 4122 form; all zero means "none".
using Uuid = std::array<std::uint8_t, 16>;

/// The decoded 7-byte header.
struct FrameHeader {
    std::uint8_t version = kProtocolVersion;
    std::uint8_t flags = 0;
    std::uint16_t sequence = 0;
    std::uint16_t length = 1;  ///< payload size + 1
    std::uint8_t type = 0;     ///< raw type byte; may be a code this version does not know

    [[nodiscard]] std::size_t payloadSize() const { return length == 0 ? 0 : length - 1U; }
};

/// Upper-case wire name ("REGISTER", "BROADCAST_MESSAGE"), or "UNKNOWN".
const char* msgTypeName(std::uint8_t type);
/// Wire name of an error code ("USERNAME_TAKEN"), or "UNKNOWN".
const char* errorCodeName(ErrorCode code);
/// True for the codes a client may send (REGISTER..AUTH_REFRESH, IMAGE, PING).
bool isClientType(std::uint8_t type);
/// True for the codes this version defines at all.
bool isKnownType(std::uint8_t type);

/// Canonical 36-character lower-case text form of a UUID.
std::string uuidToString(const Uuid& id);
/// Parses the 36-character text form; false if malformed.
bool uuidFromString(std::string_view text, Uuid& out);
inline bool isNil(const Uuid& id) {
    for (auto b : id) {
        if (b != 0) {
            return false;
        }
    }
    return true;
}

}  // namespace tundra
