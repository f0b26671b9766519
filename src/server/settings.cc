// SPDX-License-Identifier: Apache-2.0
// The settings table and everything derived from it: value checks shared by flags and the
// file, the restart check, --help lines and the generated docs (OPERATIONS.md, man pages).
#include "server/settings.h"

#include <fmt/format.h>
#include <spdlog/common.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <concepts>

#include "common/logging.h"
#include "net/socket_ops.h"

namespace tundra::server {

namespace {

// Smallest output cap and buffer budgets: room for two deliveries of the largest size (a
// 65534-byte payload plus header and routing fields), so a maximum-size message can always be
// queued and buffered.
constexpr double kMinBufferBytes = 131072;

// ---- access helpers: a Config member <-> SettingValue ----------------------------------

SettingValue toValue(bool v) { return v; }
SettingValue toValue(const std::string& v) { return v; }
SettingValue toValue(spdlog::level::level_enum v) {
    return std::string(spdlog::level::to_string_view(v).data(),
                       spdlog::level::to_string_view(v).size());
}
template <std::integral T>
requires(!std::same_as<T, bool>) SettingValue toValue(T v) { return static_cast<std::int64_t>(v); }

void fromValue(const SettingValue& v, bool& out) { out = std::get<bool>(v); }
void fromValue(const SettingValue& v, std::string& out) { out = std::get<std::string>(v); }
void fromValue(const SettingValue& v, spdlog::level::level_enum& out) {
    out = common::parseLogLevel(std::get<std::string>(v)).value_or(spdlog::level::info);
}
template <std::integral T>
requires(!std::same_as<T, bool>) void fromValue(const SettingValue& v, T& out) {
    out = static_cast<T>(std::get<std::int64_t>(v));
}

// A setting stored as is. `ref` is a generic lambda returning the member: [](auto& c) ->
// auto& { return c.core.max_clients; }.
template <typename Ref>
SettingAccess field(Ref ref) {
    return {[ref](const Config& c) { return toValue(ref(c)); },
            [ref](Config& c, const SettingValue& v) { fromValue(v, ref(c)); }};
}

// Seconds (a double) stored as integer milliseconds.
template <typename Ref>
SettingAccess millis(Ref ref) {
    return {[ref](const Config& c) -> SettingValue { return static_cast<double>(ref(c)) / 1000.0; },
            [ref](Config& c, const SettingValue& v) {
                ref(c) = static_cast<std::int64_t>(std::llround(std::get<double>(v) * 1000.0));
            }};
}

using T = SettingType;

// The table. To add a setting: add its Config member, then one entry here.
std::vector<Setting> makeTable() {
    std::vector<Setting> table = {
        {.key = "bind",
         .type = T::Address,
         .group = "Chat listener",
         .summary = "address to listen on, an IPv4 or IPv6 literal (\"::\" = all)",
         .details = "the address to listen on. \"0.0.0.0\" or \"::\" listens on every interface.",
         .access = field([](auto& c) -> auto& { return c.bind; })},
        {.key = "port",
         .type = T::Port,
         .min = 0,
         .max = 65535,
         .group = "Chat listener",
         .summary = "TCP port, 0 = kernel's choice",
         .details = "the TCP port; 0 lets the kernel choose.",
         .access = field([](auto& c) -> auto& { return c.port; })},
        {.key = "tls_port",
         .type = T::Port,
         .min = 0,
         .max = 65535,
         .group = "TLS",
         .summary = "TLS listener port beside the plaintext one, 0 = kernel's choice",
         .details = "the TCP port of the TLS listener on the same address as `port`; it runs "
                    "when tls_cert and tls_key are set. The same frames as on `port`, inside "
                    "TLS 1.2 or 1.3. 0 lets the kernel choose (the log says \"tls listening on "
                    "ADDR:PORT\").",
         .access = field([](auto& c) -> auto& { return c.tls_port; })},
        {.key = "tls_cert",
         .type = T::File,
         .reloadable = true,
         .group = "TLS",
         .summary = "PEM certificate chain of the TLS listener (\"\" = no TLS)",
         .details = "the server certificate, then any intermediates, in PEM. Read at start "
                    "(an unreadable or mismatched file is a startup error, exit 2) and again "
                    "on SIGHUP: new connections get the new pair, established ones keep theirs; "
                    "a bad new pair is logged and the running one kept.",
         .access = field([](auto& c) -> auto& { return c.tls_cert; })},
        {.key = "tls_key",
         .type = T::File,
         .reloadable = true,
         .group = "TLS",
         .summary = "PEM private key of tls_cert (\"\" = in the tls_cert file)",
         .details = "the private key matching tls_cert, in PEM, unencrypted (keep it mode "
                    "0600); empty: the tls_cert file holds it too. Reloaded with tls_cert on "
                    "SIGHUP. Set without tls_cert, it is a startup error (exit 2).",
         .access = field([](auto& c) -> auto& { return c.tls_key; })},
        {.key = "tls_client_ca",
         .type = T::File,
         .reloadable = true,
         .group = "TLS",
         .summary = "PEM CA bundle: require client certificates it signed (mTLS)",
         .details = "when set, the TLS listener requires a client certificate signed by one of "
                    "these CAs; a handshake without one, or with another, fails. The verified "
                    "certificate's subject CN is known to the server for the connection (logged "
                    "at debug). Reloaded on SIGHUP. Needs tls_cert (else a startup error).",
         .access = field([](auto& c) -> auto& { return c.tls_client_ca; })},
        {.key = "tls_client_identity",
         .type = T::Bool,
         .reloadable = true,
         .group = "TLS",
         .summary = "with auth: a client certificate's CN is the user, no token needed",
         .details = "with auth = tokens or accounts and tls_client_ca, a REGISTER with an empty "
                    "token whose username is exactly the subject CN of the connection's verified "
                    "client certificate is accepted: the certificate is the credential. Its roles "
                    "are tls_client_roles, or the account's with auth = accounts and an account "
                    "of that name (whose kind must match). Other names on that connection need a "
                    "token as usual. Needs tls_client_ca (else a startup error).",
         .access = field([](auto& c) -> auto& { return c.tls_client_identity; })},
        {.key = "tls_client_roles",
         .type = T::Text,
         .reloadable = true,
         .group = "TLS",
         .summary = "roles of a client-certificate identity, comma-separated",
         .details = "the built-in roles (admin, user, agent, readonly; docs/SECURITY.md) given to "
                    "a user identified by its client certificate (tls_client_identity). An "
                    "unknown role is a startup error.",
         .access = field([](auto& c) -> auto& { return c.tls_client_roles; })},
        {.key = "tls_handshake_timeout",
         .type = T::Seconds,
         .min = 0.1,
         .max = 600,
         .group = "TLS",
         .summary = "seconds a TLS handshake may take before the connection is closed",
         .details = "a TLS connection whose handshake has not completed after this is closed "
                    "and counted (tundra_tls_handshake_timeouts_total); it never reached the "
                    "chat core.",
         .access = millis([](auto& c) -> auto& { return c.tls_handshake_timeout_ms; })},
        {.key = "max_clients",
         .type = T::Int,
         .min = 0,
         .max = 1'000'000,
         .reloadable = true,
         .group = "Limits",
         .summary = "most simultaneous connections (0 = what the fd limit allows)",
         .details = "the most simultaneous client connections; more are answered ERROR "
                    "SERVER_FULL and closed. 0 (the default) derives it from the file "
                    "descriptor limit, which tundrad raises to its hard limit at start: the "
                    "limit minus 24 reserved descriptors, at most 1000000, logged at start. A "
                    "value above what the limit allows is lowered with a warning; raise "
                    "LimitNOFILE in the systemd unit for more.",
         .access = field([](auto& c) -> auto& { return c.core.max_clients; })},
        {.key = "max_payload",
         .type = T::Int,
         .min = 64,
         .max = 65534,
         .reloadable = true,
         .group = "Limits",
         .summary = "largest payload a client may send, bytes",
         .details = "the largest payload a client may send, in bytes.",
         .access = field([](auto& c) -> auto& { return c.core.max_payload; })},
        {.key = "output_cap_bytes",
         .flag = "--output-cap",
         .type = T::Bytes,
         .min = kMinBufferBytes,
         .max = 4294967296.0,
         .group = "Limits",
         .summary = "queued output per connection before a slow-consumer cut-off",
         .details = "output queued for one connection beyond which it is closed as a slow "
                    "consumer; what was not written moves to its offline buffer.",
         .access = field([](auto& c) -> auto& { return c.output_cap_bytes; })},
        {.key = "output_total_soft_bytes",
         .flag = "--output-total-soft",
         .type = T::Bytes,
         .min = 0,
         .max = 1099511627776.0,
         .group = "Limits",
         .summary = "queued output of all connections before the largest stop being read; 0 = off",
         .details = "output queued for all connections together (counted with a per-frame "
                    "overhead, as output_cap_bytes is) beyond which the connections with the "
                    "largest queues are no longer read, each until its queue has drained; 0 "
                    "turns it off.",
         .access = field([](auto& c) -> auto& { return c.output_total_soft_bytes; })},
        {.key = "output_total_hard_bytes",
         .flag = "--output-total-hard",
         .type = T::Bytes,
         .min = 0,
         .max = 1099511627776.0,
         .group = "Limits",
         .summary = "queued output of all connections before the largest are cut; 0 = off",
         .details = "output queued for all connections together beyond which the largest "
                    "queues are closed as slow consumers until the total is under 7/8 of this; "
                    "0 turns it off.",
         .access = field([](auto& c) -> auto& { return c.output_total_hard_bytes; })},
        {.key = "session_timeout",
         .type = T::Seconds,
         .min = 0.1,
         .max = 65535,
         .reloadable = true,
         .group = "Sessions and heartbeats",
         .summary = "seconds a detached session stays resumable",
         .details = "how long a session whose connection dropped can be resumed; its name stays "
                    "reserved meanwhile.",
         .access = millis([](auto& c) -> auto& { return c.core.session_timeout_ms; })},
        {.key = "ping_interval",
         .type = T::Seconds,
         .min = 0.1,
         .max = 65535,
         .reloadable = true,
         .group = "Sessions and heartbeats",
         .summary = "seconds of silence before a PING (as long again: dead)",
         .details = "silence after which the server sends a PING; a connection silent for as "
                    "long again is closed.",
         .access = millis([](auto& c) -> auto& { return c.core.ping_interval_ms; })},
        {.key = "presence",
         .type = T::Bool,
         .reloadable = true,
         .group = "Sessions and heartbeats",
         .summary = "push JOINED/LEFT (false: presence on demand)",
         .details = "push JOINED and LEFT presence events to online users, coalesced per "
                    "100 ms tick; false is presence on demand: nothing pushed, clients ask "
                    "LIST_USERS (better for large servers).",
         .access = field([](auto& c) -> auto& { return c.core.presence_events; })},
        {.key = "max_buffered",
         .type = T::Int,
         .min = 1,
         .max = 100'000,
         .reloadable = true,
         .group = "Offline buffers",
         .summary = "offline messages kept per user",
         .details = "messages kept per user while it has no connection, and deliveries kept "
                    "for replay after a reconnect. On overflow the oldest is dropped and counted.",
         .access = field([](auto& c) -> auto& { return c.core.max_buffered; })},
        {.key = "user_buffer_bytes",
         .type = T::Bytes,
         .min = kMinBufferBytes,
         .max = 1099511627776.0,
         .reloadable = true,
         .group = "Offline buffers",
         .summary = "one user's buffer budget, at most total_buffer_bytes",
         .details = "the byte budget of one user's buffers; at most total_buffer_bytes.",
         .access = field([](auto& c) -> auto& { return c.core.user_buffer_bytes; })},
        {.key = "total_buffer_bytes",
         .type = T::Bytes,
         .min = kMinBufferBytes,
         .max = 1099511627776.0,
         .reloadable = true,
         .group = "Offline buffers",
         .summary = "all users' buffers together",
         .details = "the byte budget of all buffers together.",
         .access = field([](auto& c) -> auto& { return c.core.total_buffer_bytes; })},
        {.key = "max_users",
         .type = T::Int,
         .min = 1,
         .max = 100'000'000,
         .reloadable = true,
         .group = "Offline buffers",
         .summary = "users remembered with their buffers",
         .details = "users remembered with their buffers; when full, the least recently seen "
                    "offline user with an empty buffer is forgotten first.",
         .access = field([](auto& c) -> auto& { return c.core.max_users; })},
        {.key = "register_timeout",
         .type = T::Seconds,
         .min = 0,
         .max = 65535,
         .reloadable = true,
         .group = "Abuse limits",
         .summary = "seconds a new connection has to REGISTER, 0 = no deadline",
         .details = "seconds a connection has after accept to REGISTER; then ERROR NOT_REGISTERED "
                    "and close. PING and HEALTH_CHECK do not extend it. 0 turns it off.",
         .access = millis([](auto& c) -> auto& { return c.core.register_timeout_ms; })},
        {.key = "max_unregistered",
         .type = T::Int,
         .min = 0,
         .max = 1'000'000,
         .reloadable = true,
         .group = "Abuse limits",
         .summary = "connections waiting to REGISTER, 0 = no cap",
         .details = "connections accepted but not yet registered, server-wide; the next one gets "
                    "SERVER_FULL. 0 turns the cap off.",
         .access = field([](auto& c) -> auto& { return c.core.max_unregistered; })},
        {.key = "max_connections_per_ip",
         .type = T::Int,
         .min = 0,
         .max = 1'000'000,
         .reloadable = true,
         .group = "Abuse limits",
         .summary = "open connections per source IP, 0 = no cap",
         .details = "open connections from one source address (loopback included); the next one "
                    "gets SERVER_FULL. 0 turns the cap off.",
         .access = field([](auto& c) -> auto& { return c.core.max_connections_per_ip; })},
        {.key = "register_rate",
         .type = T::Int,
         .min = 0,
         .max = 1'000'000,
         .reloadable = true,
         .group = "Abuse limits",
         .summary = "REGISTERs per second per source IP, 0 = no limit",
         .details = "REGISTER attempts per second from one source address (token bucket); more "
                    "get ERROR RATE_LIMITED and the connection stays open. 0 turns it off.",
         .access = field([](auto& c) -> auto& { return c.core.register_rate; })},
        {.key = "register_burst",
         .type = T::Int,
         .min = 1,
         .max = 1'000'000,
         .reloadable = true,
         .group = "Abuse limits",
         .summary = "REGISTERs a source IP may make at once",
         .details = "the bucket size of register_rate: REGISTERs one source address may make at "
                    "once.",
         .access = field([](auto& c) -> auto& { return c.core.register_burst; })},
        {.key = "rate_messages_per_s",
         .type = T::Int,
         .min = 0,
         .max = 10'000'000,
         .reloadable = true,
         .group = "Abuse limits",
         .summary = "frames per second per connection, 0 = no limit",
         .details = "frames per second one connection may send (token bucket; every frame "
                    "counts); beyond it ERROR RATE_LIMITED and the frame has no effect. 0 turns "
                    "it off.",
         .access = field([](auto& c) -> auto& { return c.core.rate_messages_per_s; })},
        {.key = "rate_messages_burst",
         .type = T::Int,
         .min = 1,
         .max = 100'000'000,
         .reloadable = true,
         .group = "Abuse limits",
         .summary = "frames a connection may send at once",
         .details = "the bucket size of rate_messages_per_s.",
         .access = field([](auto& c) -> auto& { return c.core.rate_messages_burst; })},
        {.key = "rate_bytes_per_s",
         .type = T::Bytes,
         .min = 0,
         .max = 1099511627776.0,
         .reloadable = true,
         .group = "Abuse limits",
         .summary = "bytes per second per connection, 0 = no limit",
         .details = "bytes (header and payload) per second one connection may send; beyond it "
                    "ERROR RATE_LIMITED. 0 turns it off.",
         .access = field([](auto& c) -> auto& { return c.core.rate_bytes_per_s; })},
        {.key = "rate_bytes_burst",
         .type = T::Bytes,
         .min = 65541,
         .max = 1099511627776.0,
         .reloadable = true,
         .group = "Abuse limits",
         .summary = "bytes a connection may send at once",
         .details = "the bucket size of rate_bytes_per_s; at least one largest frame.",
         .access = field([](auto& c) -> auto& { return c.core.rate_bytes_burst; })},
        {.key = "max_bad_frames",
         .type = T::Int,
         .min = 0,
         .max = 1'000'000,
         .reloadable = true,
         .group = "Abuse limits",
         .summary = "malformed frames before a connection is closed, 0 = never",
         .details = "frames answered with a bad-frame ERROR (INVALID_FORMAT, NOT_REGISTERED, "
                    "ALREADY_REGISTERED, INVALID_NAME, UNKNOWN_TYPE) before the connection is "
                    "closed. 0 = never.",
         .access = field([](auto& c) -> auto& { return c.core.max_bad_frames; })},
        {.key = "shutdown_retry_after",
         .type = T::WholeSeconds,
         .min = 0,
         .max = 65535,
         .reloadable = true,
         .group = "Shutdown",
         .summary = "retry_after_s in the SYSTEM SHUTDOWN sent on SIGTERM",
         .details = "the retry_after value of the SYSTEM SHUTDOWN sent to every client on "
                    "SIGTERM.",
         .access = field([](auto& c) -> auto& { return c.shutdown_retry_after_s; })},
        {.key = "drain_timeout",
         .type = T::Seconds,
         .min = 0,
         .max = 3600,
         .reloadable = true,
         .group = "Shutdown",
         .summary = "seconds a SIGTERM drain may take",
         .details = "how long a SIGTERM drain waits for queued output to reach the clients "
                    "before exiting anyway.",
         .access = millis([](auto& c) -> auto& { return c.drain_timeout_ms; })},
        {.key = "log_level",
         .type = T::LogLevel,
         .reloadable = true,
         .group = "Operations",
         .summary = "trace, debug, info, warn, error, critical or off",
         .details = "the least severe level that is logged.",
         .access = field([](auto& c) -> auto& { return c.log_level; })},
        {.key = "admin",
         .type = T::HostPort,
         .group = "Operations",
         .summary = "admin HTTP listener (/healthz, /readyz, /metrics)",
         .details = "the admin HTTP listener (/healthz, /readyz, /metrics); port 0 lets the "
                    "kernel choose. Without admin_token_file it has no authentication; keep it "
                    "on loopback or a private network.",
         .access = field([](auto& c) -> auto& { return c.admin; })},
        {.key = "admin_max_per_source",
         .type = T::Int,
         .min = 1,
         .max = 31,
         .group = "Operations",
         .summary = "admin HTTP connections open from one address",
         .details = "admin HTTP connections one source address may hold open; more are answered "
                    "503 and closed. Below the listener's cap of 32, so one client's idle "
                    "connections (each dropped after 5 s) cannot make /healthz fail for "
                    "everyone.",
         .access = field([](auto& c) -> auto& { return c.admin_max_per_source; })},
        {.key = "admin_token_file",
         .type = T::File,
         .reloadable = true,
         .group = "Operations",
         .summary = "file holding the bearer token /metrics requires (\"\" = no token)",
         .details = "when set, admin requests other than /healthz and /readyz need the header "
                    "\"Authorization: Bearer TOKEN\" with the file's first line as TOKEN "
                    "(compared in constant time); others get 401. The probes stay open so load "
                    "balancers need no secret. Re-read on SIGHUP.",
         .access = field([](auto& c) -> auto& { return c.admin_token_file; })},
        {.key = "admin_tls",
         .type = T::Bool,
         .group = "Operations",
         .summary = "serve the admin listener over TLS with tls_cert/tls_key",
         .details = "the admin listener speaks HTTPS with the chat listener's certificate and "
                    "key (reloaded with them); client certificates are not requested there. "
                    "Needs tls_cert (else a startup error).",
         .access = field([](auto& c) -> auto& { return c.admin_tls; })},
        {.key = "huge_pages",
         .type = T::Bool,
         .group = "Operations",
         .summary = "back the heap with transparent huge pages (glibc.malloc.hugetlb=1)",
         .details = "when the kernel gives huge pages on request (transparent_hugepage/enabled "
                    "= madvise), tundrad starts itself again once, same PID and arguments, "
                    "with GLIBC_TUNABLES=glibc.malloc.hugetlb=1, so that its heap grows in "
                    "2 MiB pages: one page fault per 2 MiB instead of per 4 KiB. A fresh "
                    "server stored offline messages 30 to 50 % faster with it, at about 1.5 MB "
                    "more RSS (whole huge pages) and, on a virtual machine, slower page faults "
                    "for the processes that start after it (docs/BENCHMARKS.md, section 7). "
                    "Off by default, as databases advise for THP. A GLIBC_TUNABLES that sets "
                    "glibc.malloc.hugetlb itself is left as it is. The log says at start which "
                    "applies.",
         .access = field([](auto& c) -> auto& { return c.huge_pages; })},
        {.key = "storage",
         .type = T::Choice,
         .choices = "memory|sqlite",
         .group = "Storage",
         .summary = "memory (nothing survives a restart) or sqlite (in data_dir)",
         .details = "where users, offline buffers, delivery windows, detached sessions and the "
                    "id high-water mark live. sqlite keeps them in data_dir/tundra.db, so they "
                    "survive a restart or a crash; memory keeps nothing. sqlite without a "
                    "data_dir runs in memory and says so once in the log.",
         .access = field([](auto& c) -> auto& { return c.storage; })},
        {.key = "data_dir",
         .type = T::Path,
         .group = "Storage",
         .summary = "directory of the SQLite store (must exist and be writable)",
         .details = "the directory holding tundra.db (with its -wal and -shm files) and a lock "
                    "file. It must exist and be writable; a missing or unwritable directory, a "
                    "corrupt file or one from a newer tundrad stops the start with exit code 2. "
                    "Empty: no store (memory).",
         .access = field([](auto& c) -> auto& { return c.data_dir; })},
        {.key = "fsync",
         .type = T::Choice,
         .choices = "always|interval|off",
         .group = "Storage",
         .summary = "always: ACKs wait for fsync; interval: fsync_interval_ms at risk; off",
         .details = "when a stored message is on disk. always: each group commit is fsynced "
                    "before the ACKs that report it buffered leave. interval: commits are not "
                    "fsynced, a checkpoint syncs every fsync_interval_ms, so a power loss can "
                    "lose that much (a crash of tundrad alone loses nothing). off: the kernel "
                    "decides.",
         .access = field([](auto& c) -> auto& { return c.fsync; })},
        {.key = "fsync_interval_ms",
         .type = T::Int,
         .min = 1,
         .max = 60'000,
         .group = "Storage",
         .summary = "fsync = interval: milliseconds between syncs",
         .details = "with fsync = interval, the most milliseconds of accepted messages a power "
                    "loss can take.",
         .access = field([](auto& c) -> auto& { return c.fsync_interval_ms; })},
        {.key = "auth",
         .type = T::Choice,
         .choices = "none|tokens|accounts",
         .reloadable = true,
         .group = "Identity",
         .summary = "none (anyone), tokens (signed JWTs) or accounts (passwords)",
         .details = "who may register. none: anyone may take any name that is free (for "
                    "loopback use). tokens: REGISTER carries a JWT signed with "
                    "token_secret_file (HS256) or the private key of token_public_key_file "
                    "(EdDSA or RS256) whose sub is the username. accounts: REGISTER carries the "
                    "password of an entry of accounts_file. A failure is ERROR AUTH_FAILED.",
         .access = field([](auto& c) -> auto& { return c.auth; })},
        {.key = "token_secret_file",
         .type = T::File,
         .reloadable = true,
         .group = "Identity",
         .summary = "auth = tokens: file holding the HS256 secret (32 bytes or more)",
         .details = "with auth = tokens, the file holding the shared HS256 secret (at least 32 "
                    "bytes; trailing whitespace is ignored). Exactly one of token_secret_file "
                    "and token_public_key_file is set. Re-read on SIGHUP.",
         .access = field([](auto& c) -> auto& { return c.token_secret_file; })},
        {.key = "token_public_key_file",
         .type = T::File,
         .reloadable = true,
         .group = "Identity",
         .summary = "auth = tokens: Ed25519 or RSA public key (PEM) that verifies tokens",
         .details = "with auth = tokens, a PEM public key: Ed25519 (tokens signed EdDSA) or RSA "
                    "of 2048 bits or more (RS256). tundrad can verify but never issue such "
                    "tokens. Re-read on SIGHUP.",
         .access = field([](auto& c) -> auto& { return c.token_public_key_file; })},
        {.key = "token_audience",
         .type = T::Text,
         .reloadable = true,
         .group = "Identity",
         .summary = "tokens must name this audience (aud); empty = not checked",
         .details = "when set, a token's aud (a string or an array of strings) must contain "
                    "it.",
         .access = field([](auto& c) -> auto& { return c.token_audience; })},
        {.key = "token_issuer",
         .type = T::Text,
         .reloadable = true,
         .group = "Identity",
         .summary = "tokens must come from this issuer (iss); empty = not checked",
         .details = "when set, a token's iss must equal it.",
         .access = field([](auto& c) -> auto& { return c.token_issuer; })},
        {.key = "token_leeway",
         .type = T::WholeSeconds,
         .min = 0,
         .max = 3600,
         .reloadable = true,
         .group = "Identity",
         .summary = "clock skew allowed on a token's exp and nbf, seconds",
         .details = "seconds of clock difference allowed between the token issuer and tundrad "
                    "on exp and nbf. A connection is closed this long after its token's exp "
                    "unless it sent AUTH_REFRESH.",
         .access = field([](auto& c) -> auto& { return c.token_leeway_s; })},
        {.key = "token_max_bytes",
         .type = T::Int,
         .min = 128,
         .max = 65000,
         .reloadable = true,
         .group = "Identity",
         .summary = "longest token accepted, bytes",
         .details = "tokens longer than this are refused before they are parsed.",
         .access = field([](auto& c) -> auto& { return c.token_max_bytes; })},
        {.key = "accounts_file",
         .type = T::File,
         .reloadable = true,
         .group = "Identity",
         .summary = "auth = accounts: the accounts file (tundrad hash-password)",
         .details = "with auth = accounts, a TOML file of [[account]] tables (name, hash, kind, "
                    "roles) as tundrad hash-password prints them. Re-read on SIGHUP, even "
                    "without --config; an invalid file is logged and the running accounts stay.",
         .access = field([](auto& c) -> auto& { return c.accounts_file; })},
        {.key = "anonymous",
         .type = T::Choice,
         .choices = "off|read-only|direct-only",
         .reloadable = true,
         .group = "Identity",
         .summary = "with auth: let clients without a token in as guest-* (off, read-only, "
                    "direct-only)",
         .details = "with auth = tokens or accounts, whether a REGISTER with an empty token is "
                    "accepted for a name starting with \"guest-\". read-only: it may receive "
                    "and list users; direct-only: also send direct messages. off: AUTH_FAILED.",
         .access = field([](auto& c) -> auto& { return c.anonymous; })},
        {.key = "auth_fail_limit",
         .type = T::Int,
         .min = 0,
         .max = 1000,
         .reloadable = true,
         .group = "Identity",
         .summary = "failed authentications per address before it is locked out; 0 = never",
         .details = "failed authentications from one source address after which each further "
                    "failure locks the address out for 1 s, doubling each time up to "
                    "auth_fail_lockout_max; while locked out every REGISTER and AUTH_REFRESH "
                    "from it gets AUTH_FAILED unchecked. 0 turns the lockout off.",
         .access = field([](auto& c) -> auto& { return c.core.auth_fail_limit; })},
        {.key = "auth_fail_lockout_max",
         .type = T::Seconds,
         .min = 1,
         .max = 86400,
         .reloadable = true,
         .group = "Identity",
         .summary = "longest lockout after failed authentications, seconds",
         .details = "the longest lockout of a source address after failed authentications; "
                    "its failure count is forgotten after this long without a failure.",
         .access = millis([](auto& c) -> auto& { return c.core.auth_fail_lockout_max_ms; })},
    };
    for (auto& s : table) {
        if (s.flag.empty()) {
            s.flag = "--" + std::string(s.key);
            std::replace(s.flag.begin(), s.flag.end(), '_', '-');
        }
    }
    return table;
}

// "memory, sqlite" from "memory|sqlite".
std::string choiceList(const Setting& s) {
    std::string out(s.choices);
    for (std::size_t i = 0; (i = out.find('|', i)) != std::string::npos;) {
        out.replace(i, 1, ", ");
    }
    return out;
}

bool isChoice(const Setting& s, std::string_view word) {
    std::string_view rest = s.choices;
    while (!rest.empty()) {
        const auto bar = rest.find('|');
        if (rest.substr(0, bar) == word) {
            return true;
        }
        if (bar == std::string_view::npos) {
            break;
        }
        rest.remove_prefix(bar + 1);
    }
    return false;
}

bool isInteger(SettingType t) {
    return t == T::Int || t == T::Port || t == T::Bytes || t == T::WholeSeconds;
}

std::int64_t whole(double v) { return static_cast<std::int64_t>(v); }

constexpr std::string_view kLevels = "trace, debug, info, warn, error, critical, off";

// What a flag's value must be, after "is not ".
std::string expectation(const Setting& s) {
    switch (s.type) {
        case T::Bool:
            return "true or false";
        case T::Int:
            return fmt::format("a number from {} to {}", whole(s.min), whole(s.max));
        case T::Port:
            return fmt::format("a port number ({}-{})", whole(s.min), whole(s.max));
        case T::Bytes:
            return fmt::format("a number of bytes from {} to {}", whole(s.min), whole(s.max));
        case T::Seconds:
            return fmt::format("a number of seconds from {} to {}", s.min, s.max);
        case T::WholeSeconds:
            return fmt::format("a whole number of seconds from {} to {}", whole(s.min),
                               whole(s.max));
        case T::LogLevel:
            return fmt::format("a log level ({})", kLevels);
        case T::Address:
            return "an IPv4 or IPv6 address";
        case T::HostPort:
            return "ADDR:PORT with a numeric IPv4 or [IPv6] address (e.g. 127.0.0.1:9090), or "
                   "empty for off";
        case T::Choice:
            return fmt::format("one of {}", choiceList(s));
        case T::Path:
            return "a path";
        case T::File:
            return "a file path";
        case T::Text:
            return "text without NUL";
    }
    return "valid";
}

// ---- docs ------------------------------------------------------------------------------

enum class Style { Plain, Markdown, Man };

// Escapes plain text for roff: hyphens become minus signs, quotes \(dq, and a sentence
// starts a new line (a line starting with '.' would be a request: none in the table).
std::string roff(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char ch = text[i];
        if (ch == '-') {
            out += "\\-";
        } else if (ch == '"') {
            out += "\\(dq";
        } else if (ch == '\\') {
            out += "\\e";
        } else if (ch == ' ' && i > 0 && text[i - 1] == '.') {
            out += '\n';
        } else {
            out += ch;
        }
    }
    return out;
}

std::string capitalized(std::string_view text) {
    std::string out(text);
    if (!out.empty() && out[0] >= 'a' && out[0] <= 'z') {
        out[0] = static_cast<char>(out[0] - 'a' + 'A');
    }
    return out;
}

std::string valueText(const Setting& s, const SettingValue& v, Style style) {
    if (const auto* b = std::get_if<bool>(&v)) {
        if (style == Style::Plain) {
            return *b ? "on" : "off";
        }
        return *b ? "true" : "false";
    }
    if (const auto* n = std::get_if<std::int64_t>(&v)) {
        constexpr std::int64_t kMiB = 1 << 20;
        if (style == Style::Man && s.type == T::Bytes && *n >= kMiB && *n % kMiB == 0) {
            return fmt::format("{} ({} MiB)", *n, *n / kMiB);
        }
        return fmt::format("{}", *n);
    }
    if (const auto* d = std::get_if<double>(&v)) {
        return fmt::format("{}", *d);
    }
    const auto& text = std::get<std::string>(v);
    switch (style) {
        case Style::Plain:
            return text.empty() ? "off" : text;
        case Style::Markdown:
            return text.empty() ? "`\"\"` (off)" : fmt::format("`\"{}\"`", text);
        case Style::Man:
            return text.empty() ? "\\(dq\\(dq (off)" : fmt::format("\\(dq{}\\(dq", roff(text));
    }
    return text;
}

std::string defaultText(const Setting& s, Style style) {
    const SettingValue v = s.access.get(Config{});
    if (style == Style::Markdown && !std::holds_alternative<std::string>(v)) {
        return fmt::format("`{}`", valueText(s, v, style));
    }
    return valueText(s, v, style);
}

// "Integer, 1 to 1000000" and the like: the type and range, for the docs.
std::string typeText(const Setting& s) {
    switch (s.type) {
        case T::Bool:
            return "Boolean";
        case T::Int:
        case T::Port:
        case T::Bytes:
            return fmt::format("Integer, {} to {}", whole(s.min), whole(s.max));
        case T::Seconds:
            return fmt::format("Seconds, {} to {}", s.min, s.max);
        case T::WholeSeconds:
            return fmt::format("Integer seconds, {} to {}", whole(s.min), whole(s.max));
        case T::LogLevel:
            return "String, one of trace, debug, info, warn, error, critical or off";
        case T::Address:
            return "String, an IPv4 or IPv6 address literal";
        case T::HostPort:
            return "String, \"ADDR:PORT\" or \"[IPv6]:PORT\" with a numeric address, or \"\" "
                   "for off";
        case T::Choice:
            return fmt::format("String, one of {}", choiceList(s));
        case T::Path:
            return "String, a directory path, or \"\" for none";
        case T::File:
            return "String, a file path, or \"\" for none";
        case T::Text:
            return "String, or \"\" for none";
    }
    return "";
}

std::string negatedFlag(const Setting& s) { return "--no-" + s.flag.substr(2); }

std::string renderMarkdown() {
    std::string out =
        "| key | flag | default | type and range | meaning | on SIGHUP |\n"
        "|---|---|---|---|---|---|\n";
    for (const auto& s : settings()) {
        std::string flag = fmt::format("`{}`", s.flag);
        if (s.type == T::Bool) {
            flag += fmt::format(", `{}`", negatedFlag(s));
        }
        std::string type = typeText(s);
        type[0] = static_cast<char>(type[0] - 'A' + 'a');
        out += fmt::format("| `{}` | {} | {} | {} | {} | {} |\n", s.key, flag,
                           defaultText(s, Style::Markdown), type, s.summary,
                           s.reloadable ? "applied" : "restart");
    }
    return out;
}

std::string renderManKeys() {
    std::string out;
    std::string_view group;
    for (const auto& s : settings()) {
        if (s.group != group) {
            group = s.group;
            out += fmt::format(".SS {}\n", group);
        }
        out += fmt::format(".TP\n.B {}\n{}: {}\nDefault {}.\n", s.key, roff(typeText(s)),
                           roff(s.details), defaultText(s, Style::Man));
        if (!s.reloadable) {
            out += "Restart to change.\n";
        }
    }
    return out;
}

std::string renderManFlags() {
    std::string out;
    for (const auto& s : settings()) {
        if (s.type == T::Bool) {
            out += fmt::format(".TP\n.BR {} \", \" {}\n", roff(s.flag), roff(negatedFlag(s)));
        } else {
            out += fmt::format(".TP\n.BI {} \" {}\"\n", roff(s.flag), flagArgName(s));
        }
        out += fmt::format("{} (key\n.BR {} ,\ndefault {}).\n", roff(capitalized(s.summary)), s.key,
                           defaultText(s, Style::Man));
    }
    return out;
}

}  // namespace

