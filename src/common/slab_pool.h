// SPDX-License-Identifier: Apache-2.0
// SlabPool: fixed-size objects carved from 64 KiB slabs, for the few kinds the server keeps one
// of per connection or per user (the core's Conn and User, the reactor's Connection).
//
// Why: malloc adds an 8-byte header to every chunk and rounds it to 16 bytes, so a 136-byte
// Conn costs 144 and a 120-byte Connection 128: 8 to 16 bytes per object, three objects per
// idle connection, out of the ~500 bytes a connection costs the server in all. Objects of one kind
// also stay together, away from the short-lived allocations of traffic, so a burst does not leave
// them scattered.
//
// Design. A slab is one aligned mapping of kSlabBytes: a header, then objects. Objects are
// handed out from the slab's free list (freed objects, linked through their first bytes), else
// carved from its untouched tail, so a slab's pages are touched only as they fill. A slab that
// empties is freed, except one kept as a spare so a connection that comes and goes does not
// allocate and free a whole slab each time. deallocate() finds an object's slab by masking its
// address (slabs are aligned to their size), so a pointer to the object is all it needs: no
// per-object header. Slabs with room are kept in a list; allocation takes from its head.
//
// Not thread-safe: each pool belongs to one container on one thread. Objects must be destroyed
// before their pool; the pool's destructor frees only empty slabs (a slab that still holds an
// object is left allocated, so a bug shows as a leak, not as memory reused under an object).
// Under AddressSanitizer free objects are poisoned, so a use after free is still reported.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>

namespace tundra::common {

class SlabPool {
public:
    static constexpr std::size_t kSlabBytes = std::size_t{64} << 10;

    /// A pool of objects of `size` bytes aligned to `align` (at most 64, a power of two).
    SlabPool(std::size_t size, std::size_t align);
    ~SlabPool();
    SlabPool(const SlabPool&) = delete;
    SlabPool& operator=(const SlabPool&) = delete;

    /// Uninitialised storage for one object; throws std::bad_alloc if no slab can be had.
    void* allocate();
    /// Returns storage from allocate() of whichever pool handed it out.
    static void deallocate(void* p) noexcept;

    /// Constructs a T (sizeof and alignof within the pool's) in the pool.
    template <class T, class... Args>
    T* make(Args&&... args) {
        static_assert(alignof(T) <= 64);
        void* p = allocate();
        try {
            return new (p) T(std::forward<Args>(args)...);
        } catch (...) {
            deallocate(p);
            throw;
        }
    }
    /// Destroys and frees an object made by make().
    template <class T>
    static void destroy(T* p) noexcept {
        if (p != nullptr) {
            p->~T();
            deallocate(p);
        }
    }

    [[nodiscard]] std::size_t objectSize() const { return size_; }
    /// Objects a slab holds.
    [[nodiscard]] std::size_t perSlab() const { return per_slab_; }
    /// Objects in use.
    [[nodiscard]] std::size_t live() const { return live_; }
    /// Slabs allocated, the spare included.
    [[nodiscard]] std::size_t slabs() const { return slabs_; }
    /// Slab memory touched so far in every pool of the process: each slab's pages up to the
    /// last object carved from it (what is resident; tests and memory accounting).
    static std::size_t totalBytes();

private:
    struct Slab;

    Slab* newSlab();
    [[nodiscard]] std::size_t touched(const Slab* s) const;
    void link(Slab* s);
    void unlink(Slab* s);
    void release(Slab* s);

    std::size_t size_;
    std::size_t offset_;  // where objects start in a slab
    std::size_t per_slab_;
    Slab* open_ = nullptr;   // slabs with room and objects, most recently given room first
    Slab* spare_ = nullptr;  // one empty slab kept (not in open_)
    std::size_t live_ = 0;
    std::size_t slabs_ = 0;
};

/// unique_ptr deleter for objects made by SlabPool::make().
struct SlabDelete {
    template <class T>
    void operator()(T* p) const noexcept {
        SlabPool::destroy(p);
    }
};

}  // namespace tundra::common
