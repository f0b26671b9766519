// SPDX-License-Identifier: Apache-2.0
// Reconnect backoff: growth, cap, jitter bounds, reset and the attempt limit.
#include "client/backoff.h"

#include <gtest/gtest.h>

#include <vector>

namespace tundra::client {
namespace {

using std::chrono::milliseconds;

BackoffPolicy noJitter() {
    BackoffPolicy p;
    p.initial = milliseconds(100);
    p.max = milliseconds(1000);
    p.multiplier = 2.0;
    p.jitter = 0.0;
    return p;
}

TEST(Backoff, DoublesFromInitialUpToTheCap) {
    Backoff b(noJitter(), 1);
    std::vector<long> got;
    for (int i = 0; i < 7; ++i) {
        got.push_back(static_cast<long>(b.next().count()));
    }
    EXPECT_EQ(got, (std::vector<long>{100, 200, 400, 800, 1000, 1000, 1000}));
    EXPECT_EQ(b.attempts(), 7U);
}

TEST(Backoff, ResetStartsOverAtTheInitialDelay) {
    Backoff b(noJitter(), 1);
    (void)b.next();
    (void)b.next();
    b.reset();
    EXPECT_EQ(b.attempts(), 0U);
    EXPECT_EQ(b.next(), milliseconds(100));
}

TEST(Backoff, JitterStaysWithinItsBandAndUnderTheCap) {
    BackoffPolicy p = noJitter();
    p.jitter = 0.5;
    Backoff b(p, 42);
    bool varied = false;
    long first = -1;
    for (int round = 0; round < 200; ++round) {
        b.reset();
        long d0 = static_cast<long>(b.next().count());  // nominal 100
        EXPECT_GE(d0, 50);
        EXPECT_LE(d0, 150);
        if (first < 0) {
            first = d0;
        } else if (d0 != first) {
            varied = true;
        }
        for (int i = 0; i < 6; ++i) {
            EXPECT_LE(b.next(), milliseconds(1000));  // capped after jitter too
        }
    }
    EXPECT_TRUE(varied) << "jitter never changed the delay";
}

TEST(Backoff, SameSeedSameSequence) {
    BackoffPolicy p = noJitter();
    p.jitter = 0.3;
    Backoff a(p, 7);
    Backoff b(p, 7);
    for (int i = 0; i < 10; ++i) {
        EXPECT_EQ(a.next(), b.next());
    }
}

TEST(Backoff, ExhaustedAfterMaxAttempts) {
    BackoffPolicy p = noJitter();
    p.max_attempts = 3;
    Backoff b(p, 1);
    EXPECT_FALSE(b.exhausted());
    (void)b.next();
    (void)b.next();
    EXPECT_FALSE(b.exhausted());
    (void)b.next();
    EXPECT_TRUE(b.exhausted());
    b.reset();
    EXPECT_FALSE(b.exhausted());
}

TEST(Backoff, UnlimitedWhenMaxAttemptsIsZero) {
    Backoff b(noJitter(), 1);
    for (int i = 0; i < 1000; ++i) {
        (void)b.next();
    }
    EXPECT_FALSE(b.exhausted());
    EXPECT_EQ(b.next(), milliseconds(1000));  // no overflow after many attempts
}

TEST(Backoff, DegeneratePoliciesStayBounded) {
    BackoffPolicy p = noJitter();
    p.initial = milliseconds(5000);  // above the cap
    p.multiplier = 0.5;              // treated as 1
    Backoff b(p, 1);
    EXPECT_EQ(b.next(), milliseconds(1000));
    EXPECT_EQ(b.next(), milliseconds(1000));
}

}  // namespace
}  // namespace tundra::client
