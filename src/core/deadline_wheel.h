// SPDX-License-Identifier: Apache-2.0
// DeadlineWheel: a coarse hashed timing wheel for the core's per-connection and per-session
// deadlines. Pure data structure; time is passed in, never read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace tundra::core {

/// Frees the storage of an empty vector and halves one holding less than a quarter of it
/// (small ones are left alone: refiling them would cost more than they hold).
template <class E>
void fitStorage(std::vector<E>& v) {
    constexpr std::size_t kKeep = 8;
    if (v.capacity() <= kKeep) {
        return;
    }
    if (v.empty()) {
        std::vector<E>().swap(v);
    } else if (v.size() < v.capacity() / 4) {
        std::vector<E> smaller;
        smaller.reserve(v.capacity() / 2);
        for (auto& e : v) {
            smaller.push_back(std::move(e));
        }
        v.swap(smaller);
    }
}

// Design. Time is cut into slots of `slot_ms` (the tick interval, 100 ms); slot k of the
// wheel holds every entry whose deadline falls into a tick t with t % slots == k, so entries
// more than one revolution away share a slot with nearer ones and are simply kept when the slot
// is visited too early. advance(now) visits the slots of every tick since the previous call
// (at most one revolution) and fires exactly the entries whose deadline is <= now; the rest
// stay. The current tick's slot is visited again on the next call, so a deadline fires on the
// first advance() at or after it: precision is the caller's tick interval.
//
// Entries are never removed early. Callers keep at most one live entry per key and re-check it
// when it fires (a connection that was active since gets re-filed to its new deadline: one O(1)
// store per inbound frame, one re-file per idle period, instead of a heap update per frame).
// Cost of advance(): the entries in the visited slots; nothing else.
//
// Memory: a slot's storage is freed once a visit leaves it empty (and a visited slot keeps at
// most twice what it holds), so a burst that filed every connection into a few slots does not
// stay allocated after it: what the wheel holds follows what is filed, not the largest burst it
// ever saw.
//
// WheelSlots is that structure for entries of type E; DeadlineWheel and KeyWheel decide what an
// entry holds and which entries of a visited slot fire.
template <class E>
class WheelSlots {
public:
    WheelSlots(std::int64_t slot_ms, std::size_t slots, std::int64_t now_ms)
        : slot_ms_(slot_ms > 0 ? slot_ms : 1),
          slots_(slots > 0 ? slots : 1),
          tick_(now_ms / slot_ms_) {}

    void clear() {
        for (auto& s : slots_) {
            s.clear();
        }
        size_ = 0;
    }

    /// Entries filed (for a KeyWheel, stale ones included).
    [[nodiscard]] std::size_t size() const { return size_; }
    /// Entries the wheel has storage for, in every slot and its scratch area (tests).
    [[nodiscard]] std::size_t capacity() const {
        std::size_t n = scratch_.capacity();
        for (const auto& s : slots_) {
            n += s.capacity();
        }
        return n;
    }

protected:
    /// Files `e` into the slot of `deadline_ms` (one in the past: the current tick's).
    void file(E e, std::int64_t deadline_ms) {
        std::int64_t t = deadline_ms / slot_ms_;
        if (t < tick_) {
            t = tick_;
        }
        slots_[index(t)].push_back(std::move(e));
        ++size_;
    }

