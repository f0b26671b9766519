// SPDX-License-Identifier: Apache-2.0
// FrameRing: a small id-ordered ring of stored deliveries (a user's offline buffer or delivery
// window). Internal to the core; holds SharedFrames, never copies frame bytes.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

#include "core/shared_frame.h"
#include "tundra/codec.h"

namespace tundra::core {

/// Asks the CPU to bring the cache line holding `p` in. GCC 12 drops two __builtin_prefetch
/// calls in a row from the same function (they vanish from the object code), so on x86 this is
/// the instruction itself.
inline void prefetch(const void* p) {
#if defined(__x86_64__) || defined(__i386__)
    asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(p)));
#else
    __builtin_prefetch(p);
#endif
}

/// One stored delivery: the encoded frame (shared with every other holder) and its id.
struct StoredFrame {
    SharedFrame frame;
    std::uint64_t id = 0;

    [[nodiscard]] std::size_t bytes() const { return frame ? frame->size() : 0; }
};

// A growable circular buffer kept sorted by id. It allocates on the first push, doubles up to
// what is needed, and frees its storage whenever it becomes empty, so an idle user with nothing
// stored costs 16 bytes per ring; refilled, it takes back the capacity it had in one allocation.
// Sizes are bounded by CoreConfig::max_buffered (a few dozen by default), so the O(n) sorted insert
// and single erase are cheaper than any tree; removing many entries at once (a dead connection's
// unwritten deliveries) goes through extractSorted, one pass whatever the count, so raised limits
// never make that cut quadratic.
class FrameRing {
public:
    FrameRing() = default;
    FrameRing(FrameRing&&) noexcept = default;
    FrameRing& operator=(FrameRing&&) noexcept = default;
    FrameRing(const FrameRing&) = delete;
    FrameRing& operator=(const FrameRing&) = delete;

    [[nodiscard]] std::size_t size() const { return size_; }
    [[nodiscard]] bool empty() const { return size_ == 0; }
    /// Entries the storage holds now (0 while empty: the storage is freed).
    [[nodiscard]] std::size_t capacity() const { return cap(); }
    /// i-th oldest entry, 0 <= i < size().
    [[nodiscard]] const StoredFrame& at(std::size_t i) const { return buf_[slot(i)]; }
    [[nodiscard]] const StoredFrame& front() const { return at(0); }
    [[nodiscard]] const StoredFrame& back() const { return at(size_ - 1); }

    /// Hints the CPU to fetch the slots the next store touches (the back, and the front a full
    /// window pops): a fan-out walks thousands of rings, each cold, one entry each.
    void prefetchEnds() const {
        const StoredFrame* base = buf_.get();
        if (base != nullptr) {
            prefetch(base + slot(size_));
            prefetch(base + head_);
        }
    }

    /// Appends an entry whose id is >= every stored id.
    void pushBack(StoredFrame e) {
        reserveOneMore();
        buf_[slot(size_)] = std::move(e);
        setSize(size_ + 1U);
    }

    /// Inserts keeping id order (usually at the back).
    void insertSorted(StoredFrame e) {
        reserveOneMore();
        std::size_t pos = size_;
        while (pos > 0 && at(pos - 1).id > e.id) {
            buf_[slot(pos)] = std::move(buf_[slot(pos - 1)]);
            --pos;
        }
        buf_[slot(pos)] = std::move(e);
        setSize(size_ + 1U);
    }

    /// Hints the CPU to fetch what the next popFront() calls touch: the frame of the next
    /// entry (its reference count, its size, and the memory its release frees) and the
    /// reference count of the one after it. A full window is popped once per delivery, and what
    /// it pops is a max_buffered-old delivery, long gone from the cache; the next pop's misses
    /// then overlap the work in between instead of stalling it. Call right after a pop.
    void prefetchNextPops() const {
        if (size_ == 0) {
            return;
        }
        if (const SharedFrame::Block* next = buf_[head_].frame.get(); next != nullptr) {
            // Its first line was asked for by the previous pop. Freed, its memory is where the
            // next frame of that size is written: every line of a frame of a typical size.
            const auto* at = reinterpret_cast<const std::uint8_t*>(next);
            const std::size_t end = std::min<std::size_t>(next->size() + sizeof(*next), 256);
            for (std::size_t off = 64; off < end + 63; off += 64) {
                prefetch(at + off);
            }
        }
        if (size_ > 1) {
            if (const SharedFrame::Block* after = buf_[slot(1)].frame.get(); after != nullptr) {
                prefetch(after);
            }
        }
    }

    StoredFrame popFront() {
        StoredFrame e = std::move(buf_[head_]);
        head_ = (head_ + 1U) & mask();
        setSize(size_ - 1U);
        releaseIfEmpty();
        return e;
    }

