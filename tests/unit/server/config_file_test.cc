// SPDX-License-Identifier: Apache-2.0
// tundra.conf loading: every key, every error path with its FILE:LINE, the shipped example
// config, restartRequiredChanges and ADDR:PORT parsing.
#include "server/config_file.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <sstream>

namespace tundra::server {
namespace {

// A private temporary directory, removed with its files at the end of the test.
class TempDir {
public:
    TempDir() {
        std::string templ = ::testing::TempDir() + "tundra-conf-XXXXXX";
        path_ = ::mkdtemp(templ.data()) != nullptr ? templ : std::string();
    }
    ~TempDir() {
        for (const auto& f : files_) {
            ::unlink(f.c_str());
        }
        ::rmdir(path_.c_str());
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    std::string write(const std::string& name, const std::string& text) {
        std::string file = path_ + "/" + name;
        std::ofstream(file, std::ios::binary) << text;
        files_.push_back(file);
        return file;
    }
    [[nodiscard]] const std::string& path() const { return path_; }

private:
    std::string path_;
    std::vector<std::string> files_;
};

// Loads `text` from a real file named tundra.conf; returns the error ("" on success).
std::string load(const std::string& text, Config& config, std::string* file_out = nullptr) {
    TempDir dir;
    const std::string file = dir.write("tundra.conf", text);
    if (file_out != nullptr) {
        *file_out = file;
    }
    std::string error;
    if (loadConfigFile(file, config, error)) {
        return "";
    }
    EXPECT_FALSE(error.empty());
    return error;
}

std::string readFile(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

void expectSameConfig(const Config& a, const Config& b) {
    EXPECT_EQ(a.bind, b.bind);
    EXPECT_EQ(a.port, b.port);
    EXPECT_EQ(a.core.max_clients, b.core.max_clients);
    EXPECT_EQ(a.core.max_payload, b.core.max_payload);
    EXPECT_EQ(a.core.session_timeout_ms, b.core.session_timeout_ms);
    EXPECT_EQ(a.core.ping_interval_ms, b.core.ping_interval_ms);
    EXPECT_EQ(a.core.max_buffered, b.core.max_buffered);
    EXPECT_EQ(a.core.user_buffer_bytes, b.core.user_buffer_bytes);
    EXPECT_EQ(a.core.total_buffer_bytes, b.core.total_buffer_bytes);
    EXPECT_EQ(a.core.max_users, b.core.max_users);
    EXPECT_EQ(a.core.presence_events, b.core.presence_events);
    EXPECT_EQ(a.output_cap_bytes, b.output_cap_bytes);
    EXPECT_EQ(a.log_level, b.log_level);
    EXPECT_EQ(a.shutdown_retry_after_s, b.shutdown_retry_after_s);
    EXPECT_EQ(a.drain_timeout_ms, b.drain_timeout_ms);
    EXPECT_EQ(a.admin, b.admin);
    EXPECT_EQ(a.storage, b.storage);
    EXPECT_EQ(a.data_dir, b.data_dir);
    EXPECT_EQ(a.fsync, b.fsync);
    EXPECT_EQ(a.fsync_interval_ms, b.fsync_interval_ms);
}

TEST(ConfigFile, EveryKeyIsApplied) {
    Config c;
    const std::string error = load(R"(# a comment
bind = "::1"
port = 0
max_clients = 5
max_payload = 1024
session_timeout = 2.5
ping_interval = 1
max_buffered = 3
presence = false
log_level = "debug"
admin = "127.0.0.1:0"
output_cap_bytes = 131072
user_buffer_bytes = 200000
total_buffer_bytes = 200000
max_users = 10
shutdown_retry_after = 9
drain_timeout = 0.25
storage = "memory"
data_dir = "/srv/tundra"
fsync = "interval"
fsync_interval_ms = 250
)",
                                   c);
    ASSERT_EQ(error, "");
    EXPECT_EQ(c.bind, "::1");
    EXPECT_EQ(c.port, 0);
    EXPECT_EQ(c.core.max_clients, 5U);
    EXPECT_EQ(c.core.max_payload, 1024U);
    EXPECT_EQ(c.core.session_timeout_ms, 2500);
    EXPECT_EQ(c.core.ping_interval_ms, 1000);
    EXPECT_EQ(c.core.max_buffered, 3U);
    EXPECT_FALSE(c.core.presence_events);
    EXPECT_EQ(c.log_level, spdlog::level::debug);
    EXPECT_EQ(c.admin, "127.0.0.1:0");
    EXPECT_EQ(c.output_cap_bytes, 131072U);
    EXPECT_EQ(c.core.user_buffer_bytes, 200000U);
    EXPECT_EQ(c.core.total_buffer_bytes, 200000U);
    EXPECT_EQ(c.core.max_users, 10U);
    EXPECT_EQ(c.shutdown_retry_after_s, 9);
    EXPECT_EQ(c.drain_timeout_ms, 250);
    EXPECT_EQ(c.storage, "memory");
    EXPECT_EQ(c.data_dir, "/srv/tundra");
    EXPECT_EQ(c.fsync, "interval");
    EXPECT_EQ(c.fsync_interval_ms, 250);
}

TEST(ConfigFile, StorageChoicesAreChecked) {
    Config c;
    EXPECT_NE(load("storage = \"disk\"\n", c).find("'disk' is not one of memory, sqlite"),
              std::string::npos);
    EXPECT_NE(load("fsync = \"sometimes\"\n", c).find("one of always, interval, off"),
              std::string::npos);
    auto flags = parseArgs({"--fsync", "never"});
    EXPECT_EQ(flags.action, ParsedArgs::Action::Error);
    EXPECT_NE(flags.message.find("--fsync: 'never' is not one of always, interval, off"),
              std::string::npos)
        << flags.message;
}

TEST(ConfigFile, AnEmptyFileKeepsEveryValue) {
    Config c;
    c.port = 1234;
    c.config_file = "x.conf";
    ASSERT_EQ(load("# nothing set\n\n", c), "");
    Config expected;
    expected.port = 1234;
    expectSameConfig(c, expected);
    EXPECT_EQ(c.config_file, "x.conf");
}

TEST(ConfigFile, EveryKeyIsListedOnce) {
    // Documentation order (the groups of tundra.conf(5)).
    const std::vector<std::string_view> expected = {"bind",
                                                    "port",
                                                    "tls_port",
                                                    "tls_cert",
                                                    "tls_key",
                                                    "tls_client_ca",
                                                    "tls_client_identity",
                                                    "tls_client_roles",
                                                    "tls_handshake_timeout",
                                                    "max_clients",
                                                    "max_payload",
                                                    "output_cap_bytes",
                                                    "output_total_soft_bytes",
                                                    "output_total_hard_bytes",
                                                    "session_timeout",
                                                    "ping_interval",
                                                    "presence",
                                                    "max_buffered",
                                                    "user_buffer_bytes",
                                                    "total_buffer_bytes",
                                                    "max_users",
                                                    "register_timeout",
                                                    "max_unregistered",
                                                    "max_connections_per_ip",
                                                    "register_rate",
                                                    "register_burst",
                                                    "rate_messages_per_s",
                                                    "rate_messages_burst",
                                                    "rate_bytes_per_s",
                                                    "rate_bytes_burst",
                                                    "max_bad_frames",
                                                    "shutdown_retry_after",
                                                    "drain_timeout",
                                                    "log_level",
                                                    "admin",
                                                    "admin_max_per_source",
                                                    "admin_token_file",
                                                    "admin_tls",
                                                    "huge_pages",
                                                    "storage",
                                                    "data_dir",
                                                    "fsync",
                                                    "fsync_interval_ms",
                                                    "auth",
                                                    "token_secret_file",
                                                    "token_public_key_file",
                                                    "token_audience",
                                                    "token_issuer",
                                                    "token_leeway",
                                                    "token_max_bytes",
                                                    "accounts_file",
                                                    "anonymous",
                                                    "auth_fail_limit",
                                                    "auth_fail_lockout_max"};
    EXPECT_EQ(configFileKeys(), expected);
}

struct BadCase {
    const char* text;
    const char* message;  // expected after "FILE:"
};

class ConfigFileErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(ConfigFileErrors, NameFileLineAndProblem) {
    Config config;
    config.port = 777;
    std::string file;
    const std::string error = load(GetParam().text, config, &file);
    EXPECT_EQ(error, file + ":" + GetParam().message);
    EXPECT_EQ(config.port, 777) << "a failed load must leave the config untouched";
}

INSTANTIATE_TEST_SUITE_P(
    UnknownKeys, ConfigFileErrors,
    ::testing::Values(
        BadCase{"port = 1\nprot = 2\n", "2: unknown key 'prot' (did you mean 'port'?)"},
        BadCase{"\n\nfrobnicate = 1\n", "3: unknown key 'frobnicate'"},
        BadCase{"[server]\nport = 1\n", "1: unknown key 'server' (tundra.conf has no sections)"},
        BadCase{"max-clients = 5\n",
                "1: unknown key 'max-clients' (did you mean 'max_clients'?)"}));

INSTANTIATE_TEST_SUITE_P(
    WrongTypes, ConfigFileErrors,
    ::testing::Values(
        BadCase{"port = \"4242\"\n", "1: port: expected an integer, got a string"},
        BadCase{"port = 4242.0\n", "1: port: expected an integer, got a floating-point number"},
        BadCase{"bind = 127\n", "1: bind: expected a string, got an integer"},
        BadCase{"presence = \"yes\"\n", "1: presence: expected true or false, got a string"},
        BadCase{"session_timeout = \"2m\"\n",
                "1: session_timeout: expected a number of seconds, got a string"},
        BadCase{"ping_interval = [1, 2]\n",
                "1: ping_interval: expected a number of seconds, got an array"},
        BadCase{"log_level = 3\n", "1: log_level: expected a string, got an integer"},
        BadCase{"admin = true\n", "1: admin: expected a string, got a boolean"},
        BadCase{"max_users = 1979-05-27\n", "1: max_users: expected an integer, got a date/time"},
        BadCase{"shutdown_retry_after = 1.5\n",
                "1: shutdown_retry_after: expected an integer, got a floating-point number"},
        BadCase{"drain_timeout = { s = 1 }\n",
                "1: drain_timeout: expected a number of seconds, got a table"}));

INSTANTIATE_TEST_SUITE_P(
    OutOfRange, ConfigFileErrors,
    ::testing::Values(
        BadCase{"port = 70000\n", "1: port: 70000 is out of range (0 to 65535)"},
        BadCase{"port = -1\n", "1: port: -1 is out of range (0 to 65535)"},
        BadCase{"max_clients = -1\n", "1: max_clients: -1 is out of range (0 to 1000000)"},
        BadCase{"max_payload = 65535\n", "1: max_payload: 65535 is out of range (64 to 65534)"},
        BadCase{"session_timeout = 0.05\n",
                "1: session_timeout: 0.05 is out of range (0.1 to 65535 seconds)"},
        BadCase{"ping_interval = 65536\n",
                "1: ping_interval: 65536 is out of range (0.1 to 65535 seconds)"},
        BadCase{"ping_interval = nan\n",
                "1: ping_interval: nan is out of range (0.1 to 65535 seconds)"},
        BadCase{"max_buffered = 0\n", "1: max_buffered: 0 is out of range (1 to 100000)"},
        BadCase{"output_cap_bytes = 1024\n",
                "1: output_cap_bytes: 1024 is out of range (131072 to 4294967296)"},
        BadCase{"user_buffer_bytes = 1\n",
                "1: user_buffer_bytes: 1 is out of range (131072 to 1099511627776)"},
        BadCase{"total_buffer_bytes = 1099511627777\n",
                "1: total_buffer_bytes: 1099511627777 is out of range (131072 to 1099511627776)"},
        BadCase{"max_users = 0\n", "1: max_users: 0 is out of range (1 to 100000000)"},
        BadCase{"shutdown_retry_after = 65536\n",
                "1: shutdown_retry_after: 65536 is out of range (0 to 65535)"},
        BadCase{"drain_timeout = -1\n", "1: drain_timeout: -1 is out of range (0 to 3600 seconds)"},
        BadCase{"log_level = \"loud\"\n",
                "1: log_level: 'loud' is not a log level (trace, debug, info, warn, error, "
                "critical, off)"},
        BadCase{"bind = \"example.com\"\n",
                "1: bind: 'example.com' is not an IPv4 or IPv6 address"},
        BadCase{"admin = \"9090\"\n",
                "1: admin: '9090' is not ADDR:PORT with a numeric address (e.g. "
                "\"127.0.0.1:9090\", \"[::1]:9090\"; \"\" = off)"},
        BadCase{"\n\nuser_buffer_bytes = 300000\ntotal_buffer_bytes = 200000\n",
                "3: user_buffer_bytes (300000) must not exceed total_buffer_bytes (200000)"},
        BadCase{"total_buffer_bytes = 200000\n",
                "1: user_buffer_bytes (1048576) must not exceed total_buffer_bytes (200000)"}));

// Syntax messages come from toml++; only the prefix (file, line, "syntax error") is ours.
class ConfigFileSyntaxErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(ConfigFileSyntaxErrors, NameFileAndLine) {
    Config config;
    std::string file;
    const std::string error = load(GetParam().text, config, &file);
    const std::string prefix = file + ":" + GetParam().message;
    EXPECT_TRUE(error.starts_with(prefix)) << error;
    EXPECT_GT(error.size(), prefix.size()) << "the parser's description is missing: " << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
}

INSTANTIATE_TEST_SUITE_P(All, ConfigFileSyntaxErrors,
                         ::testing::Values(BadCase{"port = 1\n\nmax_clients = \n",
                                                   "3: syntax error: "},
                                           BadCase{"port = 1\nport = 2\n", "2: syntax error: "},
                                           BadCase{"bind = \"127.0.0.1\n", "1: syntax error: "},
                                           BadCase{"= 5\n", "1: syntax error: "}));

TEST(ConfigFile, SeveralProblemsAreAllReportedInLineOrder) {
    std::string file;
    Config c;
    const std::string error =
        load("zzz = 1\nport = \"x\"\nmax_clients = -1\nlog_level = \"info\"\n", c, &file);
    EXPECT_EQ(error, file + ":1: unknown key 'zzz'\n" + file +
                         ":2: port: expected an integer, got a string\n" + file +
                         ":3: max_clients: -1 is out of range (0 to 1000000)");
}

TEST(ConfigFile, AMissingFileIsAClearError) {
    Config c;
    std::string error;
    EXPECT_FALSE(loadConfigFile("/nonexistent/tundra.conf", c, error));
    EXPECT_EQ(error, "/nonexistent/tundra.conf: cannot open: No such file or directory");
}

TEST(ConfigFile, ADirectoryIsAClearError) {
    TempDir dir;
    Config c;
    std::string error;
    EXPECT_FALSE(loadConfigFile(dir.path(), c, error));
    EXPECT_EQ(error, dir.path() + ": cannot read: Is a directory");
}

TEST(ConfigFile, AnEmptyAdminTurnsTheListenerOff) {
    Config c;
    c.admin = "127.0.0.1:9090";
    ASSERT_EQ(load("admin = \"\"\n", c), "");
    EXPECT_EQ(c.admin, "");
}

TEST(ConfigFile, IntegerAndDecimalSecondsBecomeMilliseconds) {
    Config c;
    ASSERT_EQ(load("session_timeout = 65535\nping_interval = 0.1\ndrain_timeout = 0\n", c), "");
    EXPECT_EQ(c.core.session_timeout_ms, 65'535'000);
    EXPECT_EQ(c.core.ping_interval_ms, 100);
    EXPECT_EQ(c.drain_timeout_ms, 0);
}

TEST(ConfigFile, LoadConfigStringNamesTheGivenSource) {
    Config c;
    std::string error;
    EXPECT_FALSE(loadConfigString("port = 99999", "inline.toml", c, error));
    EXPECT_EQ(error, "inline.toml:1: port: 99999 is out of range (0 to 65535)");
}

// Flags override the file: parseArgs loads --config first, then applies the flags.
TEST(ConfigFile, FlagsOverrideTheFile) {
    TempDir dir;
    const std::string file = dir.write("t.conf", "port = 1111\nmax_clients = 7\n");
    auto parsed = parseArgs({"--config", file, "--port", "2222"}, loadConfigFile);
    ASSERT_EQ(parsed.action, ParsedArgs::Action::Run) << parsed.message;
    EXPECT_EQ(parsed.config.port, 2222);
    EXPECT_EQ(parsed.config.core.max_clients, 7U);
    EXPECT_EQ(parsed.config.config_file, file);
}

TEST(ConfigFile, CheckConfigReportsTheFileError) {
    TempDir dir;
    const std::string file = dir.write("t.conf", "\nport = \"x\"\n");
    auto parsed = parseArgs({"--check-config", file}, loadConfigFile);
    EXPECT_EQ(parsed.action, ParsedArgs::Action::Error);
    EXPECT_EQ(parsed.message, file + ":2: port: expected an integer, got a string");
}

// The shipped example documents every key with its real default: uncommenting every
// "#key = value" line must give the built-in defaults (admin shows an example address).
TEST(ConfigFile, TheExampleConfigDocumentsEveryKeyWithItsDefault) {
    const std::string example = readFile(TUNDRA_SOURCE_DIR "/packaging/tundra.conf");
    ASSERT_FALSE(example.empty());

    // Every key is there, commented out with its default, except data_dir: the package sets
    // it to the unit's StateDirectory.
    Config as_shipped;
    std::string error;
    ASSERT_TRUE(loadConfigString(example, "tundra.conf", as_shipped, error)) << error;
    Config packaged;
    packaged.data_dir = "/var/lib/tundra";
    expectSameConfig(as_shipped, packaged);
    EXPECT_EQ(as_shipped.data_dir, "/var/lib/tundra");

    const std::regex setting("^#?([a-z_]+) = ");
    std::istringstream lines(example);
    std::string line;
    std::string uncommented;
    std::vector<std::string> documented;
    while (std::getline(lines, line)) {
        std::smatch m;
        if (std::regex_search(line, m, setting)) {
            documented.push_back(m[1]);
            if (line.front() == '#') {
                line.erase(0, 1);
            }
        }
        uncommented += line + "\n";
    }
    std::vector<std::string> keys;
    for (auto k : configFileKeys()) {
        keys.emplace_back(k);
    }
    std::sort(documented.begin(), documented.end());
    std::sort(keys.begin(), keys.end());
    EXPECT_EQ(documented, keys);

    Config all_set;
    ASSERT_TRUE(loadConfigString(uncommented, "tundra.conf", all_set, error)) << error;
    Config expected;
    expected.admin = "127.0.0.1:9090";
    expected.data_dir = "/var/lib/tundra";
    expectSameConfig(all_set, expected);
}

// tundra.conf(5) describes every key.
TEST(ConfigFile, TheManPageDescribesEveryKey) {
    const std::string man = readFile(TUNDRA_SOURCE_DIR "/docs/man/tundra.conf.5");
    ASSERT_FALSE(man.empty());
    for (auto key : configFileKeys()) {
        EXPECT_NE(man.find(".B " + std::string(key) + "\n"), std::string::npos) << key;
    }
}

TEST(RestartRequiredChanges, NothingWhenOnlyReloadableSettingsChange) {
    Config a;
    Config b;
    b.core.max_clients = 1;
    b.core.max_payload = 100;
    b.core.session_timeout_ms = 1;
    b.core.ping_interval_ms = 1;
    b.core.max_buffered = 1;
    b.core.presence_events = false;
    b.core.user_buffer_bytes = 1;
    b.core.total_buffer_bytes = 1;
    b.core.max_users = 1;
    b.log_level = spdlog::level::trace;
    b.shutdown_retry_after_s = 1;
    b.drain_timeout_ms = 1;
    EXPECT_TRUE(restartRequiredChanges(a, b).empty());
    EXPECT_TRUE(restartRequiredChanges(a, a).empty());
}

TEST(RestartRequiredChanges, ListenersAndTheOutputCapNeedARestart) {
    Config a;
    Config b;
    b.bind = "0.0.0.0";
    b.port = 1;
    b.admin = "127.0.0.1:9090";
    b.output_cap_bytes = 65536;
    b.core.max_clients = 1;  // reloadable: not listed
    EXPECT_EQ(restartRequiredChanges(a, b),
              (std::vector<std::string>{"bind", "port", "output_cap_bytes", "admin"}));
    Config c;
    c.port = 9;
    EXPECT_EQ(restartRequiredChanges(a, c), (std::vector<std::string>{"port"}));
}

TEST(ParseHostPort, AcceptsNumericV4AndBracketedV6) {
    std::string host;
    std::uint16_t port = 1;
    ASSERT_TRUE(parseHostPort("127.0.0.1:9090", host, port));
    EXPECT_EQ(host, "127.0.0.1");
    EXPECT_EQ(port, 9090);
    ASSERT_TRUE(parseHostPort("[::1]:0", host, port));
    EXPECT_EQ(host, "::1");
    EXPECT_EQ(port, 0);
    ASSERT_TRUE(parseHostPort("0.0.0.0:65535", host, port));
    EXPECT_EQ(port, 65535);
}

TEST(ParseHostPort, RejectsEverythingElse) {
    std::string host = "unchanged";
    std::uint16_t port = 7;
    for (const char* bad : {"", "9090", ":9090", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536",
                            "127.0.0.1:-1", "127.0.0.1:90x", "localhost:9090", "::1:9090",
                            "[::1]9090", "[::1]:", "[127.0.0.1]:80", "[::1:80", "1.2.3:80"}) {
        EXPECT_FALSE(parseHostPort(bad, host, port)) << bad;
    }
    EXPECT_EQ(host, "unchanged");
    EXPECT_EQ(port, 7);
}

}  // namespace
}  // namespace tundra::server
