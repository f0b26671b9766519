// SPDX-License-Identifier: Apache-2.0
// --save-images DIR: writes each received image to DIR as "<id>-<sender>.<ext>". The name is
// built only from characters that are safe in a file name (no '/', no "..", no control
// characters), the file is written under a temporary name and renamed into place, and an
// existing file is never replaced (a counter is added instead).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tundra/client.h"

namespace tundra::cli {

/// The file extension for a MIME type: png, jpg (image/jpeg), svg (image/svg+xml), otherwise
/// the subtype reduced to [a-z0-9] (at most 16 characters), or "bin" when nothing is left.
/// Case and parameters (";charset=...") are ignored.
std::string imageExtension(std::string_view mime);

/// A sender name made safe as part of a file name: only A-Z a-z 0-9 _ - . are kept (every other
/// byte, '/' and control characters included, becomes '_'), a '.' next to another '.' becomes
/// '_' (no ".."), at most 64 bytes; "unknown" when empty.
std::string sanitizeFileNamePart(std::string_view name);

/// "<id>-<sender>.<ext>", or "<id>-<sender>-<counter>.<ext>" when `counter` > 0.
std::string imageFileName(const client::Delivery& d, unsigned counter = 0);

/// Writes image deliveries into one directory.
class ImageSaver {
public:
    /// Checks that `dir` exists, is a directory and that a file can be created in it (a probe
    /// file is created and removed). Returns why not, or nullopt when it is usable.
    static std::optional<std::string> checkDirectory(const std::string& dir);

    explicit ImageSaver(std::string dir) : dir_(std::move(dir)) {}

    /// The outcome of save(): the path written ("DIR/NAME"), or why nothing was written.
    struct Outcome {
        std::string path;
        std::string error;
        [[nodiscard]] bool ok() const { return error.empty(); }
    };

    /// Writes d.data to a new file in the directory: a temporary file first, then renamed to
    /// imageFileName(d) without replacing anything (counter 1, 2, ... when the name is taken).
    Outcome save(const client::Delivery& d);

    [[nodiscard]] const std::string& directory() const { return dir_; }

private:
    [[nodiscard]] std::string pathOf(std::string_view name) const;

    std::string dir_;
    std::uint64_t temp_counter_ = 0;
};

}  // namespace tundra::cli
