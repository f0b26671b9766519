// SPDX-License-Identifier: Apache-2.0
// tundrad entry point: argv -> Config -> Server::run(). Exit codes: 0 clean, 1 runtime
// failure, 2 bad flags or config.
#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "common/logging.h"
#include "net/socket_ops.h"
#include "server/config.h"
#include "server/config_file.h"
#include "server/server.h"

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

}  // namespace

int main(int argc, char** argv) {
    using tundra::server::ParsedArgs;
    std::vector<std::string> args(argv + 1, argv + argc);
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
            std::printf("%s: configuration is valid\n", parsed.config.config_file.c_str());
            return 0;
        case ParsedArgs::Action::Run:
            break;
    }
    // Writes to a closed socket report EPIPE instead of killing the daemon.
    ::signal(SIGPIPE, SIG_IGN);
    tundra::common::setupLogging(parsed.config.log_level);
    raiseFileLimit(parsed.config.core.max_clients);
    try {
        tundra::server::Server server(parsed.config, args);
        std::string error;
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
