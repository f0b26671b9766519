// SPDX-License-Identifier: Apache-2.0
// tundra-cli --save-images: file names from MIME types and sender names (no path traversal),
// and writing into a scratch directory: exact bytes, no temporary files left, nothing replaced.
#include "cli/image_saver.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "cli/output.h"
#include "support/scratch_dir.h"

namespace tundra::cli {
namespace {

using testing::ScratchDir;

client::Delivery image(std::uint64_t id, std::string from, std::string mime, std::string data) {
    client::Delivery d;
    d.type = MsgType::Image;
    d.id = id;
    d.from = std::move(from);
    d.to = "bob";
    d.mime = std::move(mime);
    d.data = std::move(data);
    return d;
}

TEST(ImageSaver, ExtensionFromMimeType) {
    EXPECT_EQ(imageExtension("image/png"), "png");
    EXPECT_EQ(imageExtension("image/jpeg"), "jpg");
    EXPECT_EQ(imageExtension("image/svg+xml"), "svg");
    EXPECT_EQ(imageExtension("image/gif"), "gif");
    EXPECT_EQ(imageExtension("image/webp"), "webp");
    EXPECT_EQ(imageExtension("IMAGE/PNG"), "png");          // case is ignored
    EXPECT_EQ(imageExtension("image/jpeg; q=0.9"), "jpg");  // parameters too
    EXPECT_EQ(imageExtension("image/x-icon"), "xicon");     // reduced to [a-z0-9]
    EXPECT_EQ(imageExtension("image/vnd.microsoft.icon"), "vndmicrosofticon");
    EXPECT_EQ(imageExtension("image/../../etc"), "etc");  // no dots, no slashes
    EXPECT_EQ(imageExtension("image/a/b"), "ab");
    EXPECT_EQ(imageExtension("image/\x1b[2J"), "2j");
    EXPECT_EQ(imageExtension("image/"), "bin");
    EXPECT_EQ(imageExtension("image/..."), "bin");
    EXPECT_EQ(imageExtension("png"), "bin");  // no subtype at all
    EXPECT_EQ(imageExtension(""), "bin");
    EXPECT_EQ(imageExtension("image/" + std::string(100, 'x')), std::string(16, 'x'));
}

TEST(ImageSaver, SenderNamesCannotEscapeTheDirectory) {
    EXPECT_EQ(sanitizeFileNamePart("alice"), "alice");
    EXPECT_EQ(sanitizeFileNamePart("Bob_2.x-y"), "Bob_2.x-y");  // every valid name is kept
    EXPECT_EQ(sanitizeFileNamePart("../../etc/passwd"), ".__.__etc_passwd");
    EXPECT_EQ(sanitizeFileNamePart(".."), "._");
    EXPECT_EQ(sanitizeFileNamePart("..."), "._.");
    EXPECT_EQ(sanitizeFileNamePart("a/b\\c"), "a_b_c");
    EXPECT_EQ(sanitizeFileNamePart(std::string("nul\0x", 5)), "nul_x");
    EXPECT_EQ(sanitizeFileNamePart("tab\tnl\nesc\x1b"), "tab_nl_esc_");
    EXPECT_EQ(sanitizeFileNamePart("caf\xC3\xA9"), "caf__");
    EXPECT_EQ(sanitizeFileNamePart("two words"), "two_words");
    EXPECT_EQ(sanitizeFileNamePart(""), "unknown");
    EXPECT_EQ(sanitizeFileNamePart(std::string(200, 'a')).size(), 64U);
    // Whatever comes in, the result is one harmless path component.
    for (std::string hostile : {"/", "//", "/..", "../", "./.", "\x01\x02", "a/../../b"}) {
        std::string s = sanitizeFileNamePart(hostile);
        EXPECT_EQ(s.find('/'), std::string::npos) << s;
        EXPECT_EQ(s.find(".."), std::string::npos) << s;
        for (char c : s) {
            EXPECT_GE(static_cast<unsigned char>(c), 0x20) << s;
        }
    }
}

TEST(ImageSaver, FileNameFromTheDelivery) {
    EXPECT_EQ(imageFileName(image(42, "alice", "image/png", "x")), "42-alice.png");
    EXPECT_EQ(imageFileName(image(42, "alice", "image/png", "x"), 3), "42-alice-3.png");
    EXPECT_EQ(imageFileName(image(7, "../bob", "image/svg+xml", "x")), "7-.__bob.svg");
    EXPECT_EQ(imageFileName(image(8, "", "application/octet-stream", "x")),
              "8-unknown.octetstream");
    EXPECT_EQ(imageFileName(image(9, "x", "weird", "x")), "9-x.bin");
}

std::string contents(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(ImageSaver, WritesTheExactBytesAndNeverReplacesAFile) {
    ScratchDir dir;
    ASSERT_FALSE(dir.path().empty());
    EXPECT_EQ(ImageSaver::checkDirectory(dir.path()), std::nullopt);
    EXPECT_TRUE(dir.files().empty()) << "the probe file was left behind";

    ImageSaver saver(dir.path());
    const std::string bytes("\x89PNG\r\n\x1a\n\0\xff binary", 17);
    auto first = saver.save(image(5, "alice", "image/png", bytes));
    ASSERT_TRUE(first.ok()) << first.error;
    EXPECT_EQ(first.path, dir.path() + "/5-alice.png");
    EXPECT_EQ(contents(first.path), bytes);

    // The same name again (another run, or a server that restarted its ids): a counter.
    auto second = saver.save(image(5, "alice", "image/png", "other"));
    ASSERT_TRUE(second.ok()) << second.error;
    EXPECT_EQ(second.path, dir.path() + "/5-alice-1.png");
    auto third = saver.save(image(5, "alice", "image/png", "third"));
    ASSERT_TRUE(third.ok()) << third.error;
    EXPECT_EQ(third.path, dir.path() + "/5-alice-2.png");
    EXPECT_EQ(contents(first.path), bytes);  // untouched
    EXPECT_EQ(contents(second.path), "other");
    EXPECT_EQ(contents(third.path), "third");

    // A hostile sender still lands inside the directory, and no temporary file remains.
    auto hostile = saver.save(image(6, "../../x", "image/../../y", "h"));
    ASSERT_TRUE(hostile.ok()) << hostile.error;
    EXPECT_EQ(hostile.path, dir.path() + "/6-.__.__x.y");
    EXPECT_EQ(dir.files(), (std::vector<std::string>{"5-alice-1.png", "5-alice-2.png",
                                                     "5-alice.png", "6-.__.__x.y"}));
}

TEST(ImageSaver, TrailingSlashInTheDirectory) {
    ScratchDir dir;
    ImageSaver saver(dir.path() + "/");
    auto out = saver.save(image(1, "a", "image/gif", "g"));
    ASSERT_TRUE(out.ok()) << out.error;
    EXPECT_EQ(out.path, dir.path() + "/1-a.gif");
}

TEST(ImageSaver, EmptyImageIsAnEmptyFile) {
    ScratchDir dir;
    ImageSaver saver(dir.path());
    auto out = saver.save(image(2, "a", "image/png", ""));
    ASSERT_TRUE(out.ok()) << out.error;
    EXPECT_EQ(contents(out.path), "");
}

TEST(ImageSaver, UnusableDirectoriesAreReported) {
    ScratchDir dir;
    const std::string missing = dir.path() + "/missing";
    auto why = ImageSaver::checkDirectory(missing);
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("No such file or directory"), std::string::npos) << *why;
    EXPECT_NE(why->find(missing), std::string::npos) << *why;

    const std::string file = dir.path() + "/plain-file";
    std::ofstream(file) << "x";
    why = ImageSaver::checkDirectory(file);
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("is not a directory"), std::string::npos) << *why;

