// SPDX-License-Identifier: Apache-2.0
// tundrad entry point: argv -> Config -> Server::run(), plus the data commands
// (--check-data DIR, backup --data-dir DIR FILE). Exit codes: 0 clean, 1 runtime failure, 2 bad
// flags, config or data directory (missing, unwritable, corrupt, newer schema).
#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/logging.h"
#include "net/socket_ops.h"
#include "server/auth_setup.h"
#include "server/config.h"
#include "server/config_file.h"
#include "server/huge_pages.h"
#include "server/server.h"
#include "storage/sqlite_store.h"

namespace {

// Each client needs a descriptor: raise the soft limit to the hard one (as Redis does), so
// max_clients can follow it (0 = derived from it, see resolveMaxClients); systemd sets the hard
// limit with LimitNOFILE in the unit file.
void raiseFileLimit(std::size_t max_clients) {
    const std::uint64_t limit = tundra::net::sockets::raiseFdLimit(UINT64_MAX);
    std::string warning;
    const std::size_t effective = tundra::server::resolveMaxClients(max_clients, limit, warning);
    spdlog::info("file descriptor limit {}: max_clients {}{}", limit, effective,
                 max_clients == 0 ? " (derived from the limit)" : "");
}

// A key or accounts file that cannot be used is a configuration error (exit 2).
bool authUsable(const tundra::server::Config& config) {
    std::shared_ptr<const tundra::core::Authenticator> auth;
    std::string error;
    if (!tundra::server::makeAuthenticator(config, auth, error)) {
        std::fprintf(stderr, "tundrad: %s\n", error.c_str());
        return false;
    }
    return true;
}

}  // namespace

// `tundrad --check-data DIR` (exit 0 usable, 1 not) and `tundrad backup --data-dir DIR FILE`
// (exit 0 copied, 1 failed, 2 usage); nullopt for anything else.
std::optional<int> dataCommand(const std::vector<std::string>& args) {
    if (!args.empty() && args[0] == "--check-data") {
        if (args.size() != 2) {
            std::fprintf(stderr, "usage: tundrad --check-data DIR\n");
            return 2;
        }
        std::string report;
        const bool ok = tundra::storage::checkDataDir(args[1], report);
        std::fprintf(ok ? stdout : stderr, "%s\n", report.c_str());
        return ok ? 0 : 1;
    }
    if (!args.empty() && args[0] == "backup") {
        if (args.size() != 4 || args[1] != "--data-dir") {
            std::fprintf(stderr, "usage: tundrad backup --data-dir DIR FILE\n");
            return 2;
        }
        std::string error;
        if (!tundra::storage::backupDataDir(args[2], args[3], error)) {
            std::fprintf(stderr, "tundrad backup: %s\n", error.c_str());
            return 1;
        }
        std::printf("backed up %s/%s to %s\n", args[2].c_str(), tundra::storage::kDbFileName,
                    args[3].c_str());
        return 0;
    }
    return std::nullopt;
}

int main(int argc, char** argv) {
    using tundra::server::ParsedArgs;
    std::vector<std::string> args(argv + 1, argv + argc);
    if (auto code = dataCommand(args)) {
        return *code;
    }
    // Subcommands: `tundrad token ...` and `tundrad hash-password ...`.
    if (!args.empty() && (args[0] == "token" || args[0] == "hash-password")) {
        const std::vector<std::string> rest(args.begin() + 1, args.end());
        std::string out;
        std::string err;
        const int rc = args[0] == "token"
                           ? tundra::server::runTokenCommand(
                                 rest, static_cast<std::int64_t>(std::time(nullptr)), out, err)
                           : tundra::server::runHashPasswordCommand(rest, std::cin, out, err);
        std::fputs(out.c_str(), stdout);
        std::fputs(err.c_str(), stderr);
        return rc;
    }
    ParsedArgs parsed = tundra::server::parseArgs(args, tundra::server::loadConfigFile);
    switch (parsed.action) {
        case ParsedArgs::Action::Help:
            std::fputs(parsed.message.c_str(), stdout);
            return 0;
        case ParsedArgs::Action::Version:
            std::printf("tundrad %s (protocol 1)\n", parsed.config.core.software_version.c_str());
            return 0;
        case ParsedArgs::Action::Error:
            std::fprintf(stderr, "tundrad: %s\nTry 'tundrad --help' for the list of options.\n",
                         parsed.message.c_str());
            return 2;
        case ParsedArgs::Action::CheckConfig:
            if (!authUsable(parsed.config)) {
                return 2;
            }
            std::printf("%s: configuration is valid\n", parsed.config.config_file.c_str());
            return 0;
        case ParsedArgs::Action::Run:
            if (!authUsable(parsed.config)) {
                return 2;
            }
            break;
    }
    // Before anything is allocated in earnest: may start the process again (huge_pages.h).
    const tundra::server::HugePagesPlan huge_pages =
        tundra::server::applyHugePages(parsed.config.huge_pages, argv);
    // Writes to a closed socket report EPIPE instead of killing the daemon.
    ::signal(SIGPIPE, SIG_IGN);
    // A file size limit makes writes fail with EFBIG (a full disk to the store), not a kill.
    ::signal(SIGXFSZ, SIG_IGN);
    tundra::common::setupLogging(parsed.config.log_level);
    if (!tundra::server::tuneAllocator()) {
        spdlog::warn("could not tune the allocator (mallopt refused): expect more page faults");
    }
    spdlog::info("heap huge pages: {}", huge_pages.state);
    raiseFileLimit(parsed.config.core.max_clients);
    try {
        tundra::server::Server server(parsed.config, args);
        std::string error;
        if (!server.openStore(error)) {
            spdlog::critical("cannot start: {}", error);
            return 2;
        }
        if (!server.start(error)) {
            spdlog::critical("cannot start: {}", error);
            return server.configError() ? 2 : 1;
        }
        return server.run();
    } catch (const std::exception& e) {
        spdlog::critical("fatal: {}", e.what());
        return 1;
    }
}