const std::vector<Setting>& settings() {
    static const std::vector<Setting> kTable = makeTable();
    return kTable;
}

const Setting* findSettingByKey(std::string_view key) {
    for (const auto& s : settings()) {
        if (s.key == key) {
            return &s;
        }
    }
    return nullptr;
}

const Setting* findSettingByFlag(std::string_view flag, bool& negated) {
    negated = false;
    for (const auto& s : settings()) {
        if (s.flag == flag) {
            return &s;
        }
        if (s.type == T::Bool && negatedFlag(s) == flag) {
            negated = true;
            return &s;
        }
    }
    return nullptr;
}

std::string checkSettingValue(const Setting& s, const SettingValue& value) {
    if (s.type == T::Bool) {
        return std::holds_alternative<bool>(value) ? "" : "expected true or false";
    }
    if (isInteger(s.type)) {
        const auto* n = std::get_if<std::int64_t>(&value);
        if (n == nullptr) {
            return "expected an integer";
        }
        if (static_cast<double>(*n) < s.min || static_cast<double>(*n) > s.max) {
            return fmt::format("{} is out of range ({} to {})", *n, whole(s.min), whole(s.max));
        }
        return "";
    }
    if (s.type == T::Seconds) {
        const auto* v = std::get_if<double>(&value);
        if (v == nullptr) {
            return "expected a number of seconds";
        }
        if (!std::isfinite(*v) || *v < s.min || *v > s.max) {
            return fmt::format("{} is out of range ({} to {} seconds)", *v, s.min, s.max);
        }
        return "";
    }
    const auto* text = std::get_if<std::string>(&value);
    if (text == nullptr) {
        return "expected a string";
    }
    switch (s.type) {
        case T::LogLevel:
            if (!common::parseLogLevel(*text)) {
                return fmt::format("'{}' is not a log level ({})", *text, kLevels);
            }
            return "";
        case T::Address:
            if (!net::sockets::isIpLiteral(*text)) {
                return fmt::format("'{}' is not an IPv4 or IPv6 address", *text);
            }
            return "";
        case T::HostPort: {
            std::string host;
            std::uint16_t port = 0;
            if (!text->empty() && !parseHostPort(*text, host, port)) {
                return fmt::format(
                    "'{}' is not ADDR:PORT with a numeric address (e.g. \"127.0.0.1:9090\", "
                    "\"[::1]:9090\"; \"\" = off)",
                    *text);
            }
            return "";
        }
        case T::Choice:
            if (!isChoice(s, *text)) {
                return fmt::format("'{}' is not one of {}", *text, choiceList(s));
            }
            return "";
        case T::Path:
        case T::File:
        case T::Text:
            if (text->find('\0') != std::string::npos) {
                return s.type == T::Text ? "text cannot contain NUL" : "a path cannot contain NUL";
            }
            return "";
        default:
            return "";
    }
}

