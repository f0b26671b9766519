// SPDX-License-Identifier: Apache-2.0
// Journal records: encoding and reading (see journal.h). Integers are little-endian.
//
//   record  = u32 payload length | u32 CRC-32 (zlib) of the payload | payload
//   payload = u32 batch count, then per batch:
//             u8 flags (1 = full) | u64 seq | u64 id_reserve | u32 op count | ops
//   op      = u8 kind, then its fields (core::StoreOp), in this order:
//             UpsertUser     name, u8 client kind, 16 session bytes, i64 detached wall ms,
//                            u32 dropped, u64 bcast_since
//             DeleteUser     name
//             PutEntry       name, u64 id, u8 written, frame
//             DeleteEntry    name, u64 id
//             TrimWindow     name, u64 id
//             PutBroadcast   name (the sender), u64 id, u8 client kind (1 = agents only), frame
//             TrimBroadcasts u64 id
//   name    = u16 length and the bytes
//   frame   = u32 length and the bytes; 0xFFFFFFFF: the previous op's frame; 0xFFFFFFFE: none
#include "storage/journal.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

namespace tundra::storage {

namespace {

constexpr std::uint32_t kSameFrame = 0xFFFFFFFFU;
constexpr std::uint32_t kNoFrame = 0xFFFFFFFEU;
constexpr const char* kPrefix = "journal.";
constexpr std::size_t kDigits = 12;

std::uint32_t crcOf(const char* p, std::size_t n) {
    return static_cast<std::uint32_t>(
        ::crc32(0L, reinterpret_cast<const Bytef*>(p), static_cast<uInt>(n)));
}

// Reads fields from a payload; any read past the end sets `bad`.
class Reader {
public:
    Reader(const char* p, std::size_t n) : p_(p), end_(p + n) {}
    template <typename T>
    T get() {
        if (static_cast<std::size_t>(end_ - p_) < sizeof(T)) {
            bad = true;
            p_ = end_;
            return T{};
        }
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < sizeof(T); ++i) {
            v |= static_cast<std::uint64_t>(static_cast<unsigned char>(p_[i])) << (8 * i);
        }
        p_ += sizeof(T);
        return static_cast<T>(v);
    }
    const char* take(std::size_t n) {
        if (static_cast<std::size_t>(end_ - p_) < n) {
            bad = true;
            p_ = end_;
            return nullptr;
        }
        const char* at = p_;
        p_ += n;
        return at;
    }
    [[nodiscard]] bool done() const { return p_ == end_; }
    bool bad = false;

private:
    const char* p_;
    const char* end_;
};

bool decodePayload(const char* p, std::size_t n, std::vector<core::StoreBatch>& out) {
    using K = core::StoreOp::Kind;
    Reader r(p, n);
    const auto batches = r.get<std::uint32_t>();
    SharedFrame previous;
    for (std::uint32_t b = 0; b < batches && !r.bad; ++b) {
        core::StoreBatch batch;
        batch.full = (r.get<std::uint8_t>() & 1U) != 0;
        batch.seq = r.get<std::uint64_t>();
        batch.id_reserve = r.get<std::uint64_t>();
        const auto ops = r.get<std::uint32_t>();
        if (ops > n) {  // cannot be: every op takes more than a byte
            return false;
        }
        batch.ops.reserve(ops);
        for (std::uint32_t i = 0; i < ops && !r.bad; ++i) {
            core::StoreOp op;
            const auto kind = r.get<std::uint8_t>();
            if (kind > static_cast<std::uint8_t>(K::TrimBroadcasts)) {
                return false;
            }
            op.kind = static_cast<K>(kind);
            if (op.kind != K::TrimBroadcasts) {
                const auto name_len = r.get<std::uint16_t>();
                if (const char* name = r.take(name_len)) {
                    op.user.assign(name, name_len);
                }
            }
            if (op.kind != K::UpsertUser && op.kind != K::DeleteUser) {
                op.id = r.get<std::uint64_t>();
            }
            if (op.kind == K::PutEntry) {
                op.written = r.get<std::uint8_t>() != 0;
            }
            if (op.kind == K::UpsertUser || op.kind == K::PutBroadcast) {
                op.client_kind = r.get<std::uint8_t>() == 1 ? ClientKind::Agent : ClientKind::User;
            }
            if (op.kind == K::UpsertUser) {
                if (const char* sess = r.take(op.session.size())) {
                    std::memcpy(op.session.data(), sess, op.session.size());
                }
                op.detached_wall_ms = r.get<std::int64_t>();
                op.dropped = r.get<std::uint32_t>();
                op.bcast_since = r.get<std::uint64_t>();
            }
            if (op.kind == K::PutEntry || op.kind == K::PutBroadcast) {
                const auto frame_len = r.get<std::uint32_t>();
                if (frame_len == kSameFrame) {
                    op.frame = previous;
                } else if (frame_len != kNoFrame) {
                    if (const char* f = r.take(frame_len)) {
                        const auto* u = reinterpret_cast<const std::uint8_t*>(f);
                        op.frame = core::share(ByteSpan(u, frame_len));
                        previous = op.frame;
                    }
                }
            }
            batch.ops.push_back(std::move(op));
        }
        out.push_back(std::move(batch));
    }
    return !r.bad && r.done();
}

}  // namespace

