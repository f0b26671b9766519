// SPDX-License-Identifier: Apache-2.0
// tundra-cli as users and scripts run it, against a real tundrad: two CLIs chatting through
// pipes, listen + send, health exit codes against a live and a stopped server, error exit
// codes, ping statistics, JSON lines, the interactive mode in a pseudo-terminal, and received
// images written to files (--save-images).
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cli_process.h"
#include "support/scratch_dir.h"
#include "support/tundrad_process.h"
#include "tundra/client.h"

namespace tundra::testing {
namespace {

using namespace std::chrono_literals;

class CliTest : public ::testing::Test {
protected:
    void SetUp() override { startServer({}); }

    void startServer(std::vector<std::string> args) {
        server_ = std::make_unique<TundradProcess>(std::move(args));
        ASSERT_TRUE(server_->started()) << server_->output();
    }

    void TearDown() override {
        if (server_ && server_->started()) {
            EXPECT_EQ(server_->stop(), std::optional<int>(0)) << server_->output();
        }
    }

    // Global options for this server, then `rest`.
    std::vector<std::string> cli(std::vector<std::string> rest) const {
        std::vector<std::string> args{"--port", std::to_string(server_->port()), "--timeout", "5"};
        args.insert(args.end(), rest.begin(), rest.end());
        return args;
    }

    std::unique_ptr<client::Client> login(const std::string& name,
                                          ClientKind kind = ClientKind::User) {
        client::Options o;
        o.port = server_->port();
        auto c = std::make_unique<client::Client>(o);
        client::Identity id;
        id.name = name;
        id.kind = kind;
        auto w = c->registerAs(id);
        EXPECT_TRUE(w) << w.error().message();
        return c;
    }

