// SPDX-License-Identifier: Apache-2.0
// tundra-cli output formats.
#include "cli/output.h"

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "tundra/codec.h"

namespace tundra::cli {

namespace {

std::string hexByte(unsigned char c) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\x%02x", c);
    return buf;
}

std::string formatDouble(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", v);
    return buf;
}

std::string bytesText(double bytes) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024 && u < 4) {
        bytes /= 1024;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
    return buf;
}

std::string durationText(std::uint64_t s) {
    char buf[48];
    if (s >= 86400) {
        std::snprintf(buf, sizeof buf, "%" PRIu64 "d %02" PRIu64 "h %02" PRIu64 "m", s / 86400,
                      s % 86400 / 3600, s % 3600 / 60);
    } else if (s >= 3600) {
        std::snprintf(buf, sizeof buf, "%" PRIu64 "h %02" PRIu64 "m %02" PRIu64 "s", s / 3600,
                      s % 3600 / 60, s % 60);
    } else if (s >= 60) {
        std::snprintf(buf, sizeof buf, "%" PRIu64 "m %02" PRIu64 "s", s / 60, s % 60);
    } else {
        std::snprintf(buf, sizeof buf, "%" PRIu64 "s", s);
    }
    return buf;
}

// The value at `path` as text: integers without decimals, null as "-", absent as "?".
std::string num(const Json& root, std::string_view path) {
    const Json* v = findPath(root, path);
    if (v == nullptr) {
        return "?";
    }
    if (v->is_null()) {
        return "-";
    }
    if (v->is_number()) {
        double d = v->get<double>();
        if (d == std::floor(d) && std::fabs(d) < 1e15) {
            return std::to_string(static_cast<long long>(d));
        }
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.2f", d);
        return buf;
    }
    if (v->is_string()) {
        return sanitizeForTerminal(v->get_ref<const std::string&>());
    }
    return "?";
}

std::string bytesAt(const Json& root, std::string_view path) {
    const Json* v = findPath(root, path);
    return v != nullptr && v->is_number() ? bytesText(v->get<double>()) : "?";
}

std::string toPart(const client::Delivery& d) {
    return d.to.empty() ? std::string() : " -> " + sanitizeForTerminal(d.to);
}

const char* connectionKindName(client::ConnectionEvent::Kind k) {
    switch (k) {
        case client::ConnectionEvent::Kind::Lost:
            return "lost";
        case client::ConnectionEvent::Kind::Resumed:
            return "resumed";
        case client::ConnectionEvent::Kind::NewSession:
            return "new_session";
        case client::ConnectionEvent::Kind::Closed:
            return "closed";
    }
    return "unknown";
}

const char* deliveryTypeName(MsgType t) {
    switch (t) {
        case MsgType::BroadcastAgent:
            return "agent_command";
        case MsgType::Image:
            return "image";
        default:
            return "message";
    }
}

}  // namespace

// ---- JSON input --------------------------------------------------------------------------------

std::optional<Json> parseJson(std::string_view text) {
    constexpr int kMaxDepth = 64;
    bool too_deep = false;
    // Containers below kMaxDepth are dropped while parsing (the parser itself does not recurse)
    // and the whole document is then refused.
    Json::parser_callback_t limit = [&too_deep](int depth, Json::parse_event_t event, Json&) {
        if ((event == Json::parse_event_t::object_start ||
             event == Json::parse_event_t::array_start) &&
            depth > kMaxDepth) {
            too_deep = true;
            return false;
        }
        return true;
    };
    Json v = Json::parse(text, limit, /*allow_exceptions=*/false);
    if (v.is_discarded() || too_deep) {
        return std::nullopt;
    }
    return v;
}

const Json* findPath(const Json& root, std::string_view path) {
    const Json* node = &root;
    while (!path.empty()) {
        const auto dot = path.find('.');
        const std::string_view key = path.substr(0, dot);
        if (!node->is_object()) {
            return nullptr;
        }
        const auto it = node->find(std::string(key));
        if (it == node->end()) {
            return nullptr;
        }
        node = &*it;
        path = dot == std::string_view::npos ? std::string_view{} : path.substr(dot + 1);
    }
    return node;
}

// ---- JsonLine ----------------------------------------------------------------------------------

std::string jsonQuote(std::string_view s) {
    std::string out;
    appendJsonString(out, s);
    return out;
}

