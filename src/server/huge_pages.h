// SPDX-License-Identifier: Apache-2.0
// Transparent huge pages for glibc's heap. A server that stores messages grows its heap by
// millions of small blocks; with 4 KiB pages every new page costs a fault, and on a virtual
// machine a fault is several microseconds: while a fresh server stored offline messages, page
// faults were 13 to 18 % of its samples (docs/BENCHMARKS.md §7). glibc backs its heap with 2 MiB
// pages when its tunable glibc.malloc.hugetlb=1 is set, and tunables are read only from the
// environment when a process starts: so tundrad, with huge_pages = true and a kernel that gives
// huge pages only to memory that asks for them (transparent_hugepage/enabled = madvise, the common
// default), restarts itself once with the tunable set (execv of /proc/self/exe, same PID, same
// arguments). Off by default: the memory cost and the effect on neighbours are in
// docs/BENCHMARKS.md §7. The decision is a pure function of what it reads, so it is tested
// without starting anything.
#pragma once

#include <string>
#include <string_view>

namespace tundra::server {

struct HugePagesPlan {
    enum class Action {
        None,    ///< nothing to do (see `state`)
        Reexec,  ///< start again with GLIBC_TUNABLES = `tunables`
    };
    Action action = Action::None;
    bool on = false;       ///< the heap gets huge pages (after the re-exec, for Reexec)
    std::string tunables;  ///< Reexec: the value GLIBC_TUNABLES gets
    std::string state;     ///< one line for the log: what is in effect and why
};

/// `wanted`: the huge_pages setting. `thp_enabled`: the text of
/// /sys/kernel/mm/transparent_hugepage/enabled ("" if unreadable). `tunables`, `ld_preload`:
/// the environment's GLIBC_TUNABLES and LD_PRELOAD (nullptr if unset).
HugePagesPlan planHugePages(bool wanted, std::string_view thp_enabled, const char* tunables,
                            const char* ld_preload);

/// Reads the kernel's setting and the environment, and for Action::Reexec sets GLIBC_TUNABLES
/// and execs /proc/self/exe with `argv`; returns only if it did not (the plan says why, or the
/// exec failed: then `state` says so and `on` is false).
HugePagesPlan applyHugePages(bool wanted, char** argv);

}  // namespace tundra::server