    std::unique_ptr<TundradProcess> server_;
};

std::optional<client::Delivery> nextDelivery(client::Client& c,
                                             std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (auto e = c.nextEvent(50ms)) {
            if (auto* d = std::get_if<client::Delivery>(&*e)) {
                return *d;
            }
        }
    }
    return std::nullopt;
}

// A scratch directory (removed with its files at the end) for --save-images and image files.
std::string readBytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void writeBytes(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// An image-like payload with every byte value (NUL, CR, LF, 0xFF...) in it.
std::string binaryImage(std::size_t size, unsigned seed) {
    std::string data("\x89PNG\r\n\x1a\n", 8);
    std::uint32_t x = seed * 2654435761U + 1;
    while (data.size() < size) {
        x = x * 1664525U + 1013904223U;
        data += static_cast<char>(x >> 24);
    }
    return data;
}

// The id from "sent to NAME: id N, ...".
std::string ackedId(const std::string& out) {
    auto at = out.find("id ");
    if (at == std::string::npos) {
        return {};
    }
    at += 3;
    return out.substr(at, out.find(',', at) - at);
}

TEST_F(CliTest, TwoPipeModeClisChat) {
    CliProcess bob(cli({"--user", "bob", "pipe", "--to", "alice"}));
    ASSERT_TRUE(bob.err().waitLine("connected as bob", 10s)) << bob.err().text();
    CliProcess alice(cli({"--user", "alice", "--json", "pipe", "--to", "bob"}));
    ASSERT_TRUE(alice.err().waitLine("connected as alice", 10s)) << alice.err().text();

    ASSERT_TRUE(alice.write("hello bob\nhow are you?\n"));
    EXPECT_TRUE(bob.out().waitLine("alice -> bob: hello bob", 10s)) << bob.out().text();
    EXPECT_TRUE(bob.out().waitLine("alice -> bob: how are you?", 10s)) << bob.out().text();

    ASSERT_TRUE(bob.write("fine, thanks\n"));
    auto reply = alice.out().waitLine("fine, thanks", 10s);
    ASSERT_TRUE(reply) << alice.out().text();
    EXPECT_NE(reply->find("\"type\":\"message\""), std::string::npos) << *reply;
    EXPECT_NE(reply->find("\"from\":\"bob\""), std::string::npos) << *reply;
    EXPECT_NE(reply->find("\"text\":\"fine, thanks\""), std::string::npos) << *reply;

    alice.closeStdin();
    bob.closeStdin();
    EXPECT_EQ(alice.wait(10s), std::optional<int>(0)) << alice.err().text();
    EXPECT_EQ(bob.wait(10s), std::optional<int>(0)) << bob.err().text();
    // stdout carries only what arrived: one JSON object per line.
    for (const auto& line : alice.out().lines()) {
        EXPECT_EQ(line.front(), '{') << line;
        EXPECT_EQ(line.back(), '}') << line;
    }
}

TEST_F(CliTest, PipeModeIsTheDefaultWhenStdinIsNotATerminal) {
    auto bob = login("bob");
    CliRun r = runCli(cli({"--user", "alice", "--to", "bob"}), "one\n\ntwo");
    EXPECT_EQ(r.code, 0) << r.err;
    auto d1 = nextDelivery(*bob);
    auto d2 = nextDelivery(*bob);
    ASSERT_TRUE(d1 && d2);
    EXPECT_EQ(d1->text, "one");
    EXPECT_EQ(d2->text, "two");  // last line without newline still sent; empty line skipped
}

TEST_F(CliTest, ListenerSeesADirectMessageFromSend) {
    CliProcess listener(cli({"--user", "bob", "--json", "listen", "--count", "1"}));
    ASSERT_TRUE(listener.err().waitLine("listening as bob", 10s)) << listener.err().text();
    CliRun send = runCli(cli({"--user", "alice", "send", "--to", "bob", "hi", "bob"}));
    ASSERT_EQ(send.code, 0) << send.err;
    EXPECT_NE(send.out.find("sent to bob: id "), std::string::npos) << send.out;
    EXPECT_NE(send.out.find("delivered to 1 online"), std::string::npos) << send.out;

    EXPECT_EQ(listener.wait(10s), std::optional<int>(0)) << listener.err().text();
    auto lines = listener.out().lines();
    ASSERT_EQ(lines.size(), 1U) << listener.out().text();
    EXPECT_NE(lines[0].find("\"from\":\"alice\""), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find("\"to\":\"bob\""), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find("\"text\":\"hi bob\""), std::string::npos) << lines[0];
    // The id printed by send is the id the listener got.
    auto id_at = send.out.find("id ") + 3;
    std::string id = send.out.substr(id_at, send.out.find(',', id_at) - id_at);
    EXPECT_NE(lines[0].find("\"id\":" + id + ","), std::string::npos) << lines[0] << " id " << id;
}

TEST_F(CliTest, ListenStopsAfterDurationWithTimeoutExit) {
    CliRun r = runCli(cli({"--user", "bob", "listen", "--count", "1", "--duration", "0.2"}));
    EXPECT_EQ(r.code, 4) << r.err;
    EXPECT_NE(r.err.find("0 of 1 deliveries"), std::string::npos) << r.err;
}

TEST_F(CliTest, ListenExitsCleanlyOnSigint) {
    CliProcess listener(cli({"--user", "bob", "listen"}));
    ASSERT_TRUE(listener.err().waitLine("listening as bob", 10s)) << listener.err().text();
    listener.signal(SIGINT);
    EXPECT_EQ(listener.wait(10s), std::optional<int>(0));
    // It logged out: the name is free again at once.
    auto bob = login("bob");
    EXPECT_EQ(bob->state(), client::ConnectionState::Registered);
}

TEST_F(CliTest, HealthExitCodesLiveAndStopped) {
    CliRun human = runCli(cli({"health"}));
    EXPECT_EQ(human.code, 0) << human.err;
    EXPECT_NE(human.out.find(": ok"), std::string::npos) << human.out;
    EXPECT_NE(human.out.find("connections"), std::string::npos) << human.out;

    CliRun json = runCli(cli({"health", "--json"}));
    EXPECT_EQ(json.code, 0) << json.err;
    EXPECT_EQ(json.out.rfind("{", 0), 0U) << json.out;
    EXPECT_NE(json.out.find("\"status\":\"ok\""), std::string::npos) << json.out;
    EXPECT_EQ(json.out.find('\n'), json.out.size() - 1) << "one line expected";

    CliRun mine = runCli(cli({"--user", "prober", "--json", "health"}));
    EXPECT_EQ(mine.code, 0) << mine.err;
    EXPECT_NE(mine.out.find("\"connection\""), std::string::npos) << mine.out;

    const std::string port = std::to_string(server_->port());
    ASSERT_EQ(server_->stop(), std::optional<int>(0));
    CliRun down = runCli({"--port", port, "--timeout", "2", "health"});
    EXPECT_EQ(down.code, 3);
    EXPECT_NE(down.err.find("cannot connect to 127.0.0.1:" + port + ": Connection refused"),
              std::string::npos)
        << down.err;
    server_.reset();
}

TEST_F(CliTest, SendExitCodesForServerErrorsAndBadArguments) {
    CliRun unknown = runCli(cli({"send", "--to", "nobody", "hello"}));
    EXPECT_EQ(unknown.code, 1);
    EXPECT_NE(unknown.err.find("UNKNOWN_RECIPIENT"), std::string::npos) << unknown.err;

    CliRun bad = runCli(cli({"send", "--to", "not a name", "x"}));
    EXPECT_EQ(bad.code, 2);
    EXPECT_NE(bad.err.find("not a valid name"), std::string::npos) << bad.err;

    CliRun help = runCli({"send", "--help"});
    EXPECT_EQ(help.code, 0);
    EXPECT_NE(help.out.find("Exit status:"), std::string::npos);

    CliRun taken_user = runCli(cli({"--user", "bob", "send", "x"}));
    EXPECT_EQ(taken_user.code, 0) << taken_user.err;
    auto bob = login("bob");
    CliRun taken = runCli(cli({"--user", "bob", "send", "x"}));
    EXPECT_EQ(taken.code, 1);
    EXPECT_NE(taken.err.find("cannot register as bob: USERNAME_TAKEN"), std::string::npos)
        << taken.err;
}

TEST_F(CliTest, SendTooLargeExitsNonZero) {
    TearDown();
    startServer({"--max-payload", "64"});
    CliRun big = runCli(cli({"send", std::string(100, 'z')}));
    EXPECT_EQ(big.code, 1);
    EXPECT_NE(big.err.find("exceeds the server's limit of 64"), std::string::npos) << big.err;
    CliRun small = runCli(cli({"send", "fits"}));
    EXPECT_EQ(small.code, 0) << small.err;
}

TEST_F(CliTest, SendReadsTheMessageFromStdin) {
    auto bob = login("bob");
    CliRun r = runCli(cli({"--json", "send", "--to", "bob", "-"}), "multi\nline\n");
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("\"type\":\"ack\""), std::string::npos) << r.out;
    auto d = nextDelivery(*bob);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->text, "multi\nline");
}