    why = ImageSaver::checkDirectory("");
    ASSERT_TRUE(why);

    // A directory that went away after the check: save() fails and says why.
    ImageSaver saver(missing);
    auto out = saver.save(image(3, "a", "image/png", "p"));
    EXPECT_FALSE(out.ok());
    EXPECT_TRUE(out.path.empty());
    EXPECT_NE(out.error.find("No such file or directory"), std::string::npos) << out.error;
}

TEST(ImageSaver, ReadOnlyDirectoryIsReported) {
    if (::geteuid() == 0) {
        GTEST_SKIP() << "root can write into a read-only directory";
    }
    ScratchDir dir;
    ASSERT_EQ(::chmod(dir.path().c_str(), 0500), 0);
    auto why = ImageSaver::checkDirectory(dir.path());
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("cannot create files in"), std::string::npos) << *why;
    EXPECT_NE(why->find("Permission denied"), std::string::npos) << *why;
    ImageSaver saver(dir.path());
    EXPECT_FALSE(saver.save(image(4, "a", "image/png", "p")).ok());
    ASSERT_EQ(::chmod(dir.path().c_str(), 0700), 0);
}

TEST(ImageSaver, OutputNamesTheSavedFile) {
    client::Event e = image(12, "alice", "image/png", "abc");
    SavedImage ok{"pics/12-alice.png", ""};
    SavedImage failed{"", "cannot create a file in 'pics': Permission denied"};

    std::string human = formatHuman(e, &ok);
    EXPECT_NE(human.find("[image image/png, 3 bytes] (id 12) saved to pics/12-alice.png"),
              std::string::npos)
        << human;
    EXPECT_NE(formatHuman(e, &failed).find("(id 12) (not saved)"), std::string::npos);
    EXPECT_EQ(formatHuman(e).find("saved"), std::string::npos);

    auto json = parseJson(formatJson(e, &ok));
    ASSERT_TRUE(json);
    ASSERT_NE(findPath(*json, "saved"), nullptr);
    EXPECT_EQ(json->at("saved"), "pics/12-alice.png");
    EXPECT_EQ(findPath(*json, "save_error"), nullptr);
    json = parseJson(formatJson(e, &failed));
    ASSERT_TRUE(json);
    EXPECT_EQ(findPath(*json, "saved"), nullptr);
    ASSERT_NE(findPath(*json, "save_error"), nullptr);
    EXPECT_EQ(json->at("save_error"), failed.error);
    json = parseJson(formatJson(e));
    ASSERT_TRUE(json);
    EXPECT_EQ(findPath(*json, "saved"), nullptr);
}

}  // namespace
}  // namespace tundra::cli
