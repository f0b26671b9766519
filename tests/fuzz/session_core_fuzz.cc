// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the session core. The input drives one core::SessionManager (FakeClock,
// small limits chosen by the input) through a sequence of operations on up to 8 fake
// connections: connect (from a small set of source addresses), a frame (REGISTER with names from
// a small set and a known, foreign, random or nil session and last_id, MESSAGE / AGENT_COMMAND /
// IMAGE to one user or everyone, PING, PONG, LIST_USERS, LOGOUT, HEALTH_CHECK, unknown types,
// truncated or corrupted payloads, oversized frames as header errors), disconnect with some of
// the delivery ids queued to it reported unwritten, clock advance + tick(), reconfigure,
// shutdown and healthJson(). After every operation it checks, and aborts on a violation:
//   - every queued frame decodes with the real decoder and parser, one frame per send;
//   - nothing is queued to a connection the server would have dropped or that never existed,
//     no frame after onDisconnect(), closeAfterFlush() once per connection;
//   - a delivery only goes to a connection that got a WELCOME for a user that it is addressed
//     to (or a broadcast), never to its sender, live deliveries in id order;
//   - ACK: `delivered` equals the live deliveries queued, `buffered` the offline stores, and a
//     broadcast reaches every live registered connection of the audience but the sender;
//   - counters never decrease; frames_out_total and messages_out_total grow by exactly what
//     was queued; gauges match the connections and stay within the count and byte budgets;
//     offline entries are conserved (stored <= held + dropped + replayed).
//
// Input layout: 16 config bytes, then operations (1 opcode byte + operands, all read through
// Input, which returns zeros once the data runs out). Seeds: tests/fuzz/session_corpus/.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/outbox.h"
#include "core/session_manager.h"
#include "support/fake_clock.h"
#include "tundra/codec.h"
#include "tundra/messages.h"

#define TUNDRA_FUZZ_CHECK(cond)                                                           \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            std::abort();                                                                 \
        }                                                                                 \
    } while (false)

namespace tundra {
namespace {

using core::ConnId;

constexpr std::size_t kSlots = 8;
constexpr std::size_t kMaxOps = 400;
constexpr std::array<std::string_view, 8> kNames = {"alice", "bob",    "carol",  "dave",
                                                    "eve",   "agent1", "agent2", "bad name"};
constexpr std::array<std::string_view, 4> kSources = {"", "10.0.0.1", "10.0.0.2", "::1"};

class Input {
public:
    Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
    std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
    std::uint16_t u16() { return static_cast<std::uint16_t>(byte() | (byte() << 8)); }
    std::uint64_t u64() {
        std::uint64_t v = 0;
        for (int i = 0; i < 8; ++i) {
            v = (v << 8) | byte();
        }
        return v;
    }
    [[nodiscard]] bool done() const { return pos_ >= size_; }

private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t pos_ = 0;
};

core::CoreConfig readConfig(Input& in) {
    core::CoreConfig c;
    c.max_clients = 1 + in.byte() % 8;
    const std::uint8_t payload = in.byte();
    c.max_payload = payload % 4 == 0 ? kMaxPayload : 32 + std::size_t{payload} * 4;
    constexpr std::int64_t kTimes[] = {0, 100, 500, 1000, 5000, 30'000, 120'000, 1};
    c.session_timeout_ms = kTimes[in.byte() % 8] + 1;
    c.ping_interval_ms = kTimes[in.byte() % 8];
    c.max_buffered = in.byte() % 5;
    c.user_buffer_bytes = 40 + std::size_t{in.byte()} * 4;
    c.total_buffer_bytes = 60 + std::size_t{in.byte()} * 8;
    c.max_users = 1 + in.byte() % 6;
    const std::uint8_t bits = in.byte();
    c.presence_events = (bits & 1) != 0;
    c.register_timeout_ms = kTimes[(bits >> 1) % 8];
    c.max_unregistered = in.byte() % 4;
    c.max_connections_per_ip = in.byte() % 4;
    c.register_rate = in.byte() % 3;
    c.register_burst = in.byte() % 4;
    const std::uint8_t rate = in.byte();
    c.rate_messages_per_s = rate % 4 == 0 ? 0 : 1 + rate % 8;
    c.rate_messages_burst = 1 + (rate >> 3) % 8;
    const std::uint8_t bytes_rate = in.byte();
    c.rate_bytes_per_s = bytes_rate % 4 == 0 ? 0 : 64 + std::uint64_t{bytes_rate} * 16;
    c.rate_bytes_burst = 64 + std::uint64_t{bytes_rate} * 32;
    c.max_bad_frames = in.byte() % 4;
    return c;
}

// What the fuzzer knows about one connection id.
struct ConnModel {
    bool connected = false;
    bool disconnected = false;
    bool closing = false;  // closeAfterFlush requested: the server stops reading and queueing
    std::optional<std::string> name;  // set by a WELCOME
    ClientKind kind = ClientKind::User;
    std::uint64_t last_live_id = 0;  // newest non-replay delivery id queued
    std::uint64_t last_ping_token = 0;
    std::vector<std::uint64_t> delivery_ids;  // queued to it, oldest first
};

struct Sent {
    ConnId conn;
    MsgType type;
    std::uint16_t seq;
    std::uint8_t flags;
    std::uint64_t delivery_id;
    Bytes frame;
};

class CheckingOutbox final : public core::Outbox {
public:
    bool send(ConnId conn, SharedFrame frame, std::uint64_t delivery_id) override {
        auto it = conns.find(conn);
        TUNDRA_FUZZ_CHECK(it != conns.end() && it->second.connected);
        TUNDRA_FUZZ_CHECK(!it->second.disconnected);  // nothing after onDisconnect()
        TUNDRA_FUZZ_CHECK(frame != nullptr);
        if (it->second.closing) {
            return false;  // like the server: nothing is queued to a closing connection
        }
        const Bytes bytes(frame->begin(), frame->end());
        const DecodeResult r = decodeFrame(ByteSpan(bytes.data(), bytes.size()), kMaxPayload);
        TUNDRA_FUZZ_CHECK(r.status == DecodeStatus::Frame);
        TUNDRA_FUZZ_CHECK(r.consumed == bytes.size());
        TUNDRA_FUZZ_CHECK((r.header.flags & ~flags::kReplay) == 0);
        const auto type = static_cast<MsgType>(r.header.type);
        checkPayload(type, r.payload, delivery_id);
        step.push_back({conn, type, r.header.sequence, r.header.flags, delivery_id, bytes});
        return true;
    }

