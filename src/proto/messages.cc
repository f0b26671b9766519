// SPDX-License-Identifier: Apache-2.0
// One parser and one encoder per v1 payload. Parsers enforce field rules only (docs/PROTOCOL.md,
// "Field types"); naming and routing rules are the caller's. Bytes after the last known field
// are ignored, as the protocol reserves them for later versions.
#include "tundra/messages.h"

#include <cstring>

namespace tundra::msg {

namespace {

// Returns nullptr if the reader is still fine, else its failure reason.
const char* status(const PayloadReader& r) { return r.ok() ? nullptr : r.error(); }

bool isDeliveryType(MsgType type) {
    return type == MsgType::BroadcastMessage || type == MsgType::BroadcastAgent ||
           type == MsgType::Image;
}

char asciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Payload size of one USER_LIST entry: name:str, kind:u8, state:u8.
std::size_t userEntrySize(const UserEntry& e) { return 2 + e.name.size() + 2; }

}  // namespace

bool isImageMime(std::string_view mime) {
    constexpr std::string_view kPrefix = "image/";
    if (mime.size() <= kPrefix.size()) {
        return false;
    }
    for (std::size_t i = 0; i < kPrefix.size(); ++i) {
        if (asciiLower(mime[i]) != kPrefix[i]) {
            return false;
        }
    }
    return true;
}

// ---- client to server -------------------------------------------------------------------------

const char* parse(ByteSpan payload, Register& out) {
    PayloadReader r(payload);
    out.username = r.str();
    out.session = r.uuid();
    const std::uint8_t kind = r.u8();
    out.token = r.str();
    out.last_id = r.u64();
    if (!r.ok()) {
        return r.error();
    }
    if (kind > static_cast<std::uint8_t>(ClientKind::Agent)) {
        return "kind must be 0 or 1";
    }
    out.kind = static_cast<ClientKind>(kind);
    return nullptr;
}

const char* parse(ByteSpan payload, Message& out) {
    PayloadReader r(payload);
    out.to = r.str();
    out.text = r.tail();
    if (!r.ok()) {
        return r.error();
    }
    if (out.text.empty()) {
        return "empty text";
    }
    if (!isValidUtf8(out.text)) {
        return "text is not valid UTF-8";
    }
    return nullptr;
}

const char* parse(ByteSpan payload, AgentCommand& out) {
    PayloadReader r(payload);
    out.to = r.str();
    out.reply_to = r.u64();
    out.command = r.str();
    out.args = r.tail();
    return status(r);
}

const char* parse(ByteSpan payload, Image& out) {
    PayloadReader r(payload);
    out.to = r.str();
    out.mime = r.str();
    out.data = r.tail();
    if (!r.ok()) {
        return r.error();
    }
    if (!isImageMime(out.mime)) {
        return "mime is not image/*";
    }
    if (out.data.empty()) {
        return "empty image data";
    }
    return nullptr;
}

const char* parse(ByteSpan payload, ListUsers& out) {
    PayloadReader r(payload);
    out.prefix = r.str();
    return status(r);
}

const char* parse(ByteSpan payload, AuthRefresh& out) {
    PayloadReader r(payload);
    out.token = r.str();
    return status(r);
}

const char* parse(ByteSpan payload, Ping& out) {
    PayloadReader r(payload);
    out.token = r.u64();
    return status(r);
}

// ---- server to client -------------------------------------------------------------------------

const char* parse(ByteSpan payload, System& out) {
    PayloadReader r(payload);
    out.event = static_cast<SystemEvent>(r.u8());
    out.text = r.str();
    switch (out.event) {
        case SystemEvent::Welcome:
            out.welcome.session = r.uuid();
            out.welcome.resumed = r.u8() != 0;
            out.welcome.pending = r.u32();
            out.welcome.heartbeat_s = r.u16();
            out.welcome.session_timeout_s = r.u16();
            out.welcome.max_payload = r.u16();
            break;
        case SystemEvent::Joined:
        case SystemEvent::Left:
            out.name = r.str();
            break;
        case SystemEvent::Dropped:
            out.dropped = r.u32();
            break;
        case SystemEvent::Shutdown:
            out.retry_after_s = r.u16();
            break;
        default:
            // NOTICE and BYE have no fields of their own; an event from a later version has
            // none we know of, and its text is still worth showing.
            break;
    }
    return status(r);
}

const char* parse(MsgType type, ByteSpan payload, Delivery& out) {
    if (!isDeliveryType(type)) {
        return "not a delivery type";
    }
    PayloadReader r(payload);
    out.type = type;
    out.id = r.u64();
    out.time_ms = r.u64();
    out.from = r.str();
    out.to = r.str();
    switch (type) {
        case MsgType::BroadcastMessage:
            out.text = r.tail();
            break;
        case MsgType::BroadcastAgent:
            out.reply_to = r.u64();
            out.command = r.str();
            out.args = r.tail();
            break;
        default:  // Image
            out.mime = r.str();
            out.data = r.tail();
            break;
    }
    return status(r);
}

const char* parse(ByteSpan payload, Error& out) {
    PayloadReader r(payload);
    out.code = r.u16();
    out.text = r.str();
    return status(r);
}

const char* parse(ByteSpan payload, Ack& out) {
    PayloadReader r(payload);
    out.id = r.u64();
    out.delivered = r.u32();
    out.buffered = r.u32();
    return status(r);
}

const char* parse(ByteSpan payload, UserList& out) {
    PayloadReader r(payload);
    const std::uint16_t count = r.u16();
    out.users.clear();
    if (!r.ok()) {
        return r.error();
    }
    // Every entry takes at least 4 bytes: a count beyond that is a lie, and reserving for it
    // would let a peer make us allocate for 65535 entries.
    if (static_cast<std::size_t>(count) * 4 > r.remaining()) {
        return "truncated";
    }
    out.users.reserve(count);
    for (std::uint16_t i = 0; i < count; ++i) {
        UserEntry e;
        e.name = r.str();
        e.kind = static_cast<ClientKind>(r.u8());
        e.state = static_cast<UserState>(r.u8());
        if (!r.ok()) {
            out.users.clear();
            return r.error();
        }
        out.users.push_back(e);
    }
    return nullptr;
}

const char* parse(ByteSpan payload, HealthResult& out) {
    PayloadReader r(payload);
    out.json = r.tail();
    if (!isValidUtf8(out.json)) {
        return "json is not valid UTF-8";
    }
    return nullptr;
}

// ---- encoding ---------------------------------------------------------------------------------

Bytes encode(const Register& m, std::uint16_t seq, std::uint8_t flags) {
    return FrameWriter(MsgType::Register, seq, flags)
        .str(m.username)
        .uuid(m.session)
        .u8(static_cast<std::uint8_t>(m.kind))
        .str(m.token)
        .u64(m.last_id)
        .finish();
}

Bytes encode(const Message& m, std::uint16_t seq, std::uint8_t flags) {
    return FrameWriter(MsgType::Message, seq, flags).str(m.to).tail(m.text).finish();
}

Bytes encode(const AgentCommand& m, std::uint16_t seq, std::uint8_t flags) {
    return FrameWriter(MsgType::AgentCommand, seq, flags)
        .str(m.to)
        .u64(m.reply_to)
        .str(m.command)
        .tail(m.args)
        .finish();
}

Bytes encode(const Image& m, std::uint16_t seq, std::uint8_t flags) {
    return FrameWriter(MsgType::Image, seq, flags).str(m.to).str(m.mime).tail(m.data).finish();
}

Bytes encode(const ListUsers& m, std::uint16_t seq) {
    return FrameWriter(MsgType::ListUsers, seq).str(m.prefix).finish();
}

Bytes encode(const AuthRefresh& m, std::uint16_t seq) {
    return FrameWriter(MsgType::AuthRefresh, seq).str(m.token).finish();
}

Bytes encodePing(MsgType type, std::uint64_t token, std::uint16_t seq) {
    return FrameWriter(type, seq).u64(token).finish();
}

Bytes encodeEmpty(MsgType type, std::uint16_t seq) { return FrameWriter(type, seq).finish(); }

Bytes encode(const System& m, std::uint16_t seq) {
    FrameWriter w(MsgType::System, seq);
    w.u8(static_cast<std::uint8_t>(m.event)).str(m.text);
    switch (m.event) {
        case SystemEvent::Welcome:
            w.uuid(m.welcome.session)
                .u8(m.welcome.resumed ? 1 : 0)
                .u32(m.welcome.pending)
                .u16(m.welcome.heartbeat_s)
                .u16(m.welcome.session_timeout_s)
                .u16(m.welcome.max_payload);
            break;
        case SystemEvent::Joined:
        case SystemEvent::Left:
            w.str(m.name);
            break;
        case SystemEvent::Dropped:
            w.u32(m.dropped);
            break;
        case SystemEvent::Shutdown:
            w.u16(m.retry_after_s);
            break;
        case SystemEvent::Notice:
        case SystemEvent::Bye:
            break;
    }
    return w.finish();
}

namespace {
// Appends big-endian integers, u16-length strings and raw bytes at a cursor in a buffer whose
// size was computed exactly beforehand (deliveryPayloadSize): no growth, no checks per field.
struct Cursor {
    std::uint8_t* at;
    template <std::size_t N>
    void bigEndian(std::uint64_t v) {
        storeBigEndian<N>(at, v);
        at += N;
    }
    void tail(std::string_view s) {
        if (!s.empty()) {
            std::memcpy(at, s.data(), s.size());
            at += s.size();
        }
    }
    void str(std::string_view s) {
        bigEndian<2>(s.size());
        tail(s);
    }
};
}  // namespace

bool encodeInto(const Delivery& m, std::span<std::uint8_t> out, std::uint16_t seq,
                std::uint8_t flags) {
    const std::size_t payload = deliveryPayloadSize(m);
    if (!isDeliveryType(m.type) || payload > kMaxPayload || out.size() != kHeaderSize + payload ||
        m.from.size() > 0xFFFF || m.to.size() > 0xFFFF || m.command.size() > 0xFFFF ||
        m.mime.size() > 0xFFFF) {
        return false;
    }
    encodeHeader(out.data(), m.type, flags, seq, payload);
    Cursor w{out.data() + kHeaderSize};
    w.bigEndian<8>(m.id);
    w.bigEndian<8>(m.time_ms);
    w.str(m.from);
    w.str(m.to);
    switch (m.type) {
        case MsgType::BroadcastMessage:
            w.tail(m.text);
            break;
        case MsgType::BroadcastAgent:
            w.bigEndian<8>(m.reply_to);
            w.str(m.command);
            w.tail(m.args);
            break;
        default:  // Image
            w.str(m.mime);
            w.tail(m.data);
            break;
    }
    return true;
}

Bytes encode(const Delivery& m, std::uint16_t seq, std::uint8_t flags) {
    Bytes out(kHeaderSize + deliveryPayloadSize(m));
    if (!encodeInto(m, out, seq, flags)) {
        return {};
    }
    return out;
}

Bytes encode(const Error& m, std::uint16_t seq) {
    return FrameWriter(MsgType::Error, seq).u16(m.code).str(m.text).finish();
}

Bytes encode(const Ack& m, std::uint16_t seq) {
    return FrameWriter(MsgType::Ack, seq).u64(m.id).u32(m.delivered).u32(m.buffered).finish();
}

Bytes encode(const UserList& m, std::uint16_t seq) {
    std::size_t size = 2;
    std::size_t count = 0;
    for (const auto& e : m.users) {
        if (count == 0xFFFF || size + userEntrySize(e) > kMaxPayload) {
            break;
        }
        size += userEntrySize(e);
        ++count;
    }
    FrameWriter w(MsgType::UserList, seq);
    w.u16(static_cast<std::uint16_t>(count));
    for (std::size_t i = 0; i < count; ++i) {
        const auto& e = m.users[i];
        w.str(e.name).u8(static_cast<std::uint8_t>(e.kind)).u8(static_cast<std::uint8_t>(e.state));
    }
    return w.finish();
}

Bytes encode(const HealthResult& m, std::uint16_t seq) {
    return FrameWriter(MsgType::HealthResult, seq).tail(m.json).finish();
}

std::size_t deliveryPayloadSize(const Delivery& m) {
    std::size_t size = 8 + 8 + 2 + m.from.size() + 2 + m.to.size();
    switch (m.type) {
        case MsgType::BroadcastMessage:
            size += m.text.size();
            break;
        case MsgType::BroadcastAgent:
            size += 8 + 2 + m.command.size() + m.args.size();
            break;
        case MsgType::Image:
            size += 2 + m.mime.size() + m.data.size();
            break;
        default:
            break;
    }
    return size;
}

}  // namespace tundra::msg
