// SPDX-License-Identifier: Apache-2.0
// Google Benchmark micro-benchmarks: frame decoding, delivery encoding, and the core's
// broadcast fan-out cost per recipient (no sockets: a counting Outbox).
#include <benchmark/benchmark.h>
#include <spdlog/spdlog.h>

#include <string>
#include <vector>

#include "common/clock.h"
#include "core/session_manager.h"
#include "tundra/codec.h"
#include "tundra/messages.h"

namespace {

using namespace tundra;

class CountingOutbox final : public core::Outbox {
public:
    bool send(core::ConnId, SharedFrame frame, std::uint64_t) override {
        bytes += frame->size();
        ++frames;
        return true;
    }
    void closeAfterFlush(core::ConnId) override {}
    std::uint64_t frames = 0;
    std::uint64_t bytes = 0;
};

class StillClock final : public common::Clock {
public:
    std::int64_t steadyMs() const override { return 1000; }
    std::int64_t wallMs() const override { return 1'700'000'000'000; }
};

void BM_DecodeFrame(benchmark::State& state) {
    std::string text(static_cast<std::size_t>(state.range(0)), 'x');
    Bytes frame = msg::encode(msg::Message{"", text}, 1);
    for (auto _ : state) {
        auto r = decodeFrame(ByteSpan(frame.data(), frame.size()), kMaxPayload);
        benchmark::DoNotOptimize(r);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                            static_cast<std::int64_t>(frame.size()));
}
BENCHMARK(BM_DecodeFrame)->Arg(16)->Arg(1024)->Arg(60000);

void BM_EncodeDelivery(benchmark::State& state) {
    std::string text(static_cast<std::size_t>(state.range(0)), 'x');
    msg::Delivery d;
    d.id = 42;
    d.time_ms = 1'700'000'000'000;
    d.from = "alice";
    d.text = text;
    for (auto _ : state) {
        auto b = msg::encode(d);
        benchmark::DoNotOptimize(b);
    }
}
BENCHMARK(BM_EncodeDelivery)->Arg(16)->Arg(1024);

void BM_BroadcastFanout(benchmark::State& state) {
    const auto recipients = static_cast<std::uint64_t>(state.range(0));
    CountingOutbox outbox;
    StillClock clock;
    std::uint64_t n = 0;
    core::CoreConfig config;
    config.max_clients = recipients + 10;
    config.presence_events = false;
    core::SessionManager sm(config, outbox, clock, [&] {
        Uuid id{};
        ++n;
        for (std::size_t i = 0; i < 8; ++i) {
            id[15 - i] = static_cast<std::uint8_t>(n >> (8 * i));
        }
        id[6] = 0x40;
        return id;
    });
    for (std::uint64_t c = 1; c <= recipients + 1; ++c) {
        sm.onConnect(c);
        std::string name = "u" + std::to_string(c);
        msg::Register r;
        r.username = name;
        Bytes f = msg::encode(r, 1);
        auto h = decodeFrame(ByteSpan(f.data(), f.size()), kMaxPayload);
        sm.onFrame(c, h.header, h.payload);
    }
    Bytes m = msg::encode(msg::Message{"", "hello everyone"}, 2);
    auto h = decodeFrame(ByteSpan(m.data(), m.size()), kMaxPayload);
    const auto before = outbox.frames;
    for (auto _ : state) {
        sm.onFrame(1, h.header, h.payload);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(outbox.frames - before));
    state.counters["recipients"] = static_cast<double>(recipients);
}
BENCHMARK(BM_BroadcastFanout)->Arg(100)->Arg(1000)->Arg(10000);

}  // namespace

// The core logs every registration at info; keep stdout for the results table (and JSON).
int main(int argc, char** argv) {
    spdlog::set_level(spdlog::level::warn);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
        return 1;
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
