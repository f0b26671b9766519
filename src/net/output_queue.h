// SPDX-License-Identifier: Apache-2.0
// A connection's pending output: shared, immutable byte segments plus the offset already written
// and a caller tag. Segments are never copied; the storage is released as soon as it drains.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace tundra::net {

// Same alias as in tcp_server.h (a redeclaration of the same type is allowed).
using SharedBytes = std::shared_ptr<const std::vector<std::uint8_t>>;

// FIFO of segments. `head_` indexes the oldest unwritten one; written segments before it have
// already dropped their reference, and the vector is compacted once they are the majority:
//
//   segs_:  [ released | released | seg(offset) | seg | seg ]   (capacity may be larger)
//                                  ^ head_
//
// An empty queue owns no heap memory (capacity 0), which is what keeps idle connections small.
class OutputQueue {
 public:
    struct Segment {
        SharedBytes bytes;
        std::size_t offset;  // bytes of `bytes` already written
        std::uint64_t tag;   // 0 = untagged
    };

    /// Appends the unwritten part [offset, size) of `bytes`; a fully written segment is ignored.
    void push(SharedBytes bytes, std::size_t offset, std::uint64_t tag);
    [[nodiscard]] bool empty() const { return bytes_ == 0; }
    /// Bytes not yet written.
    [[nodiscard]] std::size_t bytes() const { return bytes_; }
    [[nodiscard]] std::size_t segments() const { return segs_.size() - head_; }
    /// Fills up to `max` iovecs with the oldest unwritten bytes; returns how many were filled.
    std::size_t fillIov(iovec* iov, std::size_t max) const;
    /// Marks `n` bytes (at most bytes()) as written, dropping the references of completed
    /// segments; releases the storage when the queue becomes empty.
    void consume(std::size_t n);
    /// Non-zero tags of the segments not completely written, oldest first.
    [[nodiscard]] std::vector<std::uint64_t> unwrittenTags() const;
    /// Drops everything and releases the storage.
    void clear();
    /// Heap owned by the queue itself (not the shared segments).
    [[nodiscard]] std::size_t heapBytes() const { return segs_.capacity() * sizeof(Segment); }

 private:
    std::vector<Segment> segs_;
    std::size_t head_ = 0;
    std::size_t bytes_ = 0;
};

}  // namespace tundra::net