void JsonLine::key(std::string_view k) {
    if (body_.size() > 1) {
        body_ += ',';
    }
    appendJsonString(body_, k);
    body_ += ':';
}

JsonLine& JsonLine::field(std::string_view k, std::string_view value) {
    key(k);
    appendJsonString(body_, value);
    return *this;
}

JsonLine& JsonLine::field(std::string_view k, std::uint64_t value) {
    key(k);
    body_ += std::to_string(value);
    return *this;
}

JsonLine& JsonLine::field(std::string_view k, bool value) {
    key(k);
    body_ += value ? "true" : "false";
    return *this;
}

JsonLine& JsonLine::field(std::string_view k, double value) {
    key(k);
    body_ += std::isfinite(value) ? formatDouble(value) : "null";
    return *this;
}

JsonLine& JsonLine::rawField(std::string_view k, std::string_view raw) {
    key(k);
    body_ += raw;
    return *this;
}

std::string base64(std::string_view bytes) {
    static constexpr char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        std::uint32_t v = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16 |
                          static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1]))
                              << 8 |
                          static_cast<unsigned char>(bytes[i + 2]);
        out += kAlphabet[v >> 18];
        out += kAlphabet[(v >> 12) & 63];
        out += kAlphabet[(v >> 6) & 63];
        out += kAlphabet[v & 63];
    }
    std::size_t rest = bytes.size() - i;
    if (rest > 0) {
        std::uint32_t v = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
        if (rest == 2) {
            v |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
        }
        out += kAlphabet[v >> 18];
        out += kAlphabet[(v >> 12) & 63];
        out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

std::string sanitizeForTerminal(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            std::size_t n = utf8SequenceLength(s, i);
            // C1 controls (U+0080..U+009F) act as escape sequences on some terminals.
            bool c1 = n == 2 && c == 0xC2 && static_cast<unsigned char>(s[i + 1]) < 0xA0;
            if (n == 0 || c1) {
                out += hexByte(c);
                ++i;
            } else {
                out.append(s.substr(i, n));
                i += n;
            }
            continue;
        }
        if (c == '\n') {
            out += "\\n";
        } else if (c == '\t' || (c >= 0x20 && c != 0x7F)) {
            out += static_cast<char>(c);
        } else {
            out += hexByte(c);
        }
        ++i;
    }
    return out;
}

