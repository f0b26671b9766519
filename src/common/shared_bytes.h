// SPDX-License-Identifier: Apache-2.0
// SharedBytes: immutable bytes shared by reference count, in ONE allocation (count, size and
// bytes together). An encoded frame is queued to many connections and kept in many windows and
// offline buffers for a long time; std::shared_ptr<const std::vector> took two allocations per
// frame (control block + vector storage) and two cache lines to release one.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <span>
#include <stdexcept>
#include <string_view>
#include <utility>

namespace tundra::common {

class SharedBytes {
public:
    /// What `->` and `*` give: the bytes, read-only (a contiguous range: it converts to
    /// std::span<const std::uint8_t>).
    class Block {
    public:
        Block(const Block&) = delete;
        Block& operator=(const Block&) = delete;

        [[nodiscard]] const std::uint8_t* data() const {
            return reinterpret_cast<const std::uint8_t*>(this + 1);
        }
        [[nodiscard]] std::size_t size() const { return size_; }
        [[nodiscard]] bool empty() const { return size_ == 0; }
        [[nodiscard]] const std::uint8_t* begin() const { return data(); }
        [[nodiscard]] const std::uint8_t* end() const { return data() + size_; }
        std::uint8_t operator[](std::size_t i) const { return data()[i]; }
        /// Same bytes (any contiguous bytes: another block, a vector, a span).
        friend bool operator==(const Block& a, std::span<const std::uint8_t> b) {
            return a.size() == b.size() &&
                   (b.empty() || std::memcmp(a.data(), b.data(), b.size()) == 0);
        }
        friend bool operator==(const Block& a, const Block& b) {
            return a == std::span<const std::uint8_t>(b.data(), b.size());
        }

    private:
        friend class SharedBytes;
        explicit Block(std::uint32_t size) : size_(size) {}
        ~Block() = default;

        // Atomic: a store batch (holding frames) is written by the store's own thread.
        mutable std::atomic<std::uint32_t> refs_{1};
        std::uint32_t size_;
    };
    static_assert(sizeof(Block) == 8 && alignof(Block) <= alignof(std::max_align_t));

    SharedBytes() = default;
    SharedBytes(std::nullptr_t) {}  // NOLINT(google-explicit-constructor): like a null pointer
    SharedBytes(const SharedBytes& o) noexcept : block_(o.block_) { retain(); }
    SharedBytes(SharedBytes&& o) noexcept : block_(std::exchange(o.block_, nullptr)) {}
    SharedBytes& operator=(const SharedBytes& o) noexcept {
        if (this != &o) {
            o.retain();
            release();
            block_ = o.block_;
        }
        return *this;
    }
    SharedBytes& operator=(SharedBytes&& o) noexcept {
        if (this != &o) {
            release();
            block_ = std::exchange(o.block_, nullptr);
        }
        return *this;
    }
    ~SharedBytes() { release(); }

    /// A new buffer holding a copy of `bytes` (never null, also when empty).
    static SharedBytes copyOf(std::span<const std::uint8_t> bytes) {
        std::uint8_t* at = nullptr;
        SharedBytes b = allocate(bytes.size(), at);
        if (!bytes.empty()) {
            std::memcpy(at, bytes.data(), bytes.size());
        }
        return b;
    }
    static SharedBytes copyOf(std::string_view text) {
        return copyOf(std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
    }
    /// A new buffer of `size` bytes, which the caller fills through `writable` before sharing
    /// it (copying the SharedBytes).
    static SharedBytes allocate(std::size_t size, std::uint8_t*& writable) {
        if (size > UINT32_MAX - sizeof(Block)) {
            throw std::length_error("SharedBytes: too large");
        }
        void* raw = ::operator new(sizeof(Block) + size);
        SharedBytes b;
        b.block_ = new (raw) Block(static_cast<std::uint32_t>(size));
        writable = static_cast<std::uint8_t*>(raw) + sizeof(Block);
        return b;
    }

    [[nodiscard]] const Block* get() const { return block_; }
    const Block* operator->() const { return block_; }
    const Block& operator*() const { return *block_; }
    explicit operator bool() const { return block_ != nullptr; }
    /// Holders of these bytes (0 for null).
    [[nodiscard]] long use_count() const {
        return block_ != nullptr ? static_cast<long>(block_->refs_.load(std::memory_order_relaxed))
                                 : 0;
    }
    void reset() {
        release();
        block_ = nullptr;
    }

    friend bool operator==(const SharedBytes& a, std::nullptr_t) { return a.block_ == nullptr; }
    friend bool operator==(const SharedBytes& a, const SharedBytes& b) {
        return a.block_ == b.block_;
    }

private:
    void retain() const {
        if (block_ != nullptr) {
            block_->refs_.fetch_add(1, std::memory_order_relaxed);
        }
    }
    void release() {
        if (block_ != nullptr && block_->refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            block_->~Block();
            ::operator delete(static_cast<void*>(block_));
        }
    }

    Block* block_ = nullptr;
};

}  // namespace tundra::common
