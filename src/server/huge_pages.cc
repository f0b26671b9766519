// SPDX-License-Identifier: Apache-2.0
#include "server/huge_pages.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace tundra::server {

namespace {

constexpr std::string_view kTunable = "glibc.malloc.hugetlb";

// The selected word of a sysfs choice list: "always [madvise] never" -> "madvise".
std::string_view selected(std::string_view text) {
    const auto open = text.find('[');
    const auto close = text.find(']', open == std::string_view::npos ? 0 : open);
    if (open == std::string_view::npos || close == std::string_view::npos) {
        return {};
    }
    return text.substr(open + 1, close - open - 1);
}

// The value GLIBC_TUNABLES gives glibc.malloc.hugetlb, or "" if it does not name it.
std::string_view tunableValue(std::string_view tunables) {
    std::size_t at = 0;
    while (at <= tunables.size()) {
        auto end = tunables.find(':', at);
        if (end == std::string_view::npos) {
            end = tunables.size();
        }
        const std::string_view item = tunables.substr(at, end - at);
        if (item.size() > kTunable.size() && item.substr(0, kTunable.size()) == kTunable &&
            item[kTunable.size()] == '=') {
            return item.substr(kTunable.size() + 1);
        }
        at = end + 1;
    }
    return {};
}

}  // namespace

HugePagesPlan planHugePages(bool wanted, std::string_view thp_enabled, const char* tunables,
                            const char* ld_preload) {
    HugePagesPlan p;
    const std::string_view env = tunables == nullptr ? std::string_view{} : tunables;
    const std::string_view value = tunableValue(env);
    if (!value.empty()) {
        // The operator's environment decides (or this is the process started again).
        p.on = value != "0";
        p.state = std::string(p.on ? "on" : "off") + " (GLIBC_TUNABLES sets " +
                  std::string(kTunable) + "=" + std::string(value) + ")";
        return p;
    }
    if (!wanted) {
        p.state = "off (huge_pages = false)";
        return p;
    }
    const std::string_view mode = selected(thp_enabled);
    if (mode == "always") {
        p.on = true;
        p.state = "on (the kernel gives every process huge pages: transparent_hugepage = always)";
        return p;
    }
    if (mode != "madvise") {
        p.state = mode.empty() ? "off (the kernel has no transparent huge pages)"
                               : "off (transparent_hugepage = " + std::string(mode) + ")";
        return p;
    }
    if (ld_preload != nullptr && std::strstr(ld_preload, "vgpreload") != nullptr) {
        p.state = "off (running under valgrind, which an exec would leave)";
        return p;
    }
    p.action = HugePagesPlan::Action::Reexec;
    p.on = true;
    p.tunables = std::string(env) + (env.empty() ? "" : ":") + std::string(kTunable) + "=1";
    p.state = "on (" + std::string(kTunable) + "=1)";
    return p;
}

HugePagesPlan applyHugePages(bool wanted, char** argv) {
    std::ostringstream text;
    if (std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled"); f) {
        text << f.rdbuf();
    }
    HugePagesPlan p =
        planHugePages(wanted, text.str(), std::getenv("GLIBC_TUNABLES"), std::getenv("LD_PRELOAD"));
    if (p.action != HugePagesPlan::Action::Reexec) {
        return p;
    }
    const char* before = std::getenv("GLIBC_TUNABLES");
    const std::string saved = before == nullptr ? "" : before;
    if (::setenv("GLIBC_TUNABLES", p.tunables.c_str(), 1) == 0) {
        ::execv("/proc/self/exe", argv);
    }
    const int err = errno;
    if (before == nullptr) {
        ::unsetenv("GLIBC_TUNABLES");
    } else {
        ::setenv("GLIBC_TUNABLES", saved.c_str(), 1);
    }
    p.action = HugePagesPlan::Action::None;
    p.on = false;
    p.state = std::string("off (could not start again with ") + std::string(kTunable) +
              "=1: " + std::strerror(err) + ")";
    return p;
}

}  // namespace tundra::server
