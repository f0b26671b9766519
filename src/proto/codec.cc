// SPDX-License-Identifier: Apache-2.0
// Frame decoding (pure decodeFrame plus the buffering FrameDecoder), FrameWriter and
// PayloadReader, the UTF-8 walker and name checks shared by every parser, and JSON string
// encoding. No syscalls, no clock.
#include "tundra/codec.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace tundra {

namespace {

std::uint16_t readU16(const std::uint8_t* p) {
    return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}

DecodeResult headerError(const FrameHeader& header, ErrorCode code, const char* reason) {
    DecodeResult r;
    r.status = DecodeStatus::Error;
    r.header = header;
    r.error = code;
    r.reason = reason;
    return r;
}

}  // namespace

// The header is checked field by field as its bytes arrive, so a peer that sends garbage is
// refused after one byte (bad version) or six (bad length) instead of being waited for. The
// result reports what was read so far: a header ERROR echoes the sequence when bytes 2-3 were
// seen and 0 otherwise (docs/PROTOCOL.md, "Decisions").
DecodeResult decodeFrame(ByteSpan in, std::size_t max_payload) {
    DecodeResult r;
    if (in.empty()) {
        return r;
    }
    const std::size_t limit = std::min(max_payload, kMaxPayload);
    FrameHeader& h = r.header;
    h.version = in[0];
    if (in.size() >= 2) {
        h.flags = in[1];
    }
    if (in.size() >= 4) {
        h.sequence = readU16(in.data() + 2);
    }
    if (in.size() >= 6) {
        h.length = readU16(in.data() + 4);
    }
    if (in.size() >= kHeaderSize) {
        h.type = in[6];
    }
    if (h.version != kProtocolVersion) {
        return headerError(h, ErrorCode::UnsupportedVersion, "unsupported protocol version");
    }
    if (in.size() < 6) {
        return r;
    }
    if (h.length == 0) {
        return headerError(h, ErrorCode::InvalidFormat, "frame length 0");
    }
    if (h.payloadSize() > limit) {
        return headerError(h, ErrorCode::TooLarge, "frame length over the limit");
    }
    const std::size_t total = kHeaderSize + h.payloadSize();
    if (in.size() < total) {
        return r;
    }
    r.status = DecodeStatus::Frame;
    r.payload = in.subspan(kHeaderSize, h.payloadSize());
    r.consumed = total;
    return r;
}

void encodeHeader(std::uint8_t* out, MsgType type, std::uint8_t flags, std::uint16_t sequence,
                  std::size_t payload_size) {
    const auto length = static_cast<std::uint16_t>(payload_size + 1);
    out[0] = kProtocolVersion;
    out[1] = flags;
    out[2] = static_cast<std::uint8_t>(sequence >> 8);
    out[3] = static_cast<std::uint8_t>(sequence & 0xFF);
    out[4] = static_cast<std::uint8_t>(length >> 8);
    out[5] = static_cast<std::uint8_t>(length & 0xFF);
    out[6] = static_cast<std::uint8_t>(type);
}

// ---- FrameWriter ------------------------------------------------------------------------------

FrameWriter::FrameWriter(MsgType type, std::uint16_t sequence, std::uint8_t flags,
                         std::size_t payload_hint)
    : type_(type),
      flags_(flags),
      sequence_(sequence),
      buf_(kHeaderSize + std::min(payload_hint, kMaxPayload)),
      end_(kHeaderSize) {}

void FrameWriter::grow(std::size_t n) { buf_.resize(std::max(end_ + n, 2 * buf_.size())); }

Bytes FrameWriter::finish() {
    if (payloadSize() > kMaxPayload) {
        buf_.clear();
        end_ = 0;
        return {};
    }
    buf_.resize(end_);
    encodeHeader(buf_.data(), type_, flags_, sequence_, payloadSize());
    return std::move(buf_);
}

// ---- PayloadReader ----------------------------------------------------------------------------

bool PayloadReader::need(std::size_t n) {
    if (!ok_) {
        return false;
    }
    if (remaining() < n) {
        fail("truncated");
        return false;
    }
    return true;
}

void PayloadReader::fail(const char* why) {
    if (ok_) {
        ok_ = false;
        error_ = why;
    }
}

std::uint8_t PayloadReader::u8() {
    if (!need(1)) {
        return 0;
    }
    return data_[pos_++];
}

std::uint16_t PayloadReader::u16() {
    if (!need(2)) {
        return 0;
    }
    const std::uint16_t v = readU16(data_.data() + pos_);
    pos_ += 2;
    return v;
}

std::uint32_t PayloadReader::u32() {
    if (!need(4)) {
        return 0;
    }
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
        v = (v << 8) | data_[pos_++];
    }
    return v;
}

std::uint64_t PayloadReader::u64() {
    if (!need(8)) {
        return 0;
    }
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) {
        v = (v << 8) | data_[pos_++];
    }
    return v;
}

std::string_view PayloadReader::str() {
    const std::uint16_t length = u16();
    if (!need(length)) {
        return {};
    }
    const std::string_view s(reinterpret_cast<const char*>(data_.data() + pos_), length);
    pos_ += length;
    if (!isValidUtf8(s)) {
        fail("invalid UTF-8");
        return {};
    }
    if (s.find('\0') != std::string_view::npos) {
        fail("NUL in string");
        return {};
    }
    return s;
}