TEST_F(CliTest, PipeNoAckStillReportsRefusals) {
    CliRun r = runCli(cli({"--user", "writer", "pipe", "--to", "nobody", "--no-ack"}), "x\n");
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_NE(r.err.find("UNKNOWN_RECIPIENT"), std::string::npos) << r.err;
}

TEST_F(CliTest, PingReportsStatistics) {
    CliRun r = runCli(cli({"ping", "--count", "5", "--interval", "0"}));
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("5 sent, 5 received, 0% lost"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("rtt min/avg/p99/max = "), std::string::npos) << r.out;

    CliRun json = runCli(cli({"--json", "ping", "-c", "2", "-i", "0"}));
    EXPECT_EQ(json.code, 0) << json.err;
    EXPECT_NE(json.out.find("\"type\":\"ping_summary\",\"sent\":2,\"received\":2"),
              std::string::npos)
        << json.out;
}

TEST_F(CliTest, UsersListsNamesKindsAndStates) {
    auto bob = login("bob");
    auto bot = login("bot", ClientKind::Agent);
    CliRun r = runCli(cli({"--json", "users", "bo"}));
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(
        r.out.find("{\"type\":\"user\",\"name\":\"bob\",\"kind\":\"user\",\"state\":\"online\"}"),
        std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("\"name\":\"bot\",\"kind\":\"agent\""), std::string::npos) << r.out;
}