std::string clockTime(std::uint64_t time_ms) {
    std::time_t t = static_cast<std::time_t>(time_ms / 1000);
    std::tm tm{};
    ::localtime_r(&t, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
    return buf;
}

// ---- names -------------------------------------------------------------------------------------

const char* kindName(ClientKind k) { return k == ClientKind::Agent ? "agent" : "user"; }

const char* stateName(UserState s) {
    switch (s) {
        case UserState::Online:
            return "online";
        case UserState::Detached:
            return "detached";
        case UserState::Offline:
            return "offline";
    }
    return "unknown";
}

const char* systemEventName(SystemEvent e) {
    switch (e) {
        case SystemEvent::Welcome:
            return "welcome";
        case SystemEvent::Joined:
            return "joined";
        case SystemEvent::Left:
            return "left";
        case SystemEvent::Dropped:
            return "dropped";
        case SystemEvent::Shutdown:
            return "shutdown";
        case SystemEvent::Notice:
            return "notice";
        case SystemEvent::Bye:
            return "bye";
    }
    return "unknown";
}

// ---- events ------------------------------------------------------------------------------------

bool isDelivery(const client::Event& e) { return std::holds_alternative<client::Delivery>(e); }

std::string formatHuman(const client::Event& event, const SavedImage* saved) {
    if (const auto* d = std::get_if<client::Delivery>(&event)) {
        std::string line = "[" + clockTime(d->time_ms) + "] ";
        if (d->replayed) {
            line += "(replay) ";
        }
        line += sanitizeForTerminal(d->from) + toPart(*d) + ": ";
        if (d->type == MsgType::BroadcastAgent) {
            line += "[agent " + sanitizeForTerminal(d->command);
            if (d->reply_to != 0) {
                line += ", reply to " + std::to_string(d->reply_to);
            }
            line += "]";
            if (!d->args.empty()) {
                line += " " + sanitizeForTerminal(d->args);
            }
            line += " (id " + std::to_string(d->id) + ")";
        } else if (d->type == MsgType::Image) {
            line += "[image " + sanitizeForTerminal(d->mime) + ", " +
                    std::to_string(d->data.size()) + " bytes] (id " + std::to_string(d->id) + ")";
            if (saved != nullptr) {
                line += saved->error.empty() ? " saved to " + sanitizeForTerminal(saved->path)
                                             : std::string(" (not saved)");
            }
        } else {
            line += sanitizeForTerminal(d->text);
        }
        return line;
    }
    if (const auto* s = std::get_if<client::SystemNotice>(&event)) {
        const std::string text = sanitizeForTerminal(s->text);
        switch (s->event) {
            case SystemEvent::Joined:
                return "* " + sanitizeForTerminal(s->name) + " joined";
            case SystemEvent::Left:
                return "* " + sanitizeForTerminal(s->name) + " left";
            case SystemEvent::Dropped:
                return "* " + std::to_string(s->dropped) +
                       " offline message(s) were dropped while you were away";
            case SystemEvent::Shutdown:
                return "* server shutting down" + (text.empty() ? "" : ": " + text) +
                       " (retry in " + std::to_string(s->retry_after_s) + " s)";
            case SystemEvent::Bye:
                return "* session closed by the server" + (text.empty() ? "" : ": " + text);
            default:
                return "* notice: " + text;
        }
    }
    if (const auto* e = std::get_if<client::ErrorEvent>(&event)) {
        return "! " + sanitizeForTerminal(e->error.message());
    }
    const auto& c = std::get<client::ConnectionEvent>(event);
    switch (c.kind) {
        case client::ConnectionEvent::Kind::Lost:
            return "* connection lost (" + sanitizeForTerminal(c.reason.message()) +
                   "); reconnecting";
        case client::ConnectionEvent::Kind::Resumed:
            return "* reconnected, session resumed (" + std::to_string(c.welcome.pending) +
                   " pending)";
        case client::ConnectionEvent::Kind::NewSession:
            return "* reconnected with a new session, the old one had expired (" +
                   std::to_string(c.welcome.pending) + " pending)";
        case client::ConnectionEvent::Kind::Closed:
            return "* disconnected: " + sanitizeForTerminal(c.reason.message());
    }
    return "*";
}

std::string formatJson(const client::Event& event, const SavedImage* saved) {
    JsonLine j;
    if (const auto* d = std::get_if<client::Delivery>(&event)) {
        j.field("type", deliveryTypeName(d->type))
            .field("id", d->id)
            .field("time", d->time_ms)
            .field("from", d->from)
            .field("to", d->to);
        if (d->type == MsgType::BroadcastAgent) {
            j.field("command", d->command).field("args", d->args).field("reply_to", d->reply_to);
        } else if (d->type == MsgType::Image) {
            j.field("mime", d->mime)
                .field("size", static_cast<std::uint64_t>(d->data.size()))
                .field("data_base64", base64(d->data));
        } else {
            j.field("text", d->text);
        }
        j.field("replayed", d->replayed);
        if (saved != nullptr && d->type == MsgType::Image) {
            if (saved->error.empty()) {
                j.field("saved", saved->path);
            } else {
                j.field("save_error", saved->error);
            }
        }
        return j.str();
    }
    if (const auto* s = std::get_if<client::SystemNotice>(&event)) {
        j.field("type", "system").field("event", systemEventName(s->event));
        if (s->event == SystemEvent::Joined || s->event == SystemEvent::Left) {
            j.field("name", s->name);
        } else if (s->event == SystemEvent::Dropped) {
            j.field("dropped", s->dropped);
        } else if (s->event == SystemEvent::Shutdown) {
            j.field("retry_after_s", static_cast<std::uint64_t>(s->retry_after_s));
        }
        j.field("text", s->text);
        return j.str();
    }
    if (const auto* e = std::get_if<client::ErrorEvent>(&event)) {
        j.field("type", "error");
        if (e->error.local()) {
            j.field("kind", client::errorKindName(e->error.kind));
        } else {
            j.field("code", static_cast<std::uint64_t>(e->error.code))
                .field("name", errorCodeName(e->error.code));
        }
        j.field("text", e->error.text).field("sequence", static_cast<std::uint64_t>(e->sequence));
        return j.str();
    }
    const auto& c = std::get<client::ConnectionEvent>(event);
    j.field("type", "connection").field("event", connectionKindName(c.kind));
    if (c.kind == client::ConnectionEvent::Kind::Lost ||
        c.kind == client::ConnectionEvent::Kind::Closed) {
        j.field("reason", c.reason.message());
    } else {
        j.field("session", uuidToString(c.welcome.session))
            .field("pending", c.welcome.pending)
            .field("attempts", static_cast<std::uint64_t>(c.attempts));
    }
    return j.str();
}

std::string formatAckHuman(const client::Ack& a, std::string_view to) {
    std::string target = to.empty() ? "everyone" : sanitizeForTerminal(to);
    return "sent to " + target + ": id " + std::to_string(a.id) + ", delivered to " +
           std::to_string(a.delivered) + " online, buffered for " + std::to_string(a.buffered) +
           " offline";
}

std::string formatAckJson(const client::Ack& a) {
    return JsonLine()
        .field("type", "ack")
        .field("id", a.id)
        .field("delivered", a.delivered)
        .field("buffered", a.buffered)
        .str();
}

std::string formatUserHuman(const client::UserInfo& u) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "%-32s  %-5s  %s", sanitizeForTerminal(u.name).c_str(),
                  kindName(u.kind), stateName(u.state));
    return buf;
}

