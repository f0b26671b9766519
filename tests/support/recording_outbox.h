// SPDX-License-Identifier: Apache-2.0
// Test support: a core::Outbox that records every queued frame per connection and every close
// (a doubled close fails the test), with helpers that decode recorded frames through the real codec
// (msg::parse).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "core/outbox.h"
#include "tundra/codec.h"
#include "tundra/messages.h"

namespace tundra::testing {

/// One frame the core queued, with its decoded header and a payload view into `frame`.
struct SentFrame {
    core::ConnId conn = 0;
    SharedFrame frame;
    std::uint64_t delivery_id = 0;
    FrameHeader header;
    bool now = false;  ///< queued through sendNow()

    [[nodiscard]] MsgType type() const { return static_cast<MsgType>(header.type); }
    [[nodiscard]] ByteSpan payload() const {
        return ByteSpan(frame->data() + kHeaderSize, frame->size() - kHeaderSize);
    }
    [[nodiscard]] bool replay() const { return (header.flags & flags::kReplay) != 0; }
};

class RecordingOutbox final : public core::Outbox {
public:
    bool send(core::ConnId conn, SharedFrame frame, std::uint64_t delivery_id) override {
        if (closing_.contains(conn) || refusing_.contains(conn)) {
            return false;  // like the server: nothing is queued to a closing connection
        }
        SentFrame f;
        f.conn = conn;
        f.delivery_id = delivery_id;
        auto r = decodeFrame(ByteSpan(frame->data(), frame->size()), kMaxPayload);
        EXPECT_EQ(r.status, DecodeStatus::Frame) << "the core queued an undecodable frame";
        EXPECT_EQ(r.consumed, frame->size()) << "one frame per send";
        f.header = r.header;
        f.frame = std::move(frame);
        sent.push_back(std::move(f));
        return true;
    }
    bool sendNow(core::ConnId conn, SharedFrame frame) override {
        if (!send(conn, std::move(frame), 0)) {
            return false;
        }
        sent.back().now = true;
        return true;
    }

    /// Every close is recorded; a second request for the same connection fails the test (the
    /// core decides a close once, and the server relies on that).
    void closeAfterFlush(core::ConnId conn) override {
        EXPECT_FALSE(closing_.contains(conn))
            << "closeAfterFlush requested twice for conn " << conn;
        closing_.insert(conn);
        closes.push_back(conn);
    }

    /// Makes send() to `conn` fail from now on (as if the server had already dropped it).
    void refuse(core::ConnId conn) { refusing_.insert(conn); }
    [[nodiscard]] bool isClosing(core::ConnId conn) const { return closing_.contains(conn); }
    /// How many times closeAfterFlush() was requested for `conn`.
    [[nodiscard]] std::size_t closeCount(core::ConnId conn) const {
        return static_cast<std::size_t>(std::count(closes.begin(), closes.end(), conn));
    }

    /// Frames queued to `conn`, oldest first.
    [[nodiscard]] std::vector<SentFrame> framesFor(core::ConnId conn) const {
        std::vector<SentFrame> out;
        for (const auto& f : sent) {
            if (f.conn == conn) {
                out.push_back(f);
            }
        }
        return out;
    }

    /// Removes and returns the frames queued to `conn` (what a reader would consume).
    std::vector<SentFrame> take(core::ConnId conn) {
        std::vector<SentFrame> out;
        auto keep = std::remove_if(sent.begin(), sent.end(), [&](const SentFrame& f) {
            if (f.conn == conn) {
                out.push_back(f);
                return true;
            }
            return false;
        });
        sent.erase(keep, sent.end());
        return out;
    }

    /// Delivery ids queued to `conn` (what a dead connection would report as unwritten).
    [[nodiscard]] std::vector<std::uint64_t> deliveryIdsFor(core::ConnId conn) const {
        std::vector<std::uint64_t> ids;
        for (const auto& f : sent) {
            if (f.conn == conn && f.delivery_id != 0) {
                ids.push_back(f.delivery_id);
            }
        }
        return ids;
    }

    void clear() { sent.clear(); }

    std::vector<SentFrame> sent;
    std::vector<core::ConnId> closes;

private:
    std::set<core::ConnId> closing_;
    std::set<core::ConnId> refusing_;
};

// ---- decoding helpers: a failed parse or a wrong type fails the calling test ---------------

inline msg::System asSystem(const SentFrame& f) {
    msg::System s;
    EXPECT_EQ(f.type(), MsgType::System) << "got " << msgTypeName(f.header.type);
    EXPECT_EQ(msg::parse(f.payload(), s), nullptr);
    return s;
}

inline msg::Error asError(const SentFrame& f) {
    msg::Error e;
    EXPECT_EQ(f.type(), MsgType::Error) << "got " << msgTypeName(f.header.type);
    EXPECT_EQ(msg::parse(f.payload(), e), nullptr);
    return e;
}

inline msg::Delivery asDelivery(const SentFrame& f) {
    msg::Delivery d;
    EXPECT_EQ(msg::parse(f.type(), f.payload(), d), nullptr) << msgTypeName(f.header.type);
    return d;
}

inline msg::Ack asAck(const SentFrame& f) {
    msg::Ack a;
    EXPECT_EQ(f.type(), MsgType::Ack) << "got " << msgTypeName(f.header.type);
    EXPECT_EQ(msg::parse(f.payload(), a), nullptr);
    return a;
}

inline msg::UserList asUserList(const SentFrame& f) {
    msg::UserList l;
    EXPECT_EQ(f.type(), MsgType::UserList) << "got " << msgTypeName(f.header.type);
    EXPECT_EQ(msg::parse(f.payload(), l), nullptr);
    return l;
}

inline msg::Ping asPing(const SentFrame& f) {
    msg::Ping p;
    EXPECT_EQ(msg::parse(f.payload(), p), nullptr);
    return p;
}

inline std::string asJson(const SentFrame& f) {
    EXPECT_EQ(f.type(), MsgType::HealthResult) << "got " << msgTypeName(f.header.type);
    auto p = f.payload();
    return std::string(p.begin(), p.end());
}

}  // namespace tundra::testing
