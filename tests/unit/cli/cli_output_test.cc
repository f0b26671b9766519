// SPDX-License-Identifier: Apache-2.0
// tundra-cli output: JSON lines (valid, escaped, one per event), human lines, health summary,
// reading JSON (depth bound) and the helpers behind them.
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>

#include "cli/common.h"
#include "cli/output.h"

namespace tundra::cli {
namespace {

client::Delivery message(std::string from, std::string to, std::string text, bool replayed) {
    client::Delivery d;
    d.type = MsgType::BroadcastMessage;
    d.id = 42;
    d.time_ms = 1700000000123;
    d.from = std::move(from);
    d.to = std::move(to);
    d.text = std::move(text);
    d.replayed = replayed;
    return d;
}

// Every JSON line must parse back, hold no raw newline, and keep its fields.
Json parsedLine(const std::string& line) {
    EXPECT_EQ(line.find('\n'), std::string::npos) << line;
    auto v = parseJson(line);
    EXPECT_TRUE(v.has_value()) << "not valid JSON: " << line;
    return v.value_or(Json{});
}

TEST(CliOutput, JsonQuoteEscapes) {
    EXPECT_EQ(jsonQuote("plain"), "\"plain\"");
    EXPECT_EQ(jsonQuote("a\"b\\c"), "\"a\\\"b\\\\c\"");
    EXPECT_EQ(jsonQuote("l1\nl2\r\t"), "\"l1\\nl2\\r\\t\"");
    EXPECT_EQ(jsonQuote(std::string("nul\0x", 5)), "\"nul\\u0000x\"");
    EXPECT_EQ(jsonQuote("\x1b[31m"), "\"\\u001b[31m\"");
    EXPECT_EQ(jsonQuote("del\x7f"), "\"del\\u007f\"");       // DEL escaped for terminals
    EXPECT_EQ(jsonQuote("caf\xC3\xA9"), "\"caf\xC3\xA9\"");  // valid UTF-8 kept
    EXPECT_EQ(jsonQuote("bad\xFF"), "\"bad\\ufffd\"");       // invalid byte replaced
    EXPECT_EQ(jsonQuote("\xC0\xAF"), "\"\\ufffd\\ufffd\"");  // overlong form
}

TEST(CliOutput, Base64MatchesRfc4648Vectors) {
    EXPECT_EQ(base64(""), "");
    EXPECT_EQ(base64("f"), "Zg==");
    EXPECT_EQ(base64("fo"), "Zm8=");
    EXPECT_EQ(base64("foo"), "Zm9v");
    EXPECT_EQ(base64("foob"), "Zm9vYg==");
    EXPECT_EQ(base64("fooba"), "Zm9vYmE=");
    EXPECT_EQ(base64("foobar"), "Zm9vYmFy");
    EXPECT_EQ(base64(std::string("\xFF\x00\xFE", 3)), "/wD+");
}

TEST(CliOutput, SanitizeNeutralisesTerminalEscapes) {
    EXPECT_EQ(sanitizeForTerminal("hi\x1b]0;pwned\x07"), "hi\\x1b]0;pwned\\x07");
    EXPECT_EQ(sanitizeForTerminal("two\nlines\ttab"), "two\\nlines\ttab");
    EXPECT_EQ(sanitizeForTerminal("\xC2\x9B"), "\\xc2\\x9b");  // C1 CSI
    EXPECT_EQ(sanitizeForTerminal("\xE2\x82\xAC ok"), "\xE2\x82\xAC ok");
    EXPECT_EQ(sanitizeForTerminal("\xFF"), "\\xff");
}

TEST(CliOutput, JsonMessageLine) {
    Json v = parsedLine(formatJson(message("alice", "bob", "hi \"bob\"\n", true)));
    EXPECT_EQ(v.at("type"), "message");
    EXPECT_EQ(v.at("id"), 42);
    EXPECT_EQ(v.at("time"), 1700000000123.0);
    EXPECT_EQ(v.at("from"), "alice");
    EXPECT_EQ(v.at("to"), "bob");
    EXPECT_EQ(v.at("text"), "hi \"bob\"\n");
    EXPECT_TRUE(v.at("replayed").get<bool>());
}

TEST(CliOutput, JsonAgentCommandAndImage) {
    client::Delivery a;
    a.type = MsgType::BroadcastAgent;
    a.id = 7;
    a.from = "ops";
    a.command = "deploy";
    a.args = "prod";
    a.reply_to = 5;
    Json av = parsedLine(formatJson(a));
    EXPECT_EQ(av.at("type"), "agent_command");
    EXPECT_EQ(av.at("command"), "deploy");
    EXPECT_EQ(av.at("args"), "prod");
    EXPECT_EQ(av.at("reply_to"), 5);

    client::Delivery img;
    img.type = MsgType::Image;
    img.id = 8;
    img.from = "cam";
    img.mime = "image/png";
    img.data = std::string("\x89PNG\0\xFF", 6);
    Json iv = parsedLine(formatJson(img));
    EXPECT_EQ(iv.at("type"), "image");
    EXPECT_EQ(iv.at("mime"), "image/png");
    EXPECT_EQ(iv.at("size"), 6);
    EXPECT_EQ(iv.at("data_base64"), base64(img.data));
}

TEST(CliOutput, JsonSystemErrorAndConnectionLines) {
    client::SystemNotice joined{SystemEvent::Joined, "", "bob", 0, 0};
    Json j = parsedLine(formatJson(joined));
    EXPECT_EQ(j.at("type"), "system");
    EXPECT_EQ(j.at("event"), "joined");
    EXPECT_EQ(j.at("name"), "bob");

    client::SystemNotice dropped{SystemEvent::Dropped, "lost", "", 3, 0};
    EXPECT_EQ(parsedLine(formatJson(dropped)).at("dropped"), 3);

    client::ErrorEvent err{{client::ErrorKind::Server, ErrorCode::UnknownRecipient, "no bob"}, 9};
    Json e = parsedLine(formatJson(err));
    EXPECT_EQ(e.at("type"), "error");
    EXPECT_EQ(e.at("code"), 6);
    EXPECT_EQ(e.at("name"), "UNKNOWN_RECIPIENT");
    EXPECT_EQ(e.at("text"), "no bob");
    EXPECT_EQ(e.at("sequence"), 9);

    client::ConnectionEvent lost;
    lost.kind = client::ConnectionEvent::Kind::Lost;
    lost.reason = {client::ErrorKind::Disconnected, {}, "peer closed"};
    Json l = parsedLine(formatJson(lost));
    EXPECT_EQ(l.at("type"), "connection");
    EXPECT_EQ(l.at("event"), "lost");
    EXPECT_EQ(l.at("reason"), "peer closed");

    client::ConnectionEvent resumed;
    resumed.kind = client::ConnectionEvent::Kind::Resumed;
    resumed.welcome.pending = 4;
    Json r = parsedLine(formatJson(resumed));
    EXPECT_EQ(r.at("event"), "resumed");
    EXPECT_EQ(r.at("pending"), 4);
    EXPECT_EQ(r.at("session").get<std::string>().size(), 36U);
}

TEST(CliOutput, HumanLines) {
    ::setenv("TZ", "UTC", 1);
    ::tzset();
    EXPECT_EQ(formatHuman(message("alice", "", "hello all", false)), "[22:13:20] alice: hello all");
    EXPECT_EQ(formatHuman(message("alice", "bob", "psst", false)), "[22:13:20] alice -> bob: psst");
    EXPECT_EQ(formatHuman(message("alice", "bob", "old", true)),
              "[22:13:20] (replay) alice -> bob: old");
    EXPECT_EQ(formatHuman(message("eve", "", "\x1b[2Jgotcha", false)),
              "[22:13:20] eve: \\x1b[2Jgotcha");
    EXPECT_EQ(formatHuman(client::SystemNotice{SystemEvent::Left, "", "bob", 0, 0}), "* bob left");
    EXPECT_EQ(formatHuman(client::ErrorEvent{
                  {client::ErrorKind::Server, ErrorCode::TooLarge, "too big"}, 3}),
              "! TOO_LARGE (9): too big");
    client::ConnectionEvent closed;
    closed.kind = client::ConnectionEvent::Kind::Closed;
    closed.reason = {client::ErrorKind::Closed, {}, "taken over"};
    EXPECT_EQ(formatHuman(closed), "* disconnected: taken over");
}

TEST(CliOutput, AckAndUserLines) {
    client::Ack a{99, 2, 1};
    EXPECT_EQ(formatAckHuman(a, "bob"),
              "sent to bob: id 99, delivered to 2 online, buffered for 1 offline");
    EXPECT_EQ(formatAckHuman(a, ""),
              "sent to everyone: id 99, delivered to 2 online, buffered for 1 offline");
    Json j = parsedLine(formatAckJson(a));
    EXPECT_EQ(j.at("id"), 99);
    EXPECT_EQ(j.at("delivered"), 2);
    EXPECT_EQ(j.at("buffered"), 1);

    client::UserInfo u{"bot", ClientKind::Agent, UserState::Detached};
    Json uj = parsedLine(formatUserJson(u));
    EXPECT_EQ(uj.at("name"), "bot");
    EXPECT_EQ(uj.at("kind"), "agent");
    EXPECT_EQ(uj.at("state"), "detached");
    std::string human = formatUserHuman(u);
    EXPECT_EQ(human.rfind("bot", 0), 0U);
    EXPECT_NE(human.find("agent"), std::string::npos);
    EXPECT_NE(human.find("detached"), std::string::npos);
}

TEST(CliOutput, HealthSummary) {
    auto h = parseJson(R"({"status":"ok","version":"0.1.0","protocol":1,"uptime_s":3725,
        "connections":4,"sessions":{"online":3,"detached":1},"users_known":9,
        "messages":{"in":10,"out":20,"buffered":2,"dropped":0},"bytes":{"in":2048,"out":1048576},
        "errors":{"1":0,"6":3},"latency_ms":{"samples":5,"p50":0.5,"p99":2,"max":2},
        "limits":{"max_clients":1000,"max_payload":65534},"rss_bytes":5242880,
        "connection":{"session":"0123","name":"alice","connected_s":1,"rtt_ms":null,
        "frames":{"in":2,"out":3}}})");
    ASSERT_TRUE(h.has_value());
    std::string s = formatHealthSummary(*h, "127.0.0.1:4242");
    EXPECT_NE(s.find("tundrad 0.1.0 at 127.0.0.1:4242: ok"), std::string::npos) << s;
    EXPECT_NE(s.find("1h 02m 05s"), std::string::npos) << s;
    EXPECT_NE(s.find("sessions 3 online, 1 detached; 9 users known"), std::string::npos) << s;
    EXPECT_NE(s.find("in 2.0 KiB, out 1.0 MiB"), std::string::npos) << s;
    EXPECT_NE(s.find("p50 0.50 ms, p99 2 ms"), std::string::npos) << s;
    EXPECT_NE(s.find("UNKNOWN_RECIPIENT 3"), std::string::npos) << s;
    EXPECT_EQ(s.find("USERNAME_TAKEN"), std::string::npos) << s;  // zero counts left out
    EXPECT_NE(s.find("rss 5.0 MiB"), std::string::npos) << s;
    EXPECT_NE(s.find("alice"), std::string::npos) << s;

