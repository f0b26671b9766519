// SPDX-License-Identifier: Apache-2.0
// Shared fixture for the core unit tests: a SessionManager driven by a FakeClock and observed
// through a RecordingOutbox, plus helpers that build client frames with the real codec.
#pragma once

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/session_manager.h"
#include "support/fake_clock.h"
#include "support/recording_outbox.h"
#include "tundra/codec.h"
#include "tundra/messages.h"

namespace tundra::testing {

using core::ConnId;
using core::DisconnectReason;

/// Deterministic version-4 UUIDs: byte 15 counts up, version/variant bits set.
inline Uuid testUuid(std::uint32_t n) {
    Uuid id{};
    id[0] = 0xab;
    id[12] = static_cast<std::uint8_t>(n >> 24);
    id[13] = static_cast<std::uint8_t>(n >> 16);
    id[14] = static_cast<std::uint8_t>(n >> 8);
    id[15] = static_cast<std::uint8_t>(n);
    id[6] = 0x40;  // version 4
    id[8] = 0x80;  // RFC 4122 variant
    return id;
}

/// A REGISTER frame.
inline Bytes registerFrame(std::string_view name, Uuid session = {},
                           ClientKind kind = ClientKind::User, std::uint64_t last_id = 0,
                           std::uint16_t seq = 1) {
    return msg::encode(msg::Register{name, session, kind, "", last_id}, seq);
}

/// A frame with an arbitrary header (flags, type) around `payload`.
inline Bytes rawFrame(std::uint8_t type, std::uint8_t flag_bits, std::uint16_t seq,
                      const Bytes& payload = {}) {
    Bytes out(kHeaderSize + payload.size());
    encodeHeader(out.data(), static_cast<MsgType>(type), flag_bits, seq, payload.size());
    out[6] = type;  // encodeHeader takes a MsgType; keep the raw byte as given
    std::copy(payload.begin(), payload.end(), out.begin() + kHeaderSize);
    return out;
}

class CoreTest : public ::testing::Test {
protected:
    // Heartbeats are off the way (1 h) unless a test sets its own interval, so long clock jumps
    // in session tests do not also kill silent test connections.
    // Logs stay quiet unless TUNDRA_TEST_LOG is set.
    CoreTest() {
        config.ping_interval_ms = 3'600'000;
        config.register_timeout_ms = 0;  // likewise for silent unregistered connections
        if (std::getenv("TUNDRA_TEST_LOG") == nullptr) {
            spdlog::set_level(spdlog::level::warn);
        }
    }

    /// The manager is built on first use so tests can change `config` first.
    core::SessionManager& sm() {
        if (!mgr_) {
            mgr_ = std::make_unique<core::SessionManager>(
                config, out, clock, [this] { return fail_uuids ? Uuid{} : testUuid(++uuids_); },
                [this] { return stats; });
        }
        return *mgr_;
    }

    /// Drops the manager (a "restart"): the next sm() builds a new one from `config`.
    void resetManager() { mgr_.reset(); }

    void connect(ConnId conn) { sm().onConnect(conn); }

    void disconnect(ConnId conn, const std::vector<std::uint64_t>& unwritten = {},
                    DisconnectReason reason = DisconnectReason::PeerClosed) {
        sm().onDisconnect(conn, reason, unwritten);
    }

    /// Feeds one encoded frame from `conn` as the server would after decodeFrame().
    void feed(ConnId conn, const Bytes& frame) {
        auto r = decodeFrame(ByteSpan(frame.data(), frame.size()), kMaxPayload);
        ASSERT_EQ(r.status, DecodeStatus::Frame);
        sm().onFrame(conn, r.header, r.payload);
    }

    /// Frames queued to `conn` since the last take() (and forgets them).
    std::vector<SentFrame> take(ConnId conn) { return out.take(conn); }

    /// Exactly one frame queued to `conn` since the last take(); fails the test otherwise.
    SentFrame one(ConnId conn) {
        auto frames = out.take(conn);
        EXPECT_EQ(frames.size(), 1U) << "frames queued to conn " << conn;
        if (frames.empty()) {
            return SentFrame{conn, core::share(rawFrame(0x15, 0, 0)), 0, {}};
        }
        return frames.front();
    }

    /// Connects `conn` and registers `name` with a new session; returns the WELCOME and
    /// discards everything else queued to `conn`.
    msg::Welcome login(ConnId conn, std::string_view name, ClientKind kind = ClientKind::User) {
        connect(conn);
        feed(conn, registerFrame(name, {}, kind));
        auto frames = take(conn);
        EXPECT_FALSE(frames.empty());
        if (frames.empty()) {
            return {};
        }
        auto s = asSystem(frames.front());
        EXPECT_EQ(s.event, SystemEvent::Welcome) << "REGISTER " << name;
        return s.welcome;
    }

    /// Sends a MESSAGE; returns what came back to the sender (ACK or ERROR when asked).
    std::vector<SentFrame> say(ConnId conn, std::string_view to, std::string_view text,
                               bool ack = true, std::uint16_t seq = 5) {
        feed(conn, msg::encode(msg::Message{to, text}, seq, ack ? flags::kAck : 0));
        return take(conn);
    }

    /// Sends a MESSAGE with ACK and returns the ACK (fails the test on anything else).
    msg::Ack sayAck(ConnId conn, std::string_view to, std::string_view text) {
        auto frames = say(conn, to, text);
        EXPECT_EQ(frames.size(), 1U);
        if (frames.empty()) {
            return {};
        }
        return asAck(frames.front());
    }

    /// Sends a frame and expects exactly one ERROR back; returns its code.
    std::uint16_t errorFor(ConnId conn, const Bytes& frame) {
        feed(conn, frame);
        auto frames = take(conn);
        EXPECT_EQ(frames.size(), 1U);
        if (frames.size() != 1U || frames[0].type() != MsgType::Error) {
            ADD_FAILURE() << "no single ERROR";
            return 0;
        }
        return asError(frames[0]).code;
    }

    /// Ticks without moving the clock: sends the JOINED/LEFT queued since the last tick.
    void flushPresence() { sm().tick(); }

    /// Advances the clock by `ms` and ticks once.
    void advance(std::int64_t ms) {
        clock.advance(ms);
        sm().tick();
    }

    /// The USER_LIST state of `name` as seen by `asker` (which must be registered).
    std::optional<UserState> stateOf(ConnId asker, std::string_view name) {
        feed(asker, msg::encode(msg::ListUsers{name}, 3));
        auto frames = take(asker);
        for (const auto& f : frames) {
            if (f.type() == MsgType::UserList) {
                auto l = asUserList(f);
                for (const auto& u : l.users) {
                    if (u.name == name) {
                        return u.state;
                    }
                }
                return std::nullopt;
            }
        }
        ADD_FAILURE() << "no USER_LIST";
        return std::nullopt;
    }

    static std::uint16_t code(ErrorCode c) { return static_cast<std::uint16_t>(c); }

    core::CoreConfig config;
    FakeClock clock;
    RecordingOutbox out;
    core::ServerStats stats{1111, 2222, 3333};
    bool fail_uuids = false;

private:
    std::uint32_t uuids_ = 0;
    std::unique_ptr<core::SessionManager> mgr_;
};

}  // namespace tundra::testing