TEST_F(CliTest, OneShotCommandsLeaveNoGeneratedUserBehind) {
    auto bob = login("bob");
    for (int i = 0; i < 2; ++i) {
        EXPECT_EQ(runCli(cli({"users"})).code, 0);
        EXPECT_EQ(runCli(cli({"health"})).code, 0);
        CliRun sent = runCli(cli({"send", "--to", "bob", "hi"}));
        EXPECT_EQ(sent.code, 0) << sent.err;
    }
    // Each run logged out; the server forgets its cli-XXXXXX user once the connection is gone.
    bool gone = false;
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!gone && std::chrono::steady_clock::now() < deadline) {
        auto users = bob->listUsers("cli-");
        ASSERT_TRUE(users) << users.error().message();
        gone = users->empty();
        if (!gone) {
            bob->nextEvent(50ms);  // paces the polling; bob's deliveries are not looked at
        }
    }
    EXPECT_TRUE(gone);
    // A name given with --user stays known after the run, as before.
    EXPECT_EQ(runCli(cli({"--user", "carol", "users"})).code, 0);
    auto carol = bob->listUsers("carol");
    ASSERT_TRUE(carol);
    ASSERT_EQ(carol->size(), 1U);
}

TEST_F(CliTest, TokenFlagAgainstATokensServer) {
    ScratchDir dir;
    const std::string secret =
        dir.write("secret", "a cli-test secret that is longer than 32 bytes");
    server_->stop();
    startServer({"--auth", "tokens", "--token-secret-file", secret});
    const std::string cmd =
        std::string(TUNDRAD_PATH) + " token --user alice --token-secret-file " + secret;
    FILE* p = ::popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    char buf[2048] = {};
    const std::size_t n = std::fread(buf, 1, sizeof buf - 1, p);
    ASSERT_EQ(::pclose(p), 0);
    std::string token(buf, n);
    ASSERT_FALSE(token.empty());
    token.pop_back();  // the newline
    CliRun ok = runCli(cli({"--user", "alice", "--token", token, "users"}));
    EXPECT_EQ(ok.code, 0) << ok.err;
    EXPECT_NE(ok.out.find("alice"), std::string::npos) << ok.out;
    CliRun refused = runCli(cli({"--user", "bob", "--token", token, "users"}));
    EXPECT_NE(refused.code, 0);
    EXPECT_NE(refused.err.find("AUTH_FAILED"), std::string::npos) << refused.err;
}

