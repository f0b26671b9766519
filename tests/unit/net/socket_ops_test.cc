// SPDX-License-Identifier: Apache-2.0
// socket_ops: IP literals, "host:port" text of addresses (IPv6 in brackets, IPv4-mapped shown as
// IPv4) and raising the soft RLIMIT_NOFILE.
#include "net/socket_ops.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>

#include <cstdint>

namespace tundra::net::sockets {
namespace {

TEST(SocketOpsTest, IsIpLiteralTakesIpv4AndIpv6LiteralsOnly) {
    for (const char* ok : {"127.0.0.1", "0.0.0.0", "::", "::1", "fe80::1", "::ffff:10.0.0.1"}) {
        EXPECT_TRUE(isIpLiteral(ok)) << ok;
    }
    for (const char* bad : {"", "localhost", "[::1]", "1.2.3", "1.2.3.4:80", "256.0.0.1",
                            " 1.2.3.4", "::1%lo", "example.com"}) {
        EXPECT_FALSE(isIpLiteral(bad)) << bad;
    }
}

TEST(SocketOpsTest, ParseAddressSetsFamilyPortAndLength) {
    auto v4 = parseAddress("10.1.2.3", 8080);
    ASSERT_TRUE(v4.has_value());
    ASSERT_EQ(v4->storage.ss_family, AF_INET);
    EXPECT_EQ(v4->len, sizeof(sockaddr_in));
    EXPECT_EQ(formatAddress(reinterpret_cast<const sockaddr*>(&v4->storage)), "10.1.2.3:8080");

    auto v6 = parseAddress("::1", 7000);
    ASSERT_TRUE(v6.has_value());
    ASSERT_EQ(v6->storage.ss_family, AF_INET6);
    EXPECT_EQ(v6->len, sizeof(sockaddr_in6));
    EXPECT_EQ(formatAddress(reinterpret_cast<const sockaddr*>(&v6->storage)), "[::1]:7000");

    EXPECT_FALSE(parseAddress("localhost", 1).has_value());
}

TEST(SocketOpsTest, FormatAddressShowsV4MappedAsIpv4) {
    auto mapped = parseAddress("::ffff:192.0.2.7", 443);
    ASSERT_TRUE(mapped.has_value());
    EXPECT_EQ(formatAddress(reinterpret_cast<const sockaddr*>(&mapped->storage)), "192.0.2.7:443");
}

TEST(SocketOpsTest, FormatHostPortBracketsIpv6) {
    EXPECT_EQ(formatHostPort("127.0.0.1", 7777), "127.0.0.1:7777");
    EXPECT_EQ(formatHostPort("::", 0), "[::]:0");
    EXPECT_EQ(formatHostPort("fe80::1", 65535), "[fe80::1]:65535");
}

// Lowers the soft limit for the test and restores it afterwards.
class FdLimitTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved_), 0);
        if (saved_.rlim_max != RLIM_INFINITY && saved_.rlim_max < 200) {
            GTEST_SKIP() << "hard RLIMIT_NOFILE below 200";
        }
        rlimit low = saved_;
        low.rlim_cur = 100;
        ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
    }
    void TearDown() override { ::setrlimit(RLIMIT_NOFILE, &saved_); }

    static std::uint64_t softLimit() {
        rlimit lim{};
        ::getrlimit(RLIMIT_NOFILE, &lim);
        return lim.rlim_cur;
    }

    rlimit saved_{};
};

TEST_F(FdLimitTest, RaisesTheSoftLimitAndNeverLowersIt) {
    EXPECT_EQ(raiseFdLimit(150), 150U);
    EXPECT_EQ(softLimit(), 150U);
    EXPECT_EQ(raiseFdLimit(120), 150U) << "a lower wish leaves the limit alone";
    EXPECT_EQ(softLimit(), 150U);
}

TEST_F(FdLimitTest, StopsAtTheHardLimit) {
    if (saved_.rlim_max == RLIM_INFINITY) {
        GTEST_SKIP() << "no hard RLIMIT_NOFILE";
    }
    const std::uint64_t hard = saved_.rlim_max;
    EXPECT_EQ(raiseFdLimit(hard + 1000), hard);
    EXPECT_EQ(softLimit(), hard);
}

}  // namespace
}  // namespace tundra::net::sockets
