// SPDX-License-Identifier: Apache-2.0
// Parsing of lines typed at the interactive prompt.
#include "cli/chat_line.h"

#include <gtest/gtest.h>

namespace tundra::cli {
namespace {

using Kind = ChatLine::Kind;

TEST(ChatLine, PlainTextIsABroadcastKeptAsTyped) {
    ChatLine c = parseChatLine("  hello   world  ");
    EXPECT_EQ(c.kind, Kind::Broadcast);
    EXPECT_EQ(c.text, "  hello   world  ");
    EXPECT_EQ(parseChatLine("hi\r\n").text, "hi");
}

TEST(ChatLine, EmptyAndBlankLinesDoNothing) {
    EXPECT_EQ(parseChatLine("").kind, Kind::Empty);
    EXPECT_EQ(parseChatLine("   \t ").kind, Kind::Empty);
}

TEST(ChatLine, DoubleSlashSendsTextStartingWithSlash) {
    ChatLine c = parseChatLine("//etc/passwd is a path");
    EXPECT_EQ(c.kind, Kind::Broadcast);
    EXPECT_EQ(c.text, "/etc/passwd is a path");
}

TEST(ChatLine, DirectMessage) {
    ChatLine c = parseChatLine("/msg bob  hi there ");
    EXPECT_EQ(c.kind, Kind::Direct);
    EXPECT_EQ(c.to, "bob");
    EXPECT_EQ(c.text, "hi there");
    EXPECT_EQ(parseChatLine("/msg bob").kind, Kind::Invalid);
    EXPECT_EQ(parseChatLine("/msg").kind, Kind::Invalid);
    EXPECT_EQ(parseChatLine("/msg b@d hi").kind, Kind::Invalid);
}

TEST(ChatLine, AgentCommand) {
    ChatLine c = parseChatLine("/agent deploy-bot deploy prod --fast");
    EXPECT_EQ(c.kind, Kind::Agent);
    EXPECT_EQ(c.to, "deploy-bot");
    EXPECT_EQ(c.command, "deploy");
    EXPECT_EQ(c.args, "prod --fast");
    ChatLine all = parseChatLine("/agent * status");
    EXPECT_EQ(all.kind, Kind::Agent);
    EXPECT_EQ(all.to, "");
    EXPECT_EQ(all.args, "");
    EXPECT_EQ(parseChatLine("/agent bot").kind, Kind::Invalid);
}

TEST(ChatLine, Image) {
    ChatLine c = parseChatLine("/image bob cat.png");
    EXPECT_EQ(c.kind, Kind::Image);
    EXPECT_EQ(c.to, "bob");
    EXPECT_EQ(c.file, "cat.png");
    EXPECT_EQ(c.mime, "");
    ChatLine m = parseChatLine("/image * pic.bin image/webp");
    EXPECT_EQ(m.to, "");
    EXPECT_EQ(m.mime, "image/webp");
    EXPECT_EQ(parseChatLine("/image bob").kind, Kind::Invalid);
    EXPECT_EQ(parseChatLine("/image bob a b c").kind, Kind::Invalid);
}

TEST(ChatLine, SimpleCommands) {
    EXPECT_EQ(parseChatLine("/users").kind, Kind::Users);
    EXPECT_EQ(parseChatLine("/users al").prefix, "al");
    EXPECT_EQ(parseChatLine("/health").kind, Kind::Health);
    EXPECT_EQ(parseChatLine("/ping").kind, Kind::Ping);
    EXPECT_EQ(parseChatLine("/help").kind, Kind::Help);
    EXPECT_EQ(parseChatLine("/quit").kind, Kind::Quit);
    EXPECT_EQ(parseChatLine("/exit").kind, Kind::Quit);
    EXPECT_EQ(parseChatLine("/ping now").kind, Kind::Invalid);
}

TEST(ChatLine, UnknownCommandSaysSo) {
    ChatLine c = parseChatLine("/frob x");
    EXPECT_EQ(c.kind, Kind::Invalid);
    EXPECT_NE(c.error.find("unknown command /frob"), std::string::npos);
}

TEST(ChatLine, HelpListsEveryCommand) {
    std::string help = chatHelp();
    for (const char* cmd : {"/msg", "/agent", "/image", "/users", "/health", "/ping", "/quit"}) {
        EXPECT_NE(help.find(cmd), std::string::npos) << cmd;
    }
}

}  // namespace
}  // namespace tundra::cli
