// SPDX-License-Identifier: Apache-2.0
// The small JSON reader used for health summaries.
#include "cli/json_reader.h"

#include <gtest/gtest.h>

namespace tundra::cli {
namespace {

TEST(JsonReader, ParsesNestedObjectsAndLooksUpPaths) {
    auto v = parseJson(R"( {"status":"ok","sessions":{"online":3,"detached":0},
                            "latency_ms":{"p50":null,"p99":1.5},"list":[1,true,false,"x"]} )");
    ASSERT_TRUE(v.has_value());
    ASSERT_NE(v->find("status"), nullptr);
    EXPECT_EQ(v->find("status")->string, "ok");
    EXPECT_EQ(v->find("sessions.online")->number, 3);
    EXPECT_EQ(v->find("latency_ms.p50")->type, JsonValue::Type::Null);
    EXPECT_DOUBLE_EQ(v->find("latency_ms.p99")->number, 1.5);
    const JsonValue* list = v->find("list");
    ASSERT_NE(list, nullptr);
    ASSERT_EQ(list->array.size(), 4U);
    EXPECT_TRUE(list->array[1].boolean);
    EXPECT_FALSE(list->array[2].boolean);
    EXPECT_EQ(v->find("sessions.missing"), nullptr);
    EXPECT_EQ(v->find("status.deeper"), nullptr);
}

TEST(JsonReader, Numbers) {
    EXPECT_DOUBLE_EQ(parseJson("-0.5e2")->number, -50);
    EXPECT_DOUBLE_EQ(parseJson("0")->number, 0);
    EXPECT_DOUBLE_EQ(parseJson("123456789012")->number, 123456789012.0);
    EXPECT_FALSE(parseJson("01").has_value());
    EXPECT_FALSE(parseJson("1.").has_value());
    EXPECT_FALSE(parseJson("-").has_value());
    EXPECT_FALSE(parseJson("1e").has_value());
    EXPECT_FALSE(parseJson("+1").has_value());
}

TEST(JsonReader, StringEscapesAndUnicode) {
    EXPECT_EQ(parseJson(R"("a\"b\\c\/d\n\t")")->string, "a\"b\\c/d\n\t");
    EXPECT_EQ(parseJson(R"("\u00e9")")->string, "\xC3\xA9");
    EXPECT_EQ(parseJson(R"("\ud83d\ude00")")->string, "\xF0\x9F\x98\x80");
    EXPECT_FALSE(parseJson(R"("\ud83d")").has_value());  // lone high surrogate
    EXPECT_FALSE(parseJson(R"("\ude00")").has_value());  // lone low surrogate
    EXPECT_FALSE(parseJson(R"("\x")").has_value());
    EXPECT_FALSE(parseJson("\"a\nb\"").has_value());  // raw control character
    EXPECT_FALSE(parseJson(R"("open)").has_value());
}

TEST(JsonReader, RejectsMalformedDocuments) {
    for (const char* bad : {"", "{", "}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1,]", "[1 2]",
                            "{a:1}", "tru", "nul", "{} {}", "[", "\"\\u12\""}) {
        EXPECT_FALSE(parseJson(bad).has_value()) << bad;
    }
}

TEST(JsonReader, EmptyContainers) {
    EXPECT_TRUE(parseJson("{}")->isObject());
    EXPECT_EQ(parseJson("[ ]")->type, JsonValue::Type::Array);
}

TEST(JsonReader, DepthIsLimited) {
    std::string ok(60, '[');
    ok += std::string(60, ']');
    EXPECT_TRUE(parseJson(ok).has_value());
    std::string deep(100000, '[');
    deep += std::string(100000, ']');
    EXPECT_FALSE(parseJson(deep).has_value());  // refused, no stack overflow
}

}  // namespace
}  // namespace tundra::cli
