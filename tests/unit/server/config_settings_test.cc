// SPDX-License-Identifier: Apache-2.0
// The settings table: every key is reachable as a flag and in tundra.conf with the same verdict,
// the restart check follows the table, and the committed docs are what the table generates.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "server/config_file.h"
#include "server/settings.h"

namespace tundra::server {
namespace {

// One value written both ways: as a flag's text and as a TOML value.
struct Sample {
    std::string flag_text;
    std::string toml_text;
};

std::string number(double v) { return fmt::format("{}", v); }
std::string whole(double v) { return fmt::format("{}", static_cast<std::int64_t>(v)); }
Sample same(const std::string& text) { return {text, text}; }
Sample quoted(const std::string& text) { return {text, "\"" + text + "\""}; }

// Values of the setting's type, in and out of its range, plus a few of the wrong kind. Which
// are valid is not assumed here: the two paths must simply agree.
std::vector<Sample> samples(const Setting& s) {
    switch (s.type) {
        case SettingType::Bool:
            return {same("true"), same("false"), quoted("yes"), same("1")};
        case SettingType::Int:
        case SettingType::Port:
        case SettingType::Bytes:
        case SettingType::WholeSeconds:
            return {same(whole(s.min)),
                    same(whole(s.max)),
                    same(whole(s.min - 1)),
                    same(whole(s.max + 1)),
                    same(whole((s.min + s.max) / 2)),
                    same("1.5"),
                    same("abc")};
        case SettingType::Seconds:
            return {same(number(s.min)),
                    same(number(s.max)),
                    same(number(s.min - 1)),
                    same(number(s.max + 1)),
                    same("1"),
                    same("0.5"),
                    same("nan"),
                    quoted("soon")};
        case SettingType::LogLevel:
            return {quoted("debug"), quoted("warning"), quoted("off"), quoted("loud"), {"3", "3"}};
        case SettingType::Address:
            return {quoted("::1"),         quoted("0.0.0.0"), quoted("nonsense"),
                    quoted("example.com"), quoted(""),        {"127", "127"}};
        case SettingType::HostPort:
            return {quoted("127.0.0.1:9090"), quoted("[::1]:0"),        quoted(""),
                    quoted("9090"),           quoted("localhost:http"), quoted("::1:80")};
        case SettingType::Path:
            return {quoted("/etc/tundra/cert.pem"), quoted("relative/key.pem"), quoted("")};
    }
    ADD_FAILURE() << s.key << ": a new SettingType needs samples in this test";
    return {};
}

TEST(Settings, EveryKeyIsReachableBothWaysWithTheSameVerdict) {
    for (const auto& s : settings()) {
        const SettingValue default_value = s.access.get(Config{});
        bool changed_both_ways = false;
        for (const auto& sample : samples(s)) {
            SCOPED_TRACE(fmt::format("{} / {} = {}", s.flag, s.key, sample.toml_text));
            auto by_flag = parseArgs({s.flag + "=" + sample.flag_text});
            Config by_file;
            std::string file_error;
            const bool file_ok = loadConfigString(fmt::format("{} = {}\n", s.key, sample.toml_text),
                                                  "t.conf", by_file, file_error);
            const bool flag_ok = by_flag.action == ParsedArgs::Action::Run;
            ASSERT_EQ(flag_ok, file_ok) << "flag: " << by_flag.message << "\nfile: " << file_error;
            if (flag_ok) {
                EXPECT_EQ(s.access.get(by_flag.config), s.access.get(by_file));
                changed_both_ways |= s.access.get(by_file) != default_value;
            } else {
                EXPECT_TRUE(file_error.starts_with("t.conf:1: ")) << file_error;
                EXPECT_TRUE(by_flag.message.find(s.flag) != std::string::npos ||
                            by_flag.message.find(s.key) != std::string::npos)
                    << by_flag.message;
            }
            if (s.type != SettingType::Bool) {  // the separate-word form gives the same verdict
                auto spaced = parseArgs({s.flag, sample.flag_text});
                EXPECT_EQ(spaced.action, by_flag.action) << spaced.message;
            }
        }
        EXPECT_TRUE(changed_both_ways) << s.key << ": no sample changed it through both paths";
    }
}

TEST(Settings, KeysAndFlagsAreUniqueAndFollowTheNamingRule) {
    std::set<std::string_view> keys;
    std::set<std::string> flags;
    for (const auto& s : settings()) {
        EXPECT_TRUE(keys.insert(s.key).second) << s.key;
        EXPECT_TRUE(flags.insert(s.flag).second) << s.flag;
        EXPECT_TRUE(s.flag.starts_with("--")) << s.flag;
        EXPECT_EQ(s.flag.find('_'), std::string::npos) << s.flag;
        EXPECT_FALSE(s.summary.empty()) << s.key;
        EXPECT_FALSE(s.details.empty()) << s.key;
        EXPECT_FALSE(s.group.empty()) << s.key;
        EXPECT_EQ(checkSettingValue(s, s.access.get(Config{})), "") << s.key << ": bad default";
        bool negated = true;
        EXPECT_EQ(findSettingByFlag(s.flag, negated), &s);
        EXPECT_FALSE(negated);
        EXPECT_EQ(findSettingByKey(s.key), &s);
    }
    EXPECT_FALSE(checkConsistency(Config{})) << "the defaults must be consistent";
}

TEST(Settings, TheRestartCheckFollowsTheTable) {
    // Change each setting alone to a valid non-default value: listed iff not reloadable, and
    // keepRestartSettings puts the running value back.
    for (const auto& s : settings()) {
        Config changed;
        bool found = false;
        for (const auto& sample : samples(s)) {
            auto p = parseArgs({s.flag + "=" + sample.flag_text});
            if (p.action == ParsedArgs::Action::Run &&
                s.access.get(p.config) != s.access.get(Config{})) {
                changed = p.config;
                found = true;
                break;
            }
        }
        ASSERT_TRUE(found) << s.key;
        const auto restart = restartRequiredChanges(Config{}, changed);
        if (s.reloadable) {
            EXPECT_TRUE(restart.empty()) << s.key;
        } else {
            EXPECT_EQ(restart, std::vector<std::string>{std::string(s.key)});
        }
        keepRestartSettings(Config{}, changed);
        EXPECT_EQ(s.access.get(changed) == s.access.get(Config{}), !s.reloadable) << s.key;
    }
}

// ---- generated docs -----------------------------------------------------------------------

struct DocBlock {
    const char* file;  // relative to the source tree
    const char* format;
    const char* begin;  // marker lines around the generated text
    const char* end;
};

constexpr DocBlock kDocBlocks[] = {
    {"docs/OPERATIONS.md", "markdown",
     "<!-- BEGIN GENERATED: tundrad --print-settings markdown -->", "<!-- END GENERATED -->"},
    {"docs/man/tundra.conf.5", "man-keys",
     ".\\\" BEGIN GENERATED: tundrad --print-settings man-keys", ".\\\" END GENERATED"},
    {"docs/man/tundrad.8", "man-flags", ".\\\" BEGIN GENERATED: tundrad --print-settings man-flags",
     ".\\\" END GENERATED"},
};

class SettingsDocs : public ::testing::TestWithParam<DocBlock> {};

// A new or changed setting must reach the docs. To refresh them after changing the table:
//   TUNDRA_UPDATE_DOCS=1 ctest --test-dir build -R SettingsDocs
TEST_P(SettingsDocs, AreWhatTheTableGenerates) {
    const auto& block = GetParam();
    const std::string path = std::string(TUNDRA_SOURCE_DIR "/") + block.file;
    std::ifstream in(path);
    std::ostringstream buffer;
    buffer << in.rdbuf();
    const std::string text = buffer.str();
    ASSERT_FALSE(text.empty()) << path;

    const std::string begin = std::string(block.begin) + "\n";
    const std::string end = std::string(block.end) + "\n";
    const auto b = text.find(begin);
    ASSERT_NE(b, std::string::npos) << path << " lacks the line: " << block.begin;
    const auto from = b + begin.size();
    const auto to = text.find(end, from);
    ASSERT_NE(to, std::string::npos) << path << " lacks the line: " << block.end;

    const std::string generated = renderSettingsDoc(block.format).value_or("");
    ASSERT_FALSE(generated.empty());
    const std::string committed = text.substr(from, to - from);
    if (committed != generated && std::getenv("TUNDRA_UPDATE_DOCS") != nullptr) {
        std::ofstream(path, std::ios::binary)
            << text.substr(0, from) << generated << text.substr(to);
        GTEST_SKIP() << "rewrote " << path;
    }
    EXPECT_EQ(committed, generated)
        << path << " is out of date with src/server/settings.cc; regenerate it with\n"
        << "  TUNDRA_UPDATE_DOCS=1 ctest --test-dir build -R SettingsDocs\n"
        << "(or paste the output of: tundrad --print-settings " << block.format << ")";
}

INSTANTIATE_TEST_SUITE_P(All, SettingsDocs, ::testing::ValuesIn(kDocBlocks), [](const auto& p) {
    std::string name = p.param.format;
    std::replace(name.begin(), name.end(), '-', '_');
    return name;
});

}  // namespace
}  // namespace tundra::server
