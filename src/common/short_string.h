// SPDX-License-Identifier: Apache-2.0
// ShortString: a string in 16 bytes for the many short names the server keeps (one per
// remembered user). Up to 15 bytes live inline; a longer one is one heap block of its size. A
// std::string is 32 bytes and keeps only 15 bytes inline too, so a user's name costs half.
#pragma once

#include <fmt/format.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace tundra::common {

class ShortString {
public:
    static constexpr std::size_t kInline = 15;

    ShortString() = default;
    explicit ShortString(std::string_view s) { assign(s); }
    ~ShortString() { release(); }
    ShortString(const ShortString& o) { assign(o.view()); }
    ShortString& operator=(const ShortString& o) {
        if (this != &o) {
            assign(o.view());
        }
        return *this;
    }
    ShortString(ShortString&& o) noexcept {
        bytes_ = o.bytes_;
        o.bytes_[kTag] = 0;  // o is empty and owns nothing
    }
    ShortString& operator=(ShortString&& o) noexcept {
        if (this != &o) {
            release();
            bytes_ = o.bytes_;
            o.bytes_[kTag] = 0;
        }
        return *this;
    }

    /// Replaces the contents (`s` may point into this string).
    void assign(std::string_view s) {
        std::array<char, 16> next{};
        if (s.size() <= kInline) {
            if (!s.empty()) {
                std::memcpy(next.data(), s.data(), s.size());
            }
            next[kTag] = static_cast<char>(s.size());
        } else {
            char* p = new char[s.size()];  // NOLINT(cppcoreguidelines-owning-memory): see release()
            std::memcpy(p, s.data(), s.size());
            const auto n = static_cast<std::uint32_t>(s.size());
            std::memcpy(next.data(), &p, sizeof(p));
            std::memcpy(next.data() + sizeof(p), &n, sizeof(n));
            next[kTag] = kHeapTag;
        }
        release();
        bytes_ = next;
    }

    [[nodiscard]] std::string_view view() const {
        if (!onHeap()) {
            return {bytes_.data(), static_cast<std::size_t>(bytes_[kTag])};
        }
        const char* p = nullptr;
        std::uint32_t n = 0;
        std::memcpy(&p, bytes_.data(), sizeof(p));
        std::memcpy(&n, bytes_.data() + sizeof(p), sizeof(n));
        return {p, static_cast<std::size_t>(n)};
    }
    operator std::string_view() const { return view(); }  // NOLINT(google-explicit-constructor)
    [[nodiscard]] std::size_t size() const { return view().size(); }
    [[nodiscard]] bool empty() const { return bytes_[kTag] == 0; }
    /// Heap bytes it holds beyond itself (0 for up to kInline bytes).
    [[nodiscard]] std::size_t heapBytes() const { return onHeap() ? size() : 0; }

    friend bool operator==(const ShortString& a, std::string_view b) { return a.view() == b; }
    friend bool operator==(const ShortString& a, const ShortString& b) {
        return a.view() == b.view();
    }

private:
    // bytes_[15]: the inline length (0..15), or kHeapTag; then the heap pointer comes first
    // and its 32-bit length after it.
    static constexpr std::size_t kTag = 15;
    static constexpr char kHeapTag = static_cast<char>(0x80);
    static_assert(sizeof(char*) + sizeof(std::uint32_t) <= kTag);

    [[nodiscard]] bool onHeap() const { return bytes_[kTag] == kHeapTag; }
    void release() {
        if (onHeap()) {
            char* p = nullptr;
            std::memcpy(&p, bytes_.data(), sizeof(p));
            delete[] p;  // NOLINT(cppcoreguidelines-owning-memory): its one heap block
        }
        bytes_[kTag] = 0;
    }

    std::array<char, 16> bytes_{};
};

}  // namespace tundra::common

template <>
struct fmt::formatter<tundra::common::ShortString> : fmt::formatter<std::string_view> {
    template <typename Context>
    auto format(const tundra::common::ShortString& s, Context& ctx) const {
        return fmt::formatter<std::string_view>::format(s.view(), ctx);
    }
};