    /// Visits every entry in the slots of each tick since the previous call (at most one
    /// revolution): keep(e, slot index) returns true to keep it there, false to drop it (it
    /// fired, or is stale). `keep` may file() again (even into the slot being visited: such an
    /// entry waits for the next call).
    template <class Keep>
    void visit(std::int64_t now_ms, Keep&& keep) {
        const std::int64_t now_tick = now_ms / slot_ms_;
        if (now_tick < tick_) {
            return;  // time does not go backwards for a steady clock; ignore
        }
        std::int64_t first = tick_;
        if (now_tick - first >= static_cast<std::int64_t>(slots_.size())) {
            first = now_tick - static_cast<std::int64_t>(slots_.size()) + 1;
        }
        tick_ = now_tick;  // re-files from keep() land at now_tick or later
        for (std::int64_t t = first; t <= now_tick; ++t) {
            const std::size_t here = index(t);
            auto& slot = slots_[here];
            if (slot.empty()) {
                continue;
            }
            scratch_.clear();
            scratch_.swap(slot);
            for (auto& e : scratch_) {
                --size_;
                if (keep(e, here)) {
                    slot.push_back(std::move(e));
                    ++size_;
                }
            }
            fitStorage(slot);
        }
        scratch_.clear();
        fitStorage(scratch_);
    }

    [[nodiscard]] std::size_t index(std::int64_t tick) const {
        return static_cast<std::size_t>(tick) % slots_.size();
    }

    std::int64_t slot_ms_;

private:
    std::vector<std::vector<E>> slots_;
    std::int64_t tick_;  // the last tick visit() visited
    std::vector<E> scratch_;
    std::size_t size_ = 0;
};

template <class Key>
struct DeadlineEntry {
    Key key;
    std::int64_t deadline_ms;
};

/// Entries hold their key and deadline (16 bytes for a ConnId key); advance() fires exactly
/// those due.
template <class Key>
class DeadlineWheel : public WheelSlots<DeadlineEntry<Key>> {
    using Base = WheelSlots<DeadlineEntry<Key>>;

public:
    using Base::Base;

    /// Files `key` to fire at `deadline_ms` (a deadline in the past fires on the next advance).
    void schedule(Key key, std::int64_t deadline_ms) {
        Base::file(DeadlineEntry<Key>{std::move(key), deadline_ms}, deadline_ms);
    }

    /// Calls fire(key, deadline_ms) for every entry with deadline <= now_ms and removes it.
    /// `fire` may schedule() again (even the same key).
    template <class Fire>
    void advance(std::int64_t now_ms, Fire&& fire) {
        Base::visit(now_ms, [&](DeadlineEntry<Key>& e, std::size_t) {
            if (e.deadline_ms > now_ms) {
                return true;
            }
            fire(e.key, e.deadline_ms);
            return false;
        });
    }
};

/// DeadlineWheel's sibling for keys whose owner keeps each key's one live deadline (the core's
/// connections: Conn::wake_ms). An entry is only the key, 8 bytes for a ConnId instead of 16.
/// When advance() visits a slot it asks due(key) for the key's live deadline: 0 (none, or the
/// key is gone) drops the entry; a deadline <= now fires it (fire(key, deadline), after which
/// the owner must have moved that deadline past now or to 0: a second entry of the key in the
/// same visit then finds nothing due); a later deadline whose tick falls into this slot stays
/// (it is a revolution or more away); any other later deadline was filed into its own slot, so
/// this entry is stale and dropped. Same slots, ticks and storage rules as DeadlineWheel.
template <class Key>
class KeyWheel : public WheelSlots<Key> {
    using Base = WheelSlots<Key>;

public:
    using Base::Base;

    /// Files `key` to be looked at when `deadline_ms` comes (one in the past: on the next
    /// advance).
    void schedule(Key key, std::int64_t deadline_ms) { Base::file(std::move(key), deadline_ms); }

    /// Visits the slots of every tick since the previous call; see the class comment for due()
    /// and fire(). `fire` may schedule() again (even the same key).
    template <class Due, class Fire>
    void advance(std::int64_t now_ms, Due&& due, Fire&& fire) {
        Base::visit(now_ms, [&](Key& key, std::size_t here) {
            const std::int64_t deadline = due(key);
            if (deadline != 0 && deadline <= now_ms) {
                fire(key, deadline);
                return false;
            }
            // A revolution or more away in this slot: kept; none, or filed elsewhere: stale.
            return deadline != 0 && Base::index(deadline / Base::slot_ms_) == here;
        });
    }
};

}  // namespace tundra::core
