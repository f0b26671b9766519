// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the frame layer. It decodes arbitrary bytes twice, once with the pure
// decodeFrame() over the whole input and once through FrameDecoder fed in input-chosen chunks,
// and checks that both agree, that nothing is over-consumed, that errors are terminal, that
// every frame re-encodes to its own bytes and that the payload parsers never read past the end.
//
// Input layout: byte 0 is a control byte, the rest is the stream.
//   bits 0-1  payload limit: 0 -> kMaxPayload, 1 -> 64, 2 -> 7, 3 -> 0
//   bits 2-7  chunk seed: the chunk fed at stream offset p is 1 + (stream[p] + seed) % 23 bytes
// A seed file is therefore 0x00 followed by frames (tests/fuzz/corpus/).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

#include "tundra/codec.h"
#include "tundra/messages.h"

// Aborts (which both libFuzzer and the replay test report) with the failed condition.
#define TUNDRA_FUZZ_CHECK(cond)                                                           \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            std::abort();                                                                 \
        }                                                                                 \
    } while (false)

namespace tundra {
namespace {

struct Seen {
    FrameHeader header;
    Bytes payload;
};

std::size_t payloadLimit(std::uint8_t control) {
    constexpr std::size_t kLimits[] = {kMaxPayload, 64, 7, 0};
    return kLimits[control & 0x03];
}

// A parse that succeeds and is encoded again must give a prefix of the original payload:
// fields come back in the same order and only trailing bytes (ignored by design) may be lost.
void checkReencodedPrefix(ByteSpan original, const Bytes& frame) {
    TUNDRA_FUZZ_CHECK(frame.size() >= kHeaderSize);
    const ByteSpan again = ByteSpan(frame).subspan(kHeaderSize);
    TUNDRA_FUZZ_CHECK(again.size() <= original.size());
    TUNDRA_FUZZ_CHECK(std::memcmp(again.data(), original.data(), again.size()) == 0);
}

template <typename T>
void parseAndReencode(ByteSpan payload) {
    T m;
    if (msg::parse(payload, m) == nullptr) {
        if constexpr (std::is_same_v<T, msg::Register> || std::is_same_v<T, msg::Message> ||
                      std::is_same_v<T, msg::AgentCommand> || std::is_same_v<T, msg::Image>) {
            checkReencodedPrefix(payload, msg::encode(m, 1, 0));
        } else {
            checkReencodedPrefix(payload, msg::encode(m, 1));
        }
    }
}

// Runs the parser matching the frame type. WELCOME's `resumed` byte is normalised to 0/1 by
// parse, so that byte is normalised in the original before comparing.
void exerciseParsers(const FrameHeader& h, ByteSpan payload) {
    switch (static_cast<MsgType>(h.type)) {
        case MsgType::Register:
            parseAndReencode<msg::Register>(payload);
            break;
        case MsgType::Message:
            parseAndReencode<msg::Message>(payload);
            break;
        case MsgType::AgentCommand:
            parseAndReencode<msg::AgentCommand>(payload);
            break;
        case MsgType::ListUsers:
            parseAndReencode<msg::ListUsers>(payload);
            break;
        case MsgType::Ping:
        case MsgType::Pong: {
            msg::Ping m;
            if (msg::parse(payload, m) == nullptr) {
                checkReencodedPrefix(payload, msg::encodePing(MsgType::Ping, m.token, 0));
            }
            break;
        }
        case MsgType::System: {
            msg::System m;
            if (msg::parse(payload, m) == nullptr) {
                Bytes original(payload.begin(), payload.end());
                if (m.event == SystemEvent::Welcome) {
                    const std::size_t at = 1 + 2 + m.text.size() + 16;
                    original[at] = original[at] != 0 ? 1 : 0;
                }
                checkReencodedPrefix(original, msg::encode(m, 0));
            }
            break;
        }
        case MsgType::BroadcastMessage:
        case MsgType::BroadcastAgent:
        case MsgType::Image: {
            msg::Delivery d;
            if (msg::parse(static_cast<MsgType>(h.type), payload, d) == nullptr) {
                const Bytes frame = msg::encode(d);
                checkReencodedPrefix(payload, frame);
                TUNDRA_FUZZ_CHECK(msg::deliveryPayloadSize(d) == frame.size() - kHeaderSize);
            }
            if (static_cast<MsgType>(h.type) == MsgType::Image) {
                parseAndReencode<msg::Image>(payload);
            }
            break;
        }
        case MsgType::Error:
            parseAndReencode<msg::Error>(payload);
            break;
        case MsgType::HealthResult:
            parseAndReencode<msg::HealthResult>(payload);
            break;
        case MsgType::Ack:
            parseAndReencode<msg::Ack>(payload);
            break;
        case MsgType::UserList:
            parseAndReencode<msg::UserList>(payload);
            break;
        default:
            break;
    }
}

// Pass 1: decodeFrame over the whole stream. Returns the frames and the final result.
DecodeResult decodeAll(ByteSpan stream, std::size_t limit, std::vector<Seen>& frames,
                       std::size_t& offset) {
    offset = 0;
    while (true) {
        const ByteSpan rest = stream.subspan(offset);
        const DecodeResult r = decodeFrame(rest, limit);
        if (r.status != DecodeStatus::Frame) {
            TUNDRA_FUZZ_CHECK(r.consumed == 0);
            if (r.status == DecodeStatus::Error) {
                TUNDRA_FUZZ_CHECK(!rest.empty());
                TUNDRA_FUZZ_CHECK(r.error == ErrorCode::UnsupportedVersion ||
                                  r.error == ErrorCode::InvalidFormat ||
                                  r.error == ErrorCode::TooLarge);
            }
            return r;
        }
        const std::size_t payload_size = r.header.payloadSize();
        TUNDRA_FUZZ_CHECK(r.consumed == kHeaderSize + payload_size);
        TUNDRA_FUZZ_CHECK(r.consumed <= rest.size());
        TUNDRA_FUZZ_CHECK(payload_size <= limit);
        TUNDRA_FUZZ_CHECK(r.payload.data() == rest.data() + kHeaderSize);
        TUNDRA_FUZZ_CHECK(r.payload.size() == payload_size);
        // Re-encoding the header and payload gives back exactly the consumed bytes.
        const Bytes again =
            FrameWriter(static_cast<MsgType>(r.header.type), r.header.sequence, r.header.flags)
                .tail(r.payload)
                .finish();
        TUNDRA_FUZZ_CHECK(again.size() == r.consumed);
        TUNDRA_FUZZ_CHECK(std::memcmp(again.data(), rest.data(), r.consumed) == 0);
        // A strict prefix of a frame is never an error and never a frame.
        for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{6}, r.consumed - 1}) {
            if (n < r.consumed) {
                TUNDRA_FUZZ_CHECK(decodeFrame(rest.first(n), limit).status ==
                                  DecodeStatus::NeedMore);
            }
        }
        exerciseParsers(r.header, r.payload);
        frames.push_back({r.header, Bytes(r.payload.begin(), r.payload.end())});
        offset += r.consumed;
    }
}

