// SPDX-License-Identifier: Apache-2.0
// IntrusiveHashTable: a chained hash table whose chain links live in the elements themselves.
// For tables with one entry per connection or user (users by name, sessions by id), where a
// std::unordered_map node (a malloc chunk of 48 bytes for a key and a pointer, plus its malloc
// header) costs more than the element's own fields: here an entry is one pointer in the element
// and one bucket slot.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <utility>

namespace tundra::common {

// The table neither owns nor copies its elements: it links them through the member `Next`
// (a T*), and finds them by the key `KeyOf{}(element)` returns. An element's key must not
// change while it is in the table. Buckets are a power of two (the hash's low bits pick one),
// so `Hash` must mix its low bits well (SipHash, or a multiplicative mix). The table doubles
// when it holds more than `MaxLoad` elements per bucket (2 by default) and halves below an
// eighth of that, and frees its buckets when it empties: with the default 4 to 8 bytes of
// buckets per element, and a lookup walks a chain of one to two elements on average. A table
// looked up rarely (sessions by id: a resume, an expiry) takes a larger MaxLoad for fewer
// bucket bytes.
template <class T, class KeyOf, class Hash, T* T::*Next, class Eq = std::equal_to<>,
          std::size_t MaxLoad = 2>
class IntrusiveHashTable {
    static_assert(MaxLoad >= 1);

public:
    using hasher = Hash;

    explicit IntrusiveHashTable(Hash hash = Hash()) : hash_(std::move(hash)) {}
    IntrusiveHashTable(const IntrusiveHashTable&) = delete;
    IntrusiveHashTable& operator=(const IntrusiveHashTable&) = delete;

    [[nodiscard]] const Hash& hash_function() const { return hash_; }
    [[nodiscard]] std::size_t size() const { return size_; }
    [[nodiscard]] bool empty() const { return size_ == 0; }
    [[nodiscard]] std::size_t bucketCount() const { return buckets_ ? mask_ + 1 : 0; }
    /// Heap the table itself holds (its bucket array), not counting the elements.
    [[nodiscard]] std::size_t heapBytes() const { return bucketCount() * sizeof(T*); }

    /// The element with this key, or null.
    template <class K>
    [[nodiscard]] T* find(const K& key) const {
        if (size_ == 0) {
            return nullptr;
        }
        for (T* p = buckets_[hash_(key) & mask_]; p != nullptr; p = p->*Next) {
            if (eq_(KeyOf{}(*p), key)) {
                return p;
            }
        }
        return nullptr;
    }
    template <class K>
    [[nodiscard]] bool contains(const K& key) const {
        return find(key) != nullptr;
    }

    /// Links `t`, whose key no element in the table has (the caller checks with find()).
    void insert(T& t) {
        if (size_ + 1 > MaxLoad * bucketCount()) {
            rehash(buckets_ ? (mask_ + 1) * 2 : kMinBuckets);
        }
        T*& head = buckets_[hash_(KeyOf{}(t)) & mask_];
        t.*Next = head;
        head = &t;
        ++size_;
    }

    /// Unlinks `t` if the table holds it (true); false if it does not.
    bool erase(T& t) {
        if (size_ == 0) {
            return false;
        }
        T** link = &buckets_[hash_(KeyOf{}(t)) & mask_];
        while (*link != nullptr && *link != &t) {
            link = &((*link)->*Next);
        }
        if (*link == nullptr) {
            return false;
        }
        *link = t.*Next;
        t.*Next = nullptr;
        --size_;
        if (size_ == 0) {
            buckets_.reset();
            mask_ = 0;
        } else if (mask_ + 1 > kMinBuckets && size_ * 8 < (mask_ + 1) * MaxLoad) {
            rehash((mask_ + 1) / 2);
        }
        return true;
    }

    /// Calls f(T&) for every element, in no particular order. `f` must not insert or erase; it
    /// may destroy the element it is given if the table is clear()ed afterwards.
    template <class F>
    void forEach(F&& f) const {
        const std::size_t n = bucketCount();
        for (std::size_t b = 0; b < n && buckets_; ++b) {
            T* p = buckets_[b];
            while (p != nullptr) {
                T* next = p->*Next;
                f(*p);
                p = next;
            }
        }
    }
    /// forEach() that stops once `f` returns false.
    template <class F>
    void forEachWhile(F&& f) const {
        const std::size_t n = bucketCount();
        for (std::size_t b = 0; b < n && buckets_; ++b) {
            for (T* p = buckets_[b]; p != nullptr;) {
                T* next = p->*Next;
                if (!f(*p)) {
                    return;
                }
                p = next;
            }
        }
    }

    /// Unlinks every element (none is destroyed) and frees the buckets.
    void clear() {
        buckets_.reset();
        mask_ = 0;
        size_ = 0;
    }

private:
    static constexpr std::size_t kMinBuckets = 16;

    void rehash(std::size_t count) {
        auto fresh = std::make_unique<T*[]>(count);  // value-initialized: all null
        const std::size_t mask = count - 1;
        const std::size_t old = bucketCount();
        for (std::size_t b = 0; b < old; ++b) {
            T* p = buckets_[b];
            while (p != nullptr) {
                T* next = p->*Next;
                T*& head = fresh[hash_(KeyOf{}(*p)) & mask];
                p->*Next = head;
                head = p;
                p = next;
            }
        }
        buckets_ = std::move(fresh);
        mask_ = mask;
    }

    std::unique_ptr<T*[]> buckets_;
    std::size_t mask_ = 0;
    std::size_t size_ = 0;
    Hash hash_;
    Eq eq_;
};

}  // namespace tundra::common
