// SPDX-License-Identifier: Apache-2.0
// Typed views of every v1 payload, with one parser and one encoder per message. Parsers check
// field rules only (lengths, UTF-8, NUL, kind, mime, non-empty text/data) and report them as
// INVALID_FORMAT; name rules and routing belong to the caller. Views borrow from the payload.
// Layouts: docs/PROTOCOL.md, section "Messages".
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "tundra/codec.h"
#include "tundra/protocol.h"

namespace tundra::msg {

// ---- client to server ----------------------------------------------------------------------

struct Register {
    std::string_view username;
    Uuid session{};
    ClientKind kind = ClientKind::User;
    std::string_view token;
    std::uint64_t last_id = 0;
};

struct Message {
    std::string_view to;    ///< empty = everyone
    std::string_view text;  ///< non-empty UTF-8, may hold NUL
};

struct AgentCommand {
    std::string_view to;  ///< empty = all agents
    std::uint64_t reply_to = 0;
    std::string_view command;
    std::string_view args;
};

struct Image {
    std::string_view to;
    std::string_view mime;  ///< image/<subtype>, ASCII case-insensitive prefix
    std::string_view data;  ///< non-empty, any bytes
};

struct ListUsers {
    std::string_view prefix;
};

/// AUTH_REFRESH (v1 extension): a new token for the connection's identity.
struct AuthRefresh {
    std::string_view token;
};

/// PING (both directions) and PONG carry a u64 token; PONG echoes the whole PING payload.
struct Ping {
    std::uint64_t token = 0;
};

// ---- server to client ----------------------------------------------------------------------

struct Welcome {
    Uuid session{};
    bool resumed = false;
    std::uint32_t pending = 0;
    std::uint16_t heartbeat_s = 0;
    std::uint16_t session_timeout_s = 0;
    std::uint16_t max_payload = 0;
};

/// A SYSTEM frame; which of the event fields is meaningful depends on `event`.
struct System {
    SystemEvent event = SystemEvent::Notice;
    std::string_view text;
    Welcome welcome{};                ///< Welcome
    std::string_view name;            ///< Joined, Left
    std::uint32_t dropped = 0;        ///< Dropped
    std::uint16_t retry_after_s = 0;  ///< Shutdown
};

/// BROADCAST_MESSAGE (0x11), BROADCAST_AGENT (0x12) and server IMAGE (0x13) share a prefix.
struct Delivery {
    MsgType type = MsgType::BroadcastMessage;
    std::uint64_t id = 0;
    std::uint64_t time_ms = 0;
    std::string_view from;
    std::string_view to;
    std::string_view text;       ///< BroadcastMessage
    std::uint64_t reply_to = 0;  ///< BroadcastAgent
    std::string_view command;    ///< BroadcastAgent
    std::string_view args;       ///< BroadcastAgent
    std::string_view mime;       ///< Image
    std::string_view data;       ///< Image
};

struct Error {
    std::uint16_t code = 0;  ///< raw: a client must survive codes it does not know
    std::string_view text;
};

struct Ack {
    std::uint64_t id = 0;
    std::uint32_t delivered = 0;
    std::uint32_t buffered = 0;
};

struct UserEntry {
    std::string_view name;
    ClientKind kind = ClientKind::User;
    UserState state = UserState::Offline;
};

struct UserList {
    std::vector<UserEntry> users;
};

struct HealthResult {
    std::string_view json;
};

// ---- parsing: nullptr on success, else a short reason (the error is INVALID_FORMAT) ---------

const char* parse(ByteSpan payload, Register& out);
const char* parse(ByteSpan payload, Message& out);
const char* parse(ByteSpan payload, AgentCommand& out);
/// Client IMAGE (to, mime, data).
const char* parse(ByteSpan payload, Image& out);
const char* parse(ByteSpan payload, ListUsers& out);
const char* parse(ByteSpan payload, AuthRefresh& out);
const char* parse(ByteSpan payload, Ping& out);
const char* parse(ByteSpan payload, System& out);
/// `type` selects the layout: BroadcastMessage, BroadcastAgent or Image.
const char* parse(MsgType type, ByteSpan payload, Delivery& out);
const char* parse(ByteSpan payload, Error& out);
const char* parse(ByteSpan payload, Ack& out);
const char* parse(ByteSpan payload, UserList& out);
const char* parse(ByteSpan payload, HealthResult& out);

/// True if `mime` is "image/" (ASCII case-insensitive) followed by a non-empty subtype.
bool isImageMime(std::string_view mime);

// ---- encoding: a complete frame; empty if the payload would exceed kMaxPayload --------------

Bytes encode(const Register& m, std::uint16_t seq, std::uint8_t flags = 0);
Bytes encode(const Message& m, std::uint16_t seq, std::uint8_t flags = 0);
Bytes encode(const AgentCommand& m, std::uint16_t seq, std::uint8_t flags = 0);
/// Client IMAGE.
Bytes encode(const Image& m, std::uint16_t seq, std::uint8_t flags = 0);
Bytes encode(const ListUsers& m, std::uint16_t seq);
Bytes encode(const AuthRefresh& m, std::uint16_t seq);
/// PING when `type` is Ping, PONG when Pong.
Bytes encodePing(MsgType type, std::uint64_t token, std::uint16_t seq);
/// An empty-payload frame (HEALTH_CHECK, LOGOUT).
Bytes encodeEmpty(MsgType type, std::uint16_t seq);
Bytes encode(const System& m, std::uint16_t seq);
Bytes encode(const Delivery& m, std::uint16_t seq = 0, std::uint8_t flags = 0);
/// encode() of a delivery into `out`, which must be exactly kHeaderSize +
/// deliveryPayloadSize(m) bytes (a buffer the caller allocated once, e.g. a shared frame).
/// False, with `out` unspecified, for a type that is no delivery, a payload over kMaxPayload or
/// a buffer of another size.
bool encodeInto(const Delivery& m, std::span<std::uint8_t> out, std::uint16_t seq = 0,
                std::uint8_t flags = 0);
Bytes encode(const Error& m, std::uint16_t seq);
Bytes encode(const Ack& m, std::uint16_t seq);
/// Encodes as many entries as fit one frame; `count` is the number encoded.
Bytes encode(const UserList& m, std::uint16_t seq);
Bytes encode(const HealthResult& m, std::uint16_t seq);

/// Size of the delivery frame payload for a message with these variable parts, so a sender
/// can be refused with TOO_LARGE before anything is built.
std::size_t deliveryPayloadSize(const Delivery& m);

}  // namespace tundra::msg
