// SPDX-License-Identifier: Apache-2.0
// packaging/tundrad.service: the directives the operations guide promises, and a clean
// `systemd-analyze verify` wherever systemd is installed.
#include <gtest/gtest.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

const char* const kUnit = TUNDRA_SOURCE_DIR "/packaging/tundrad.service";

std::string readFile(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

// "Key=Value" lines of the [Service] section; a key set twice keeps every value.
std::multimap<std::string, std::string> serviceSection(const std::string& unit) {
    std::multimap<std::string, std::string> out;
    std::istringstream lines(unit);
    std::string line;
    std::string section;
    while (std::getline(lines, line)) {
        if (line.empty() || line[0] == '#') {
            continue;
        }
        if (line[0] == '[') {
            section = line;
            continue;
        }
        const auto eq = line.find('=');
        if (section == "[Service]" && eq != std::string::npos) {
            out.emplace(line.substr(0, eq), line.substr(eq + 1));
        }
    }
    return out;
}

// Runs `command` through the shell; returns its exit status and puts stdout+stderr in `output`.
int run(const std::string& command, std::string& output) {
    FILE* p = ::popen((command + " 2>&1").c_str(), "r");
    if (p == nullptr) {
        return -1;
    }
    char buf[512];
    while (std::fgets(buf, sizeof buf, p) != nullptr) {
        output += buf;
    }
    const int status = ::pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(UnitFile, HasTheNotifyTypeChecksLimitsAndHardening) {
    const auto service = serviceSection(readFile(kUnit));
    ASSERT_FALSE(service.empty());
    const std::map<std::string, std::string> expected = {
        {"Type", "notify"},
        {"NotifyAccess", "main"},
        {"ExecStartPre", "/usr/bin/tundrad --check-config /etc/tundra/tundra.conf"},
        {"ExecStart", "/usr/bin/tundrad --config /etc/tundra/tundra.conf"},
        {"ExecReload", "/bin/kill -HUP $MAINPID"},
        {"LimitNOFILE", "65536"},
        {"NoNewPrivileges", "yes"},
        {"ProtectSystem", "strict"},
        {"ProtectHome", "yes"},
        {"PrivateTmp", "yes"},
        {"DynamicUser", "yes"},
        {"StateDirectory", "tundra"},
        {"Restart", "on-failure"},
        {"RestartPreventExitStatus", "2"},
    };
    for (const auto& [key, value] : expected) {
        auto [first, last] = service.equal_range(key);
        ASSERT_NE(first, last) << key << "= is missing";
        EXPECT_EQ(first->second, value) << key;
        EXPECT_EQ(std::next(first), last) << key << "= is set twice";
    }
    ASSERT_TRUE(service.contains("WatchdogSec"));
    EXPECT_NE(service.find("WatchdogSec")->second, "0");
}

TEST(UnitFile, PassesSystemdAnalyzeVerify) {
    std::string which;
    if (run("command -v systemd-analyze", which) != 0) {
        GTEST_SKIP() << "systemd-analyze is not installed";
    }
    // verify checks that every Exec*= binary exists: stand the test binary in for tundrad.
    char self[PATH_MAX] = {};
    const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    ASSERT_GT(n, 0);
    std::string unit = readFile(kUnit);
    for (auto pos = unit.find("/usr/bin/tundrad"); pos != std::string::npos;
         pos = unit.find("/usr/bin/tundrad", pos)) {
        unit.replace(pos, 16, self);
        pos += static_cast<std::size_t>(n);
    }
    std::string dir_template = ::testing::TempDir() + "tundra-unit-XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template.data()), nullptr);
    const std::string path = dir_template + "/tundrad.service";
    std::ofstream(path) << unit;

    std::string output;
    const int status = run("systemd-analyze verify --man=no '" + path + "'", output);
    ::unlink(path.c_str());
    ::rmdir(dir_template.c_str());
    EXPECT_EQ(status, 0) << output;
    // Unknown keys and bad values are only warnings: any line naming the unit is a failure.
    EXPECT_EQ(output.find("tundrad.service"), std::string::npos) << output;
}

}  // namespace
