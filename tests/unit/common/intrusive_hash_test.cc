// SPDX-License-Identifier: Apache-2.0
// IntrusiveHashTable: finds what was inserted and nothing else, unlinks exactly the element
// erased, grows and shrinks its buckets, and agrees with std::unordered_map over a random
// sequence of operations, also when every key shares one bucket.
#include "common/intrusive_hash.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace tundra::common {
namespace {

struct Item {
    std::uint64_t key = 0;
    int value = 0;
    Item* next = nullptr;
};

struct ItemKey {
    std::uint64_t operator()(const Item& i) const { return i.key; }
};

struct MixHash {
    std::size_t operator()(std::uint64_t k) const {
        return static_cast<std::size_t>(k * 0x9E3779B97F4A7C15ULL >> 17);
    }
};

struct SameBucket {  // every key collides: one long chain
    std::size_t operator()(std::uint64_t) const { return 7; }
};

template <class Hash>
using Table = IntrusiveHashTable<Item, ItemKey, Hash, &Item::next>;

TEST(IntrusiveHashTable, FindsInsertedElementsAndForgetsErasedOnes) {
    Table<MixHash> t;
    EXPECT_EQ(t.bucketCount(), 0U) << "no buckets before the first insert";
    EXPECT_EQ(t.find(std::uint64_t{1}), nullptr);
    std::vector<Item> items(100);
    for (std::uint64_t i = 0; i < items.size(); ++i) {
        items[i].key = i * 1000 + 3;
        t.insert(items[i]);
    }
    EXPECT_EQ(t.size(), 100U);
    EXPECT_GE(t.bucketCount(), 50U) << "at most two elements per bucket";
    EXPECT_EQ(t.bucketCount() & (t.bucketCount() - 1), 0U) << "a power of two";
    for (auto& it : items) {
        EXPECT_EQ(t.find(it.key), &it);
    }
    EXPECT_EQ(t.find(std::uint64_t{4}), nullptr);
    EXPECT_TRUE(t.erase(items[10]));
    EXPECT_FALSE(t.erase(items[10])) << "not in the table any more";
    EXPECT_EQ(t.find(items[10].key), nullptr);
    EXPECT_EQ(t.size(), 99U);
    Item stranger{55, 0, nullptr};
    EXPECT_FALSE(t.erase(stranger));
    EXPECT_EQ(t.size(), 99U);

    std::size_t seen = 0;
    t.forEach([&](Item& i) {
        EXPECT_NE(&i, &items[10]);
        ++seen;
    });
    EXPECT_EQ(seen, 99U);
    std::size_t visited = 0;
    t.forEachWhile([&](const Item&) { return ++visited < 5; });
    EXPECT_EQ(visited, 5U);
}

TEST(IntrusiveHashTable, BucketsShrinkWithTheTableAndAreFreedWhenEmpty) {
    Table<MixHash> t;
    std::vector<Item> items(10'000);
    for (std::uint64_t i = 0; i < items.size(); ++i) {
        items[i].key = i;
        t.insert(items[i]);
    }
    const std::size_t full = t.bucketCount();
    EXPECT_GE(2 * full, items.size());
    EXPECT_LE(full, items.size()) << "at least one element per bucket once grown";
    EXPECT_EQ(t.heapBytes(), full * sizeof(void*)) << "one pointer per bucket";
    for (std::size_t i = 0; i + 10 < items.size(); ++i) {
        ASSERT_TRUE(t.erase(items[i]));
    }
    EXPECT_LE(t.bucketCount(), 128U) << "10 elements left";
    for (std::size_t i = items.size() - 10; i < items.size(); ++i) {
        EXPECT_EQ(t.find(items[i].key), &items[i]);
        ASSERT_TRUE(t.erase(items[i]));
    }
    EXPECT_EQ(t.size(), 0U);
    EXPECT_EQ(t.bucketCount(), 0U);
    EXPECT_EQ(t.heapBytes(), 0U);
}

// A larger MaxLoad keeps proportionally fewer buckets, grows and shrinks on the same rule, and
// finds everything through its longer chains.
TEST(IntrusiveHashTable, ALargerMaxLoadKeepsFewerBuckets) {
    IntrusiveHashTable<Item, ItemKey, MixHash, &Item::next, std::equal_to<>, 8> t;
    std::vector<Item> items(10'000);
    for (std::uint64_t i = 0; i < items.size(); ++i) {
        items[i].key = i;
        t.insert(items[i]);
    }
    EXPECT_GE(8 * t.bucketCount(), items.size());
    EXPECT_LE(4 * t.bucketCount(), items.size()) << "at least four elements per bucket";
    for (const auto& item : items) {
        ASSERT_EQ(t.find(item.key), &item);
    }
    for (std::size_t i = 0; i + 100 < items.size(); ++i) {
        ASSERT_TRUE(t.erase(items[i]));
    }
    EXPECT_LE(t.bucketCount(), 128U) << "100 elements left";
    EXPECT_GE(8 * t.bucketCount(), 100U);
}

template <class Hash>
void randomAgainstUnorderedMap(std::uint32_t seed) {
    std::mt19937 rng(seed);
    Table<Hash> t;
    std::unordered_map<std::uint64_t, std::unique_ptr<Item>> model;
    for (int step = 0; step < 20'000; ++step) {
        const std::uint64_t key = rng() % 500;
        const auto op = rng() % 3;
        auto it = model.find(key);
        if (op == 0 && it == model.end()) {
            auto item = std::make_unique<Item>();
            item->key = key;
            item->value = step;
            t.insert(*item);
            model.emplace(key, std::move(item));
        } else if (op == 1 && it != model.end()) {
            ASSERT_TRUE(t.erase(*it->second));
            model.erase(it);
        } else {
            Item* found = t.find(key);
            ASSERT_EQ(found, it == model.end() ? nullptr : it->second.get()) << "step " << step;
        }
        ASSERT_EQ(t.size(), model.size());
    }
    std::size_t count = 0;
    t.forEach([&](const Item& i) {
        ++count;
        ASSERT_EQ(model.at(i.key).get(), &i);
    });
    EXPECT_EQ(count, model.size());
}

TEST(IntrusiveHashTable, AgreesWithUnorderedMapOnRandomOperations) {
    randomAgainstUnorderedMap<MixHash>(1);
    randomAgainstUnorderedMap<MixHash>(2);
}

TEST(IntrusiveHashTable, StaysCorrectWhenEveryKeyCollides) {
    randomAgainstUnorderedMap<SameBucket>(3);
}

// Keys that are views of the element's own string, looked up by string_view (the users table).
struct Named {
    std::string name;
    Named* next = nullptr;
};
struct NamedKey {
    std::string_view operator()(const Named& n) const { return n.name; }
};

TEST(IntrusiveHashTable, LooksUpStringKeysByView) {
    IntrusiveHashTable<Named, NamedKey, std::hash<std::string_view>, &Named::next> t;
    Named a{"alice"};
    Named b{"bob"};
    t.insert(a);
    t.insert(b);
    EXPECT_EQ(t.find(std::string_view("alice")), &a);
    EXPECT_EQ(t.find(std::string_view("bob")), &b);
    EXPECT_EQ(t.find(std::string_view("carol")), nullptr);
    EXPECT_TRUE(t.contains(std::string_view("bob")));
    t.clear();
    EXPECT_EQ(t.size(), 0U);
    EXPECT_EQ(t.find(std::string_view("alice")), nullptr);
}

}  // namespace
}  // namespace tundra::common
