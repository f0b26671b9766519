// SPDX-License-Identifier: Apache-2.0
// MemoryStore: the `--storage memory` store (nothing survives a restart, the server records
// nothing) and, for tests, an in-process model that applies batches synchronously so a
// "restart" can load what was applied.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "storage/store.h"

namespace tundra::storage {

class MemoryStore final : public Store {
public:
    /// `model`: keep the applied state (tests); false: durable() is false and nothing is kept.
    explicit MemoryStore(bool model = false) : model_(model) {}

    [[nodiscard]] std::string_view kind() const override { return "memory"; }
    [[nodiscard]] bool durable() const override { return model_; }
    bool load(core::StoreSnapshot& out, std::string& error) override;
    bool submit(core::StoreBatch& batch) override;
    [[nodiscard]] int completionFd() const override { return -1; }
    void takeResults(std::vector<core::BatchResult>& out) override;
    void close() override {}

    /// Tests: make the next `n` batches fail as a full disk would.
    void failNext(int n) { fail_next_ = n; }
    /// Tests: broadcasts held (stored once, not yet trimmed).
    [[nodiscard]] std::size_t broadcasts() const { return broadcasts_.size(); }
    /// Tests: batches applied so far.
    [[nodiscard]] std::uint64_t applied() const { return applied_; }

private:
    struct Row {
        core::SnapshotUser user;
        std::map<std::uint64_t, core::SnapshotEntry> entries;
    };
    void apply(const core::StoreBatch& b);

    bool model_;
    int fail_next_ = 0;
    std::uint64_t applied_ = 0;
    std::map<std::string, Row> users_;
    std::map<std::uint64_t, core::SnapshotBroadcast> broadcasts_;
    std::uint64_t id_reserve_ = 0;
    std::vector<core::BatchResult> results_;
};

}  // namespace tundra::storage
