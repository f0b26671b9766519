// SPDX-License-Identifier: Apache-2.0
// common::SharedBytes: one allocation of immutable bytes shared by reference count; copies share,
// moves transfer, the last holder frees (ASan would report a leak or a double free), and the
// count is safe across threads (the store's thread holds frames too).
#include "common/shared_bytes.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace tundra::common {
namespace {

TEST(SharedBytesTest, CopyOfHoldsTheBytesAndIsARange) {
    const std::vector<std::uint8_t> in{1, 2, 3, 250};
    const SharedBytes b = SharedBytes::copyOf(in);
    ASSERT_TRUE(b);
    EXPECT_EQ(b->size(), 4U);
    EXPECT_FALSE(b->empty());
    EXPECT_EQ((*b)[3], 250);
    const std::span<const std::uint8_t> view(*b);
    EXPECT_EQ(std::vector<std::uint8_t>(view.begin(), view.end()), in);
    EXPECT_NE(b->data(), in.data()) << "a copy, not a view";
    const SharedBytes text = SharedBytes::copyOf(std::string_view("hi"));
    EXPECT_EQ(std::string(text->begin(), text->end()), "hi");
}

TEST(SharedBytesTest, EmptyIsNotNull) {
    const SharedBytes empty = SharedBytes::copyOf(std::span<const std::uint8_t>{});
    ASSERT_TRUE(empty);
    EXPECT_TRUE(empty->empty());
    EXPECT_EQ(empty->begin(), empty->end());
    const SharedBytes null;
    EXPECT_FALSE(null);
    EXPECT_TRUE(null == nullptr);
    EXPECT_EQ(null.use_count(), 0);
}

TEST(SharedBytesTest, CopiesShareMovesTransferAndTheLastHolderFrees) {
    SharedBytes a = SharedBytes::copyOf(std::string_view("abc"));
    const auto* block = a.get();
    {
        SharedBytes b = a;  // NOLINT(performance-unnecessary-copy-initialization): the point
        EXPECT_EQ(a.use_count(), 2);
        EXPECT_TRUE(a == b);
        EXPECT_EQ(b.get(), block);
        SharedBytes c = std::move(b);
        EXPECT_EQ(a.use_count(), 2) << "a move does not count";
        EXPECT_FALSE(b) << "moved from";  // NOLINT(bugprone-use-after-move): checked on purpose
        SharedBytes d;
        d = c;
        EXPECT_EQ(a.use_count(), 3);
        d = d;  // NOLINT(clang-diagnostic-self-assign-overloaded): self-assignment is safe
        EXPECT_EQ(a.use_count(), 3);
        d.reset();
        EXPECT_EQ(a.use_count(), 2);
    }
    EXPECT_EQ(a.use_count(), 1);
    SharedBytes other = SharedBytes::copyOf(std::string_view("xy"));
    other = a;  // frees "xy"
    EXPECT_EQ(a.use_count(), 2);
    EXPECT_EQ(std::string(other->begin(), other->end()), "abc");
}

TEST(SharedBytesTest, AllocateIsFilledByTheCallerBeforeSharing) {
    std::uint8_t* at = nullptr;
    const SharedBytes b = SharedBytes::allocate(3, at);
    ASSERT_NE(at, nullptr);
    at[0] = 'x';
    at[1] = 'y';
    at[2] = 'z';
    EXPECT_EQ(std::string(b->begin(), b->end()), "xyz");
    EXPECT_EQ(b->data(), at);
}

TEST(SharedBytesTest, CountsStayExactAcrossThreads) {
    const SharedBytes shared = SharedBytes::copyOf(std::string_view("frame"));
    constexpr int kRounds = 20000;
    auto churn = [&shared] {
        for (int i = 0; i < kRounds; ++i) {
            SharedBytes copy = shared;
            SharedBytes moved = std::move(copy);
            EXPECT_EQ(moved->size(), 5U);
        }
    };
    std::thread t1(churn);
    std::thread t2(churn);
    t1.join();
    t2.join();
    EXPECT_EQ(shared.use_count(), 1);
}

}  // namespace
}  // namespace tundra::common