    void closeAfterFlush(ConnId conn) override {
        auto it = conns.find(conn);
        if (it == conns.end()) {
            // onHeaderError for an unknown connection requests the close all the same
            it = conns.emplace(conn, ConnModel{}).first;
        }
        TUNDRA_FUZZ_CHECK(!it->second.disconnected);
        TUNDRA_FUZZ_CHECK(!it->second.closing);  // exactly once
        it->second.closing = true;
        ++closes_in_step;
    }

    static void checkPayload(MsgType type, ByteSpan p, std::uint64_t delivery_id) {
        const bool delivery = type == MsgType::BroadcastMessage ||
                              type == MsgType::BroadcastAgent || type == MsgType::Image;
        TUNDRA_FUZZ_CHECK(delivery == (delivery_id != 0));
        switch (type) {
            case MsgType::System: {
                msg::System s;
                TUNDRA_FUZZ_CHECK(msg::parse(p, s) == nullptr);
                break;
            }
            case MsgType::BroadcastMessage:
            case MsgType::BroadcastAgent:
            case MsgType::Image: {
                msg::Delivery d;
                TUNDRA_FUZZ_CHECK(msg::parse(type, p, d) == nullptr);
                TUNDRA_FUZZ_CHECK(d.id == delivery_id);
                TUNDRA_FUZZ_CHECK(isValidName(d.from));
                break;
            }
            case MsgType::Ping:
            case MsgType::Pong: {
                msg::Ping m;
                // a PONG echoes the client's PING payload, which was valid when answered
                TUNDRA_FUZZ_CHECK(msg::parse(p, m) == nullptr);
                break;
            }
            case MsgType::Error: {
                msg::Error e;
                TUNDRA_FUZZ_CHECK(msg::parse(p, e) == nullptr);
                TUNDRA_FUZZ_CHECK(e.code >= 1 && e.code <= kMaxErrorCode);
                break;
            }
            case MsgType::HealthResult: {
                msg::HealthResult h;
                TUNDRA_FUZZ_CHECK(msg::parse(p, h) == nullptr);
                TUNDRA_FUZZ_CHECK(!h.json.empty() && h.json.front() == '{' && h.json.back() == '}');
                break;
            }
            case MsgType::Ack: {
                msg::Ack a;
                TUNDRA_FUZZ_CHECK(msg::parse(p, a) == nullptr);
                break;
            }
            case MsgType::UserList: {
                msg::UserList l;
                TUNDRA_FUZZ_CHECK(msg::parse(p, l) == nullptr);
                for (const auto& u : l.users) {
                    TUNDRA_FUZZ_CHECK(isValidName(u.name));
                }
                break;
            }
            default:
                TUNDRA_FUZZ_CHECK(false && "the core queued a client message type");
        }
    }