std::string parseFlagValue(const Setting& s, std::string_view text, SettingValue& out) {
    const char* first = text.data();
    const char* last = text.data() + text.size();
    bool converted = true;
    SettingValue value;
    if (s.type == T::Bool) {
        converted = text == "true" || text == "false";
        value = text == "true";
    } else if (isInteger(s.type)) {
        std::int64_t n = 0;
        auto [ptr, ec] = std::from_chars(first, last, n);
        converted = ec == std::errc() && ptr == last && !text.empty();
        value = n;
    } else if (s.type == T::Seconds) {
        double v = 0;
        auto [ptr, ec] = std::from_chars(first, last, v);
        converted = ec == std::errc() && ptr == last && !text.empty();
        value = v;
    } else {
        value = std::string(text);
    }
    if (!converted || !checkSettingValue(s, value).empty()) {
        return fmt::format("{}: '{}' is not {}", s.flag, text, expectation(s));
    }
    out = std::move(value);
    return "";
}

std::string_view flagArgName(const Setting& s) {
    switch (s.type) {
        case T::Bool:
            return "";
        case T::Int:
        case T::Port:
            return "N";
        case T::Bytes:
            return "BYTES";
        case T::Seconds:
        case T::WholeSeconds:
            return "SECONDS";
        case T::LogLevel:
            return "LEVEL";
        case T::Address:
            return "ADDR";
        case T::HostPort:
            return "ADDR:PORT";
        case T::Choice:
            return "WORD";
        case T::Path:
            return "DIR";
        case T::File:
            return "FILE";
        case T::Text:
            return "TEXT";
    }
    return "VALUE";
}

