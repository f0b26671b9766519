// SPDX-License-Identifier: Apache-2.0
// Core unit tests that count heap use through a replaced global operator new, plus the slabs of
// the core's object pools (common::SlabPool, whole slabs counted): the per-connection footprint
// of idle registered sessions, and that a broadcast allocates per message, not per recipient.
// Own binary, so the replacement affects nothing else.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "common/slab_pool.h"
#include "core/session_manager.h"
#include "support/fake_clock.h"
#include "tundra/messages.h"

namespace {

std::atomic<std::int64_t> g_live_bytes{0};
std::atomic<std::int64_t> g_allocations{0};
constexpr std::size_t kPrefix = alignof(std::max_align_t);

void* countedAlloc(std::size_t n) {
    void* p = std::malloc(n + kPrefix);
    if (p == nullptr) {
        throw std::bad_alloc();
    }
    *static_cast<std::size_t*>(p) = n;
    g_live_bytes += static_cast<std::int64_t>(n);
    ++g_allocations;
    return static_cast<char*>(p) + kPrefix;
}

void countedFree(void* p) {
    if (p == nullptr) {
        return;
    }
    void* base = static_cast<char*>(p) - kPrefix;
    g_live_bytes -= static_cast<std::int64_t>(*static_cast<std::size_t*>(base));
    std::free(base);
}

/// Heap through operator new and the pools' slabs.
std::int64_t liveBytes() {
    return g_live_bytes.load() + static_cast<std::int64_t>(tundra::common::SlabPool::totalBytes());
}

}  // namespace

void* operator new(std::size_t n) { return countedAlloc(n); }
void* operator new[](std::size_t n) { return countedAlloc(n); }
void operator delete(void* p) noexcept { countedFree(p); }
void operator delete[](void* p) noexcept { countedFree(p); }
void operator delete(void* p, std::size_t) noexcept { countedFree(p); }
void operator delete[](void* p, std::size_t) noexcept { countedFree(p); }

namespace tundra::testing {
namespace {

/// Accepts everything and keeps nothing, like a socket that writes at once; remembers the token
/// of the last PING per connection (in storage sized before measuring) so tests can answer it.
class NullOutbox final : public core::Outbox {
public:
    bool send(core::ConnId conn, SharedFrame frame, std::uint64_t) override {
        if (conn < ping_tokens.size() && frame->size() == kHeaderSize + 8 &&
            (*frame)[6] == static_cast<std::uint8_t>(MsgType::Ping)) {
            msg::Ping p;
            if (msg::parse(ByteSpan(frame->data() + kHeaderSize, 8), p) == nullptr) {
                ping_tokens[conn] = p.token;
            }
        }
        return true;
    }
    void closeAfterFlush(core::ConnId) override {}
    std::vector<std::uint64_t> ping_tokens;
};

void feed(core::SessionManager& sm, core::ConnId conn, const Bytes& frame) {
    auto r = decodeFrame(ByteSpan(frame.data(), frame.size()), kMaxPayload);
    sm.onFrame(conn, r.header, r.payload);
}

Uuid uuidFor(std::uint32_t n) {
    Uuid id{};
    id[0] = 1;
    id[6] = 0x40;
    id[12] = static_cast<std::uint8_t>(n >> 24);
    id[13] = static_cast<std::uint8_t>(n >> 16);
    id[14] = static_cast<std::uint8_t>(n >> 8);
    id[15] = static_cast<std::uint8_t>(n);
    return id;
}

class CoreMemoryTest : public ::testing::Test {
protected:
    CoreMemoryTest() {
        spdlog::set_level(spdlog::level::warn);
        config.max_clients = 100'000;
        config.presence_events = false;
    }

    std::unique_ptr<core::SessionManager> make() {
        return std::make_unique<core::SessionManager>(config, outbox, clock,
                                                      [this] { return uuidFor(++n_); });
    }

    /// Pre-encoded REGISTER frames, built before measuring.
    static std::vector<Bytes> registers(std::size_t n) {
        std::vector<Bytes> v;
        v.reserve(n);
        for (std::size_t i = 0; i < n; ++i) {
            v.push_back(msg::encode(
                msg::Register{fmt::format("user{:05}", i), {}, ClientKind::User, "", 0}, 1));
        }
        return v;
    }

