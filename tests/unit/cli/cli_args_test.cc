// SPDX-License-Identifier: Apache-2.0
// tundra-cli argument parsing: globals, subcommands, values, errors and help requests.
#include <gtest/gtest.h>

#include "cli/args.h"

namespace tundra::cli {
namespace {

using std::chrono::milliseconds;

CliConfig parseOk(std::vector<std::string> args) {
    auto out = parseArgs(args);
    if (const auto* err = std::get_if<UsageError>(&out)) {
        ADD_FAILURE() << "unexpected usage error: " << err->message;
        return {};
    }
    EXPECT_TRUE(std::holds_alternative<CliConfig>(out));
    return std::holds_alternative<CliConfig>(out) ? std::get<CliConfig>(out) : CliConfig{};
}

std::string parseError(std::vector<std::string> args) {
    auto out = parseArgs(args);
    const auto* err = std::get_if<UsageError>(&out);
    EXPECT_NE(err, nullptr) << "expected a usage error";
    return err != nullptr ? err->message : std::string();
}

TEST(CliArgs, DefaultsWithoutArguments) {
    CliConfig c = parseOk({});
    EXPECT_EQ(c.command, Command::Auto);
    EXPECT_EQ(c.global.host, "127.0.0.1");
    EXPECT_EQ(c.global.port, 4242);
    EXPECT_EQ(c.global.user, "");
    EXPECT_EQ(c.global.timeout, milliseconds(5000));
    EXPECT_FALSE(c.global.json);
}

TEST(CliArgs, GlobalOptionsBeforeTheCommand) {
    CliConfig c = parseOk({"--host", "example.org", "--port", "5000", "--user", "alice",
                           "--timeout", "2.5", "--json", "--agent", "health"});
    EXPECT_EQ(c.command, Command::Health);
    EXPECT_EQ(c.global.host, "example.org");
    EXPECT_EQ(c.global.port, 5000);
    EXPECT_EQ(c.global.user, "alice");
    EXPECT_EQ(c.global.timeout, milliseconds(2500));
    EXPECT_TRUE(c.global.json);
    EXPECT_TRUE(c.global.agent);
}

TEST(CliArgs, TlsOptions) {
    CliConfig c = parseOk({"--tls", "health"});
    EXPECT_TRUE(c.global.tls);
    EXPECT_FALSE(c.global.insecure);
    c = parseOk({"users", "--ca", "/etc/tundra/ca.crt", "--cert=me.crt", "--key", "me.key"});
    EXPECT_TRUE(c.global.tls);  // a CA or a certificate means TLS
    EXPECT_EQ(c.global.ca_file, "/etc/tundra/ca.crt");
    EXPECT_EQ(c.global.cert_file, "me.crt");
    EXPECT_EQ(c.global.key_file, "me.key");
    c = parseOk({"--insecure", "ping"});
    EXPECT_TRUE(c.global.insecure);
    EXPECT_FALSE(parseOk({"health"}).global.tls);
    EXPECT_NE(parseError({"--ca"}).find("needs a value"), std::string::npos);
    EXPECT_NE(parseError({"--ca", ""}).find("empty file name"), std::string::npos);
    EXPECT_NE(parseError({"--tls=yes"}).find("takes no value"), std::string::npos);
}

TEST(CliArgs, GlobalOptionsAfterTheCommandAndEqualsForm) {
    CliConfig c = parseOk({"users", "--port=6000", "--user=bob", "ali"});
    EXPECT_EQ(c.command, Command::Users);
    EXPECT_EQ(c.global.port, 6000);
    EXPECT_EQ(c.global.user, "bob");
    EXPECT_EQ(c.args, (std::vector<std::string>{"ali"}));
}

TEST(CliArgs, SendCollectsTextAndRecipient) {
    CliConfig c = parseOk({"send", "--to", "bob", "hello", "there"});
    EXPECT_EQ(c.command, Command::Send);
    EXPECT_EQ(c.to, "bob");
    EXPECT_EQ(c.args, (std::vector<std::string>{"hello", "there"}));
    EXPECT_FALSE(c.no_ack);
}

TEST(CliArgs, StarMeansEveryone) { EXPECT_EQ(parseOk({"send", "--to", "*", "x"}).to, ""); }

TEST(CliArgs, DoubleDashEndsOptions) {
    CliConfig c = parseOk({"send", "--", "--not-an-option", "-x"});
    EXPECT_EQ(c.args, (std::vector<std::string>{"--not-an-option", "-x"}));
}

TEST(CliArgs, ListenAndPingCounts) {
    CliConfig l = parseOk({"listen", "--count", "3", "--duration", "1.5", "--events"});
    EXPECT_EQ(l.count, 3);
    ASSERT_TRUE(l.duration.has_value());
    EXPECT_EQ(*l.duration, milliseconds(1500));
    EXPECT_TRUE(l.events);
    EXPECT_EQ(parseOk({"listen"}).count, 0);  // forever
    CliConfig p = parseOk({"ping", "-c", "4", "--interval", "0"});
    EXPECT_EQ(p.count, 4);
    EXPECT_EQ(p.interval, milliseconds(0));
    EXPECT_EQ(parseOk({"ping"}).count, 10);
}

TEST(CliArgs, AgentAndImageOptions) {
    CliConfig a = parseOk({"agent", "--to", "bot", "--reply-to", "99", "--wait", "deploy", "prod"});
    EXPECT_EQ(a.command, Command::Agent);
    EXPECT_EQ(a.to, "bot");
    EXPECT_EQ(a.reply_to, 99U);
    EXPECT_TRUE(a.wait_reply);
    EXPECT_EQ(a.args, (std::vector<std::string>{"deploy", "prod"}));
    CliConfig i = parseOk({"image", "--mime", "image/png", "cat.bin"});
    EXPECT_EQ(i.mime, "image/png");
    EXPECT_EQ(i.args, (std::vector<std::string>{"cat.bin"}));
}

TEST(CliArgs, SaveImagesForListenAndInteractiveMode) {
    EXPECT_EQ(parseOk({"listen", "--save-images", "pics"}).save_images, "pics");
    EXPECT_EQ(parseOk({"listen", "--save-images=/tmp/a b"}).save_images, "/tmp/a b");
    EXPECT_EQ(parseOk({"chat", "--save-images", "pics"}).save_images, "pics");
    CliConfig before = parseOk({"--save-images", "pics", "listen"});  // before the command too
    EXPECT_EQ(before.command, Command::Listen);
    EXPECT_EQ(before.save_images, "pics");
    CliConfig automatic = parseOk({"--user", "bob", "--save-images", "pics"});
    EXPECT_EQ(automatic.command, Command::Auto);  // interactive on a terminal
    EXPECT_EQ(automatic.save_images, "pics");
    EXPECT_EQ(parseOk({"listen"}).save_images, "");

    EXPECT_NE(parseError({"listen", "--save-images"}).find("needs a value"), std::string::npos);
    EXPECT_NE(parseError({"listen", "--save-images="}).find("empty directory name"),
              std::string::npos);
    EXPECT_NE(parseError({"send", "--save-images", "d", "x"})
                  .find("unknown option '--save-images' for 'send'"),
              std::string::npos);
    EXPECT_NE(parseError({"pipe", "--save-images", "d"}).find("unknown option"), std::string::npos);
    EXPECT_NE(parseError({"--save-images", "d", "pipe"}).find("not in pipe mode"),
              std::string::npos);
    EXPECT_NE(parseError({"--pipe", "--save-images", "d"}).find("not in pipe mode"),
              std::string::npos);
    EXPECT_NE(helpText(Command::Listen).find("--save-images DIR"), std::string::npos);
    EXPECT_NE(helpText(Command::Chat).find("--save-images DIR"), std::string::npos);
    EXPECT_NE(helpText(Command::Auto).find("--save-images DIR"), std::string::npos);
    EXPECT_EQ(helpText(Command::Send).find("--save-images DIR"), std::string::npos);
}

TEST(CliArgs, PipeFlagSelectsPipeMode) {
    EXPECT_EQ(parseOk({"--pipe"}).command, Command::Pipe);
    EXPECT_EQ(parseOk({"--pipe", "pipe"}).command, Command::Pipe);
    EXPECT_NE(parseError({"--pipe", "send", "x"}).find("--pipe"), std::string::npos);
    // Pipe-mode options work without naming the command.
    EXPECT_EQ(parseOk({"--to", "ops", "--no-ack"}).to, "ops");
}

TEST(CliArgs, HelpForTheGeneralCaseAndForACommand) {
    auto general = parseArgs({"--help"});
    ASSERT_TRUE(std::holds_alternative<HelpRequest>(general));
    EXPECT_EQ(std::get<HelpRequest>(general).command, Command::Auto);
    auto send = parseArgs({"send", "-h"});
    ASSERT_TRUE(std::holds_alternative<HelpRequest>(send));
    EXPECT_EQ(std::get<HelpRequest>(send).command, Command::Send);
    // Help wins over missing arguments.
    auto image = parseArgs({"image", "--help"});
    ASSERT_TRUE(std::holds_alternative<HelpRequest>(image));
    EXPECT_TRUE(std::holds_alternative<VersionRequest>(parseArgs({"--version"})));
}

TEST(CliArgs, EveryCommandHasHelpWithExitCodes) {
    for (Command c :
         {Command::Auto, Command::Chat, Command::Pipe, Command::Send, Command::Agent,
          Command::Image, Command::Listen, Command::Health, Command::Ping, Command::Users}) {
        std::string text = helpText(c);
        EXPECT_NE(text.find("Usage: tundra-cli"), std::string::npos) << commandName(c);
        EXPECT_NE(text.find("Exit status:"), std::string::npos) << commandName(c);
        EXPECT_NE(text.find("--host"), std::string::npos) << commandName(c);
    }
}

TEST(CliArgs, UsageErrors) {
    EXPECT_NE(parseError({"frobnicate"}).find("unknown command 'frobnicate'"), std::string::npos);
    EXPECT_NE(parseError({"--port", "0"}).find("not a port number"), std::string::npos);
    EXPECT_NE(parseError({"--port", "65536"}).find("not a port number"), std::string::npos);
    EXPECT_NE(parseError({"--port", "12ab"}).find("not a port number"), std::string::npos);
    EXPECT_NE(parseError({"--port"}).find("needs a value"), std::string::npos);
    EXPECT_NE(parseError({"--user", "bad name"}).find("not a valid name"), std::string::npos);
    EXPECT_NE(parseError({"--user", std::string(33, 'a')}).find("not a valid name"),
              std::string::npos);
    EXPECT_NE(parseError({"--timeout", "-1"}).find("--timeout"), std::string::npos);
    EXPECT_NE(parseError({"--timeout", "abc"}).find("--timeout"), std::string::npos);
    EXPECT_NE(parseError({"--json=yes"}).find("takes no value"), std::string::npos);
    EXPECT_NE(parseError({"send", "--to", "b@d", "x"}).find("not a valid name"), std::string::npos);
    EXPECT_NE(parseError({"health", "--count", "3"}).find("unknown option '--count' for 'health'"),
              std::string::npos);
    EXPECT_NE(parseError({"health", "extra"}).find("unexpected argument 'extra'"),
              std::string::npos);
    EXPECT_NE(parseError({"ping", "--count", "0"}).find("--count"), std::string::npos);
    EXPECT_NE(parseError({"agent"}).find("missing COMMAND"), std::string::npos);
    EXPECT_NE(parseError({"image"}).find("missing FILE"), std::string::npos);
    EXPECT_NE(parseError({"image", "a.png", "b.png"}).find("unexpected argument 'b.png'"),
              std::string::npos);
    EXPECT_NE(parseError({"image", "--mime", "text/plain", "a"}).find("not an image type"),
              std::string::npos);
    EXPECT_NE(parseError({"users", "a", "b"}).find("unexpected argument 'b'"), std::string::npos);
    EXPECT_NE(parseError({"--bogus"}).find("unknown option '--bogus'"), std::string::npos);
}

TEST(CliArgs, ErrorsPointAtTheRightHelp) {
    EXPECT_NE(parseError({"send", "--bogus"}).find("tundra-cli send --help"), std::string::npos);
    EXPECT_NE(parseError({"--bogus"}).find("tundra-cli --help"), std::string::npos);
}

TEST(CliArgs, GeneratedNamesAreValidAndVary) {
    EXPECT_EQ(generatedName(0xABCDEF), "cli-abcdef");
    EXPECT_EQ(generatedName(0x1), "cli-000001");
    EXPECT_EQ(generatedName(0xFFFFFFFFFF123456ULL), "cli-123456");
    EXPECT_NE(generatedName(1), generatedName(2));
}

}  // namespace
}  // namespace tundra::cli