std::optional<Inconsistency> checkConsistency(const Config& config) {
    // auth = tokens / accounts without their files: makeAuthenticator (server/auth_setup.cc)
    // refuses them at start (exit 2) and on reload, as it does unreadable files.
    if (!config.tls_cert.empty() && config.tls_port != 0 && config.tls_port == config.port) {
        return Inconsistency{{"tls_port", "port"},
                             fmt::format("tls_port ({}) must differ from port", config.tls_port)};
    }
    if (config.core.user_buffer_bytes > config.core.total_buffer_bytes) {
        return Inconsistency{
            {"user_buffer_bytes", "total_buffer_bytes"},
            fmt::format("user_buffer_bytes ({}) must not exceed total_buffer_bytes ({})",
                        config.core.user_buffer_bytes, config.core.total_buffer_bytes)};
    }
    return std::nullopt;
}

std::vector<std::string> restartRequiredChanges(const Config& old, const Config& fresh) {
    std::vector<std::string> changed;
    for (const auto& s : settings()) {
        if (!s.reloadable && s.access.get(old) != s.access.get(fresh)) {
            changed.emplace_back(s.key);
        }
    }
    return changed;
}

void keepRestartSettings(const Config& running, Config& fresh) {
    for (const auto& s : settings()) {
        if (!s.reloadable) {
            s.access.set(fresh, s.access.get(running));
        }
    }
}