    std::map<ConnId, ConnModel> conns;
    std::vector<Sent> step;
    std::size_t closes_in_step = 0;
};

std::vector<std::uint64_t> counters(const core::Metrics& m) {
    std::vector<std::uint64_t> v = {m.frames_in_total,
                                    m.frames_out_total,
                                    m.messages_in_total,
                                    m.messages_out_total,
                                    m.offline_buffered_total,
                                    m.offline_dropped_total,
                                    m.connections_total,
                                    m.registrations_total,
                                    m.resumes_total,
                                    m.heartbeat_timeouts_total,
                                    m.slow_consumer_disconnects_total,
                                    m.sessions_expired_total,
                                    m.register_timeouts_total,
                                    m.unregistered_refused_total,
                                    m.per_ip_refused_total,
                                    m.register_rate_limited_total,
                                    m.detached_evicted_total,
                                    m.presence_coalesced_total,
                                    m.budget_evictions_total,
                                    m.rate_limited_total,
                                    m.bad_frame_closes_total};
    v.insert(v.end(), m.errors_total.begin(), m.errors_total.end());
    return v;
}

std::string text(std::uint8_t sel) {
    constexpr std::size_t kLengths[] = {1, 3, 12, 40, 100, 300, 1000, 5000};
    std::string s(kLengths[sel % 8], 'x');
    if ((sel & 0x80) != 0) {
        s[0] = '\0';  // NUL is allowed in text
    }
    return s;
}

// The message a frame operation sends, for the checks after it.
struct Sending {
    MsgType type = MsgType::Message;
    bool want_ack = false;
    std::uint16_t seq = 0;
    std::string to;
    bool valid = false;
    std::string reg_name;
    ClientKind reg_kind = ClientKind::User;
};

class Driver {
public:
    explicit Driver(Input& in)
        : in_(in),
          config_(readConfig(in)),
          core_(config_, box_, clock_, [this] { return nextSession(); }) {
        max_users_seen_ = config_.max_users;
        max_clients_seen_ = config_.max_clients;
    }

    void run() {
        for (std::size_t op = 0; op < kMaxOps && !in_.done(); ++op) {
            before_ = core_.metrics();
            box_.step.clear();
            box_.closes_in_step = 0;
            sending_.reset();
            const std::uint8_t code = in_.byte();
            if (trace_) {
                std::fprintf(stderr, "op %zu: %u\n", op, code % 12U);
            }
            switch (code % 12) {
                case 0:
                case 1:
                    connect();
                    break;
                case 2:
                case 3:
                case 4:
                case 5:
                    frame();
                    break;
                case 6:
                    disconnect();
                    break;
                case 7:
                case 8:
                    advance();
                    break;
                case 9:
                    reconfigure();
                    break;
                case 10:
                    if ((in_.byte() & 7) == 0) {
                        core_.shutdown(in_.u16());
                    } else {
                        headerError();
                    }
                    break;
                default: {
                    const std::string json = core_.healthJson(slotConn(in_.byte()));
                    TUNDRA_FUZZ_CHECK(!json.empty() && json.front() == '{');
                    break;
                }
            }
            checkStep();
        }
    }

private:
    Uuid nextSession() {
        Uuid id{};
        ++session_counter_;
        for (std::size_t i = 0; i < 8; ++i) {
            id[8 + i] = static_cast<std::uint8_t>(session_counter_ >> (8 * (7 - i)));
        }
        id[6] = 0x40;
        return id;
    }

    ConnId slotConn(std::uint8_t b) { return slots_[b % kSlots]; }

    ConnModel* live(ConnId id) {
        auto it = box_.conns.find(id);
        if (it == box_.conns.end() || !it->second.connected || it->second.disconnected) {
            return nullptr;
        }
        return &it->second;
    }

