// SPDX-License-Identifier: Apache-2.0
// Test support: a private directory under /tmp, removed with its files when the test ends.
#pragma once

#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

namespace tundra::testing {

class ScratchDir {
public:
    ScratchDir() {
        char tmpl[] = "/tmp/tundra-test-XXXXXX";
        const char* d = ::mkdtemp(tmpl);
        path_ = d != nullptr ? d : "";
    }
    ~ScratchDir() { removeAll(); }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;

    /// Empty if the directory could not be made.
    [[nodiscard]] const std::string& path() const { return path_; }
    [[nodiscard]] std::string file(const std::string& name) const { return path_ + "/" + name; }

    /// Writes `text` to the file `name` (replacing it); returns its path.
    std::string write(const std::string& name, const std::string& text) const {
        std::string p = file(name);
        std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
        return p;
    }

    /// Every entry but . and .. (hidden ones too), sorted.
    [[nodiscard]] std::vector<std::string> files() const {
        std::vector<std::string> out;
        if (DIR* dir = ::opendir(path_.c_str())) {
            while (const dirent* e = ::readdir(dir)) {
                std::string name = e->d_name;
                if (name != "." && name != "..") {
                    out.push_back(name);
                }
            }
            ::closedir(dir);
        }
        std::sort(out.begin(), out.end());
        return out;
    }

    /// Removes the directory with its files (it can be made again with ::mkdir).
    void removeAll() {
        if (path_.empty()) {
            return;
        }
        for (const auto& name : files()) {
            ::unlink(file(name).c_str());
        }
        ::rmdir(path_.c_str());
    }

private:
    std::string path_;
};

}  // namespace tundra::testing
