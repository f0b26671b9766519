// SPDX-License-Identifier: Apache-2.0
#include "common/slab_pool.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#if defined(__SANITIZE_ADDRESS__)
#define TUNDRA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TUNDRA_ASAN 1
#endif
#endif

#if defined(TUNDRA_ASAN)
#include <sanitizer/asan_interface.h>
#define TUNDRA_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define TUNDRA_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define TUNDRA_POISON(p, n) static_cast<void>(0)
#define TUNDRA_UNPOISON(p, n) static_cast<void>(0)
#endif

namespace tundra::common {

struct SlabPool::Slab {
    SlabPool* pool = nullptr;
    Slab* prev = nullptr;  // in the pool's open_ list
    Slab* next = nullptr;
    void* free = nullptr;    // freed objects, linked through their first bytes
    std::size_t live = 0;    // objects in use
    std::size_t carved = 0;  // objects ever handed out from the untouched tail
    bool listed = false;     // in open_

    [[nodiscard]] std::byte* base() { return reinterpret_cast<std::byte*>(this); }
};

namespace {

constexpr std::size_t roundUp(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

constexpr std::size_t kPage = 4096;

std::atomic<std::size_t> g_slab_bytes{0};  // touched: whole pages up to each slab's carved end

// A slab's memory, aligned to kSlabBytes. Normally its own mapping: malloc's aligned_alloc would
// add a chunk header in the page before the slab (and one at the start of its larger mapping),
// two touched pages per slab. Under AddressSanitizer from aligned_alloc instead, so that
// LeakSanitizer scans the objects in it for the heap blocks they hold.
void* mapSlab() {
#if defined(TUNDRA_ASAN)
    return std::aligned_alloc(SlabPool::kSlabBytes, SlabPool::kSlabBytes);
#else
    constexpr std::size_t kSpan = 2 * SlabPool::kSlabBytes;
    void* m = ::mmap(nullptr, kSpan, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        return nullptr;
    }
    const auto start = reinterpret_cast<std::uintptr_t>(m);
    const std::size_t head = roundUp(start, SlabPool::kSlabBytes) - start;
    std::byte* slab = static_cast<std::byte*>(m) + head;
    if (head > 0) {
        ::munmap(m, head);
    }
    ::munmap(slab + SlabPool::kSlabBytes, kSpan - head - SlabPool::kSlabBytes);
    return slab;
#endif
}

void unmapSlab(void* p) {
#if defined(TUNDRA_ASAN)
    std::free(p);  // NOLINT(cppcoreguidelines-no-malloc): from aligned_alloc
#else
    ::munmap(p, SlabPool::kSlabBytes);
#endif
}

}  // namespace

std::size_t SlabPool::totalBytes() { return g_slab_bytes.load(std::memory_order_relaxed); }

SlabPool::SlabPool(std::size_t size, std::size_t align) {
    if (align == 0 || (align & (align - 1)) != 0 || align > 64) {
        throw std::invalid_argument("SlabPool: alignment must be a power of two up to 64");
    }
    align = std::max(align, alignof(void*));
    size_ = roundUp(std::max(size, sizeof(void*)), align);
    offset_ = roundUp(sizeof(Slab), align);
    if (size_ > kSlabBytes - offset_) {
        throw std::invalid_argument("SlabPool: object larger than a slab");
    }
    per_slab_ = (kSlabBytes - offset_) / size_;
}

SlabPool::~SlabPool() {
    if (spare_ != nullptr) {
        release(spare_);
    }
    // Slabs still holding objects are left allocated (see the header).
    assert(live_ == 0 && "SlabPool destroyed before its objects");
}

SlabPool::Slab* SlabPool::newSlab() {
    void* mem = mapSlab();
    if (mem == nullptr) {
        throw std::bad_alloc();
    }
    auto* s = new (mem) Slab();
    s->pool = this;
    TUNDRA_POISON(s->base() + offset_, kSlabBytes - offset_);
    ++slabs_;
    g_slab_bytes.fetch_add(touched(s), std::memory_order_relaxed);
    return s;
}

std::size_t SlabPool::touched(const Slab* s) const {
    return roundUp(offset_ + s->carved * size_, kPage);
}

void SlabPool::link(Slab* s) {
    s->prev = nullptr;
    s->next = open_;
    if (open_ != nullptr) {
        open_->prev = s;
    }
    open_ = s;
    s->listed = true;
}

void SlabPool::unlink(Slab* s) {
    if (s->prev != nullptr) {
        s->prev->next = s->next;
    } else {
        open_ = s->next;
    }
    if (s->next != nullptr) {
        s->next->prev = s->prev;
    }
    s->prev = s->next = nullptr;
    s->listed = false;
}

void SlabPool::release(Slab* s) {
    TUNDRA_UNPOISON(s->base() + offset_, kSlabBytes - offset_);
    g_slab_bytes.fetch_sub(touched(s), std::memory_order_relaxed);
    s->~Slab();
    unmapSlab(s);
    --slabs_;
}

void* SlabPool::allocate() {
    Slab* s = open_;
    if (s == nullptr) {
        if (spare_ != nullptr) {
            s = spare_;
            spare_ = nullptr;
        } else {
            s = newSlab();
        }
        link(s);
    }
    void* p = nullptr;
    if (s->free != nullptr) {
        p = s->free;
        TUNDRA_UNPOISON(p, size_);
        void* next = nullptr;
        std::memcpy(&next, p, sizeof(next));
        s->free = next;
    } else {
        p = s->base() + offset_ + s->carved * size_;
        const std::size_t before = touched(s);
        ++s->carved;
        g_slab_bytes.fetch_add(touched(s) - before, std::memory_order_relaxed);
        TUNDRA_UNPOISON(p, size_);
    }
    ++s->live;
    ++live_;
    if (s->free == nullptr && s->carved == per_slab_) {
        unlink(s);  // full
    }
    return p;
}

void SlabPool::deallocate(void* p) noexcept {
    if (p == nullptr) {
        return;
    }
    const auto in_slab = reinterpret_cast<std::uintptr_t>(p) & (kSlabBytes - 1);
    auto* s = reinterpret_cast<Slab*>(static_cast<std::byte*>(p) - in_slab);
    SlabPool& pool = *s->pool;
    std::memcpy(p, &s->free, sizeof(s->free));
    s->free = p;
    TUNDRA_POISON(p, pool.size_);
    --s->live;
    --pool.live_;
    if (s->live == 0) {
        if (s->listed) {
            pool.unlink(s);
        }
        if (pool.spare_ == nullptr) {
            pool.spare_ = s;
        } else {
            pool.release(s);
        }
    } else if (!s->listed) {
        pool.link(s);  // it was full
    }
}

}  // namespace tundra::common
