// SPDX-License-Identifier: Apache-2.0
// Keyed hashing for tables whose keys a client chooses (user names, source addresses): SipHash-2-4
// under a per-process random key, so nobody outside the process can compute which keys share a
// bucket and fill one chain with thousands of them (hash flooding). std::hash has a fixed, public
// seed; never use it for such tables.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tundra::common {

/// A 128-bit SipHash key as two little-endian 64-bit halves (k0 = key bytes 0-7).
struct SipKey {
    std::uint64_t k0 = 0;
    std::uint64_t k1 = 0;
    friend bool operator==(const SipKey&, const SipKey&) = default;
};

/// SipHash-2-4 (Aumasson and Bernstein) of `len` bytes, 64-bit output.
std::uint64_t sipHash24(const SipKey& key, const void* data, std::size_t len) noexcept;

inline std::uint64_t sipHash24(const SipKey& key, std::string_view bytes) noexcept {
    return sipHash24(key, bytes.data(), bytes.size());
}

/// The process-wide key: 16 bytes from getrandom() on first use (at startup, when the first
/// table is built), /dev/urandom if that fails, never a constant.
const SipKey& processHashKey() noexcept;

/// A hasher for unordered containers keyed by client-chosen bytes. It carries its key (the
/// process key by default; tests pass their own), and is transparent, so a table of std::string
/// can be searched with a string_view without building a string:
///
///     std::unordered_map<std::string, V, common::KeyedStringHash, std::equal_to<>> table;
///     table.find(std::string_view(name));
///
/// or simply `common::KeyedStringMap<V>`.
class KeyedStringHash {
public:
    using is_transparent = void;

    KeyedStringHash() noexcept : key_(processHashKey()) {}
    explicit KeyedStringHash(const SipKey& key) noexcept : key_(key) {}

    std::size_t operator()(std::string_view s) const noexcept {
        return static_cast<std::size_t>(sipHash24(key_, s));
    }
    std::size_t operator()(const std::string& s) const noexcept {
        return (*this)(std::string_view(s));
    }
    std::size_t operator()(const char* s) const noexcept { return (*this)(std::string_view(s)); }

    [[nodiscard]] const SipKey& key() const noexcept { return key_; }

private:
    SipKey key_;
};

/// A map from client-chosen strings, hashed with the process key, searchable by string_view.
template <class V>
using KeyedStringMap = std::unordered_map<std::string, V, KeyedStringHash, std::equal_to<>>;

}  // namespace tundra::common