    void connect() {
        const std::uint8_t b = in_.byte();
        const std::size_t slot = b % kSlots;
        if (live(slots_[slot]) != nullptr) {
            return;  // the slot's connection is still open
        }
        const ConnId id = next_conn_++;
        slots_[slot] = id;
        ConnModel& m = box_.conns[id];
        m.connected = true;
        core_.onConnect(id, kSources[(b >> 3) % kSources.size()]);
        if (!m.closing) {
            ++open_counted_;
            counted_.insert(id);
        }
    }

    void headerError() {
        const ConnId id = slotConn(in_.byte());
        ConnModel* m = live(id);
        if (m == nullptr || m->closing) {
            return;
        }
        const ErrorCode codes[] = {ErrorCode::UnsupportedVersion, ErrorCode::InvalidFormat,
                                   ErrorCode::TooLarge};
        core_.onHeaderError(id, in_.u16(), codes[in_.byte() % 3], "fuzz");
        TUNDRA_FUZZ_CHECK(m->closing);
    }

    Uuid pickSession(std::uint8_t sel, std::string_view name) {
        switch (sel % 5) {
            case 0:
            case 1:
                return Uuid{};
            case 2: {
                auto it = sessions_.find(std::string(name));
                return it == sessions_.end() ? Uuid{} : it->second;
            }
            case 3: {  // someone else's session
                if (sessions_.empty()) {
                    return Uuid{};
                }
                auto it = sessions_.begin();
                std::advance(it, static_cast<long>(in_.byte() % sessions_.size()));
                return it->second;
            }
            default: {
                Uuid id{};
                for (auto& x : id) {
                    x = in_.byte();
                }
                return id;
            }
        }
    }

    std::uint64_t pickId(std::uint8_t sel) {
        switch (sel % 4) {
            case 0:
                return 0;
            case 1:
                return seen_ids_.empty() ? 0 : seen_ids_[in_.byte() % seen_ids_.size()];
            case 2:
                return seen_ids_.empty() ? 1 : seen_ids_.back() + 1;
            default:
                return in_.u64();
        }
    }

    std::string pickTo(std::uint8_t sel) {
        return sel % 3 == 0 ? std::string(kNames[(sel >> 2) % kNames.size()]) : std::string();
    }

