// SPDX-License-Identifier: Apache-2.0
// Core unit tests for the internal data structures: FrameRing (id-ordered ring of stored
// deliveries) and DeadlineWheel (coarse hashed timing wheel).
#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "core/deadline_wheel.h"
#include "core/frame_ring.h"
#include "core/session_state.h"
#include "unit/proto/test_bytes.h"

namespace tundra::core {
namespace {

using test::hex;
using test::toHex;

// core::withFlags: a stored frame sent again as a replay gets the flag on a copy.
TEST(WithFlagsTest, SetsFlagBitsOnACopyAndKeepsTheRest) {
    const Bytes original = FrameWriter(MsgType::BroadcastMessage, 0, flags::kAck).u8(7).finish();
    const SharedFrame replayed = withFlags(original, flags::kReplay);
    ASSERT_TRUE(replayed);
    EXPECT_EQ(toHex(*replayed), hex("01 03 00 00 00 02 11 07"));
    EXPECT_EQ(toHex(original), hex("01 01 00 00 00 02 11 07")) << "the original is not patched";
    auto r = decodeFrame(*replayed, kMaxPayload);
    ASSERT_EQ(r.status, DecodeStatus::Frame);
    EXPECT_EQ(r.header.flags, flags::kAck | flags::kReplay);
    // Setting a bit twice is harmless; a frame too short to hold flags is copied as is.
    EXPECT_EQ(toHex(*withFlags(*replayed, flags::kReplay)), toHex(*replayed));
    EXPECT_EQ(toHex(*withFlags(Bytes{0x01}, flags::kReplay)), hex("01"));
    EXPECT_TRUE(withFlags(Bytes{}, flags::kReplay)->empty());
}

// What FrameWriter::finish() returns for a payload too large (an empty vector) still shares as
// a non-null empty frame: send() treats it as nothing to write, never as a null to crash on.
TEST(ShareTest, AnEmptyFrameSharesAsNonNullAndEmpty) {
    const SharedFrame ok = share(FrameWriter(MsgType::Logout, 1).finish());
    ASSERT_NE(ok, nullptr);
    EXPECT_EQ(toHex(*ok), hex("01 00 00 01 00 01 07"));
    FrameWriter big(MsgType::Message);
    big.tail(Bytes(kMaxPayload + 1, 0));
    const SharedFrame failed = share(big.finish());
    ASSERT_NE(failed, nullptr);
    EXPECT_TRUE(failed->empty());
}

// ---- Outbox::sendJoined / joinedDeliveryIds ---------------------------------------------------

Bytes joinedOf(std::initializer_list<std::uint64_t> ids, std::vector<std::size_t>& ends) {
    Bytes all;
    for (std::uint64_t id : ids) {
        msg::Delivery d;
        d.id = id;
        d.from = "alice";
        d.text = "hi";
        const Bytes f = msg::encode(d);
        all.insert(all.end(), f.begin(), f.end());
        ends.push_back(all.size());
    }
    return all;
}

TEST(JoinedDeliveries, IdsOfTheFramesNotFullyWritten) {
    std::vector<std::size_t> ends;
    const Bytes all = joinedOf({41, 42, 43}, ends);
    auto ids = [&all](std::size_t written) {
        std::vector<std::uint64_t> out;
        Outbox::joinedDeliveryIds(ByteSpan(all.data(), all.size()), written, out);
        return out;
    };
    EXPECT_EQ(ids(0), (std::vector<std::uint64_t>{41, 42, 43}));
    EXPECT_EQ(ids(ends[0] - 1), (std::vector<std::uint64_t>{41, 42, 43}));
    EXPECT_EQ(ids(ends[0]), (std::vector<std::uint64_t>{42, 43}));
    EXPECT_EQ(ids(ends[1] + 1), (std::vector<std::uint64_t>{43}));
    EXPECT_TRUE(ids(all.size()).empty());
}

// The default sendJoined is a send() of each frame with its delivery id.
TEST(JoinedDeliveries, TheDefaultSendJoinedSendsEachFrameWithItsId) {
    struct Log final : Outbox {
        std::vector<std::pair<Bytes, std::uint64_t>> sent;
        bool refuse = false;
        bool send(ConnId, SharedFrame f, std::uint64_t id) override {
            if (refuse) {
                return false;
            }
            sent.emplace_back(Bytes(f->begin(), f->end()), id);
            return true;
        }
        void closeAfterFlush(ConnId) override {}
    } log;
    std::vector<std::size_t> ends;
    const Bytes all = joinedOf({7, 8}, ends);
    ASSERT_TRUE(log.sendJoined(1, core::share(all)));
    ASSERT_EQ(log.sent.size(), 2U);
    EXPECT_EQ(log.sent[0].second, 7U);
    EXPECT_EQ(log.sent[1].second, 8U);
    EXPECT_EQ(log.sent[0].first, Bytes(all.begin(), all.begin() + static_cast<long>(ends[0])));
    EXPECT_EQ(log.sent[1].first, Bytes(all.begin() + static_cast<long>(ends[0]), all.end()));
    log.refuse = true;
    EXPECT_FALSE(log.sendJoined(1, core::share(all)));
}

// Logs name a session by its first 4 hex digits only, and the text is built only when a line
// is written.
TEST(SessionText, ShowsTheFirstFourHexDigitsOrADash) {
    User u;
    EXPECT_EQ(fmt::format("{}", SessionText::of(nullptr)), "-");
    EXPECT_EQ(fmt::format("{}", SessionText::of(&u)), "-") << "nil session";
    u.session = Uuid{0x0a, 0xf3, 0x11, 0x22};
    EXPECT_EQ(fmt::format("{}", SessionText::of(&u)), "0af3..");
    EXPECT_EQ(uuidToString(u.session).substr(0, 4), "0af3");
}

// The per-connection state stays within 136 bytes: its flags share a word with the
// 24-bit bad-frame count, which stops at its cap instead of wrapping.
TEST(ConnLayout, FitsIn136BytesAndTheBadFrameCountSaturates) {
    if constexpr (sizeof(void*) == 8) {
        EXPECT_LE(sizeof(Conn), 136U);
    }
    Conn c;
    c.bad_frames = kBadFramesCap;
    c.closed = true;
    EXPECT_EQ(std::uint32_t{c.bad_frames}, kBadFramesCap);
    EXPECT_TRUE(c.closed);
    EXPECT_TRUE(c.counted);
    EXPECT_FALSE(c.awaiting_pong);
    EXPECT_GE(kBadFramesCap, 1'000'000U) << "the largest max_bad_frames must be reachable";
}

StoredFrame entry(std::uint64_t id, std::size_t size = 10) {
    return StoredFrame{core::share(Bytes(size, 0)), id};
}

std::vector<std::uint64_t> ids(const FrameRing& r) {
    std::vector<std::uint64_t> out;
    for (std::size_t i = 0; i < r.size(); ++i) {
        out.push_back(r.at(i).id);
    }
    return out;
}

TEST(FrameRingTest, PushPopKeepsOrderAcrossWrapAndGrowth) {
    FrameRing r;
    EXPECT_TRUE(r.empty());
    std::uint64_t next = 1;
    std::uint64_t expect_front = 1;
    for (int round = 0; round < 100; ++round) {
        r.pushBack(entry(next++));
        r.pushBack(entry(next++));
        EXPECT_EQ(r.popFront().id, expect_front++);
    }
    EXPECT_EQ(r.size(), 100U);
    auto v = ids(r);
    for (std::size_t i = 0; i < v.size(); ++i) {
        EXPECT_EQ(v[i], expect_front + i);
    }
}

TEST(FrameRingTest, FreedWhenEmptyAndRefilledAtItsFormerCapacity) {
    FrameRing r;
    for (std::uint64_t id = 1; id <= 20; ++id) {
        r.pushBack(entry(id));
    }
    EXPECT_EQ(r.capacity(), 32U);  // 4, 8, 16, 32
    while (!r.empty()) {
        r.popFront();
    }
    EXPECT_EQ(r.capacity(), 0U) << "an empty ring keeps no storage";
    r.pushBack(entry(21));
    EXPECT_EQ(r.capacity(), 32U) << "a refill takes back its former size in one allocation";
    r.insertSorted(entry(22));
    EXPECT_EQ(ids(r), (std::vector<std::uint64_t>{21, 22}));
}

TEST(FrameRingTest, InsertSortedFindEraseAndBounds) {
    FrameRing r;
    for (std::uint64_t id : {10, 20, 30, 40}) {
        r.pushBack(entry(id));
    }
    r.popFront();  // head moves, so inserts cross the ring's seam
    r.insertSorted(entry(25));
    r.insertSorted(entry(5));
    r.insertSorted(entry(50));
    EXPECT_EQ(ids(r), (std::vector<std::uint64_t>{5, 20, 25, 30, 40, 50}));
    EXPECT_EQ(r.find(25), 2U);
    EXPECT_EQ(r.find(26), r.size());
    EXPECT_EQ(r.upperBound(25), 3U);
    EXPECT_EQ(r.upperBound(0), 0U);
    EXPECT_EQ(r.upperBound(50), r.size());
    EXPECT_EQ(r.erase(2).id, 25U);
    EXPECT_EQ(ids(r), (std::vector<std::uint64_t>{5, 20, 30, 40, 50}));
    EXPECT_EQ(r.front().id, 5U);
    EXPECT_EQ(r.back().id, 50U);
}

TEST(FrameRingTest, ReleasesFramesWhenEmptied) {
    auto frame = core::share(Bytes{1, 2, 3});
    {
        FrameRing r;
        r.pushBack(StoredFrame{frame, 1});
        r.pushBack(StoredFrame{frame, 2});
        EXPECT_EQ(frame.use_count(), 3);
        r.erase(0);
        EXPECT_EQ(frame.use_count(), 2);
        r.popFront();
        EXPECT_EQ(frame.use_count(), 1);
        EXPECT_TRUE(r.empty());
        r.pushBack(StoredFrame{frame, 3});  // usable again after releasing its storage
        EXPECT_EQ(r.size(), 1U);
    }
    EXPECT_EQ(frame.use_count(), 1);
}

// The ring keeps its counts in 24-bit fields to stay at 16 bytes (two per user): it still
// holds max_buffered's upper limit (100,000) in order, wraps, and refills at the capacity it
// had before it emptied.
TEST(FrameRingTest, HoldsTheLargestBufferAndIsSixteenBytes) {
    static_assert(sizeof(void*) != 8 || sizeof(FrameRing) == 16);
    FrameRing r;
    constexpr std::uint64_t kMax = 100'000;
    auto frame = core::share(Bytes(4, 0));
    for (std::uint64_t id = 1; id <= kMax; ++id) {
        r.pushBack(StoredFrame{frame, id});
    }
    EXPECT_EQ(r.size(), kMax);
    EXPECT_EQ(r.capacity(), 131'072U);
    for (std::uint64_t id = 1; id <= kMax / 2; ++id) {
        ASSERT_EQ(r.popFront().id, id);
    }
    for (std::uint64_t id = kMax + 1; id <= kMax + kMax / 2; ++id) {
        r.pushBack(StoredFrame{frame, id});  // wraps around the end of the storage
    }
    EXPECT_EQ(r.size(), kMax);
    EXPECT_EQ(r.find(kMax + 7), kMax - kMax / 2 + 6);
    for (std::uint64_t id = kMax / 2 + 1; id <= kMax + kMax / 2; ++id) {
        ASSERT_EQ(r.popFront().id, id);
    }
    EXPECT_TRUE(r.empty());
    EXPECT_EQ(r.capacity(), 0U) << "freed when empty";
    r.pushBack(StoredFrame{frame, 1});
    EXPECT_EQ(r.capacity(), 131'072U) << "refilled at the capacity it had";
    r.clear();
    EXPECT_EQ(frame.use_count(), 1);
}

// KeyWheel: entries are keys only; the owner's live deadline decides what fires, stays or goes.
TEST(KeyWheelTest, FiresAtTheOwnersDeadlineAndDropsStaleEntries) {
    KeyWheel<int> w(100, 16, 0);  // one revolution = 1.6 s
    std::map<int, std::int64_t> deadline{{1, 250}, {2, 1000}, {3, 5'050}};
    for (auto [k, d] : deadline) {
        w.schedule(k, d);
    }
    EXPECT_EQ(w.size(), 3U);
    // Key 2's deadline moves earlier to 420: filed again; its entry at 1000 is now stale.
    deadline[2] = 420;
    w.schedule(2, 420);
    std::vector<std::pair<int, std::int64_t>> fired;
    auto due = [&](int k) { return deadline.count(k) != 0 ? deadline[k] : 0; };
    auto fire = [&](int k, std::int64_t d) {
        fired.emplace_back(k, d);
        deadline.erase(k);  // the owner's deadline is spent
    };
    std::int64_t now = 0;
    for (; now <= 6'000; now += 10) {
        w.advance(now, due, fire);
    }
    using P = std::pair<int, std::int64_t>;
    EXPECT_EQ(fired, (std::vector<P>{P{1, 250}, P{2, 420}, P{3, 5'050}}))
        << "each once, at its deadline, key 3 after several revolutions";
    EXPECT_EQ(w.size(), 0U) << "the stale entry was dropped";
}

TEST(KeyWheelTest, OverdueAndDuplicateEntriesFireOnce) {
    KeyWheel<int> w(100, 8, 1'000);
    std::map<int, std::int64_t> deadline{{1, 500}};  // already past: the next advance
    w.schedule(1, 500);
    w.schedule(1, 500);  // a duplicate entry for the same deadline
    int fires = 0;
    auto due = [&](int k) { return deadline.count(k) != 0 ? deadline[k] : 0; };
    w.advance(1'000, due, [&](int k, std::int64_t d) {
        ++fires;
        EXPECT_EQ(d, 500);
        deadline[k] = 1'050;  // the next deadline, later in the same tick
        w.schedule(k, 1'050);
    });
    EXPECT_EQ(fires, 1) << "the duplicate found the new deadline not due";
    w.advance(1'040, due, [&](int, std::int64_t) { ++fires; });
    EXPECT_EQ(fires, 1);
    w.advance(1'050, due, [&](int k, std::int64_t d) {
        ++fires;
        EXPECT_EQ(d, 1'050);
        deadline.erase(k);
    });
    EXPECT_EQ(fires, 2);
    EXPECT_EQ(w.size(), 0U) << "the leftover entry found no deadline and was dropped";
}

TEST(DeadlineWheelTest, FiresExactlyAtTheDeadline) {
    DeadlineWheel<int> w(100, 16, 0);
    w.schedule(1, 250);
    w.schedule(2, 1000);
    std::vector<int> fired;
    auto fire = [&](int k, std::int64_t) { fired.push_back(k); };
    w.advance(249, fire);
    EXPECT_TRUE(fired.empty());
    w.advance(250, fire);
    EXPECT_EQ(fired, std::vector<int>{1});
    w.advance(999, fire);
    EXPECT_EQ(fired.size(), 1U);
    w.advance(1000, fire);
    EXPECT_EQ(fired, (std::vector<int>{1, 2}));
    EXPECT_EQ(w.size(), 0U);
}

TEST(DeadlineWheelTest, FarDeadlinesSurviveRevolutionsAndJumps) {
    DeadlineWheel<int> w(100, 8, 0);  // one revolution = 800 ms
    w.schedule(1, 5'050);
    w.schedule(2, 130);
    std::map<int, std::int64_t> fired_at;
    std::int64_t now = 0;
    auto fire = [&](int k, std::int64_t) { fired_at[k] = now; };
    for (now = 0; now <= 6'000; now += 100) {
        w.advance(now, fire);
    }
    EXPECT_EQ(fired_at[2], 200);
    EXPECT_EQ(fired_at[1], 5'100);
    // A jump of many revolutions fires everything due, once.
    w.schedule(3, 7'000);
    w.schedule(4, 90'000);
    int count = 0;
    w.advance(50'000, [&](int k, std::int64_t) {
        EXPECT_EQ(k, 3);
        ++count;
    });
    EXPECT_EQ(count, 1);
    EXPECT_EQ(w.size(), 1U);
}

TEST(DeadlineWheelTest, RefilingFromTheCallbackWaitsForTheNextAdvance) {
    DeadlineWheel<int> w(100, 8, 0);
    w.schedule(1, 100);
    int calls = 0;
    auto refile = [&](int k, std::int64_t) {
        ++calls;
        w.schedule(k, 0);  // in the past: due on the next advance, not in this one
    };
    w.advance(100, refile);
    EXPECT_EQ(calls, 1);
    w.advance(100, refile);
    EXPECT_EQ(calls, 2);
    EXPECT_EQ(w.size(), 1U);
    w.clear();
    EXPECT_EQ(w.size(), 0U);
    w.advance(10'000, refile);
    EXPECT_EQ(calls, 2);
}

// A burst that files many entries into one slot does not keep that storage once they fired:
// 10,000 connections re-filed at once during traffic would otherwise hold ~600 bytes each of
// slot capacity for good (measured with massif on tundrad).
TEST(DeadlineWheelTest, StorageFollowsWhatIsFiledNotTheLargestBurst) {
    DeadlineWheel<std::uint64_t> w(100, 8, 0);
    EXPECT_EQ(w.capacity(), 0U);
    for (std::uint64_t k = 0; k < 10'000; ++k) {
        w.schedule(k, 300);
    }
    w.schedule(99'999, 300 + 8 * 100 * 3);  // same slot, three revolutions later
    EXPECT_GE(w.capacity(), 10'001U);
    std::size_t fired = 0;
    w.advance(300, [&](std::uint64_t, std::int64_t) { ++fired; });
    EXPECT_EQ(fired, 10'000U);
    EXPECT_EQ(w.size(), 1U);
    EXPECT_LE(w.capacity(), 64U) << "the slot keeps one entry; its burst capacity is gone";

    // Re-filed from the callback into the slot being visited: kept for the next advance, and
    // freed once those fire too.
    for (std::uint64_t k = 0; k < 5'000; ++k) {
        w.schedule(k, 400);
    }
    std::size_t refiled = 0;
    w.advance(400, [&](std::uint64_t k, std::int64_t) {
        if (k % 2 == 0) {
            w.schedule(k, 400);
            ++refiled;
        }
    });
    EXPECT_EQ(w.size(), 1U + refiled);
    w.advance(400, [](std::uint64_t, std::int64_t) {});
    EXPECT_EQ(w.size(), 1U);
    EXPECT_LE(w.capacity(), 64U);
    std::size_t last = 0;
    w.advance(300 + 8 * 100 * 3, [&](std::uint64_t k, std::int64_t) {
        EXPECT_EQ(k, 99'999U);
        ++last;
    });
    EXPECT_EQ(last, 1U);
    EXPECT_LE(w.capacity(), 8U) << "small slots keep their few entries' storage";
}

TEST(DeadlineWheelTest, TimeGoingBackwardsIsIgnored) {
    DeadlineWheel<int> w(100, 8, 1'000);
    w.schedule(1, 1'100);
    int calls = 0;
    w.advance(500, [&](int, std::int64_t) { ++calls; });
    EXPECT_EQ(calls, 0);
    w.advance(1'100, [&](int, std::int64_t) { ++calls; });
    EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace tundra::core
