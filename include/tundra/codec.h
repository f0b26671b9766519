// SPDX-License-Identifier: Apache-2.0
// Frame codec: a pure, incremental header/frame decoder and the byte-level readers and writers
// used to build and parse payloads. No syscalls, no clock. Wire format: docs/PROTOCOL.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tundra/protocol.h"

namespace tundra {

using Bytes = std::vector<std::uint8_t>;
using ByteSpan = std::span<const std::uint8_t>;

/// Outcome of decodeFrame().
enum class DecodeStatus {
    Frame,     ///< a complete frame: header, payload and consumed are set
    NeedMore,  ///< not enough bytes yet; nothing consumed
    Error,     ///< the header cannot be trusted; the stream is unusable (terminal)
};

struct DecodeResult {
    DecodeStatus status = DecodeStatus::NeedMore;
    FrameHeader header{};      ///< Frame: the header; Error: the fields read so far
    ByteSpan payload{};        ///< Frame: payload bytes (a view into the input)
    std::size_t consumed = 0;  ///< Frame: header + payload size
    ErrorCode error{};         ///< Error: UnsupportedVersion, InvalidFormat or TooLarge
    const char* reason = "";   ///< Error: short human-readable explanation
};

/// Decodes at most one frame from the front of `in`. Pure function of its arguments; never
/// allocates. `max_payload` is the largest payload accepted (<= kMaxPayload).
/// Header checks run as soon as the bytes they need are present: version after byte 0,
/// length 0 and length over the limit after byte 5, so garbage is refused without waiting.
/// Flags and type are NOT checked here: they are session-level errors (frame discarded,
/// connection kept) that the caller reports.
DecodeResult decodeFrame(ByteSpan in, std::size_t max_payload);

/// Writes a 7-byte header for a payload of `payload_size` bytes into out[0..7).
void encodeHeader(std::uint8_t* out, MsgType type, std::uint8_t flags, std::uint16_t sequence,
                  std::size_t payload_size);

/// Writes the low N bytes of `v` at `at`, most significant first (the wire's integer order).
template <std::size_t N>
void storeBigEndian(std::uint8_t* at, std::uint64_t v) {
    for (std::size_t i = 0; i < N; ++i) {
        at[i] = static_cast<std::uint8_t>(v >> (8 * (N - 1 - i)));
    }
}

/// Builds a frame in one buffer: reserve the header, append fields, then finish().
/// Appending is unchecked; finish() fails (returns empty) if the payload exceeds kMaxPayload.
/// The field writers are inline: a delivery is a dozen of them, once per message.
class FrameWriter {
public:
    /// `payload_hint`: the expected payload size, allocated up front so that the frame is one
    /// allocation (it may grow past it).
    explicit FrameWriter(MsgType type, std::uint16_t sequence = 0, std::uint8_t flags = 0,
                         std::size_t payload_hint = 57);

