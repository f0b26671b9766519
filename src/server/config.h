// SPDX-License-Identifier: Apache-2.0
// Server configuration: the Config struct (its defaults are the settings' defaults) and argv
// parsing. The settings themselves are listed once, in settings.h; a config file (TOML) layers
// under the flags: file values first, then flags override.
#pragma once

#include <spdlog/common.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/session_manager.h"

namespace tundra::server {

struct Config {
    std::string bind = "127.0.0.1";
    std::uint16_t port = 4242;
    /// max_clients 0 = derived from the descriptor limit (resolveMaxClients) when the server
    /// starts and on reload.
    core::CoreConfig core = [] {
        core::CoreConfig c;
        c.max_clients = 0;
        return c;
    }();
    std::size_t output_cap_bytes = 8U << 20;           ///< slow-consumer cap per connection
    std::size_t output_total_soft_bytes = 256U << 20;  ///< all queues: stop reading the largest
    std::size_t output_total_hard_bytes = 512U << 20;  ///< all queues: cut the largest
    spdlog::level::level_enum log_level = spdlog::level::info;
    std::uint16_t shutdown_retry_after_s = 5;
    std::int64_t drain_timeout_ms = 5000;  ///< SIGTERM: give up flushing after this
    std::string admin;                     ///< "ADDR:PORT" admin HTTP listener, empty = off
    std::size_t admin_max_per_source = 8;  ///< admin connections open from one address
    std::string config_file;               ///< path given with --config, if any
    std::string storage = "sqlite";        ///< memory | sqlite (sqlite needs data_dir)
    std::string data_dir;                  ///< the SQLite store's directory, "" = none
    std::string fsync = "always";          ///< always | interval | off
    std::int64_t fsync_interval_ms = 1000;
    // Identity (docs/SECURITY.md, "Identity"): none | tokens | accounts.
    std::string auth = "none";
    std::string token_secret_file;      ///< HS256 secret
    std::string token_public_key_file;  ///< Ed25519 or RSA public key (PEM)
    std::string token_audience;         ///< non-empty: tokens' aud must contain it
    std::string token_issuer;           ///< non-empty: tokens' iss must equal it
    std::int64_t token_leeway_s = 30;
    std::size_t token_max_bytes = 4096;
    std::string accounts_file;
    std::string anonymous = "off";          ///< off | read-only | direct-only
    std::uint16_t tls_port = 4243;          ///< TLS listener (when tls_cert/tls_key are set)
    std::string tls_cert;                   ///< PEM chain; "" = no TLS listener
    std::string tls_key;                    ///< PEM key of tls_cert
    std::string tls_client_ca;              ///< PEM CAs; non-empty = client certificates required
    bool tls_client_identity = false;       ///< with auth: a client certificate's CN identifies
    std::string tls_client_roles = "user";  ///< roles of a certificate identity (comma list)
    std::int64_t tls_handshake_timeout_ms = 10'000;
    std::string admin_token_file;  ///< bearer token for the admin listener; "" = none
    bool admin_tls = false;        ///< admin listener over TLS with tls_cert/tls_key
    bool huge_pages = false;       ///< heap on transparent huge pages (huge_pages.h)
};

/// Result of parsing argv.
struct ParsedArgs {
    enum class Action { Run, Help, Version, CheckConfig, Error } action = Action::Run;
    Config config;
    std::string message;  ///< help text, or the error ("--port: 'abc' is not a number ...")
};

/// Loads a config file into `config`; false with `error` as "FILE:LINE: message".
using ConfigFileLoader =
    std::function<bool(const std::string& path, Config& config, std::string& error)>;

/// Parses tundrad's argv (without argv[0]). A --config/--check-config file is loaded first
/// through `load_file`, then the flags override it. Never throws; bad values give
/// Action::Error with a clear message.
ParsedArgs parseArgs(const std::vector<std::string>& args, const ConfigFileLoader& load_file = {});
/// Descriptors kept out of max_clients. A server with everything on (TLS and admin listeners,
/// the SQLite store) holds 18 before any client: stdio, epoll, signalfd, the store's eventfd
/// and pipe, three listeners and a spare fd per acceptor (for EMFILE), the database, its WAL,
/// shared-memory and lock files, the log. The rest is for admin connections and the files a
/// reload reads. An accept beyond the limit is shed with the spare fd, never a crash.
inline constexpr std::uint64_t kReservedFds = 24;
inline constexpr std::size_t kMaxClientsCeiling = 1'000'000;
/// max_clients as the server runs it: `configured` (0 = as many as `fd_limit` allows, minus
/// kReservedFds, at most kMaxClientsCeiling), lowered to what `fd_limit` allows; `warning` is
/// set when an explicit value was lowered. fd_limit 0 (unknown) keeps `configured` (1000 if 0).
std::size_t resolveMaxClients(std::size_t configured, std::uint64_t fd_limit, std::string& warning);

/// The --help text.
std::string usage();

}  // namespace tundra::server