Uuid PayloadReader::uuid() {
    Uuid id{};
    if (!need(id.size())) {
        return id;
    }
    std::copy_n(data_.begin() + static_cast<std::ptrdiff_t>(pos_), id.size(), id.begin());
    pos_ += id.size();
    return id;
}

std::string_view PayloadReader::tail() {
    if (!ok_) {
        return {};
    }
    const std::string_view s(reinterpret_cast<const char*>(data_.data() + pos_), remaining());
    pos_ = data_.size();
    return s;
}

// ---- validation -------------------------------------------------------------------------------

// RFC 3629 section 4 table: the second byte's range depends on the lead byte, which is what
// rules out overlongs (E0 80..9F, F0 80..8F), surrogates (ED A0..BF) and code points above
// U+10FFFF (F4 90..BF, F5..FF). C0, C1 and bare continuation bytes never start a sequence.
std::size_t utf8SequenceLength(std::string_view s, std::size_t i) {
    if (i >= s.size()) {
        return 0;
    }
    const auto* p = reinterpret_cast<const std::uint8_t*>(s.data()) + i;
    const std::size_t avail = s.size() - i;
    const std::uint8_t b = p[0];
    if (b < 0x80) {
        return 1;
    }
    std::size_t extra = 0;
    std::uint8_t lo = 0x80;
    std::uint8_t hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
        extra = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
        extra = 2;
        if (b == 0xE0) {
            lo = 0xA0;
        } else if (b == 0xED) {
            hi = 0x9F;
        }
    } else if (b >= 0xF0 && b <= 0xF4) {
        extra = 3;
        if (b == 0xF0) {
            lo = 0x90;
        } else if (b == 0xF4) {
            hi = 0x8F;
        }
    } else {
        return 0;
    }
    if (avail <= extra) {
        return 0;
    }
    if (p[1] < lo || p[1] > hi) {
        return 0;
    }
    for (std::size_t k = 2; k <= extra; ++k) {
        if (p[k] < 0x80 || p[k] > 0xBF) {
            return 0;
        }
    }
    return extra + 1;
}

bool isValidUtf8(std::string_view s) {
    constexpr std::uint64_t kHighBits = 0x8080808080808080ULL;
    for (std::size_t i = 0; i < s.size();) {
        // ASCII (most chat text) eight bytes at a time; the table below for the rest.
        if (s.size() - i >= sizeof(std::uint64_t)) {
            std::uint64_t word = 0;
            std::memcpy(&word, s.data() + i, sizeof word);
            if ((word & kHighBits) == 0) {
                i += sizeof word;
                continue;
            }
        }
        const std::size_t n = utf8SequenceLength(s, i);
        if (n == 0) {
            return false;
        }
        i += n;
    }
    return true;
}

namespace {
constexpr bool isPlainJsonByte(unsigned char c) {
    return c >= 0x20 && c < 0x7F && c != '"' && c != '\\';
}
}  // namespace

void appendJsonString(std::string& out, std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    out.push_back('"');
    for (std::size_t i = 0; i < s.size();) {
        // Plain printable ASCII is copied a run at a time (keys and most values are all plain).
        std::size_t run = i;
        while (run < s.size() && isPlainJsonByte(static_cast<unsigned char>(s[run]))) {
            ++run;
        }
        if (run > i) {
            out.append(s.substr(i, run - i));
            i = run;
            continue;
        }
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            const std::size_t n = utf8SequenceLength(s, i);
            if (n == 0) {
                out += "\\ufffd";
                ++i;
            } else {
                out.append(s.substr(i, n));
                i += n;
            }
            continue;
        }
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\f':
                out += "\\f";
                break;
            default:
                if (c < 0x20 || c == 0x7F) {
                    out += "\\u00";
                    out.push_back(kHex[c >> 4]);
                    out.push_back(kHex[c & 0xF]);
                } else {
                    out.push_back(static_cast<char>(c));
                }
        }
        ++i;
    }
    out.push_back('"');
}

bool isValidName(std::string_view s) {
    if (s.empty() || s.size() > kMaxNameLength) {
        return false;
    }
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '.' || c == '-';
    });
}

// ---- FrameDecoder -----------------------------------------------------------------------------

void FrameDecoder::append(ByteSpan bytes) {
    if (failed_ || bytes.empty()) {
        return;
    }
    // Consumed bytes are dropped here rather than in next(): a returned payload view must stay
    // valid until the caller appends again.
    if (pos_ > 0) {
        buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(pos_));
        pos_ = 0;
    }
    buf_.insert(buf_.end(), bytes.begin(), bytes.end());
}

DecodeResult FrameDecoder::next() {
    if (failed_) {
        return error_;
    }
    const ByteSpan pending(buf_.data() + pos_, buf_.size() - pos_);
    DecodeResult r = decodeFrame(pending, max_payload_);
    switch (r.status) {
        case DecodeStatus::Frame:
            pos_ += r.consumed;
            break;
        case DecodeStatus::NeedMore:
            break;
        case DecodeStatus::Error:
            failed_ = true;
            error_ = r;
            break;
    }
    return r;
}

}  // namespace tundra