std::string segmentPath(const std::string& dir, std::uint64_t number) {
    std::string digits = std::to_string(number);
    if (digits.size() < kDigits) {
        digits.insert(0, kDigits - digits.size(), '0');
    }
    return dir + "/" + kPrefix + digits;
}

std::vector<std::uint64_t> listSegments(const std::string& dir) {
    std::vector<std::uint64_t> out;
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
        return out;
    }
    const std::size_t prefix = std::strlen(kPrefix);
    while (const dirent* e = ::readdir(d)) {
        const std::string_view name(e->d_name);
        if (name.size() != prefix + kDigits || name.substr(0, prefix) != kPrefix) {
            continue;
        }
        std::uint64_t n = 0;
        bool digits = true;
        for (char c : name.substr(prefix)) {
            digits = digits && c >= '0' && c <= '9';
            n = n * 10 + static_cast<std::uint64_t>(c - '0');
        }
        if (digits) {
            out.push_back(n);
        }
    }
    ::closedir(d);
    std::sort(out.begin(), out.end());
    return out;
}

namespace {
using K = core::StoreOp::Kind;

bool hasName(K k) { return k != K::TrimBroadcasts; }
bool hasId(K k) { return k != K::UpsertUser && k != K::DeleteUser; }
bool hasFrame(K k) { return k == K::PutEntry || k == K::PutBroadcast; }
bool hasClientKind(K k) { return k == K::UpsertUser || k == K::PutBroadcast; }

// Writes little-endian integers and bytes into a buffer sized beforehand (no checks, no
// reallocation: the writer's hot path).
class Out {
public:
    explicit Out(char* p) : p_(p) {}
    template <typename T>
    void put(T v) {
        const auto u = static_cast<std::uint64_t>(v);
        for (std::size_t i = 0; i < sizeof(T); ++i) {
            p_[i] = static_cast<char>(u >> (8 * i));
        }
        p_ += sizeof(T);
    }
    void bytes(const void* src, std::size_t n) {
        std::memcpy(p_, src, n);
        p_ += n;
    }

private:
    char* p_;
};
}  // namespace

void encodeRecord(std::span<const core::StoreBatch> batches, std::string& out) {
    // First the size (frames shared by consecutive ops counted once), then one resize and
    // straight writes.
    std::size_t size = 4;
    const SharedFrame::Block* previous = nullptr;
    for (const core::StoreBatch& b : batches) {
        size += 1 + 8 + 8 + 4;
        for (const core::StoreOp& op : b.ops) {
            size += 1;
            if (hasName(op.kind)) {
                size += 2 + op.user.size();
            }
            size += hasId(op.kind) ? 8 : 0;
            size += op.kind == K::PutEntry ? 1 : 0;
            size += hasClientKind(op.kind) ? 1 : 0;
            size += op.kind == K::UpsertUser ? op.session.size() + 8 + 4 + 8 : 0;
            if (hasFrame(op.kind)) {
                size += 4;
                if (op.frame && op.frame.get() != previous) {
                    size += op.frame->size();
                    previous = op.frame.get();
                }
            }
        }
    }
    const std::size_t start = out.size();
    out.resize(start + kRecordHeaderBytes + size);
    char* payload = out.data() + start + kRecordHeaderBytes;
    Out w(payload);
    w.put<std::uint32_t>(static_cast<std::uint32_t>(batches.size()));
    previous = nullptr;
    for (const core::StoreBatch& b : batches) {
        w.put<std::uint8_t>(b.full ? 1 : 0);
        w.put<std::uint64_t>(b.seq);
        w.put<std::uint64_t>(b.id_reserve);
        w.put<std::uint32_t>(static_cast<std::uint32_t>(b.ops.size()));
        for (const core::StoreOp& op : b.ops) {
            w.put<std::uint8_t>(static_cast<std::uint8_t>(op.kind));
            if (hasName(op.kind)) {
                w.put<std::uint16_t>(static_cast<std::uint16_t>(op.user.size()));
                w.bytes(op.user.data(), op.user.size());
            }
            if (hasId(op.kind)) {
                w.put<std::uint64_t>(op.id);
            }
            if (op.kind == K::PutEntry) {
                w.put<std::uint8_t>(op.written ? 1 : 0);
            }
            if (hasClientKind(op.kind)) {
                w.put<std::uint8_t>(op.client_kind == ClientKind::Agent ? 1 : 0);
            }
            if (op.kind == K::UpsertUser) {
                w.bytes(op.session.data(), op.session.size());
                w.put<std::int64_t>(op.detached_wall_ms);
                w.put<std::uint32_t>(op.dropped);
                w.put<std::uint64_t>(op.bcast_since);
            }
            if (!hasFrame(op.kind)) {
                continue;
            }
            if (!op.frame) {
                w.put<std::uint32_t>(kNoFrame);
            } else if (op.frame.get() == previous) {
                w.put<std::uint32_t>(kSameFrame);
            } else {
                w.put<std::uint32_t>(static_cast<std::uint32_t>(op.frame->size()));
                w.bytes(op.frame->data(), op.frame->size());
                previous = op.frame.get();
            }
        }
    }
    Out h(out.data() + start);
    h.put<std::uint32_t>(static_cast<std::uint32_t>(size));
    h.put<std::uint32_t>(crcOf(payload, size));
}

