// SPDX-License-Identifier: Apache-2.0
// OutputQueue: pending output as shared segments (see output_queue.h).
#include "net/output_queue.h"

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <iterator>
#include <utility>

namespace tundra::net {

namespace {
// Compact only when enough written slots piled up at the front to be worth the move.
constexpr std::size_t kCompactAfter = 32;
}  // namespace

std::vector<OutputSegment> SegmentPool::take() {
    if (spares_.empty()) {
        return {};
    }
    std::vector<OutputSegment> v = std::move(spares_.back());
    spares_.pop_back();
    slots_ -= v.capacity();
    low_water_ = std::min(low_water_, spares_.size());
    return v;
}

std::size_t SegmentPool::trimUnused() {
    // Taken from the back, so the front ones are those that sat unused the longest.
    const std::size_t unused = std::min(low_water_, spares_.size());
    for (std::size_t i = 0; i < unused; ++i) {
        slots_ -= spares_[i].capacity();
    }
    spares_.erase(spares_.begin(), spares_.begin() + static_cast<std::ptrdiff_t>(unused));
    if (spares_.empty()) {
        std::vector<std::vector<OutputSegment>>().swap(spares_);
    }
    low_water_ = spares_.size();
    return unused;
}

void SegmentPool::give(std::vector<OutputSegment>&& v) {
    assert(v.empty());
    const std::size_t cap = v.capacity();
    if (cap == 0 || cap > kMaxVectorSegments || slots_ + cap > kMaxSegments) {
        return;  // `v` frees its storage when the caller's vector is destroyed or swapped
    }
    slots_ += cap;
    spares_.push_back(std::move(v));
}

void OutputQueue::push(SharedBytes bytes, std::size_t offset, std::uint64_t tag,
                       SegmentPool* pool) {
    if (!bytes || offset >= bytes->size()) {
        return;
    }
    if (pool != nullptr && segs_.capacity() == 0) {
        segs_ = pool->take();
    }
    bytes_ += bytes->size() - offset;
    segs_.push_back(Segment{std::move(bytes), offset, tag});
}

std::size_t OutputQueue::fillIov(iovec* iov, std::size_t max) const {
    std::size_t n = 0;
    for (std::size_t i = head_; i < segs_.size() && n < max; ++i, ++n) {
        const Segment& s = segs_[i];
        // iov_base is non-const in the C API; sendmsg only reads through it.
        iov[n].iov_base = const_cast<std::uint8_t*>(s.bytes->data() + s.offset);
        iov[n].iov_len = s.bytes->size() - s.offset;
    }
    return n;
}

void OutputQueue::consume(std::size_t n, SegmentPool* pool) {
    assert(n <= bytes_);
    bytes_ -= n;
    while (n > 0 && head_ < segs_.size()) {
        Segment& s = segs_[head_];
        const std::size_t left = s.bytes->size() - s.offset;
        if (n < left) {
            s.offset += n;
            break;
        }
        n -= left;
        s.bytes.reset();  // the last holder frees the frame now, not at compaction
        ++head_;
    }
    if (head_ == segs_.size()) {
        clear(pool);
    } else if (head_ >= kCompactAfter && head_ * 2 >= segs_.size()) {
        segs_.erase(segs_.begin(), segs_.begin() + static_cast<std::ptrdiff_t>(head_));
        head_ = 0;
    }
}

std::vector<std::uint64_t> OutputQueue::unwrittenTags(const JoinedTagReader* joined) const {
    std::vector<std::uint64_t> tags;
    for (std::size_t i = head_; i < segs_.size(); ++i) {
        const Segment& s = segs_[i];
        if (s.tag == kJoinedTag) {
            if (joined != nullptr && *joined) {
                (*joined)(std::span<const std::uint8_t>(*s.bytes), s.offset, tags);
            }
        } else if (s.tag != 0) {
            tags.push_back(s.tag);
        }
    }
    return tags;
}

void OutputQueue::clear(SegmentPool* pool) {
    segs_.clear();  // drops the references still held
    if (pool != nullptr) {
        pool->give(std::move(segs_));
    }
    std::vector<Segment>().swap(segs_);  // frees what the pool did not keep
    head_ = 0;
    bytes_ = 0;
}

}  // namespace tundra::net