    void frame() {
        const ConnId id = slotConn(in_.byte());
        ConnModel* m = live(id);
        if (m == nullptr || m->closing) {
            return;  // the server reads nothing more from a closing connection
        }
        const std::uint8_t kind = in_.byte();
        const std::uint16_t seq = in_.u16();
        const std::uint8_t fl = in_.byte();
        std::uint8_t flag_bits = (fl & 1) != 0 ? flags::kAck : 0;
        if ((fl & 0x0e) == 0x0e) {
            flag_bits = static_cast<std::uint8_t>(fl >> 4);  // any flags, reserved bits too
        }
        Sending s;
        s.seq = seq;
        s.want_ack = (flag_bits & flags::kAck) != 0;
        s.valid = (flag_bits & ~flags::kKnown) == 0;
        Bytes bytes;
        switch (kind % 12) {
            case 0:
            case 1: {
                msg::Register r;
                const std::uint8_t sel = in_.byte();
                s.reg_name = std::string(kNames[sel % kNames.size()]);
                r.username = s.reg_name;
                r.kind = (sel & 0x80) != 0 ? ClientKind::Agent : ClientKind::User;
                s.reg_kind = r.kind;
                r.session = pickSession(in_.byte(), r.username);
                r.last_id = pickId(in_.byte());
                s.type = MsgType::Register;
                bytes = msg::encode(r, seq, flag_bits);
                break;
            }
            case 2:
            case 3: {
                const std::uint8_t sel = in_.byte();
                s.to = pickTo(sel);
                const std::string t = text(in_.byte());
                s.type = MsgType::Message;
                bytes = msg::encode(msg::Message{s.to, t}, seq, flag_bits);
                break;
            }
            case 4: {
                s.to = pickTo(in_.byte());
                const std::string args = text(in_.byte());
                s.type = MsgType::AgentCommand;
                bytes =
                    msg::encode(msg::AgentCommand{s.to, in_.u64(), "run", args}, seq, flag_bits);
                break;
            }
            case 5: {
                s.to = pickTo(in_.byte());
                const std::string data = text(in_.byte());
                s.type = MsgType::Image;
                bytes = msg::encode(msg::Image{s.to, "image/png", data}, seq, flag_bits);
                break;
            }
            case 6:
                bytes = msg::encodePing(MsgType::Ping, in_.u64(), seq);
                break;
            case 7:
                bytes = msg::encodePing(
                    MsgType::Pong, (in_.byte() & 1) != 0 ? m->last_ping_token : in_.u64(), seq);
                break;
            case 8:
                bytes = msg::encode(msg::ListUsers{pickTo(in_.byte())}, seq);
                break;
            case 9:
                bytes = msg::encodeEmpty(MsgType::Logout, seq);
                break;
            case 10:
                bytes = msg::encodeEmpty(MsgType::HealthCheck, seq);
                break;
            default: {  // any type, random payload
                const std::uint8_t n = in_.byte() % 48;
                FrameWriter w(static_cast<MsgType>(in_.byte()), seq, flag_bits);
                for (std::uint8_t i = 0; i < n; ++i) {
                    w.u8(in_.byte());
                }
                bytes = w.finish();
                s.valid = false;
                break;
            }
        }
        TUNDRA_FUZZ_CHECK(bytes.size() >= kHeaderSize);
        // Slightly broken: truncate or flip one payload byte.
        const std::uint8_t mutate = in_.byte();
        if ((mutate & 0x07) == 0x07 && bytes.size() > kHeaderSize) {
            const std::size_t plen = bytes.size() - kHeaderSize;
            const std::size_t at = kHeaderSize + in_.byte() % plen;
            if ((mutate & 0x08) != 0) {
                bytes.resize(at);
            } else {
                bytes[at] = static_cast<std::uint8_t>(bytes[at] ^ (1U << (mutate >> 5)));
            }
            s.valid = false;
        }
        FrameHeader h;
        h.flags = bytes[1];
        h.sequence = seq;
        h.type = bytes[6];
        const std::size_t plen = bytes.size() - kHeaderSize;
        h.length = static_cast<std::uint16_t>(plen + 1);
        if (plen > config_.max_payload) {
            // what the server's decoder reports instead of a frame
            core_.onHeaderError(id, seq, ErrorCode::TooLarge, "payload too large");
            TUNDRA_FUZZ_CHECK(m->closing);
            return;
        }
        // What was really sent (a mutation or a random type may still make a valid message).
        s.type = static_cast<MsgType>(h.type);
        const ByteSpan payload(bytes.data() + kHeaderSize, plen);
        if (s.type == MsgType::Register) {
            msg::Register r;
            if (msg::parse(payload, r) == nullptr) {
                s.reg_name = std::string(r.username);
                s.reg_kind = r.kind;
            }
        } else if (s.type == MsgType::Message) {
            msg::Message mm;
            s.valid = msg::parse(payload, mm) == nullptr && s.valid;
            s.to = std::string(mm.to);
        } else if (s.type == MsgType::AgentCommand) {
            msg::AgentCommand mm;
            s.valid = msg::parse(payload, mm) == nullptr && s.valid;
            s.to = std::string(mm.to);
        } else if (s.type == MsgType::Image) {
            msg::Image mm;
            s.valid = msg::parse(payload, mm) == nullptr && s.valid;
            s.to = std::string(mm.to);
        }
        s.want_ack = (h.flags & flags::kAck) != 0;
        sender_ = id;
        sending_ = s;
        const bool open = core_.onFrame(id, h, payload);
        TUNDRA_FUZZ_CHECK(open == !m->closing);
    }

