// SPDX-License-Identifier: Apache-2.0
// planHugePages: when tundrad starts itself again with glibc.malloc.hugetlb=1, and what the
// log line says otherwise. The exec itself is covered by the ops integration test.
#include "server/huge_pages.h"

#include <gtest/gtest.h>

namespace tundra::server {
namespace {

using Action = HugePagesPlan::Action;

TEST(HugePages, KernelOnRequestMeansStartAgainWithTheTunable) {
    auto p = planHugePages(true, "always [madvise] never\n", nullptr, nullptr);
    EXPECT_EQ(p.action, Action::Reexec);
    EXPECT_TRUE(p.on);
    EXPECT_EQ(p.tunables, "glibc.malloc.hugetlb=1");
    // Other tunables the operator set are kept.
    p = planHugePages(true, "always [madvise] never", "glibc.malloc.tcache_count=16", nullptr);
    EXPECT_EQ(p.action, Action::Reexec);
    EXPECT_EQ(p.tunables, "glibc.malloc.tcache_count=16:glibc.malloc.hugetlb=1");
}

TEST(HugePages, ATunableAlreadySetIsLeftAsItIsAndReported) {
    auto p = planHugePages(true, "always [madvise] never",
                           "glibc.malloc.tcache_count=16:glibc.malloc.hugetlb=1", nullptr);
    EXPECT_EQ(p.action, Action::None);  // the process started again: no loop
    EXPECT_TRUE(p.on);
    EXPECT_EQ(p.state, "on (GLIBC_TUNABLES sets glibc.malloc.hugetlb=1)");
    p = planHugePages(true, "always [madvise] never", "glibc.malloc.hugetlb=0", nullptr);
    EXPECT_EQ(p.action, Action::None);
    EXPECT_FALSE(p.on);
    EXPECT_EQ(p.state, "off (GLIBC_TUNABLES sets glibc.malloc.hugetlb=0)");
    // A name that only starts like it is another tunable.
    p = planHugePages(true, "always [madvise] never", "glibc.malloc.hugetlbx=1", nullptr);
    EXPECT_EQ(p.action, Action::Reexec);
}

TEST(HugePages, NothingToDoWhenTheKernelDecidesOrWhenTurnedOff) {
    auto p = planHugePages(true, "[always] madvise never", nullptr, nullptr);
    EXPECT_EQ(p.action, Action::None);
    EXPECT_TRUE(p.on);
    p = planHugePages(true, "always madvise [never]", nullptr, nullptr);
    EXPECT_EQ(p.action, Action::None);
    EXPECT_FALSE(p.on);
    EXPECT_EQ(p.state, "off (transparent_hugepage = never)");
    p = planHugePages(true, "", nullptr, nullptr);  // no such file: no THP in this kernel
    EXPECT_EQ(p.action, Action::None);
    EXPECT_EQ(p.state, "off (the kernel has no transparent huge pages)");
    p = planHugePages(false, "always [madvise] never", nullptr, nullptr);
    EXPECT_EQ(p.action, Action::None);
    EXPECT_FALSE(p.on);
    EXPECT_EQ(p.state, "off (huge_pages = false)");
    // valgrind runs the program it was given; an exec would leave it.
    p = planHugePages(true, "always [madvise] never", nullptr,
                      "/usr/libexec/valgrind/vgpreload_core-amd64-linux.so");
    EXPECT_EQ(p.action, Action::None);
    EXPECT_FALSE(p.on);
}

}  // namespace
}  // namespace tundra::server