std::vector<std::pair<std::string, std::string>> settingsUsage() {
    std::vector<std::pair<std::string, std::string>> lines;
    for (const auto& s : settings()) {
        lines.emplace_back(s.type == T::Bool ? fmt::format("{}, {}", s.flag, negatedFlag(s))
                                             : fmt::format("{} {}", s.flag, flagArgName(s)),
                           fmt::format("{} (default {})", s.summary, defaultText(s, Style::Plain)));
    }
    return lines;
}

std::vector<std::string_view> settingsDocFormats() { return {"markdown", "man-keys", "man-flags"}; }

std::optional<std::string> renderSettingsDoc(std::string_view format) {
    if (format == "markdown") {
        return renderMarkdown();
    }
    if (format == "man-keys") {
        return renderManKeys();
    }
    if (format == "man-flags") {
        return renderManFlags();
    }
    return std::nullopt;
}

std::string_view closestName(std::string_view name,
                             const std::vector<std::string_view>& candidates) {
    // Levenshtein distance; only close matches are suggested.
    auto distance = [](std::string_view a, std::string_view b) {
        std::vector<std::size_t> row(b.size() + 1);
        for (std::size_t j = 0; j <= b.size(); ++j) {
            row[j] = j;
        }
        for (std::size_t i = 1; i <= a.size(); ++i) {
            std::size_t diag = row[0];
            row[0] = i;
            for (std::size_t j = 1; j <= b.size(); ++j) {
                const std::size_t up = row[j];
                row[j] =
                    std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
                diag = up;
            }
        }
        return row[b.size()];
    };
    std::string_view best;
    std::size_t best_distance = 3;
    for (auto candidate : candidates) {
        if (auto d = distance(name, candidate); d < best_distance) {
            best = candidate;
            best_distance = d;
        }
    }
    return best;
}

bool parseHostPort(std::string_view text, std::string& host, std::uint16_t& port) {
    std::string_view addr;
    std::string_view port_text;
    if (text.starts_with('[')) {
        const auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            return false;
        }
        addr = text.substr(1, close - 1);
        port_text = text.substr(close + 2);
        if (addr.find(':') == std::string_view::npos) {
            return false;  // brackets are for IPv6 only
        }
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            return false;
        }
        addr = text.substr(0, colon);
        port_text = text.substr(colon + 1);
        if (addr.find(':') != std::string_view::npos) {
            return false;  // an IPv6 address needs brackets
        }
    }
    unsigned value = 0;
    auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (port_text.empty() || ec != std::errc() || ptr != port_text.data() + port_text.size() ||
        value > 65535) {
        return false;
    }
    if (!net::sockets::isIpLiteral(addr)) {
        return false;
    }
    host = std::string(addr);
    port = static_cast<std::uint16_t>(value);
    return true;
}

}  // namespace tundra::server
