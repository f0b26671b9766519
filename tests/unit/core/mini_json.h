// SPDX-License-Identifier: Apache-2.0
// Test helper: a strict little JSON parser (objects, arrays, strings with escapes, numbers,
// true/false/null) so health tests check real structure, not substrings.
#pragma once

#include <cctype>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tundra::testing {

struct Json {
    enum class Kind { Null, Bool, Number, String, Object, Array } kind = Kind::Null;
    bool boolean = false;
    double number = 0;
    std::string text;  ///< String: decoded (\uXXXX below 0x80 only; others kept as UTF-8)
    std::string raw;   ///< Number: the literal as written
    std::map<std::string, Json> object;
    std::vector<Json> array;

    [[nodiscard]] bool has(const std::string& k) const { return object.count(k) != 0; }
    [[nodiscard]] const Json& operator[](const std::string& k) const {
        static const Json missing;
        auto it = object.find(k);
        return it == object.end() ? missing : it->second;
    }
    [[nodiscard]] bool isNull() const { return kind == Kind::Null; }
};

class JsonParser {
public:
    explicit JsonParser(std::string_view s) : s_(s) {}

    /// The parsed document, or nullopt if it is not exactly one valid JSON value.
    std::optional<Json> parse() {
        Json v;
        if (!value(v)) {
            return std::nullopt;
        }
        ws();
        if (i_ != s_.size()) {
            return std::nullopt;
        }
        return v;
    }

private:
    void ws() {
        while (i_ < s_.size() &&
               (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r')) {
            ++i_;
        }
    }
    bool lit(std::string_view w) {
        if (s_.substr(i_, w.size()) != w) {
            return false;
        }
        i_ += w.size();
        return true;
    }
    bool value(Json& v) {
        ws();
        if (i_ >= s_.size() || ++depth_ > 32) {
            return false;
        }
        bool ok = false;
        char c = s_[i_];
        if (c == '{') {
            ok = object(v);
        } else if (c == '[') {
            ok = array(v);
        } else if (c == '"') {
            v.kind = Json::Kind::String;
            ok = string(v.text);
        } else if (c == 't' || c == 'f') {
            v.kind = Json::Kind::Bool;
            v.boolean = c == 't';
            ok = lit(c == 't' ? "true" : "false");
        } else if (c == 'n') {
            ok = lit("null");
        } else {
            ok = number(v);
        }
        --depth_;
        return ok;
    }
    bool object(Json& v) {
        v.kind = Json::Kind::Object;
        ++i_;
        ws();
        if (lit("}")) {
            return true;
        }
        for (;;) {
            ws();
            std::string k;
            if (i_ >= s_.size() || s_[i_] != '"' || !string(k)) {
                return false;
            }
            ws();
            if (!lit(":")) {
                return false;
            }
            Json child;
            if (!value(child) || v.object.count(k) != 0) {
                return false;  // duplicate keys are a writer bug too
            }
            v.object.emplace(k, std::move(child));
            ws();
            if (lit("}")) {
                return true;
            }
            if (!lit(",")) {
                return false;
            }
        }
    }
    bool array(Json& v) {
        v.kind = Json::Kind::Array;
        ++i_;
        ws();
        if (lit("]")) {
            return true;
        }
        for (;;) {
            Json child;
            if (!value(child)) {
                return false;
            }
            v.array.push_back(std::move(child));
            ws();
            if (lit("]")) {
                return true;
            }
            if (!lit(",")) {
                return false;
            }
        }
    }
    bool string(std::string& out) {
        ++i_;  // opening quote
        while (i_ < s_.size()) {
            auto c = static_cast<unsigned char>(s_[i_++]);
            if (c == '"') {
                return true;
            }
            if (c < 0x20) {
                return false;  // raw control characters are not allowed
            }
            if (c != '\\') {
                out.push_back(static_cast<char>(c));
                continue;
            }
            if (i_ >= s_.size()) {
                return false;
            }
            char e = s_[i_++];
            switch (e) {
                case '"':
                    out.push_back('"');
                    break;
                case '\\':
                    out.push_back('\\');
                    break;
                case '/':
                    out.push_back('/');
                    break;
                case 'b':
                    out.push_back('\b');
                    break;
                case 'f':
                    out.push_back('\f');
                    break;
                case 'n':
                    out.push_back('\n');
                    break;
                case 'r':
                    out.push_back('\r');
                    break;
                case 't':
                    out.push_back('\t');
                    break;
                case 'u': {
                    if (i_ + 4 > s_.size()) {
                        return false;
                    }
                    std::string hex(s_.substr(i_, 4));
                    for (char h : hex) {
                        if (std::isxdigit(static_cast<unsigned char>(h)) == 0) {
                            return false;
                        }
                    }
                    i_ += 4;
                    long cp = std::strtol(hex.c_str(), nullptr, 16);
                    if (cp < 0x80) {
                        out.push_back(static_cast<char>(cp));
                    } else {
                        out += "\\u" + hex;  // kept escaped: tests compare it literally
                    }
                    break;
                }
                default:
                    return false;
            }
        }
        return false;
    }
    bool number(Json& v) {
        std::size_t start = i_;
        if (i_ < s_.size() && s_[i_] == '-') {
            ++i_;
        }
        std::size_t digits = i_;
        while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_])) != 0) {
            ++i_;
        }
        if (i_ == digits || (s_[digits] == '0' && i_ - digits > 1)) {
            return false;
        }
        if (i_ < s_.size() && s_[i_] == '.') {
            ++i_;
            std::size_t frac = i_;
            while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_])) != 0) {
                ++i_;
            }
            if (i_ == frac) {
                return false;
            }
        }
        v.kind = Json::Kind::Number;
        v.raw = std::string(s_.substr(start, i_ - start));
        v.number = std::strtod(v.raw.c_str(), nullptr);
        return true;
    }

    std::string_view s_;
    std::size_t i_ = 0;
    int depth_ = 0;
};

}  // namespace tundra::testing
