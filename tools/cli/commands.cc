// SPDX-License-Identifier: Apache-2.0
// tundra-cli one-shot subcommands and pipe mode.
#include "cli/commands.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "cli/json_reader.h"
#include "cli/output.h"
#include "cli/rtt_stats.h"

namespace tundra::cli {

volatile std::sig_atomic_t g_interrupted = 0;

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

extern "C" void onInterrupt(int) { g_interrupted = 1; }

bool isConnectionError(const client::ClientError& e) {
    return e.kind == client::ErrorKind::Connect || e.kind == client::ErrorKind::Disconnected ||
           e.kind == client::ErrorKind::Closed;
}

void printStatus(const CliConfig& cfg, const std::string& text) {
    if (!cfg.global.quiet) {
        std::fprintf(stderr, "tundra-cli: %s\n", text.c_str());
    }
}

// Prints events for listen and pipe: deliveries on stdout; the rest on stderr for people, or
// on stdout with --events. Tracks the exit code the events imply.
struct EventPrinter {
    const CliConfig& cfg;
    int rc = kExitOk;

    // Returns true for a delivery.
    bool print(const client::Event& e) {
        bool delivery = isDelivery(e);
        if (const auto* err = std::get_if<client::ErrorEvent>(&e)) {
            rc = rc == kExitOk ? kExitFailed : rc;
            (void)err;
        }
        if (const auto* c = std::get_if<client::ConnectionEvent>(&e);
            c != nullptr && c->kind == client::ConnectionEvent::Kind::Closed) {
            rc = kExitUnreachable;
        }
        if (delivery || cfg.events) {
            printLine(cfg.global.json ? formatJson(e) : formatHuman(e));
        } else if (!cfg.global.quiet || std::holds_alternative<client::ErrorEvent>(e)) {
            std::fprintf(stderr, "%s\n", formatHuman(e).c_str());
        }
        return delivery;
    }
};

bool closedForGood(const client::Client& c) {
    return c.state() == client::ConnectionState::Closed ||
           c.state() == client::ConnectionState::Disconnected;
}

// ---- send / agent / image ----------------------------------------------------------------------

int finishAck(const CliConfig& cfg, client::Client& c, const client::Result<client::Ack>& ack,
              const char* what) {
    if (!ack) {
        printError(std::string(what) + " failed", ack.error());
        return exitCodeFor(ack.error());
    }
    printLine(cfg.global.json ? formatAckJson(*ack) : formatAckHuman(*ack, cfg.to));
    (void)c.logout();
    return kExitOk;
}

int runSend(const CliConfig& cfg) {
    std::string text;
    if (cfg.args.empty() || (cfg.args.size() == 1 && cfg.args[0] == "-")) {
        if (cfg.args.empty() && ::isatty(STDIN_FILENO) == 1) {
            printError("send: no TEXT given (use - to read standard input)");
            return kExitUsage;
        }
        std::ostringstream all;
        all << std::cin_placeholder_unused;
        text = all.str();
    } else {
        for (const auto& a : cfg.args) {
            if (!text.empty()) {
                text += ' ';
            }
            text += a;
        }
    }
    return 0;
}

}  // namespace
}  // namespace tundra::cli
