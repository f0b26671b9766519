// SPDX-License-Identifier: Apache-2.0
// The store's journal: an append-only log of the core's batches, one record per group commit,
// in numbered segment files beside the database (DIR/journal.<number>). The writer thread
// appends a record and syncs it before the ACKs it carries leave; a checkpoint later folds
// whole segments into the SQLite database (Compaction) and deletes them. At start, segments
// the database has not taken yet are folded in the same way. Byte layout: docs/ARCHITECTURE.md,
// "Storage".
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/store_batch.h"

namespace tundra::storage {

/// Every segment file starts with these 8 bytes.
inline constexpr char kJournalMagic[8] = {'T', 'N', 'D', 'J', 'R', 'N', 'L', '1'};
inline constexpr std::size_t kRecordHeaderBytes = 8;  ///< u32 payload length, u32 CRC-32

/// DIR/journal.<number, 12 digits> (so names sort in number order).
std::string segmentPath(const std::string& dir, std::uint64_t number);

/// The segment numbers found in DIR, ascending.
std::vector<std::uint64_t> listSegments(const std::string& dir);

/// Appends one record holding `batches` (length, CRC-32 of the payload, payload) to `out`.
/// A frame shared by consecutive ops (a broadcast's entries) is written once per record.
void encodeRecord(std::span<const core::StoreBatch> batches, std::string& out);

/// What reading one segment found.
struct SegmentRead {
    std::vector<core::StoreBatch> batches;  ///< every complete record's batches, in order
    std::size_t records = 0;
    std::uint64_t valid_bytes = 0;  ///< the file up to the end of the last complete record
    /// Bytes after it that were an incomplete last write (a crash mid-append): ignored.
    std::uint64_t torn_bytes = 0;
};

/// Reads the segment at `path`. A record cut short at the end of the file, or a tail of
/// zero bytes, is a torn write: counted in `torn_bytes` and ignored. False with `error`
/// (naming the file and the offset) for a damaged record followed by more data, a wrong
/// magic, or an unreadable file.
bool readSegment(const std::string& path, SegmentRead& out, std::string& error);

}  // namespace tundra::storage
