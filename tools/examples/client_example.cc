// SPDX-License-Identifier: Apache-2.0
// Example for docs/CLIENT.md: an echo bot built on the client library. It registers as "echo",
// answers every direct message with the same text, and survives server restarts and network
// hiccups (the library reconnects, resumes the session and drops duplicate replays).
//
//   client_example [HOST [PORT [REPLIES]]]    stops after REPLIES answers (default: never)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <variant>

#include "tundra/client.h"

namespace tc = tundra::client;

int main(int argc, char** argv) {
    tc::Options options;
    options.host = argc > 1 ? argv[1] : "127.0.0.1";
    options.port = static_cast<std::uint16_t>(argc > 2 ? std::atoi(argv[2]) : 4242);
    const long max_replies = argc > 3 ? std::atol(argv[3]) : 0;

    tc::Client client(options);
    tc::Identity me;
    me.name = "echo";
    auto welcome = client.registerAs(me);
    if (!welcome) {  // e.g. "cannot connect to 127.0.0.1:4242: Connection refused"
        std::fprintf(stderr, "echo: %s\n", welcome.error().message().c_str());
        return 1;
    }
    std::printf("echo: registered on %s, %u messages pending\n", client.endpoint().c_str(),
                welcome->pending);
    std::fflush(stdout);

    long replies = 0;
    while (max_replies == 0 || replies < max_replies) {
        // Waiting here also answers the server's PINGs and drives reconnects.
        auto event = client.nextEvent(std::chrono::seconds(1));
        if (!event) {
            if (client.state() == tc::ConnectionState::Closed) {
                return 1;  // gave up reconnecting, or another client took the session
            }
            continue;
        }
        if (const auto* d = std::get_if<tc::Delivery>(&*event)) {
            if (d->type != tundra::MsgType::BroadcastMessage || d->to.empty()) {
                continue;  // only direct text messages get an echo
            }
            auto ack = client.sendMessage(d->from, d->text);
            if (ack) {
                ++replies;
            } else {  // a typed error: ack.error().code is the server's ErrorCode
                std::fprintf(stderr, "echo: reply to %s failed: %s\n", d->from.c_str(),
                             ack.error().message().c_str());
            }
        } else if (const auto* c = std::get_if<tc::ConnectionEvent>(&*event)) {
            if (c->kind == tc::ConnectionEvent::Kind::Lost) {
                std::fprintf(stderr, "echo: %s; reconnecting\n", c->reason.message().c_str());
            }
        }
    }
    (void)client.logout();
    return 0;
}