    auto empty = parseJson(R"({"status":"draining","latency_ms":{"samples":0}})");
    std::string e = formatHealthSummary(*empty, "h:1");
    EXPECT_NE(e.find(": draining"), std::string::npos) << e;
    EXPECT_NE(e.find("no samples yet"), std::string::npos) << e;
    EXPECT_NE(e.find("errors       none"), std::string::npos) << e;
}

TEST(CliOutput, ParseJsonIsStrictAndDepthLimited) {
    auto v = parseJson(R"( {"sessions":{"online":3},"p50":null,"z":1,"a":2} )");
    ASSERT_TRUE(v.has_value());
    ASSERT_NE(findPath(*v, "sessions.online"), nullptr);
    EXPECT_EQ(*findPath(*v, "sessions.online"), 3);
    EXPECT_TRUE(findPath(*v, "p50")->is_null());
    EXPECT_EQ(findPath(*v, "sessions.missing"), nullptr);
    EXPECT_EQ(findPath(*v, "z.deeper"), nullptr);
    EXPECT_EQ(v->begin().key(), "sessions");  // document order kept
    EXPECT_EQ((++v->begin()).key(), "p50");
    for (const char* bad :
         {"", "{", "01", "1.", "+1", "{\"a\":1,}", "[1 2]", "\"\\ud83d\"", "\"a\nb\"", "{} x"}) {
        EXPECT_FALSE(parseJson(bad).has_value()) << bad;
    }
    std::string ok(60, '[');
    ok += std::string(60, ']');
    EXPECT_TRUE(parseJson(ok).has_value());
    std::string deep(100000, '[');
    deep += std::string(100000, ']');
    EXPECT_FALSE(parseJson(deep).has_value());  // refused, no stack overflow
}

TEST(CliOutput, ImageMimeFromExtension) {
    EXPECT_EQ(guessImageMime("cat.png"), "image/png");
    EXPECT_EQ(guessImageMime("/tmp/x.JPG"), "image/jpeg");
    EXPECT_EQ(guessImageMime("a.jpeg"), "image/jpeg");
    EXPECT_EQ(guessImageMime("v.svg"), "image/svg+xml");
    EXPECT_EQ(guessImageMime("notes.txt"), "");
    EXPECT_EQ(guessImageMime("dir.png/file"), "");
    EXPECT_EQ(guessImageMime("noext"), "");
}

TEST(CliOutput, ExitCodesByErrorKind) {
    using client::ErrorKind;
    EXPECT_EQ(exitCodeFor({ErrorKind::Server, ErrorCode::UnknownRecipient, ""}), kExitFailed);
    EXPECT_EQ(exitCodeFor({ErrorKind::InvalidArgument, ErrorCode::TooLarge, ""}), kExitFailed);
    EXPECT_EQ(exitCodeFor({ErrorKind::Connect, {}, ""}), kExitUnreachable);
    EXPECT_EQ(exitCodeFor({ErrorKind::Disconnected, {}, ""}), kExitUnreachable);
    EXPECT_EQ(exitCodeFor({ErrorKind::Timeout, {}, ""}), kExitTimeout);
}

}  // namespace
}  // namespace tundra::cli