std::string formatUserJson(const client::UserInfo& u) {
    return JsonLine()
        .field("type", "user")
        .field("name", u.name)
        .field("kind", kindName(u.kind))
        .field("state", stateName(u.state))
        .str();
}

// ---- health ------------------------------------------------------------------------------------

std::string formatHealthSummary(const Json& h, std::string_view endpoint) {
    std::string out = "tundrad " + num(h, "version") + " at " + std::string(endpoint) + ": " +
                      num(h, "status") + "\n";
    auto line = [&](const char* label, const std::string& value) {
        char buf[24];
        std::snprintf(buf, sizeof buf, "  %-13s", label);
        out += buf + value + "\n";
    };
    const Json* up = findPath(h, "uptime_s");
    line("uptime", up != nullptr && up->is_number()
                       ? durationText(static_cast<std::uint64_t>(up->get<double>()))
                       : "?");
    line("connections", num(h, "connections") + " (sessions " + num(h, "sessions.online") +
                            " online, " + num(h, "sessions.detached") + " detached; " +
                            num(h, "users_known") + " users known)");
    line("messages", "in " + num(h, "messages.in") + ", out " + num(h, "messages.out") +
                         ", buffered " + num(h, "messages.buffered") + ", dropped " +
                         num(h, "messages.dropped"));
    line("bytes", "in " + bytesAt(h, "bytes.in") + ", out " + bytesAt(h, "bytes.out"));
    const Json* samples = findPath(h, "latency_ms.samples");
    if (samples != nullptr && samples->is_number() && samples->get<double>() == 0) {
        line("latency", "no samples yet");
    } else {
        line("latency", "p50 " + num(h, "latency_ms.p50") + " ms, p99 " + num(h, "latency_ms.p99") +
                            " ms, max " + num(h, "latency_ms.max") + " ms (" +
                            num(h, "latency_ms.samples") + " samples)");
    }
    line("memory", "rss " + bytesAt(h, "rss_bytes"));
    std::string errors;
    if (const Json* e = findPath(h, "errors"); e != nullptr && e->is_object()) {
        for (const auto& item : e->items()) {
            const std::string& code = item.key();
            const Json& count = item.value();
            if (!count.is_number() || count.get<double>() == 0) {
                continue;
            }
            unsigned long c = std::strtoul(code.c_str(), nullptr, 10);
            if (!errors.empty()) {
                errors += ", ";
            }
            errors += std::string(errorCodeName(static_cast<ErrorCode>(c))) + " " +
                      std::to_string(static_cast<long long>(count.get<double>()));
        }
    }
    line("errors", errors.empty() ? "none" : errors);
    line("limits", "max_clients " + num(h, "limits.max_clients") + ", max_payload " +
                       num(h, "limits.max_payload"));
    if (findPath(h, "connection") != nullptr) {
        line("this client",
             num(h, "connection.name") + ", session " + num(h, "connection.session") + ", rtt " +
                 num(h, "connection.rtt_ms") + " ms, frames in " + num(h, "connection.frames.in") +
                 " / out " + num(h, "connection.frames.out"));
    }
    return out;
}

}  // namespace tundra::cli
