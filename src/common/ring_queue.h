// SPDX-License-Identifier: Apache-2.0
// RingQueue: a FIFO on one power-of-two array that keeps its storage when emptied. A queue that
// is filled and drained every loop iteration (ACKs held for a store commit) then costs no
// allocation in steady state, where std::deque allocates and frees a block every few elements.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace tundra::common {

/// T must be default-constructible and movable. Not thread-safe.
template <typename T>
class RingQueue {
public:
    [[nodiscard]] bool empty() const { return size_ == 0; }
    [[nodiscard]] std::size_t size() const { return size_; }
    [[nodiscard]] std::size_t capacity() const { return slots_.size(); }

    void push_back(T&& v) {
        if (size_ == slots_.size()) {
            grow();
        }
        slots_[(head_ + size_) & (slots_.size() - 1)] = std::move(v);
        ++size_;
    }
    T& front() { return slots_[head_]; }
    const T& front() const { return slots_[head_]; }
    /// Removes the front element; its slot is reset so that what it held is released now.
    void pop_front() {
        slots_[head_] = T{};
        head_ = (head_ + 1) & (slots_.size() - 1);
        --size_;
    }
    /// The i-th element from the front (i < size()).
    T& operator[](std::size_t i) { return slots_[(head_ + i) & (slots_.size() - 1)]; }

private:
    void grow() {
        std::vector<T> bigger(slots_.empty() ? 16 : 2 * slots_.size());
        for (std::size_t i = 0; i < size_; ++i) {
            bigger[i] = std::move((*this)[i]);
        }
        slots_ = std::move(bigger);
        head_ = 0;
    }

    std::vector<T> slots_;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

}  // namespace tundra::common
