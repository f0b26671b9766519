// SPDX-License-Identifier: Apache-2.0
// Replays every file of a fuzz corpus directory (TUNDRA_FUZZ_CORPUS_DIR: tests/fuzz/corpus/ for
// frame_decoder_fuzz, tests/fuzz/session_corpus/ for session_core_fuzz) through the fuzz entry
// point linked into the same test binary, as an ordinary test, so builds without libFuzzer (g++)
// still run the seeds and every crasher ever found. A failed check in the entry point aborts the
// test process, which ctest reports as a failure of that file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace tundra {
namespace {

std::vector<std::string> corpusFiles() {
    std::vector<std::string> files;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(TUNDRA_FUZZ_CORPUS_DIR, ec)) {
        if (entry.is_regular_file()) {
            files.push_back(entry.path().filename().string());
        }
    }
    std::sort(files.begin(), files.end());
    return files;
}

std::vector<std::uint8_t> readFile(const std::string& name) {
    std::ifstream in(std::filesystem::path(TUNDRA_FUZZ_CORPUS_DIR) / name, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class CorpusReplayTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CorpusReplayTest, RunsCleanly) {
    const std::vector<std::uint8_t> data = readFile(GetParam());
    ASSERT_FALSE(data.empty()) << GetParam();
    EXPECT_EQ(LLVMFuzzerTestOneInput(data.data(), data.size()), 0);
}

INSTANTIATE_TEST_SUITE_P(Corpus, CorpusReplayTest, ::testing::ValuesIn(corpusFiles()),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                             std::string name = param_info.param;
                             for (char& c : name) {
                                 if (std::isalnum(static_cast<unsigned char>(c)) == 0) {
                                     c = '_';
                                 }
                             }
                             return name;
                         });

#ifndef TUNDRA_FUZZ_MIN_SEEDS
#define TUNDRA_FUZZ_MIN_SEEDS 15
#endif

TEST(CorpusTest, HasTheSeedFiles) { EXPECT_GE(corpusFiles().size(), TUNDRA_FUZZ_MIN_SEEDS); }

TEST(CorpusTest, EmptyAndTinyInputsAreHandled) {
    EXPECT_EQ(LLVMFuzzerTestOneInput(nullptr, 0), 0);
    const std::uint8_t one[] = {0x00};
    EXPECT_EQ(LLVMFuzzerTestOneInput(one, sizeof one), 0);
}

}  // namespace
}  // namespace tundra