    void disconnect() {
        const std::uint8_t b = in_.byte();
        const ConnId id = slotConn(b);
        ConnModel* m = live(id);
        if (m == nullptr) {
            return;
        }
        std::vector<std::uint64_t> unwritten;
        const std::uint8_t mask = in_.byte();
        const std::size_t n = m->delivery_ids.size();
        // a suffix of the queued deliveries (what a slow reader left), or a sparse subset
        const std::size_t keep = n == 0 ? 0 : mask % (n + 1);
        for (std::size_t i = 0; i < n; ++i) {
            if ((mask & 0x80) != 0 ? ((i * 7 + mask) % 3 == 0) : i >= n - keep) {
                unwritten.push_back(m->delivery_ids[i]);
            }
        }
        if ((mask & 0x40) != 0) {
            unwritten.push_back(0);  // not a delivery
            unwritten.push_back(n == 0 ? 12345 : m->delivery_ids.back());
        }
        const core::DisconnectReason reasons[] = {
            core::DisconnectReason::PeerClosed,   core::DisconnectReason::Error,
            core::DisconnectReason::SlowConsumer, core::DisconnectReason::HeartbeatTimeout,
            core::DisconnectReason::Local,        core::DisconnectReason::Shutdown};
        m->disconnected = true;
        if (counted_.erase(id) > 0) {
            --open_counted_;
        }
        core_.onDisconnect(id, reasons[(b >> 3) % 6], unwritten);
        // a second report is ignored
        if ((b & 0x80) != 0) {
            core_.onDisconnect(id, core::DisconnectReason::PeerClosed, unwritten);
        }
    }

    void advance() {
        constexpr std::int64_t kSteps[] = {0, 1, 50, 100, 1000, 5000, 40'000, 200'000};
        const std::uint8_t b = in_.byte();
        clock_.advance(kSteps[b % 8]);
        if ((b & 0x08) != 0) {
            clock_.advanceUs(b >> 4);
        }
        core_.tick();
    }

    void reconfigure() {
        core::CoreConfig c = readConfig(in_);
        config_ = c;
        max_users_seen_ = std::max(max_users_seen_, c.max_users);
        max_clients_seen_ = std::max(max_clients_seen_, c.max_clients);
        core_.reconfigure(c);
    }