TEST_F(CliTest, AgentCommandWaitsForTheReply) {
    auto bot = login("bot", ClientKind::Agent);
    std::thread agent([&] {
        auto cmd = nextDelivery(*bot);
        ASSERT_TRUE(cmd);
        EXPECT_EQ(cmd->command, "deploy");
        EXPECT_EQ(cmd->args, "prod now");
        ASSERT_TRUE(bot->reply(*cmd, "done", "deployed prod"));
    });
    CliRun r = runCli(cli({"agent", "--to", "bot", "--wait", "deploy", "prod", "now"}));
    agent.join();
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("bot -> "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("[agent done, reply to "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("deployed prod"), std::string::npos) << r.out;
}

// listen --save-images: the image sent with `tundra-cli image` lands in DIR with exactly the
// bytes sent, named ID-SENDER.png, and the line says where.
TEST_F(CliTest, ListenSavesAReceivedImage) {
    ScratchDir dir;
    ScratchDir source;
    ASSERT_FALSE(dir.path().empty() || source.path().empty());
    const std::string bytes = binaryImage(20000, 1);
    writeBytes(source.file("chart.png"), bytes);

    CliProcess listener(
        cli({"--user", "bob", "listen", "--count", "1", "--save-images", dir.path()}));
    ASSERT_TRUE(listener.err().waitLine("listening as bob", 10s)) << listener.err().text();
    CliRun send =
        runCli(cli({"--user", "alice", "image", "--to", "bob", source.file("chart.png")}));
    ASSERT_EQ(send.code, 0) << send.err;
    const std::string id = ackedId(send.out);
    ASSERT_FALSE(id.empty()) << send.out;

    EXPECT_EQ(listener.wait(10s), std::optional<int>(0)) << listener.err().text();
    const std::string expected = dir.file(id + "-alice.png");
    auto lines = listener.out().lines();
    ASSERT_EQ(lines.size(), 1U) << listener.out().text();
    EXPECT_NE(lines[0].find("alice -> bob: [image image/png, 20000 bytes] (id " + id +
                            ") saved to " + expected),
              std::string::npos)
        << lines[0];
    EXPECT_EQ(dir.files(), std::vector<std::string>{id + "-alice.png"})
        << "temporary or extra files left";
    EXPECT_TRUE(readBytes(expected) == bytes) << "the saved file differs from the one sent";
}

// An image buffered while bob was offline is replayed on registration and saved too; an
// existing file of the same name is kept and the new one gets a counter.
TEST_F(CliTest, ListenSavesAReplayedImageWithoutReplacingFiles) {
    ScratchDir dir;
    {
        auto bob = login("bob");
        ASSERT_TRUE(bob->logout());
    }
    auto alice = login("alice");
    const std::string bytes = binaryImage(5000, 2);
    auto ack = alice->sendImage("bob", "image/jpeg", bytes);
    ASSERT_TRUE(ack) << ack.error().message();
    EXPECT_EQ(ack->buffered, 1U);
    const std::string id = std::to_string(ack->id);
    writeBytes(dir.file(id + "-alice.jpg"), "already here");

    CliRun r = runCli(cli({"--user", "bob", "--json", "listen", "--count", "1", "--duration", "10",
                           "--save-images", dir.path()}));
    EXPECT_EQ(r.code, 0) << r.err;
    const std::string expected = dir.file(id + "-alice-1.jpg");
    EXPECT_NE(r.out.find("\"id\":" + id + ","), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("\"replayed\":true"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("\"saved\":\"" + expected + "\""), std::string::npos) << r.out;
    EXPECT_EQ(readBytes(dir.file(id + "-alice.jpg")), "already here");
    EXPECT_TRUE(readBytes(expected) == bytes) << "the saved file differs from the one sent";
    EXPECT_EQ(dir.files(), (std::vector<std::string>{id + "-alice-1.jpg", id + "-alice.jpg"}));
}

// A missing directory, or a file where the directory should be, is a usage error (exit 2)
// before anything connects, for listen and for the interactive mode.
TEST_F(CliTest, SaveImagesRejectsABadDirectory) {
    ScratchDir dir;
    const std::string missing = dir.file("missing");
    CliRun listen = runCli(cli({"--user", "bob", "listen", "--save-images", missing}));
    EXPECT_EQ(listen.code, 2) << listen.err;
    EXPECT_NE(listen.err.find("tundra-cli: --save-images: cannot use '" + missing +
                              "': No such file or directory"),
              std::string::npos)
        << listen.err;
    EXPECT_EQ(listen.err.find("listening"), std::string::npos) << listen.err;

    writeBytes(dir.file("plain"), "x");
    CliRun file = runCli(cli({"listen", "--save-images", dir.file("plain")}));
    EXPECT_EQ(file.code, 2) << file.err;
    EXPECT_NE(file.err.find("'" + dir.file("plain") + "' is not a directory"), std::string::npos)
        << file.err;

    CliRun chat = runCli(cli({"--user", "bob", "chat", "--save-images", missing}));
    EXPECT_EQ(chat.code, 2) << chat.err;
    EXPECT_NE(chat.err.find("No such file or directory"), std::string::npos) << chat.err;
    EXPECT_EQ(chat.out.find("Connected"), std::string::npos) << chat.out;

    CliRun piped = runCli(cli({"--user", "bob", "--save-images", dir.path()}), "text\n");
    EXPECT_EQ(piped.code, 2) << piped.err;
    EXPECT_NE(piped.err.find("pipe mode"), std::string::npos) << piped.err;
    // None of them registered: the name is free.
    auto bob = login("bob");
    EXPECT_EQ(bob->state(), client::ConnectionState::Registered);
}

// A write that fails at runtime is reported on stderr; listening goes on and the next image
// is saved; the exit status says something was lost.
TEST_F(CliTest, SaveFailureIsReportedAndListeningGoesOn) {
    ScratchDir dir;
    CliProcess listener(
        cli({"--user", "bob", "listen", "--count", "2", "--save-images", dir.path()}));
    ASSERT_TRUE(listener.err().waitLine("listening as bob", 10s)) << listener.err().text();
    dir.removeAll();  // the directory disappears after the start-up check
    auto alice = login("alice");
    auto first = alice->sendImage("bob", "image/png", binaryImage(100, 3));
    ASSERT_TRUE(first) << first.error().message();
    const std::string first_id = std::to_string(first->id);
    auto error = listener.err().waitLine("cannot save image " + first_id + " from alice", 10s);
    ASSERT_TRUE(error) << listener.err().text();
    EXPECT_NE(error->find("No such file or directory"), std::string::npos) << *error;
    EXPECT_TRUE(listener.out().waitLine("(id " + first_id + ") (not saved)", 10s))
        << listener.out().text();

    ASSERT_EQ(::mkdir(dir.path().c_str(), 0700), 0);
    const std::string bytes = binaryImage(300, 4);
    auto second = alice->sendImage("bob", "image/gif", bytes);
    ASSERT_TRUE(second) << second.error().message();
    const std::string second_id = std::to_string(second->id);
    EXPECT_EQ(listener.wait(10s), std::optional<int>(1)) << listener.err().text();
    EXPECT_TRUE(listener.out().waitLine("saved to " + dir.file(second_id + "-alice.gif"), 1s))
        << listener.out().text();
    EXPECT_TRUE(readBytes(dir.file(second_id + "-alice.gif")) == bytes);
}

TEST_F(CliTest, UnreachableServerGivesExitThreeForEveryCommand) {
    const std::string port = std::to_string(server_->port());
    ASSERT_EQ(server_->stop(), std::optional<int>(0));
    server_.reset();
    for (const std::vector<std::string>& cmd :
         {std::vector<std::string>{"send", "x"}, {"listen"}, {"ping", "-c", "1"}, {"users"}}) {
        std::vector<std::string> args{"--port", port};
        args.insert(args.end(), cmd.begin(), cmd.end());
        CliRun r = runCli(args);
        EXPECT_EQ(r.code, 3) << cmd[0] << ": " << r.err;
        EXPECT_NE(r.err.find("Connection refused"), std::string::npos) << cmd[0] << ": " << r.err;
    }
}

// The interactive mode in a pseudo-terminal: commands work, incoming messages appear above
// the prompt, and a half-typed line survives them.
TEST_F(CliTest, InteractiveChatInATerminal) {
    if (!CliProcess::ptyAvailable()) {
        GTEST_SKIP() << "no pseudo-terminals on this machine (is /dev/pts mounted?)";
    }
    auto bob = login("bob");
    CliProcess alice(cli({"--user", "alice"}), /*use_pty=*/true);
    ASSERT_TRUE(alice.out().waitRaw("Type /help", 10s)) << alice.out().text();

    ASSERT_TRUE(alice.write("/msg bob hi from the terminal\r"));
    auto d = nextDelivery(*bob);
    ASSERT_TRUE(d) << alice.out().text();
    EXPECT_EQ(d->from, "alice");
    EXPECT_EQ(d->to, "bob");
    EXPECT_EQ(d->text, "hi from the terminal");

    // Type half a line, then let a message arrive: it is printed, and the typed text is
    // redrawn after it.
    auto typed = alice.out().waitRaw("alice> ", 10s);
    ASSERT_TRUE(typed);
    ASSERT_TRUE(alice.write("half typed"));
    auto echoed = alice.out().waitRaw("half typed", 10s, *typed);
    ASSERT_TRUE(echoed) << alice.out().text();
    ASSERT_TRUE(bob->sendMessage("alice", "interrupting you"));
    auto shown = alice.out().waitRaw("bob -> alice: interrupting you", 10s, *echoed);
    ASSERT_TRUE(shown) << alice.out().text();
    EXPECT_TRUE(alice.out().waitRaw("alice> half typed", 10s, *shown)) << alice.out().text();
    ASSERT_TRUE(alice.write(" and finished\r"));
    auto b = nextDelivery(*bob);
    ASSERT_TRUE(b);
    EXPECT_EQ(b->text, "half typed and finished");
    EXPECT_EQ(b->to, "");

    auto before_users = alice.out().text().size();
    ASSERT_TRUE(alice.write("/users b\r"));
    EXPECT_TRUE(alice.out().waitRaw("online", 10s, before_users)) << alice.out().text();
    ASSERT_TRUE(alice.write("/msg nobody x\r"));
    EXPECT_TRUE(alice.out().waitRaw("! UNKNOWN_RECIPIENT", 10s)) << alice.out().text();
    ASSERT_TRUE(alice.write("/quit\r"));
    EXPECT_EQ(alice.wait(10s), std::optional<int>(0)) << alice.out().text();
}

// The interactive mode saves images as they arrive and shows where.
TEST_F(CliTest, InteractiveChatSavesImages) {
    if (!CliProcess::ptyAvailable()) {
        GTEST_SKIP() << "no pseudo-terminals on this machine (is /dev/pts mounted?)";
    }
    ScratchDir dir;
    auto bob = login("bob");
    CliProcess alice(cli({"--user", "alice", "--save-images", dir.path()}), /*use_pty=*/true);
    ASSERT_TRUE(alice.out().waitRaw("Received images are saved in " + dir.path(), 10s))
        << alice.out().text();
    const std::string bytes = binaryImage(3000, 5);
    auto ack = bob->sendImage("alice", "image/svg+xml", bytes);
    ASSERT_TRUE(ack) << ack.error().message();
    const std::string path = dir.file(std::to_string(ack->id) + "-bob.svg");
    EXPECT_TRUE(
        alice.out().waitRaw("bytes] (id " + std::to_string(ack->id) + ") saved to " + path, 10s))
        << alice.out().text();
    EXPECT_TRUE(readBytes(path) == bytes);
    ASSERT_TRUE(alice.write("/quit\r"));
    EXPECT_EQ(alice.wait(10s), std::optional<int>(0)) << alice.out().text();
}

TEST_F(CliTest, InteractivePlainFallback) {
    if (!CliProcess::ptyAvailable()) {
        GTEST_SKIP() << "no pseudo-terminals on this machine (is /dev/pts mounted?)";
    }
    auto bob = login("bob");
    CliProcess alice(cli({"--user", "alice", "--plain"}), /*use_pty=*/true);
    ASSERT_TRUE(alice.out().waitRaw("Type /help", 10s)) << alice.out().text();
    ASSERT_TRUE(alice.write("hello from plain mode\n"));
    auto d = nextDelivery(*bob);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->text, "hello from plain mode");
    ASSERT_TRUE(bob->sendMessage("alice", "back at you"));
    EXPECT_TRUE(alice.out().waitRaw("bob -> alice: back at you", 10s)) << alice.out().text();
    ASSERT_TRUE(alice.write("\x04"));  // Ctrl-D: end of input
    EXPECT_EQ(alice.wait(10s), std::optional<int>(0)) << alice.out().text();
}

#ifdef TUNDRA_EXAMPLE_PATH
// The example program from docs/CLIENT.md does what the document says.
TEST_F(CliTest, DocumentedEchoExampleWorks) {
    const std::string port = std::to_string(server_->port());
    CliProcess echo({"127.0.0.1", port, "1"}, false, TUNDRA_EXAMPLE_PATH);
    ASSERT_TRUE(echo.out().waitLine("echo: registered on 127.0.0.1:" + port, 10s))
        << echo.err().text();
    auto alice = login("alice");
    ASSERT_TRUE(alice->sendMessage("echo", "ping me back"));
    auto d = nextDelivery(*alice);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->from, "echo");
    EXPECT_EQ(d->text, "ping me back");
    EXPECT_EQ(echo.wait(10s), std::optional<int>(0)) << echo.err().text();
}
#endif

}  // namespace
}  // namespace tundra::testing