bool readSegment(const std::string& path, SegmentRead& out, std::string& error) {
    out = SegmentRead{};
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        error = path + ": " + std::strerror(errno);
        return false;
    }
    std::string data;
    char buf[1 << 16];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            error = path + ": " + std::strerror(errno);
            ::close(fd);
            return false;
        }
        if (n == 0) {
            break;
        }
        data.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    // Bytes after the last one written: zeros (a segment is created zero-filled ahead of use,
    // or the file grew before its data reached it).
    const auto written_end = [&](std::size_t from) {
        std::size_t end = data.size();
        while (end > from && data[end - 1] == 0) {
            --end;
        }
        return end;
    };
    if (written_end(0) == 0 || (data.size() < sizeof kJournalMagic &&
                                std::memcmp(data.data(), kJournalMagic, data.size()) == 0)) {
        return true;  // created or prepared, then a crash before its first record
    }
    if (data.size() < sizeof kJournalMagic ||
        std::memcmp(data.data(), kJournalMagic, sizeof kJournalMagic) != 0) {
        error = path + ": not a tundra journal segment";
        return false;
    }
    // A record that cannot be read is a torn write (a crash mid-append, never acknowledged)
    // unless an intact record follows it: then the file is damaged.
    const auto intactAt = [&](std::size_t at) {
        if (data.size() - at < kRecordHeaderBytes) {
            return false;
        }
        Reader h(data.data() + at, kRecordHeaderBytes);
        const auto len = h.get<std::uint32_t>();
        const auto crc = h.get<std::uint32_t>();
        return len > 0 && len <= data.size() - at - kRecordHeaderBytes &&
               crcOf(data.data() + at + kRecordHeaderBytes, len) == crc;
    };
    std::size_t at = sizeof kJournalMagic;
    out.valid_bytes = at;
    while (at < data.size()) {
        const std::size_t left = data.size() - at;
        const char* p = data.data() + at;
        std::uint32_t len = 0;
        std::uint32_t crc = 0;
        if (left >= kRecordHeaderBytes) {
            Reader h(p, kRecordHeaderBytes);
            len = h.get<std::uint32_t>();
            crc = h.get<std::uint32_t>();
        }
        const bool fits = left >= kRecordHeaderBytes && len > 0 && len <= left - kRecordHeaderBytes;
        const char* payload = p + kRecordHeaderBytes;
        if (!fits || crcOf(payload, len) != crc) {
            if (fits && intactAt(at + kRecordHeaderBytes + len)) {
                error = path + ": damaged record at offset " + std::to_string(at) +
                        " (checksum); the file is left as it is";
                return false;
            }
            out.torn_bytes = written_end(at) - at;  // 0: the unused rest of the segment
            break;
        }
        if (!decodePayload(payload, len, out.batches)) {
            error = path + ": damaged record at offset " + std::to_string(at) +
                    " (content); the file is left as it is";
            return false;
        }
        ++out.records;
        at += kRecordHeaderBytes + len;
        out.valid_bytes = at;
    }
    return true;
}

}  // namespace tundra::storage