    // After every operation: the step's frames, the registrations they show, the metrics.
    void checkStep() {
        std::size_t queued = 0;
        std::size_t deliveries = 0;
        std::size_t replays = 0;
        std::map<ConnId, std::size_t> live_by_conn;  // non-replay deliveries in this step
        std::optional<msg::Ack> ack;
        bool welcomed = false;
        for (const Sent& f : box_.step) {
            if (trace_) {
                std::fprintf(stderr, "  -> conn %llu %s seq=%u flags=%u id=%llu\n",
                             static_cast<unsigned long long>(f.conn),
                             msgTypeName(static_cast<std::uint8_t>(f.type)), f.seq, f.flags,
                             static_cast<unsigned long long>(f.delivery_id));
            }
            ++queued;
            ConnModel& m = box_.conns.at(f.conn);
            const ByteSpan p(f.frame.data() + kHeaderSize, f.frame.size() - kHeaderSize);
            switch (f.type) {
                case MsgType::System: {
                    msg::System s;
                    TUNDRA_FUZZ_CHECK(msg::parse(p, s) == nullptr);
                    if (s.event == SystemEvent::Welcome) {
                        // only in answer to this step's REGISTER, on its connection
                        TUNDRA_FUZZ_CHECK(sending_ && sending_->type == MsgType::Register);
                        TUNDRA_FUZZ_CHECK(f.conn == sender_ && f.seq == sending_->seq);
                        TUNDRA_FUZZ_CHECK(!m.name.has_value());
                        TUNDRA_FUZZ_CHECK(!isNil(s.welcome.session));
                        // nobody else is live under this name any more
                        for (auto& [id, other] : box_.conns) {
                            if (id != f.conn && other.connected && !other.disconnected &&
                                !other.closing && other.name == sending_->reg_name) {
                                TUNDRA_FUZZ_CHECK(false && "two live connections, one name");
                            }
                        }
                        if (trace_) {
                            std::fprintf(stderr, "  WELCOME conn %llu as %s kind %d\n",
                                         static_cast<unsigned long long>(f.conn),
                                         sending_->reg_name.c_str(),
                                         static_cast<int>(sending_->reg_kind));
                        }
                        m.name = sending_->reg_name;
                        m.kind = sending_->reg_kind;
                        sessions_[sending_->reg_name] = s.welcome.session;
                        welcomed = true;
                    }
                    break;
                }
                case MsgType::BroadcastMessage:
                case MsgType::BroadcastAgent:
                case MsgType::Image: {
                    msg::Delivery d;
                    TUNDRA_FUZZ_CHECK(msg::parse(f.type, p, d) == nullptr);
                    // only to a connection registered as the addressee, never to the sender
                    TUNDRA_FUZZ_CHECK(m.name.has_value());
                    TUNDRA_FUZZ_CHECK(d.to.empty() || d.to == *m.name);
                    TUNDRA_FUZZ_CHECK(d.from != *m.name);
                    ++deliveries;
                    m.delivery_ids.push_back(d.id);
                    if ((f.flags & flags::kReplay) != 0) {
                        ++replays;
                    } else {
                        TUNDRA_FUZZ_CHECK(d.id > m.last_live_id);
                        m.last_live_id = d.id;
                        ++live_by_conn[f.conn];
                        TUNDRA_FUZZ_CHECK(f.type != MsgType::BroadcastAgent || !d.to.empty() ||
                                          m.kind == ClientKind::Agent);
                    }
                    if (seen_ids_.size() < 64) {
                        seen_ids_.push_back(d.id);
                    }
                    break;
                }
                case MsgType::Ping: {
                    msg::Ping pg;
                    TUNDRA_FUZZ_CHECK(msg::parse(p, pg) == nullptr);
                    m.last_ping_token = pg.token;
                    break;
                }
                case MsgType::Ack: {
                    msg::Ack a;
                    TUNDRA_FUZZ_CHECK(msg::parse(p, a) == nullptr);
                    // AUTH_REFRESH is answered with an ACK whatever its flags (PROTOCOL.md)
                    TUNDRA_FUZZ_CHECK(
                        sending_ && f.conn == sender_ &&
                        (sending_->want_ack || sending_->type == MsgType::AuthRefresh));
                    TUNDRA_FUZZ_CHECK(!ack.has_value());
                    ack = a;
                    if (trace_) {
                        std::fprintf(stderr, "  ACK %s to '%s' delivered %u buffered %u\n",
                                     msgTypeName(static_cast<std::uint8_t>(sending_->type)),
                                     sending_->to.c_str(), a.delivered, a.buffered);
                    }
                    break;
                }
                default:
                    break;
            }
        }
        (void)welcomed;
        const core::Metrics& now = core_.metrics();
        total_replays_ += replays;

        // counters: monotonic; frames and deliveries out exactly as queued
        const auto b = counters(before_);
        const auto a = counters(now);
        for (std::size_t i = 0; i < a.size(); ++i) {
            TUNDRA_FUZZ_CHECK(a[i] >= b[i]);
        }
        TUNDRA_FUZZ_CHECK(now.frames_out_total - before_.frames_out_total == queued);
        TUNDRA_FUZZ_CHECK(now.messages_out_total - before_.messages_out_total == deliveries);

        if (ack) {
            checkAck(*ack, live_by_conn, deliveries, now);
        } else if (sending_ && sending_->want_ack && sending_->valid && isRouted() &&
                   box_.conns.at(sender_).name.has_value()) {
            // an accepted message is ACKed; a refused one is answered with an ERROR
            bool error = false;
            for (const Sent& f : box_.step) {
                error = error || (f.conn == sender_ && f.type == MsgType::Error);
            }
            TUNDRA_FUZZ_CHECK(error || box_.conns.at(sender_).closing);
        }

        // gauges: connections as the model counts them, stored entries within the budgets
        const core::Gauges g = core_.gauges();
        TUNDRA_FUZZ_CHECK(g.connections == open_counted_);
        TUNDRA_FUZZ_CHECK(g.buffered_bytes <= config_.total_buffer_bytes);
        TUNDRA_FUZZ_CHECK(g.buffered_bytes <= g.users_known * config_.user_buffer_bytes);
        TUNDRA_FUZZ_CHECK(g.buffered_messages <= g.users_known * config_.max_buffered);
        TUNDRA_FUZZ_CHECK(g.window_messages <= g.users_known * config_.max_buffered);
        TUNDRA_FUZZ_CHECK((g.buffered_messages + g.window_messages == 0) ==
                          (g.buffered_bytes == 0));
        std::size_t live_registered = 0;
        std::size_t not_gone = 0;
        for (const auto& [id, m] : box_.conns) {
            if (m.connected && !m.disconnected) {
                ++not_gone;
                live_registered += m.name.has_value() && !m.closing ? 1 : 0;
            }
        }
        TUNDRA_FUZZ_CHECK(g.sessions_online >= live_registered);
        TUNDRA_FUZZ_CHECK(g.sessions_online + g.sessions_detached <= g.users_known);
        // users are forgotten (or detached sessions ended) only when a new one is created, and
        // online users are never touched: at most max_users + max_clients are remembered
        TUNDRA_FUZZ_CHECK(g.users_known <= max_users_seen_ + max_clients_seen_);
        TUNDRA_FUZZ_CHECK(g.connections <= max_clients_seen_);
        (void)not_gone;
        // offline entries: every one stored is still held, was dropped (counted) or replayed
        TUNDRA_FUZZ_CHECK(now.offline_buffered_total <=
                          g.buffered_messages + now.offline_dropped_total + total_replays_);
    }