bool sameHeader(const FrameHeader& a, const FrameHeader& b) {
    return a.version == b.version && a.flags == b.flags && a.sequence == b.sequence &&
           a.length == b.length && a.type == b.type;
}

}  // namespace
}  // namespace tundra

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tundra;
    if (size == 0) {
        return 0;
    }
    const std::uint8_t control = data[0];
    const std::size_t limit = payloadLimit(control);
    const std::size_t seed = control >> 2;
    const ByteSpan stream(data + 1, size - 1);

    std::vector<Seen> expected;
    std::size_t decoded_bytes = 0;
    const DecodeResult last = decodeAll(stream, limit, expected, decoded_bytes);

    // Pass 2: the same stream through FrameDecoder in chunks chosen by the input.
    FrameDecoder decoder(limit);
    std::size_t frames_seen = 0;
    std::size_t offset = 0;
    bool failed = false;
    while (offset < stream.size()) {
        const std::size_t chunk =
            std::min<std::size_t>(1 + (stream[offset] + seed) % 23, stream.size() - offset);
        decoder.append(stream.subspan(offset, chunk));
        offset += chunk;
        while (true) {
            const DecodeResult r = decoder.next();
            if (r.status == DecodeStatus::NeedMore) {
                break;
            }
            if (r.status == DecodeStatus::Error) {
                failed = true;
                TUNDRA_FUZZ_CHECK(last.status == DecodeStatus::Error);
                TUNDRA_FUZZ_CHECK(r.error == last.error);
                TUNDRA_FUZZ_CHECK(frames_seen == expected.size());
                break;
            }
            TUNDRA_FUZZ_CHECK(!failed);
            TUNDRA_FUZZ_CHECK(frames_seen < expected.size());
            const Seen& want = expected[frames_seen++];
            TUNDRA_FUZZ_CHECK(sameHeader(r.header, want.header));
            TUNDRA_FUZZ_CHECK(r.payload.size() == want.payload.size());
            TUNDRA_FUZZ_CHECK(
                r.payload.empty() ||
                std::memcmp(r.payload.data(), want.payload.data(), r.payload.size()) == 0);
        }
        if (failed) {
            break;
        }
    }
    if (failed) {
        // Errors are terminal: more bytes, even a valid frame, change nothing.
        const std::uint8_t valid[] = {0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x05};
        decoder.append(valid);
        const DecodeResult again = decoder.next();
        TUNDRA_FUZZ_CHECK(again.status == DecodeStatus::Error);
        TUNDRA_FUZZ_CHECK(again.error == last.error);
    } else {
        TUNDRA_FUZZ_CHECK(last.status == DecodeStatus::NeedMore);
        TUNDRA_FUZZ_CHECK(frames_seen == expected.size());
        TUNDRA_FUZZ_CHECK(decoder.buffered() == stream.size() - decoded_bytes);
    }
    return 0;
}
