// SPDX-License-Identifier: Apache-2.0
// Core unit tests: HEALTH_RESULT JSON (every field, valid JSON), LIST_USERS, the JSON writer and
// the latency statistics.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "core/json_writer.h"
#include "core/metrics.h"
#include "unit/core/core_fixture.h"

namespace tundra::testing {

namespace {

using Json = nlohmann::json;

// The document, or a discarded value (which fails every lookup) if `text` is not valid JSON.
Json parseStrict(std::string_view text) { return Json::parse(text, nullptr, false); }

class CoreHealthTest : public CoreTest {
protected:
    CoreHealthTest() { config.presence_events = false; }

    Json health(ConnId conn) {
        feed(conn, msg::encodeEmpty(MsgType::HealthCheck, 21));
        auto f = one(conn);
        EXPECT_EQ(f.header.sequence, 21);
        auto text = asJson(f);
        Json j = parseStrict(text);
        EXPECT_FALSE(j.is_discarded()) << "not valid JSON: " << text;
        EXPECT_TRUE(j.is_object()) << text;
        return j.is_object() ? j : Json::object();
    }
};

TEST_F(CoreHealthTest, ReportsEveryFieldWithCurrentValues) {
    config.max_clients = 77;
    config.software_version = "9.8.7";
    login(1, "alice");
    login(2, "bob");
    login(3, "carol");
    disconnect(3);
    sayAck(1, "carol", "waiting");
    say(1, "nobody", "x");  // an UNKNOWN_RECIPIENT
    connect(4);
    clock.advance(12'345);
    Json j = health(4);
    EXPECT_EQ(j.at("status"), "ok");
    EXPECT_EQ(j.at("version"), "9.8.7");
    EXPECT_EQ(j.at("protocol").dump(), "1");
    EXPECT_EQ(j.at("uptime_s").dump(), "12");
    EXPECT_EQ(j.at("connections").dump(), "3");
    EXPECT_EQ(j.at("sessions").at("online").dump(), "2");
    EXPECT_EQ(j.at("sessions").at("detached").dump(), "1");
    EXPECT_EQ(j.at("users_known").dump(), "3");
    EXPECT_EQ(j.at("messages").at("in").dump(), "1");
    EXPECT_EQ(j.at("messages").at("out").dump(), "0");
    EXPECT_EQ(j.at("messages").at("buffered").dump(), "1");
    EXPECT_EQ(j.at("messages").at("dropped").dump(), "0");
    EXPECT_EQ(j.at("bytes").at("in").dump(), "1111");
    EXPECT_EQ(j.at("bytes").at("out").dump(), "2222");
    EXPECT_EQ(j.at("rss_bytes").dump(), "3333");
    EXPECT_EQ(j.at("errors").at("6").dump(), "1");
    EXPECT_EQ(j.at("errors").at("2").dump(), "0");
    EXPECT_EQ(j.at("errors").size(), std::size_t{kMaxErrorCode});
    EXPECT_EQ(j.at("latency_ms").at("samples").dump(), "0");
    EXPECT_TRUE(j.at("latency_ms").at("p50").is_null());
    EXPECT_TRUE(j.at("latency_ms").at("p99").is_null());
    EXPECT_TRUE(j.at("latency_ms").at("max").is_null());
    EXPECT_TRUE(j.at("latency_ms").contains("p50"));
    EXPECT_EQ(j.at("limits").at("max_clients").dump(), "77");
    EXPECT_EQ(j.at("limits").at("max_payload").dump(), "65534");
    EXPECT_FALSE(j.contains("connection")) << "unregistered asker";
}

TEST_F(CoreHealthTest, RegisteredAskerSeesItsOwnConnection) {
    config.ping_interval_ms = 1000;
    auto w = login(1, "alice");
    clock.advance(1000);
    sm().tick();
    auto ping = one(1);
    clock.advance(7);
    FrameWriter pong(MsgType::Pong, 0);
    pong.tail(ping.payload());
    feed(1, pong.finish());
    clock.advance(2500);
    Json j = health(1);
    ASSERT_TRUE(j.contains("connection"));
    const Json& c = j.at("connection");
    EXPECT_EQ(c.at("session"), uuidToString(w.session));
    EXPECT_EQ(c.at("session").get<std::string>().size(), 36U);
    EXPECT_EQ(c.at("connected_s").dump(), "3");
    EXPECT_EQ(c.at("rtt_ms"), 7.0);
    EXPECT_EQ(c.at("frames").at("in").dump(), "3");   // REGISTER, PONG, HEALTH_CHECK
    EXPECT_EQ(c.at("frames").at("out").dump(), "2");  // WELCOME, PING (the answer is not sent yet)
    EXPECT_EQ(j.at("latency_ms").at("samples").dump(), "1");
    EXPECT_EQ(j.at("latency_ms").at("p50"), 7.0);
    EXPECT_EQ(j.at("latency_ms").at("max"), 7.0);
}

TEST_F(CoreHealthTest, RttIsNullWithoutSamples) {
    login(1, "alice");
    Json j = health(1);
    EXPECT_TRUE(j.at("connection").contains("rtt_ms"));
    EXPECT_TRUE(j.at("connection").at("rtt_ms").is_null());
}

TEST_F(CoreHealthTest, VersionIsEscaped) {
    config.software_version = "1.0 \"beta\"\\\n";
    connect(1);
    Json j = health(1);
    EXPECT_EQ(j.at("version"), "1.0 \"beta\"\\\n");
}

TEST_F(CoreHealthTest, ListUsersFiltersByPrefixWithKindsAndStates) {
    login(1, "team.alice");
    login(2, "team.bot", ClientKind::Agent);
    login(3, "team.det");
    login(4, "team.off");
    login(5, "zed");
    disconnect(3);
    feed(4, msg::encodeEmpty(MsgType::Logout, 1));
    disconnect(4);
    feed(5, msg::encode(msg::ListUsers{"team."}, 77));
    auto f = one(5);
    EXPECT_EQ(f.header.sequence, 77);
    auto list = asUserList(f);
    std::map<std::string, std::pair<ClientKind, UserState>> got;
    for (const auto& u : list.users) {
        got[std::string(u.name)] = {u.kind, u.state};
    }
    std::map<std::string, std::pair<ClientKind, UserState>> want{
        {"team.alice", {ClientKind::User, UserState::Online}},
        {"team.bot", {ClientKind::Agent, UserState::Online}},
        {"team.det", {ClientKind::User, UserState::Detached}},
        {"team.off", {ClientKind::User, UserState::Offline}},
    };
    EXPECT_EQ(got, want);
    // Prefix matching is by bytes and case-sensitive; the empty prefix lists everyone.
    feed(5, msg::encode(msg::ListUsers{"TEAM."}, 78));
    EXPECT_TRUE(asUserList(one(5)).users.empty());
    feed(5, msg::encode(msg::ListUsers{""}, 79));
    EXPECT_EQ(asUserList(one(5)).users.size(), 5U);
}

TEST_F(CoreHealthTest, ListUsersWithInvalidUtf8PrefixIsInvalidFormat) {
    login(1, "alice");
    EXPECT_EQ(errorFor(1, msg::encode(msg::ListUsers{"\xed\xa0\x80"}, 2)),
              code(ErrorCode::InvalidFormat));
    EXPECT_EQ(errorFor(1, rawFrame(0x06, 0, 3, Bytes{0, 1, 0})), code(ErrorCode::InvalidFormat));
}

TEST_F(CoreHealthTest, ListUsersIsTruncatedToOneFrame) {
    config.max_clients = 5000;
    // 32-byte names: 36 bytes per entry, so 1820 fit in 65534 - 2.
    const std::size_t total = 2500;
    for (std::size_t i = 0; i < total; ++i) {
        std::string name = std::string(26, 'u') + fmt::format("{:06}", i);
        login(static_cast<ConnId>(100 + i), name);
    }
    feed(100, msg::encode(msg::ListUsers{"u"}, 1));
    auto f = one(100);
    EXPECT_LE(f.frame->size(), kHeaderSize + kMaxPayload);
    auto list = asUserList(f);
    EXPECT_EQ(list.users.size(), (kMaxPayload - 2) / 36);
    std::set<std::string_view> unique;
    for (const auto& u : list.users) {
        unique.insert(u.name);
    }
    EXPECT_EQ(unique.size(), list.users.size());
}

TEST_F(CoreHealthTest, GaugesMatchTheState) {
    login(1, "alice");
    login(2, "bob", ClientKind::Agent);
    disconnect(2);
    sayAck(1, "bob", "x");
    auto g = sm().gauges();
    EXPECT_EQ(g.connections, 1U);
    EXPECT_EQ(g.sessions_online, 1U);
    EXPECT_EQ(g.sessions_detached, 1U);
    EXPECT_EQ(g.users_known, 2U);
    EXPECT_EQ(g.buffered_messages, 1U);
    EXPECT_GT(g.buffered_bytes, 0U);
    EXPECT_EQ(g.latency_samples, 0U);
    EXPECT_FALSE(g.latency_p50_ms.has_value());
}

// ---- JsonWriter ---------------------------------------------------------------------------

TEST(JsonWriterTest, NestsAndSeparates) {
    core::JsonWriter w;
    w.beginObject();
    w.key("a").value(1);
    w.key("b").beginObject().key("c").value("x").key("d").null().endObject();
    w.key("e").beginObject().endObject();
    w.key("f").value(std::uint64_t{18446744073709551615ULL});
    w.key("g").value(std::int64_t{-5});
    w.key("h").value(1.5);
    w.endObject();
    EXPECT_EQ(w.str(),
              "{\"a\":1,\"b\":{\"c\":\"x\",\"d\":null},\"e\":{},\"f\":18446744073709551615,"
              "\"g\":-5,\"h\":1.500}");
}

TEST(JsonWriterTest, EscapesStringsAndRepairsBadUtf8) {
    core::JsonWriter w;
    w.beginObject();
    w.key("q\"k").value(std::string_view("a\"b\\c\n\r\t\b\f\x01\x1f/\x7f\0", 15));  // + NUL
    w.key("u").value("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    w.key("bad").value("x\xff\xc3(y\xed\xa0\x80");
    w.endObject();
    EXPECT_EQ(w.str(),
              "{\"q\\\"k\":\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f/\\u007f\\u0000\","
              "\"u\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\","
              "\"bad\":\"x\\ufffd\\ufffd(y\\ufffd\\ufffd\\ufffd\"}");
    EXPECT_FALSE(parseStrict(w.str()).is_discarded());
    EXPECT_TRUE(isValidUtf8(w.str()));
}

TEST(JsonWriterTest, NonFiniteNumbersAreNull) {
    core::JsonWriter w;
    w.beginObject();
    w.key("nan").value(std::numeric_limits<double>::quiet_NaN());
    w.key("inf").value(std::numeric_limits<double>::infinity());
    w.key("none").value(std::optional<double>{});
    w.key("some").value(std::optional<double>{2.25});
    w.endObject();
    EXPECT_EQ(w.str(), "{\"nan\":null,\"inf\":null,\"none\":null,\"some\":2.250}");
}

// ---- LatencyStats -------------------------------------------------------------------------

TEST(LatencyStatsTest, EmptyHasNoFigures) {
    core::LatencyStats s;
    EXPECT_EQ(s.samples(), 0U);
    EXPECT_FALSE(s.percentile(50).has_value());
    EXPECT_FALSE(s.max().has_value());
}

TEST(LatencyStatsTest, NearestRankPercentiles) {
    core::LatencyStats s;
    for (int i = 100; i >= 1; --i) {
        s.add(i);
    }
    EXPECT_EQ(s.samples(), 100U);
    EXPECT_EQ(s.percentile(50), 50.0);
    EXPECT_EQ(s.percentile(99), 99.0);
    EXPECT_EQ(s.percentile(100), 100.0);
    EXPECT_EQ(s.percentile(0), 1.0);
    EXPECT_EQ(s.max(), 100.0);
    s.add(-1);  // ignored
    s.add(std::numeric_limits<double>::quiet_NaN());
    EXPECT_EQ(s.samples(), 100U);
}

TEST(LatencyStatsTest, PercentilesUseTheRecentWindowMaxIsAllTime) {
    core::LatencyStats s;
    s.add(5000);
    for (int i = 0; i < 2000; ++i) {
        s.add(1);
    }
    EXPECT_EQ(s.samples(), 2001U);
    EXPECT_EQ(s.percentile(99), 1.0);
    EXPECT_EQ(s.max(), 5000.0);
}

}  // namespace
}  // namespace tundra::testing