    FrameWriter& u8(std::uint8_t v) {
        *room(1) = v;
        return *this;
    }
    FrameWriter& u16(std::uint16_t v) { return bigEndian<2>(v); }
    FrameWriter& u32(std::uint32_t v) { return bigEndian<4>(v); }
    FrameWriter& u64(std::uint64_t v) { return bigEndian<8>(v); }
    /// u16 length + bytes. Caller guarantees size <= 65535: a longer string still has all its
    /// bytes appended, so the payload is over kMaxPayload and finish() refuses the frame
    /// rather than emit a length that lies.
    FrameWriter& str(std::string_view s) {
        u16(static_cast<std::uint16_t>(s.size() < 0xFFFF ? s.size() : 0xFFFF));
        return tail(s);
    }
    FrameWriter& uuid(const Uuid& id) { return tail(ByteSpan(id.data(), id.size())); }
    FrameWriter& tail(ByteSpan bytes) {
        if (!bytes.empty()) {
            std::memcpy(room(bytes.size()), bytes.data(), bytes.size());
        }
        return *this;
    }
    FrameWriter& tail(std::string_view bytes) {
        return tail(ByteSpan(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
    }

    [[nodiscard]] std::size_t payloadSize() const { return end_ - kHeaderSize; }
    /// Fills in the header and returns the frame; an empty vector if the payload is too large.
    Bytes finish();

private:
    /// Room for `n` more bytes at the end of what is written: a pointer to them.
    std::uint8_t* room(std::size_t n) {
        if (buf_.size() - end_ < n) {
            grow(n);
        }
        std::uint8_t* at = buf_.data() + end_;
        end_ += n;
        return at;
    }
    void grow(std::size_t n);
    template <std::size_t N>
    FrameWriter& bigEndian(std::uint64_t v) {
        storeBigEndian<N>(room(N), v);
        return *this;
    }

    MsgType type_;
    std::uint8_t flags_;
    std::uint16_t sequence_;
    Bytes buf_;            // [0, end_) written; the rest is room already allocated
    std::size_t end_ = 0;  // kHeaderSize once constructed
};

/// Reads fields from a payload. Every read checks bounds; the first failure sets ok() false and
/// later reads return zero values. `str` also enforces valid UTF-8 without NUL.
class PayloadReader {
public:
    explicit PayloadReader(ByteSpan payload) : data_(payload) {}

    std::uint8_t u8();
    std::uint16_t u16();
    std::uint32_t u32();
    std::uint64_t u64();
    std::string_view str();
    Uuid uuid();
    /// The rest of the payload (may be empty).
    std::string_view tail();

    [[nodiscard]] bool ok() const { return ok_; }
    [[nodiscard]] std::size_t remaining() const { return data_.size() - pos_; }
    /// Why the first failure happened ("truncated", "invalid UTF-8", ...).
    [[nodiscard]] const char* error() const { return error_; }

private:
    bool need(std::size_t n);
    void fail(const char* why);

    ByteSpan data_;
    std::size_t pos_ = 0;
    bool ok_ = true;
    const char* error_ = "";
};

/// RFC 3629 UTF-8: no overlongs, no surrogates, nothing above U+10FFFF.
bool isValidUtf8(std::string_view s);
/// Length in bytes of the UTF-8 sequence that starts at s[i] under the same rules as
/// isValidUtf8: 1 for ASCII, 2..4 for a valid multi-byte sequence, 0 when the bytes at i do not
/// start a valid sequence (bad lead byte, bad or missing continuation) or when i >= s.size().
/// The one UTF-8 walker: isValidUtf8, the JSON string encoder and the CLI's terminal sanitiser
/// all step through text with it.
std::size_t utf8SequenceLength(std::string_view s, std::size_t i);
/// Appends `s` to `out` as a quoted JSON string (RFC 8259): '"' and '\\' escaped, \n \r \t
/// \b \f as such, other C0 controls and DEL (0x7F, for terminal safety) as \u00XX; valid
/// UTF-8 copied as is; each byte that does not start a valid sequence becomes \ufffd. The
/// result is always valid UTF-8 and valid JSON. Used by the core's HEALTH_RESULT writer and by
/// tundra-cli's JSON output.
void appendJsonString(std::string& out, std::string_view s);
/// 1..32 bytes of [A-Za-z0-9_.-].
bool isValidName(std::string_view s);

/// A stateful decoder for blocking clients: append bytes as they arrive, then pop frames.
/// Keeps at most one partial frame plus what was appended (callers append in bounded chunks).
class FrameDecoder {
public:
    explicit FrameDecoder(std::size_t max_payload = kMaxPayload) : max_payload_(max_payload) {}

    void append(ByteSpan bytes);
    /// Decodes the next frame. On Frame the payload view stays valid until the next call to
    /// append() or next(). After an Error every later call returns the same error.
    DecodeResult next();
    [[nodiscard]] std::size_t buffered() const { return buf_.size() - pos_; }

private:
    std::size_t max_payload_;
    Bytes buf_;
    std::size_t pos_ = 0;
    bool failed_ = false;
    DecodeResult error_{};
};

}  // namespace tundra
