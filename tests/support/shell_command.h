// SPDX-License-Identifier: Apache-2.0
// Test support: runs a command line through /bin/sh and captures its standard output (what the
// command redirects there, e.g. with 2>&1, too) and exit code. For tools that stop by
// themselves (subcommands, load generators with a timeout).
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace tundra::testing {

struct ShellResult {
    int code = -1;  ///< exit status, -1 if it could not run or was killed by a signal
    std::string out;
};

inline ShellResult runShell(const std::string& command) {
    ShellResult r;
    FILE* p = ::popen(command.c_str(), "r");
    if (p == nullptr) {
        return r;
    }
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) {
        r.out.append(buf, n);
    }
    const int status = ::pclose(p);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

}  // namespace tundra::testing