    core::CoreConfig config;
    FakeClock clock;
    NullOutbox outbox;
    std::uint32_t n_ = 0;
};

// The core's share of an idle registered connection (the reactor's Connection and the kernel's
// socket come on top): its Conn, its User, their table links and buckets, its timer entries.
// 553 bytes before Conn was compacted and users, sessions and connections moved to intrusive
// tables; 437 after; 394 with one timer entry per connection and Conn in 136 bytes; 346 with
// the objects in slab pools, names in 16 bytes, User in 168 and 8-byte wheel entries (g++ 12,
// x86-64). The bound keeps that from creeping back.
constexpr std::int64_t kCoreIdleBytes = 380;

TEST_F(CoreMemoryTest, IdleRegisteredConnectionCostsUnder380Bytes) {
    constexpr std::size_t kConns = 5000;
    auto frames = registers(kConns);
    auto sm = make();
    const std::int64_t before = liveBytes();
    for (std::size_t i = 0; i < kConns; ++i) {
        sm->onConnect(i + 1);
        feed(*sm, i + 1, frames[i]);
    }
    const std::int64_t per_conn = (liveBytes() - before) / std::int64_t{kConns};
    EXPECT_EQ(sm->gauges().sessions_online, kConns);
    EXPECT_LE(per_conn, kCoreIdleBytes) << "bytes per idle registered connection";
    RecordProperty("bytes_per_idle_connection", static_cast<int>(per_conn));
    std::printf("bytes per idle registered connection: %lld\n", static_cast<long long>(per_conn));
}

// After traffic each user holds a delivery window; once the connection goes quiet, the PING/PONG
// round trip confirms those deliveries and the window is freed again.
TEST_F(CoreMemoryTest, IdleConnectionAfterTrafficReturnsUnder380Bytes) {
    constexpr std::size_t kConns = 1000;
    auto frames = registers(kConns);
    std::vector<Bytes> pongs(kConns + 1, Bytes(kHeaderSize + 8 + 16));
    outbox.ping_tokens.assign(kConns + 1, 0);
    Bytes hello = msg::encode(msg::Message{"", "hello everyone"}, 2);
    auto sm = make();
    const std::int64_t before = liveBytes();
    for (std::size_t i = 0; i < kConns; ++i) {
        sm->onConnect(i + 1);
        feed(*sm, i + 1, frames[i]);
    }
    for (std::size_t i = 0; i < config.max_buffered; ++i) {
        feed(*sm, 1, hello);  // every window fills up
    }
    const std::int64_t busy = (liveBytes() - before) / std::int64_t{kConns};
    EXPECT_EQ(sm->gauges().window_messages, (kConns - 1) * config.max_buffered);

    clock.advance(config.ping_interval_ms);
    sm->tick();
    for (std::size_t i = 1; i <= kConns; ++i) {
        ASSERT_NE(outbox.ping_tokens[i], 0U) << "conn " << i << " was not pinged";
        feed(*sm, i, msg::encodePing(MsgType::Pong, outbox.ping_tokens[i], 0));
    }
    const std::int64_t idle = (liveBytes() - before) / std::int64_t{kConns};
    EXPECT_EQ(sm->gauges().window_messages, 0U);
    EXPECT_LE(idle, kCoreIdleBytes)
        << "bytes per idle registered connection after traffic (busy: " << busy << ")";
    std::printf("bytes per connection: %lld with full windows, %lld idle after PONG\n",
                static_cast<long long>(busy), static_cast<long long>(idle));
}

TEST_F(CoreMemoryTest, BroadcastAllocatesPerMessageNotPerRecipient) {
    constexpr std::size_t kUsers = 500;
    auto frames = registers(kUsers);
    auto sm = make();
    for (std::size_t i = 0; i < kUsers; ++i) {
        sm->onConnect(i + 1);
        feed(*sm, i + 1, frames[i]);
    }
    Bytes hello = msg::encode(msg::Message{"", "hello everyone"}, 2, flags::kAck);
    for (std::size_t i = 0; i < 2 * config.max_buffered; ++i) {
        feed(*sm, 1, hello);  // fill every window to its steady size
    }
    const std::int64_t before = g_allocations.load();
    feed(*sm, 1, hello);
    const std::int64_t allocations = g_allocations.load() - before;
    EXPECT_EQ(sm->metrics().messages_out_total, (2 * config.max_buffered + 1) * (kUsers - 1));
    EXPECT_LE(allocations, 6) << "one broadcast to " << kUsers - 1 << " recipients";
}

// The encoder reserves the delivery's exact size: one allocation per encoded delivery, however
// long its text (a frame that outgrew its first buffer was a second allocation and a copy).
TEST(CodecAllocations, ADeliveryIsEncodedInOneAllocation) {
    for (std::size_t text_size : {0, 64, 1000, 60000}) {
        const std::string text(text_size, 'x');
        msg::Delivery d;
        d.type = MsgType::BroadcastMessage;
        d.id = 42;
        d.from = "a-sender-with-a-longer-name";
        d.to = "some-recipient";
        d.text = text;
        const std::int64_t before = g_allocations.load();
        const Bytes frame = msg::encode(d);
        EXPECT_EQ(g_allocations.load() - before, 1) << text_size << "-byte text";
        EXPECT_EQ(frame.size(), kHeaderSize + msg::deliveryPayloadSize(d));
    }
}

}  // namespace
}  // namespace tundra::testing
