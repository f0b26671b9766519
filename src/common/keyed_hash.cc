// SPDX-License-Identifier: Apache-2.0
// SipHash-2-4 and the per-process key (getrandom).
#include "common/keyed_hash.h"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace tundra::common {

namespace {

constexpr std::uint64_t rotl(std::uint64_t x, int b) noexcept { return (x << b) | (x >> (64 - b)); }

struct SipState {
    std::uint64_t v0;
    std::uint64_t v1;
    std::uint64_t v2;
    std::uint64_t v3;

    void round() noexcept {
        v0 += v1;
        v1 = rotl(v1, 13);
        v1 ^= v0;
        v0 = rotl(v0, 32);
        v2 += v3;
        v3 = rotl(v3, 16);
        v3 ^= v2;
        v0 += v3;
        v3 = rotl(v3, 21);
        v3 ^= v0;
        v2 += v1;
        v1 = rotl(v1, 17);
        v1 ^= v2;
        v2 = rotl(v2, 32);
    }

    void compress(std::uint64_t m) noexcept {
        v3 ^= m;
        round();
        round();
        v0 ^= m;
    }
};

std::uint64_t loadLe64(const unsigned char* p) noexcept {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) {
        v = (v << 8) | p[i];
    }
    return v;
}

bool fillRandom(unsigned char* out, std::size_t len) noexcept {
    std::size_t got = 0;
    while (got < len) {
        ssize_t n = ::getrandom(out + got, len - got, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        got += static_cast<std::size_t>(n);
    }
    if (got == len) {
        return true;
    }
    int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    got = 0;
    while (got < len) {
        ssize_t n = ::read(fd, out + got, len - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        got += static_cast<std::size_t>(n);
    }
    ::close(fd);
    return got == len;
}

SipKey randomKey() noexcept {
    unsigned char bytes[16];
    if (!fillRandom(bytes, sizeof bytes)) {
        // No entropy source at all: a predictable key would silently bring hash flooding back.
        std::abort();
    }
    return SipKey{loadLe64(bytes), loadLe64(bytes + 8)};
}

}  // namespace

std::uint64_t sipHash24(const SipKey& key, const void* data, std::size_t len) noexcept {
    const auto* in = static_cast<const unsigned char*>(data);
    SipState s{key.k0 ^ 0x736f6d6570736575ULL, key.k1 ^ 0x646f72616e646f6dULL,
               key.k0 ^ 0x6c7967656e657261ULL, key.k1 ^ 0x7465646279746573ULL};
    const std::size_t whole = len - (len % 8);
    for (std::size_t i = 0; i < whole; i += 8) {
        s.compress(loadLe64(in + i));
    }
    // The last block: the remaining 0-7 bytes, and the length's low byte on top.
    std::uint64_t b = static_cast<std::uint64_t>(len & 0xff) << 56;
    for (std::size_t i = 0; i < len % 8; ++i) {
        b |= static_cast<std::uint64_t>(in[whole + i]) << (8 * i);
    }
    s.compress(b);
    s.v2 ^= 0xff;
    for (int i = 0; i < 4; ++i) {
        s.round();
    }
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

const SipKey& processHashKey() noexcept {
    static const SipKey key = randomKey();
    return key;
}

}  // namespace tundra::common
