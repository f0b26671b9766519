// SPDX-License-Identifier: Apache-2.0
// tundra-cli --save-images.
#include "cli/image_saver.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace tundra::cli {

namespace {

constexpr std::size_t kMaxExtension = 16;
constexpr std::size_t kMaxNamePart = 64;
constexpr unsigned kMaxCounter = 100000;

bool isLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

char toLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string errnoText(int err) { return std::strerror(err); }

// Writes all of `data`; false with errno set on failure.
bool writeAll(int fd, std::string_view data) {
    std::size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::write(fd, data.data() + off, data.size() - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            if (n == 0) {
                errno = EIO;
            }
            return false;
        }
        off += static_cast<std::size_t>(n);
    }
    return true;
}

// Gives the file at `from` the name `to` unless `to` exists (then fails with EEXIST). Both are
// in the same directory. Uses renameat2(RENAME_NOREPLACE); on file systems without it, link()
// then unlink(); without hard links either, a check followed by rename() (racy, last resort).
bool renameNoReplace(const std::string& from, const std::string& to) {
#ifdef RENAME_NOREPLACE
    if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) {
        return true;
    }
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) {
        return false;
    }
#endif
    if (::link(from.c_str(), to.c_str()) == 0) {
        (void)::unlink(from.c_str());
        return true;
    }
    if (errno != EPERM && errno != ENOTSUP && errno != EOPNOTSUPP) {
        return false;
    }
    struct stat st {};
    if (::lstat(to.c_str(), &st) == 0) {
        errno = EEXIST;
        return false;
    }
    return ::rename(from.c_str(), to.c_str()) == 0;
}

}  // namespace

std::string imageExtension(std::string_view mime) {
    std::string m;
    for (char c : mime.substr(0, mime.find(';'))) {
        if (c != ' ' && c != '\t') {
            m += toLower(c);
        }
    }
    if (m == "image/png") {
        return "png";
    }
    if (m == "image/jpeg" || m == "image/jpg") {
        return "jpg";
    }
    if (m == "image/svg+xml") {
        return "svg";
    }
    auto slash = m.find('/');
    if (slash == std::string::npos) {
        return "bin";
    }
    std::string ext;
    for (char c : std::string_view(m).substr(slash + 1)) {
        if (isLowerAlnum(c) && ext.size() < kMaxExtension) {
            ext += c;
        }
    }
    return ext.empty() ? "bin" : ext;
}

std::string sanitizeFileNamePart(std::string_view name) {
    std::string out;
    for (char c : name) {
        if (out.size() >= kMaxNamePart) {
            break;
        }
        const bool plain = isLowerAlnum(c) || (c >= 'A' && c <= 'Z') || c == '_' || c == '-';
        if (plain || (c == '.' && (out.empty() || out.back() != '.'))) {
            out += c;
        } else {
            out += '_';  // '/', '\\', "..", control characters, spaces, non-ASCII bytes
        }
    }
    return out.empty() ? "unknown" : out;
}

std::string imageFileName(const client::Delivery& d, unsigned counter) {
    std::string name = std::to_string(d.id) + "-" + sanitizeFileNamePart(d.from);
    if (counter > 0) {
        name += "-" + std::to_string(counter);
    }
    return name + "." + imageExtension(d.mime);
}

std::string ImageSaver::pathOf(std::string_view name) const {
    std::string path = dir_;
    if (!path.ends_with('/')) {
        path += '/';
    }
    path += name;
    return path;
}

std::optional<std::string> ImageSaver::checkDirectory(const std::string& dir) {
    if (dir.empty()) {
        return std::string("the directory name is empty");
    }
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) {
        return "cannot use '" + dir + "': " + errnoText(errno);
    }
    if (!S_ISDIR(st.st_mode)) {
        return "'" + dir + "' is not a directory";
    }
    // access() says yes to root on a read-only mode and knows nothing of some file systems:
    // try the real thing.
    ImageSaver probe(dir);
    const std::string path =
        probe.pathOf(".tundra-cli-probe-" + std::to_string(static_cast<long>(::getpid())));
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) {
        (void)::unlink(path.c_str());  // left over from a killed run with the same pid
        fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    }
    if (fd < 0) {
        return "cannot create files in '" + dir + "': " + errnoText(errno);
    }
    ::close(fd);
    (void)::unlink(path.c_str());
    return std::nullopt;
}

ImageSaver::Outcome ImageSaver::save(const client::Delivery& d) {
    Outcome out;
    // 1. The bytes go to a temporary file in the same directory (so the rename is atomic).
    std::string tmp;
    int fd = -1;
    const std::string pid = std::to_string(static_cast<long>(::getpid()));
    for (int attempt = 0; attempt < 100; ++attempt) {
        tmp = pathOf(".tundra-cli-" + pid + "-" + std::to_string(temp_counter_++) + ".part");
        fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST) {
            break;
        }
    }
    if (fd < 0) {
        out.error = "cannot create a file in '" + dir_ + "': " + errnoText(errno);
        return out;
    }
    auto fail = [&](const std::string& what, int err) {
        (void)::unlink(tmp.c_str());
        out.error = what + " '" + tmp + "': " + errnoText(err);
        return out;
    };
    if (!writeAll(fd, d.data) || ::fsync(fd) != 0) {
        const int err = errno;
        ::close(fd);
        return fail("cannot write", err);
    }
    if (::close(fd) != 0) {
        return fail("cannot write", errno);
    }
    // 2. Then it takes the first free name; nothing that exists is ever replaced.
    for (unsigned n = 0; n < kMaxCounter; ++n) {
        std::string path = pathOf(imageFileName(d, n));
        if (renameNoReplace(tmp, path)) {
            out.path = std::move(path);
            return out;
        }
        if (errno != EEXIST) {
            const int err = errno;
            (void)::unlink(tmp.c_str());
            out.error = "cannot rename '";
            out.error.append(tmp).append("' to '").append(path).append("': ").append(
                errnoText(err));
            return out;
        }
    }
    (void)::unlink(tmp.c_str());
    out.error = "too many files named " + imageFileName(d, 0) + " or similar in '" + dir_ + "'";
    return out;
}

}  // namespace tundra::cli
