// SPDX-License-Identifier: Apache-2.0
// Shared fixture for the tundrad integration tests: a server per test and small helpers to
// register clients and decode what they receive.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "support/raw_client.h"
#include "support/tundrad_process.h"
#include "tundra/messages.h"

namespace tundra::testing {

inline msg::System asSystem(const RawFrame& f) {
    msg::System s;
    EXPECT_EQ(f.type(), MsgType::System);
    EXPECT_EQ(msg::parse(f.span(), s), nullptr);
    return s;
}

inline msg::Error asError(const RawFrame& f) {
    msg::Error e;
    EXPECT_EQ(f.type(), MsgType::Error) << "got type " << int(f.header.type);
    EXPECT_EQ(msg::parse(f.span(), e), nullptr);
    return e;
}

inline msg::Delivery asDelivery(const RawFrame& f) {
    msg::Delivery d;
    EXPECT_EQ(msg::parse(f.type(), f.span(), d), nullptr);
    return d;
}

inline msg::Ack asAck(const RawFrame& f) {
    msg::Ack a;
    EXPECT_EQ(f.type(), MsgType::Ack);
    EXPECT_EQ(msg::parse(f.span(), a), nullptr);
    return a;
}

class ServerTest : public ::testing::Test {
protected:
    /// Extra tundrad flags for this fixture (override in a subclass or set before SetUp).
    virtual std::vector<std::string> serverArgs() { return {"--no-presence"}; }

    void SetUp() override {
        server_ = std::make_unique<TundradProcess>(serverArgs());
        ASSERT_TRUE(server_->started()) << server_->output();
    }

    void TearDown() override {
        if (server_ && server_->started()) {
            auto code = server_->stop();
            EXPECT_EQ(code, std::optional<int>(0)) << server_->output();
        }
    }

    std::unique_ptr<RawClient> connect() {
        auto c = std::make_unique<RawClient>(server_->port());
        EXPECT_TRUE(c->connected());
        return c;
    }

    /// Connects and registers; fails the test unless a WELCOME arrives.
    std::unique_ptr<RawClient> login(const std::string& name, ClientKind kind = ClientKind::User,
                                     msg::Welcome* welcome = nullptr) {
        auto c = connect();
        auto f = c->registerAs(name, kind);
        EXPECT_TRUE(f.has_value()) << "no answer to REGISTER " << name;
        if (f) {
            auto s = asSystem(*f);
            EXPECT_EQ(s.event, SystemEvent::Welcome);
            if (welcome != nullptr) {
                *welcome = s.welcome;
            }
        }
        return c;
    }

    /// Sends a MESSAGE and returns the server's answer (ACK or ERROR) when `ack` is set.
    static std::optional<RawFrame> say(RawClient& c, std::string_view to, std::string_view text,
                                       bool ack = true) {
        msg::Message m{to, text};
        c.send(msg::encode(m, c.nextSeq(), ack ? flags::kAck : 0));
        if (!ack) {
            return std::nullopt;
        }
        return reply(c);
    }

    /// The next ACK or ERROR; presence events and PINGs in between are set aside in skipped().
    static std::optional<RawFrame> reply(RawClient& c) {
        for (;;) {
            auto f = c.read();
            if (!f || f->type() == MsgType::Ack || f->type() == MsgType::Error) {
                return f;
            }
            c.skipped().push_back(std::move(*f));
        }
    }

    /// Proves the server still serves: two fresh users exchange a direct message.
    void expectOthersStillChat() {
        static int n = 0;
        std::string a = "check_a" + std::to_string(++n);
        std::string b = "check_b" + std::to_string(n);
        auto ca = login(a);
        auto cb = login(b);
        auto ack = say(*ca, b, "still alive");
        ASSERT_TRUE(ack);
        EXPECT_EQ(asAck(*ack).delivered, 1U);
        auto got = cb->readUntil(MsgType::BroadcastMessage);
        ASSERT_TRUE(got);
        EXPECT_EQ(asDelivery(*got).text, "still alive");
    }

    std::unique_ptr<TundradProcess> server_;
};

}  // namespace tundra::testing