    [[nodiscard]] bool isRouted() const {
        return sending_->type == MsgType::Message || sending_->type == MsgType::AgentCommand ||
               sending_->type == MsgType::Image;
    }

    void checkAck(const msg::Ack& a, const std::map<ConnId, std::size_t>& live_by_conn,
                  std::size_t deliveries, const core::Metrics& now) {
        if (sending_->type == MsgType::AuthRefresh) {
            // a token accepted on a registered connection: ACK id 0, nothing routed
            TUNDRA_FUZZ_CHECK(box_.conns.at(sender_).name.has_value());
            TUNDRA_FUZZ_CHECK(a.id == 0 && a.delivered == 0 && a.buffered == 0);
            TUNDRA_FUZZ_CHECK(deliveries == 0);
            TUNDRA_FUZZ_CHECK(now.messages_in_total == before_.messages_in_total);
            (void)live_by_conn;
            return;
        }
        TUNDRA_FUZZ_CHECK(isRouted());
        const ConnModel& sender = box_.conns.at(sender_);
        TUNDRA_FUZZ_CHECK(sender.name.has_value());
        // accepted: delivered = live deliveries queued now, buffered = offline stores now
        TUNDRA_FUZZ_CHECK(now.messages_in_total == before_.messages_in_total + 1);
        TUNDRA_FUZZ_CHECK(a.delivered == deliveries);
        TUNDRA_FUZZ_CHECK(now.offline_buffered_total - before_.offline_buffered_total ==
                          a.buffered);
        // each live registered connection of the audience but the sender's user gets it once
        std::size_t expected = 0;
        for (const auto& [id, m] : box_.conns) {
            if (!m.connected || m.disconnected || m.closing || !m.name.has_value() ||
                *m.name == *sender.name) {
                continue;
            }
            const bool audience = sending_->to.empty() ? (sending_->type != MsgType::AgentCommand ||
                                                          m.kind == ClientKind::Agent)
                                                       : sending_->to == *m.name;
            if (audience) {
                ++expected;
                auto it = live_by_conn.find(id);
                TUNDRA_FUZZ_CHECK(it != live_by_conn.end() && it->second == 1);
            }
        }
        TUNDRA_FUZZ_CHECK(a.delivered == expected);
        if (!sending_->to.empty() && sending_->to != *sender.name) {
            // to one other user: delivered, stored, or counted as dropped
            TUNDRA_FUZZ_CHECK(a.delivered + a.buffered <= 1);
            TUNDRA_FUZZ_CHECK(a.delivered + a.buffered == 1 ||
                              now.offline_dropped_total > before_.offline_dropped_total);
        }
    }

    // TUNDRA_FUZZ_TRACE=1 prints every operation and the frames it queued (to read a seed).
    const bool trace_ = std::getenv("TUNDRA_FUZZ_TRACE") != nullptr;
    Input& in_;
    core::CoreConfig config_;
    testing::FakeClock clock_;
    CheckingOutbox box_;
    core::SessionManager core_;
    std::array<ConnId, kSlots> slots_{};
    ConnId next_conn_ = 1;
    std::size_t open_counted_ = 0;
    std::set<ConnId> counted_;
    std::map<std::string, Uuid> sessions_;
    std::vector<std::uint64_t> seen_ids_;
    std::uint64_t session_counter_ = 0;
    std::size_t max_users_seen_ = 0;
    std::size_t max_clients_seen_ = 0;
    std::size_t total_replays_ = 0;
    core::Metrics before_;
    std::optional<Sending> sending_;
    ConnId sender_ = 0;
};

}  // namespace
}  // namespace tundra

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const bool quiet = [] {
        spdlog::set_level(std::getenv("TUNDRA_FUZZ_TRACE") != nullptr ? spdlog::level::debug
                                                                      : spdlog::level::off);
        return true;
    }();
    (void)quiet;
    tundra::Input in(data, size);
    tundra::Driver driver(in);
    driver.run();
    return 0;
}
