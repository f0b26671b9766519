// SPDX-License-Identifier: Apache-2.0
// SipHash-2-4 against the authors' reference vectors, the per-process key, and KeyedStringHash:
// other keys give other hashes, and names that share a bucket under one key scatter under another.
#include "common/keyed_hash.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace tundra::common {
namespace {

// The key 00 01 .. 0f of the SipHash paper (Appendix A) and of the reference vectors.h.
constexpr SipKey kPaperKey{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};

// vectors_sip64 of the reference implementation (github.com/veorq/SipHash, vectors.h): the tag of
// the message 00 01 .. (n-1) for n = 0..17, read as little-endian 64-bit numbers. Entry 15 is the
// worked example of the paper's Appendix A (a129ca6149be45e5).
constexpr std::array<std::uint64_t, 18> kVectors = {
    0x726fdb47dd0e0e31ULL, 0x74f839c593dc67fdULL, 0x0d6c8009d9a94f5aULL, 0x85676696d7fb7e2dULL,
    0xcf2794e0277187b7ULL, 0x18765564cd99a68dULL, 0xcbc9466e58fee3ceULL, 0xab0200f58b01d137ULL,
    0x93f5f5799a932462ULL, 0x9e0082df0ba9e4b0ULL, 0x7a5dbbc594ddb9f3ULL, 0xf4b32f46226bada7ULL,
    0x751e8fbc860ee5fbULL, 0x14ea5627c0843d90ULL, 0xf723ca908e7af2eeULL, 0xa129ca6149be45e5ULL,
    0x3f2acc7f57c29bdbULL, 0x699ae9f52cbe4794ULL,
};

TEST(SipHash24, ReferenceVectors) {
    std::vector<std::uint8_t> msg;
    for (std::size_t n = 0; n < kVectors.size(); ++n) {
        EXPECT_EQ(sipHash24(kPaperKey, msg.data(), msg.size()), kVectors[n]) << "length " << n;
        msg.push_back(static_cast<std::uint8_t>(n));
    }
}

TEST(SipHash24, PaperAppendixExample) {
    const std::string msg = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
    EXPECT_EQ(sipHash24(kPaperKey, msg), 0xa129ca6149be45e5ULL);
}

TEST(ProcessHashKey, IsStableAndNotZero) {
    const SipKey& a = processHashKey();
    const SipKey& b = processHashKey();
    EXPECT_EQ(&a, &b);
    EXPECT_FALSE(a.k0 == 0 && a.k1 == 0);
    EXPECT_NE(a, kPaperKey);
    EXPECT_EQ(KeyedStringHash().key(), a);  // the default hasher uses the process key
}

TEST(KeyedStringHash, DifferentKeysGiveDifferentHashes) {
    const KeyedStringHash h1(SipKey{1, 2});
    const KeyedStringHash h2(SipKey{3, 4});
    for (const std::string& name :
         std::vector<std::string>{"alice", "bob", "a", "", std::string(32, 'z')}) {
        EXPECT_NE(h1(name), h2(name)) << name;
        EXPECT_EQ(h1(name), h1(std::string_view(name)));  // string and view agree
        EXPECT_EQ(h1(name), h1(name.c_str()));
    }
}

TEST(KeyedStringHash, NamesThatCollideUnderOneKeyScatterUnderAnother) {
    // An attacker who knew key A could pick names that all land in one of 1024 buckets. Find 32
    // such names for key A by brute force, then check that under key B they spread out.
    const KeyedStringHash a(SipKey{0x1111, 0x2222});
    const KeyedStringHash b(SipKey{0x3333, 0x4444});
    constexpr std::size_t kBuckets = 1024;
    std::vector<std::string> colliding;
    for (std::uint32_t i = 0; colliding.size() < 32; ++i) {
        std::string name = "user" + std::to_string(i);
        if (a(name) % kBuckets == 0) {
            colliding.push_back(std::move(name));
        }
    }
    std::set<std::size_t> buckets_b;
    for (const auto& name : colliding) {
        buckets_b.insert(b(name) % kBuckets);
    }
    // 32 names in 1024 buckets: almost surely 30 or more distinct ones; one bucket is the attack.
    EXPECT_GE(buckets_b.size(), 24U);
}

TEST(KeyedStringHash, TransparentLookupWithStringView) {
    std::unordered_map<std::string, int, KeyedStringHash, std::equal_to<>> table;
    table.emplace("alice", 1);
    table.emplace("bob", 2);
    std::string_view key = "alice";
    auto it = table.find(key);  // no std::string built
    ASSERT_NE(it, table.end());
    EXPECT_EQ(it->second, 1);
    EXPECT_TRUE(table.contains(std::string_view("bob")));
    EXPECT_FALSE(table.contains(std::string_view("carol")));
}

}  // namespace
}  // namespace tundra::common
