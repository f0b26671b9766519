// SPDX-License-Identifier: Apache-2.0
// The store interface the server drives: load everything once at start, then hand over one
// batch of the core's mutations per loop iteration and collect the results on the reactor.
// Narrow on purpose, so a networked store (Redis, several nodes) can implement it too
// (docs/ARCHITECTURE.md, "Storage").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/store_batch.h"

namespace tundra::storage {

class Store {
public:
    virtual ~Store() = default;
    /// "memory" or "sqlite".
    [[nodiscard]] virtual std::string_view kind() const = 0;
    /// False: nothing survives a restart, and the server records no batches at all.
    [[nodiscard]] virtual bool durable() const = 0;
    /// Everything the store holds (blocking, at start only). False with a clear `error`.
    virtual bool load(core::StoreSnapshot& out, std::string& error) = 0;
    /// Takes one batch (moved from) without blocking. False, leaving `batch` untouched, while
    /// the queue is full: the caller keeps collecting into its open batch and stops reading
    /// from its clients until results arrive (backpressure).
    virtual bool submit(core::StoreBatch& batch) = 0;
    /// A descriptor that becomes readable when results wait (-1: results are immediate,
    /// collect them right after submit()).
    [[nodiscard]] virtual int completionFd() const = 0;
    /// Appends the results ready so far, in batch order; clears the completion descriptor.
    virtual void takeResults(std::vector<core::BatchResult>& out) = 0;
    /// Waits until every submitted batch has a result, then stops (shutdown).
    virtual void close() = 0;

    /// What a store with a journal reports (zero for the others).
    struct Stats {
        std::uint64_t journal_bytes = 0;  ///< appended and not yet folded into the database
        std::uint64_t checkpoints = 0;
        std::uint64_t checkpoint_failures = 0;
    };
    [[nodiscard]] virtual Stats stats() { return {}; }
};

}  // namespace tundra::storage
