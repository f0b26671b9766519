// SPDX-License-Identifier: Apache-2.0
// A connection's pending output: shared, immutable byte segments plus the offset already written
// and a caller tag. Segments are never copied; the queue's storage is released (or handed to a
// SegmentPool) as soon as it drains.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "common/shared_bytes.h"

namespace tundra::net {

/// Immutable bytes shared by every queue (and owner) that holds them, never copied.
using SharedBytes = common::SharedBytes;

/// The tag of a segment that holds several tagged messages back to back (a batch of
/// deliveries queued as one segment): its tags are read from its bytes by a JoinedTagReader.
inline constexpr std::uint64_t kJoinedTag = UINT64_MAX;

/// Appends to `out` the tags of the messages in a kJoinedTag segment that end after `offset`
/// (the part already written), oldest first. Supplied by the owner, which knows the framing.
using JoinedTagReader = std::function<void(std::span<const std::uint8_t> segment,
                                           std::size_t offset, std::vector<std::uint64_t>& out)>;

struct OutputSegment {
    SharedBytes bytes;
    std::size_t offset;  // bytes of `bytes` already written
    std::uint64_t tag;   // 0 = untagged
};

/// Emptied segment storage kept for reuse by the OutputQueues of one owner (TcpServer). A queue
/// that drains hands its vector back here instead of freeing it, and a queue that starts
/// filling takes one, so a steady stream of flushed sends allocates nothing while an idle
/// queue still owns no heap. Bounded: vectors with room for more than kMaxVectorSegments are
/// freed, and at most kMaxSegments slots (256 KiB) are kept in all.
class SegmentPool {
public:
    static constexpr std::size_t kMaxVectorSegments = 64;
    static constexpr std::size_t kMaxSegments = 8192;

    SegmentPool() = default;
    SegmentPool(const SegmentPool&) = delete;
    SegmentPool& operator=(const SegmentPool&) = delete;

    /// Spare vectors held.
    [[nodiscard]] std::size_t spares() const { return spares_.size(); }
    /// Frees the spares that were not needed since the previous call (the fewest held at any
    /// time since then, oldest first), so a pool that filled up in a burst does not keep its
    /// storage while the server is quiet, and one in steady use keeps what it uses. Returns
    /// how many it freed. Called from a periodic timer.
    std::size_t trimUnused();
    /// Heap the pool holds: the spare vectors' slots and its own index of them.
    [[nodiscard]] std::size_t heapBytes() const {
        return slots_ * sizeof(OutputSegment) +
               spares_.capacity() * sizeof(std::vector<OutputSegment>);
    }

private:
    friend class OutputQueue;
    /// An empty vector with some capacity, or an empty one without any.
    std::vector<OutputSegment> take();
    /// Keeps `v` (which must be empty) if it is small enough and the pool has room.
    void give(std::vector<OutputSegment>&& v);

    std::vector<std::vector<OutputSegment>> spares_;
    std::size_t slots_ = 0;      // total capacity of spares_
    std::size_t low_water_ = 0;  // fewest spares held since the last trimUnused()
};

// FIFO of segments. `head_` indexes the oldest unwritten one; written segments before it have
// already dropped their reference, and the vector is compacted once they are the majority:
//
//   segs_:  [ released | released | seg(offset) | seg | seg ]   (capacity may be larger)
//                                  ^ head_
//
// An empty queue owns no heap memory (capacity 0), which is what keeps idle connections small.
class OutputQueue {
public:
    using Segment = OutputSegment;

    /// What one queued segment costs in memory beyond its unwritten bytes, charged against the
    /// output caps so that many tiny frames (a 15-byte PONG each) count for what they take:
    /// the queue slot (sizeof(OutputSegment) = 32, up to twice that while the vector grows)
    /// and the frame's one allocation (common::SharedBytes: an 8-byte count and size before
    /// the bytes, an 8-byte malloc header, rounding to 16, 32 at least). About 70 bytes for a
    /// 15-byte frame on x86-64 glibc; output_queue_test measures it with mallinfo2 and holds
    /// this constant within that figure. A segment shared by several queues (a broadcast) is
    /// charged to each: the cap errs on the safe side.
    static constexpr std::size_t kSegmentOverhead = 56;

    /// Appends the unwritten part [offset, size) of `bytes`; a fully written segment is ignored.
    /// An empty queue takes its storage from `pool` when one is given and has a spare.
    void push(SharedBytes bytes, std::size_t offset, std::uint64_t tag,
              SegmentPool* pool = nullptr);
    [[nodiscard]] bool empty() const { return bytes_ == 0; }
    /// Bytes not yet written.
    [[nodiscard]] std::size_t bytes() const { return bytes_; }
    [[nodiscard]] std::size_t segments() const { return segs_.size() - head_; }
    /// What the queued output costs in memory, as the caps count it: the unwritten bytes plus
    /// kSegmentOverhead per unwritten segment.
    [[nodiscard]] std::size_t charge() const { return bytes_ + segments() * kSegmentOverhead; }
    /// Fills up to `max` iovecs with the oldest unwritten bytes; returns how many were filled.
    std::size_t fillIov(iovec* iov, std::size_t max) const;
    /// Marks `n` bytes (at most bytes()) as written, dropping the references of completed
    /// segments; releases the storage when the queue becomes empty (to `pool` if given).
    void consume(std::size_t n, SegmentPool* pool = nullptr);
    /// Non-zero tags of the segments not completely written, oldest first; a kJoinedTag
    /// segment contributes what `joined` reads from it (nothing without a reader).
    [[nodiscard]] std::vector<std::uint64_t> unwrittenTags(
        const JoinedTagReader* joined = nullptr) const;
    /// Drops everything and releases the storage (to `pool` if given).
    void clear(SegmentPool* pool = nullptr);
    /// Heap owned by the queue itself (not the shared segments).
    [[nodiscard]] std::size_t heapBytes() const { return segs_.capacity() * sizeof(Segment); }

private:
    std::vector<Segment> segs_;
    std::size_t head_ = 0;
    std::size_t bytes_ = 0;
};

}  // namespace tundra::net
