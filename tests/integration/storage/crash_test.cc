// SPDX-License-Identifier: Apache-2.0
// The crash test (issue #11): a flood of acked direct messages to offline users with
// fsync = always, tundrad killed with SIGKILL at a random moment, restarted on the same data,
// 24 rounds in one bounded run. After each restart every recipient registers and must get
// every message whose ACK (buffered = 1) arrived before the kill, flagged REPLAY with the ACK's
// id, none twice, and WELCOME's pending must match what is replayed.
#include <signal.h>

#include <map>
#include <random>
#include <set>

#include "integration/storage/storage_helpers.h"

namespace tundra::testing {
namespace {

constexpr int kRounds = 24;
constexpr int kRecipients = 4;
constexpr int kWindow = 64;  // messages in flight before waiting for ACKs

std::string recipient(int r) { return "rcpt" + std::to_string(r); }

TEST(Crash, EveryAckedMessageSurvivesSigkillAtRandomMoments) {
    ScratchDir dir;
    const std::vector<std::string>& flags = kFloodFlags;
    std::mt19937 rng(std::random_device{}());
    std::uniform_int_distribution<int> kill_after_ms(20, 250);
    const auto started = std::chrono::steady_clock::now();

    // acked[r]: id -> text of what recipient r must get after the next restart.
    std::vector<std::map<std::uint64_t, std::string>> acked(kRecipients);
    std::uint64_t total_acked = 0;
    std::uint64_t total_replayed = 0;
    std::uint64_t total_unacked_replayed = 0;  // accepted, killed before the ACK left: allowed

    auto server = startOn(dir.path(), flags);
    ASSERT_TRUE(server->started()) << server->output();
    for (int r = 0; r < kRecipients; ++r) {
        RawClient c(server->port());
        ASSERT_TRUE(registerOn(c, recipient(r)));
        logoutAndClose(c);
    }

    for (int round = 0; round < kRounds; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        // Flood from a sender with a fresh name (the previous one's session was restored).
        RawClient sender(server->port());
        ASSERT_TRUE(registerOn(sender, "sender" + std::to_string(round)));
        std::map<std::uint16_t, std::pair<int, std::string>> in_flight;  // seq -> (r, text)
        const auto kill_at =
            std::chrono::steady_clock::now() + std::chrono::milliseconds(kill_after_ms(rng));
        int n = 0;
        bool killed = false;
        while (!killed) {
            while (in_flight.size() < kWindow) {
                const int r = n % kRecipients;
                std::string text = "r" + std::to_string(round) + "m" + std::to_string(n++);
                const std::uint16_t seq = sender.nextSeq();
                const std::string to = recipient(r);  // Message holds views: keep it alive
                msg::Message m{to, text};
                if (!sender.send(msg::encode(m, seq, flags::kAck))) {
                    break;
                }
                in_flight.emplace(seq, std::make_pair(r, std::move(text)));
            }
            if (std::chrono::steady_clock::now() >= kill_at) {
                server->signal(SIGKILL);
                killed = true;
            }
            // Collect ACKs (after the kill: whatever had reached the socket before it).
            while (auto f = sender.read(killed ? 200ms : 20ms)) {
                if (f->type() == MsgType::Ack) {
                    auto it = in_flight.find(f->header.sequence);
                    ASSERT_NE(it, in_flight.end());
                    auto a = asAck(*f);
                    ASSERT_EQ(a.buffered, 1U) << "every recipient is offline";
                    acked[it->second.first][a.id] = it->second.second;
                    ++total_acked;
                    in_flight.erase(it);
                } else if (f->type() == MsgType::Error) {
                    FAIL() << "ERROR " << asError(*f).code << " during the flood";
                }
                if (!killed) {
                    break;  // keep the pipe full
                }
            }
        }
        ASSERT_TRUE(server->waitExit(10s));

        server = startOn(dir.path(), flags);
        ASSERT_TRUE(server->started()) << server->output();
        for (int r = 0; r < kRecipients; ++r) {
            RawClient c(server->port());
            auto w = registerOn(c, recipient(r));
            ASSERT_TRUE(w) << server->output();
            auto got = readDeliveries(c, w->pending);
            ASSERT_EQ(got.size(), w->pending) << "WELCOME pending and the replay disagree";
            while (auto extra = c.read(50ms)) {
                EXPECT_NE(extra->type(), MsgType::BroadcastMessage)
                    << "more was replayed than WELCOME announced";
            }
            std::set<std::uint64_t> seen;
            for (const auto& f : got) {
                auto d = asDelivery(f);
                EXPECT_TRUE(f.header.flags & flags::kReplay);
                EXPECT_TRUE(seen.insert(d.id).second) << "id " << d.id << " replayed twice";
                auto it = acked[r].find(d.id);
                if (it != acked[r].end()) {
                    EXPECT_EQ(d.text, it->second);
                } else {
                    ++total_unacked_replayed;  // stored, the ACK was lost with the process
                }
            }
            for (const auto& [id, text] : acked[r]) {
                EXPECT_TRUE(seen.contains(id)) << "acked " << text << " (id " << id << ") lost";
            }
            total_replayed += got.size();
            acked[r].clear();
            logoutAndClose(c);
        }
        ASSERT_FALSE(HasFailure());
    }
    EXPECT_EQ(server->stop(), std::optional<int>(0));
    const auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started);
    std::printf(
        "crash test: %d SIGKILL rounds in %.1f s, %llu acked messages all replayed, "
        "%llu replays in all (%llu stored but killed before their ACK left)\n",
        kRounds, secs.count(), static_cast<unsigned long long>(total_acked),
        static_cast<unsigned long long>(total_replayed),
        static_cast<unsigned long long>(total_unacked_replayed));
    EXPECT_GT(total_acked, static_cast<std::uint64_t>(kRounds)) << "the flood barely ran";
}

}  // namespace
}  // namespace tundra::testing
