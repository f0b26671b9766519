// SPDX-License-Identifier: Apache-2.0
#include "common/ring_queue.h"

#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <random>
#include <string>

namespace tundra::common {
namespace {

TEST(RingQueue, KeepsFifoOrderAcrossWrapAndGrowth) {
    RingQueue<std::string> q;
    std::deque<std::string> model;
    std::mt19937 rng(7);
    int next = 0;
    for (int step = 0; step < 20000; ++step) {
        // Biased to grow for the first half and to drain for the second, so the head wraps
        // at many capacities and growth happens with a wrapped head.
        const bool push = model.empty() || (rng() % 100) < (step < 10000 ? 60U : 40U);
        if (push) {
            std::string v = "value-" + std::to_string(next++);
            model.push_back(v);
            q.push_back(std::move(v));
        } else {
            ASSERT_EQ(q.front(), model.front());
            q.pop_front();
            model.pop_front();
        }
        ASSERT_EQ(q.size(), model.size());
        ASSERT_EQ(q.empty(), model.empty());
    }
    for (std::size_t i = 0; i < model.size(); ++i) {
        ASSERT_EQ(q[i], model[i]);
    }
}

TEST(RingQueue, KeepsItsStorageWhenDrainedAndReleasesPoppedValuesAtOnce) {
    RingQueue<std::shared_ptr<int>> q;
    auto held = std::make_shared<int>(1);
    for (int i = 0; i < 100; ++i) {
        q.push_back(std::shared_ptr<int>(held));
    }
    const std::size_t cap = q.capacity();
    EXPECT_GE(cap, 100U);
    EXPECT_EQ(held.use_count(), 101);
    while (!q.empty()) {
        q.pop_front();
    }
    EXPECT_EQ(held.use_count(), 1);  // a popped slot does not keep its value alive
    for (int round = 0; round < 50; ++round) {
        for (int i = 0; i < 100; ++i) {
            q.push_back(std::make_shared<int>(i));
        }
        for (int i = 0; i < 100; ++i) {
            ASSERT_EQ(*q.front(), i);
            q.pop_front();
        }
    }
    EXPECT_EQ(q.capacity(), cap);  // refilled and drained without growing again
}

}  // namespace
}  // namespace tundra::common