    /// Removes the i-th oldest entry and returns it.
    StoredFrame erase(std::size_t i) {
        StoredFrame e = std::move(buf_[slot(i)]);
        for (std::size_t k = i; k + 1 < size_; ++k) {
            buf_[slot(k)] = std::move(buf_[slot(k + 1)]);
        }
        setSize(size_ - 1U);
        buf_[slot(size_)] = StoredFrame{};
        releaseIfEmpty();
        return e;
    }

    /// Removes every entry whose id is in `ids` (sorted ascending, no duplicates) and appends
    /// them to `out` in id order, in one pass over the ring: O(size + ids), however many go.
    /// Returns how many were found.
    std::size_t extractSorted(const std::vector<std::uint64_t>& ids,
                              std::vector<StoredFrame>& out) {
        std::size_t j = 0;
        std::size_t kept = 0;
        const std::size_t before = out.size();
        for (std::size_t i = 0; i < size_; ++i) {
            StoredFrame& e = buf_[slot(i)];
            while (j < ids.size() && ids[j] < e.id) {
                ++j;
            }
            if (j < ids.size() && ids[j] == e.id) {
                out.push_back(std::move(e));
                ++j;
                continue;
            }
            if (kept != i) {
                buf_[slot(kept)] = std::move(e);
            }
            ++kept;
        }
        for (std::size_t i = kept; i < size_; ++i) {
            buf_[slot(i)] = StoredFrame{};  // drop moved-from slots' references for good
        }
        setSize(kept);
        releaseIfEmpty();
        return out.size() - before;
    }

    /// Index of the entry with `id`, or size() if absent (binary search: ids are sorted).
    [[nodiscard]] std::size_t find(std::uint64_t id) const {
        std::size_t lo = 0;
        std::size_t hi = size_;
        while (lo < hi) {
            std::size_t mid = lo + (hi - lo) / 2;
            if (at(mid).id < id) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo < size_ && at(lo).id == id ? lo : size_;
    }

    /// Index of the first entry with an id greater than `id` (size() if none).
    [[nodiscard]] std::size_t upperBound(std::uint64_t id) const {
        std::size_t lo = 0;
        std::size_t hi = size_;
        while (lo < hi) {
            std::size_t mid = lo + (hi - lo) / 2;
            if (at(mid).id <= id) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo;
    }

    void clear() {
        if (buf_) {
            last_log2_ = cap_log2_;
        }
        buf_.reset();
        cap_log2_ = 0;
        head_ = 0;
        size_ = 0;
    }

    /// Entries a ring can hold at most (its counts are 24-bit fields; max_buffered is far below).
    static constexpr std::size_t kMaxEntries = (std::size_t{1} << 23);

private:
    static constexpr std::uint32_t kMinLog2 = 2;  // 4 entries

    [[nodiscard]] std::uint32_t cap() const { return buf_ ? 1U << cap_log2_ : 0U; }
    [[nodiscard]] std::uint32_t mask() const { return (1U << cap_log2_) - 1U; }
    // The capacity is a power of two, so the wrap is a mask.
    [[nodiscard]] std::size_t slot(std::size_t i) const { return (head_ + i) & mask(); }
    void setSize(std::size_t n) { size_ = static_cast<std::uint32_t>(n) & 0xFFFFFFU; }

    void reserveOneMore() {
        if (size_ < cap()) {
            return;
        }
        grow();
    }

    void grow() {
        // Refilled after it emptied: straight to the size it had, one allocation instead of a
        // doubling series (a delivery window empties and refills all the time).
        const std::uint32_t new_log2 =
            buf_ ? cap_log2_ + 1U : std::max<std::uint32_t>(kMinLog2, last_log2_);
        if ((std::size_t{1} << new_log2) > kMaxEntries) {
            throw std::length_error("FrameRing: more than 2^23 entries");
        }
        auto fresh = std::make_unique<StoredFrame[]>(std::size_t{1} << new_log2);
        for (std::size_t i = 0; i < size_; ++i) {
            fresh[i] = std::move(buf_[slot(i)]);
        }
        buf_ = std::move(fresh);
        cap_log2_ = new_log2 & 0xFFU;
        head_ = 0;
    }

    void releaseIfEmpty() {
        if (size_ == 0) {
            clear();
        }
    }

    // 16 bytes: every user has two rings (window and offline buffer), most of them empty.
    std::unique_ptr<StoredFrame[]> buf_;
    std::uint32_t head_ : 24 = 0;      // slot of the oldest entry
    std::uint32_t cap_log2_ : 8 = 0;   // capacity 1 << cap_log2_ while buf_ is set
    std::uint32_t size_ : 24 = 0;      // entries held
    std::uint32_t last_log2_ : 8 = 0;  // capacity (log2) before the storage was last freed
};

}  // namespace tundra::core
