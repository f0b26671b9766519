// SPDX-License-Identifier: Apache-2.0
// JWT keys (OpenSSL EVP), signature checks (HMAC-SHA256 compared with CRYPTO_memcmp,
// EVP_DigestVerify for Ed25519 and RSA PKCS#1 v1.5 SHA-256) and the claim rules.
#include "auth/jwt.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "auth/base64url.h"

namespace tundra::auth {

using nlohmann::json;

struct JwtKey::Pkey {
    EVP_PKEY* key = nullptr;
    explicit Pkey(EVP_PKEY* k) : key(k) {}
    ~Pkey() { EVP_PKEY_free(key); }
    Pkey(const Pkey&) = delete;
    Pkey& operator=(const Pkey&) = delete;
};

JwtKey::JwtKey(Alg alg, std::string secret, std::unique_ptr<Pkey> pkey, bool is_private)
    : alg_(alg), secret_(std::move(secret)), pkey_(std::move(pkey)), private_(is_private) {}
JwtKey::JwtKey(JwtKey&&) noexcept = default;
JwtKey& JwtKey::operator=(JwtKey&&) noexcept = default;
JwtKey::~JwtKey() {
    if (!secret_.empty()) {
        OPENSSL_cleanse(secret_.data(), secret_.size());
    }
}

const char* JwtKey::algName() const {
    switch (alg_) {
        case Alg::HS256:
            return "HS256";
        case Alg::EdDSA:
            return "EdDSA";
        case Alg::RS256:
            return "RS256";
    }
    return "?";
}

namespace {

bool readFile(const std::string& path, std::string& out, std::string& error) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        error = path + ": cannot be read";
        return false;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    out = ss.str();
    if (out.size() > (1U << 20)) {
        error = path + ": larger than 1 MiB, not a key";
        return false;
    }
    return true;
}

std::optional<JwtKey::Alg> algOf(EVP_PKEY* k, std::string& error) {
    switch (EVP_PKEY_get_base_id(k)) {
        case EVP_PKEY_ED25519:
            return JwtKey::Alg::EdDSA;
        case EVP_PKEY_RSA:
            if (EVP_PKEY_get_bits(k) < 2048) {
                error = "RSA keys must have at least 2048 bits";
                return std::nullopt;
            }
            return JwtKey::Alg::RS256;
        default:
            error = "the key is neither Ed25519 nor RSA";
            return std::nullopt;
    }
}

}  // namespace

std::optional<JwtKey> JwtKey::secret(std::string bytes, std::string& error) {
    if (bytes.size() < 32) {
        error = "an HS256 secret needs at least 32 bytes";
        return std::nullopt;
    }
    return JwtKey(Alg::HS256, std::move(bytes), nullptr, true);
}

std::optional<JwtKey> JwtKey::publicKeyPem(std::string_view pem, std::string& error) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    EVP_PKEY* k = bio == nullptr ? nullptr : PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    if (k == nullptr) {
        error = "not a PEM public key (BEGIN PUBLIC KEY)";
        return std::nullopt;
    }
    auto owned = std::make_unique<Pkey>(k);
    auto alg = algOf(k, error);
    if (!alg) {
        return std::nullopt;
    }
    return JwtKey(*alg, {}, std::move(owned), false);
}

std::optional<JwtKey> JwtKey::privateKeyPem(std::string_view pem, std::string& error) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    EVP_PKEY* k =
        bio == nullptr ? nullptr : PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    if (k == nullptr) {
        error = "not a PEM private key";
        return std::nullopt;
    }
    auto owned = std::make_unique<Pkey>(k);
    auto alg = algOf(k, error);
    if (!alg) {
        return std::nullopt;
    }
    return JwtKey(*alg, {}, std::move(owned), true);
}

std::optional<JwtKey> JwtKey::secretFile(const std::string& path, std::string& error) {
    std::string bytes;
    if (!readFile(path, bytes, error)) {
        return std::nullopt;
    }
    while (!bytes.empty() && (bytes.back() == '\n' || bytes.back() == '\r' || bytes.back() == ' ' ||
                              bytes.back() == '\t')) {
        bytes.pop_back();
    }
    auto key = secret(std::move(bytes), error);
    if (!key) {
        error = path + ": " + error;
    }
    return key;
}

std::optional<JwtKey> JwtKey::publicKeyFile(const std::string& path, std::string& error) {
    std::string pem;
    if (!readFile(path, pem, error)) {
        return std::nullopt;
    }
    auto key = publicKeyPem(pem, error);
    if (!key) {
        error = path + ": " + error;
    }
    return key;
}

std::optional<JwtKey> JwtKey::privateKeyFile(const std::string& path, std::string& error) {
    std::string pem;
    if (!readFile(path, pem, error)) {
        return std::nullopt;
    }
    auto key = privateKeyPem(pem, error);
    OPENSSL_cleanse(pem.data(), pem.size());
    if (!key) {
        error = path + ": " + error;
    }
    return key;
}

namespace {

std::string hmacSha256(const std::string& secret, std::string_view input) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
             reinterpret_cast<const unsigned char*>(input.data()), input.size(), out,
             &len) == nullptr) {
        return {};
    }
    return std::string(reinterpret_cast<const char*>(out), len);
}

}  // namespace

std::string JwtKey::signRaw(std::string_view header_json, std::string_view claims_json) const {
    std::string input = base64urlEncode(header_json) + "." + base64urlEncode(claims_json);
    std::string sig;
    if (alg_ == Alg::HS256) {
        sig = hmacSha256(secret_, input);
    } else {
        if (!private_) {
            return {};
        }
        EVP_MD_CTX* ctx = EVP_MD_CTX_new();
        const EVP_MD* md = alg_ == Alg::RS256 ? EVP_sha256() : nullptr;
        std::size_t len = 0;
        const auto* in = reinterpret_cast<const unsigned char*>(input.data());
        if (ctx != nullptr && EVP_DigestSignInit(ctx, nullptr, md, nullptr, pkey_->key) == 1 &&
            EVP_DigestSign(ctx, nullptr, &len, in, input.size()) == 1) {
            sig.resize(len);
            if (EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len, in,
                               input.size()) == 1) {
                sig.resize(len);
            } else {
                sig.clear();
            }
        }
        EVP_MD_CTX_free(ctx);
    }
    if (sig.empty()) {
        return {};
    }
    return input + "." + base64urlEncode(sig);
}

bool JwtKey::verifySignature(std::string_view input, std::string_view sig) const {
    if (alg_ == Alg::HS256) {
        const std::string mac = hmacSha256(secret_, input);
        return !mac.empty() && sig.size() == mac.size() &&
               CRYPTO_memcmp(mac.data(), sig.data(), mac.size()) == 0;
    }
    if (alg_ == Alg::EdDSA && sig.size() != 64) {
        return false;
    }
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    if (ctx == nullptr) {
        return false;
    }
    const EVP_MD* md = alg_ == Alg::RS256 ? EVP_sha256() : nullptr;
    const bool ok =
        EVP_DigestVerifyInit(ctx, nullptr, md, nullptr, pkey_->key) == 1 &&
        EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                         reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

namespace {

// Deepest nesting a header or claims object may have: tundrad needs 2 (roles inside the
// object); the bound keeps a hostile token from recursing the parser deep.
constexpr int kMaxJsonDepth = 8;

bool shallowEnough(std::string_view text) {
    int depth = 0;
    bool in_string = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char ch = text[i];
        if (in_string) {
            if (ch == '\\') {
                ++i;
            } else if (ch == '"') {
                in_string = false;
            }
        } else if (ch == '"') {
            in_string = true;
        } else if (ch == '{' || ch == '[') {
            if (++depth > kMaxJsonDepth) {
                return false;
            }
        } else if (ch == '}' || ch == ']') {
            --depth;
        }
    }
    return true;
}

std::optional<json> parseObject(std::string_view part, const char* what, std::string& why) {
    auto bytes = base64urlDecode(part);
    if (!bytes) {
        why = std::string("bad base64url in the ") + what;
        return std::nullopt;
    }
    if (!shallowEnough(*bytes)) {
        why = std::string("the ") + what + " nests too deep";
        return std::nullopt;
    }
    json j = json::parse(*bytes, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        why = std::string("the ") + what + " is not a JSON object";
        return std::nullopt;
    }
    return j;
}

// A NumericDate: a JSON number (integer or not; the fraction is dropped).
bool numericDate(const json& j, const char* name, std::int64_t& out) {
    auto it = j.find(name);
    if (it == j.end()) {
        return false;
    }
    if (it->is_number_integer()) {
        out = it->get<std::int64_t>();
        return true;
    }
    if (it->is_number_float()) {
        const double d = it->get<double>();
        if (d > -9.0e15 && d < 9.0e15) {
            out = static_cast<std::int64_t>(d);
            return true;
        }
    }
    return false;
}

}  // namespace

std::optional<JwtClaims> verifyJwt(const JwtKey& key, std::string_view token, const JwtRules& rules,
                                   std::int64_t now_s, std::string& why) {
    if (token.size() > rules.max_token_bytes) {
        why = "token larger than the maximum";
        return std::nullopt;
    }
    const auto dot1 = token.find('.');
    const auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
    if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
        why = "not three dot-separated parts";
        return std::nullopt;
    }
    const std::string_view header_part = token.substr(0, dot1);
    const std::string_view claims_part = token.substr(dot1 + 1, dot2 - dot1 - 1);
    const std::string_view sig_part = token.substr(dot2 + 1);
    auto header = parseObject(header_part, "header", why);
    if (!header) {
        return std::nullopt;
    }
    // The algorithm is the key's, never the token's choice: "none", or HS256 presented to a
    // public key (algorithm confusion), is refused here.
    auto alg = header->find("alg");
    if (alg == header->end() || !alg->is_string() || alg->get<std::string>() != key.algName()) {
        why = "alg is not the key's algorithm";
        return std::nullopt;
    }
    if (auto typ = header->find("typ");
        typ != header->end() && (!typ->is_string() || typ->get<std::string>() != "JWT")) {
        why = "typ is not JWT";
        return std::nullopt;
    }
    if (header->contains("crit")) {
        why = "crit header not supported";
        return std::nullopt;
    }
    auto sig = base64urlDecode(sig_part);
    if (!sig || sig->empty()) {
        why = "bad base64url in the signature";
        return std::nullopt;
    }
    if (!key.verifySignature(token.substr(0, dot2), *sig)) {
        why = "bad signature";
        return std::nullopt;
    }
    auto claims = parseObject(claims_part, "claims", why);
    if (!claims) {
        return std::nullopt;
    }
    JwtClaims out;
    auto sub = claims->find("sub");
    if (sub == claims->end() || !sub->is_string()) {
        why = "no sub";
        return std::nullopt;
    }
    out.sub = sub->get<std::string>();
    if (!numericDate(*claims, "exp", out.exp)) {
        why = "no exp";
        return std::nullopt;
    }
    if (claims->contains("nbf") && !numericDate(*claims, "nbf", out.nbf)) {
        why = "nbf is not a number";
        return std::nullopt;
    }
    if (now_s > out.exp + rules.leeway_s) {
        why = "expired";
        return std::nullopt;
    }
    if (out.nbf != 0 && out.nbf > now_s + rules.leeway_s) {
        why = "not valid yet (nbf)";
        return std::nullopt;
    }
    if (!rules.issuer.empty()) {
        auto iss = claims->find("iss");
        if (iss == claims->end() || !iss->is_string() || iss->get<std::string>() != rules.issuer) {
            why = "wrong iss";
            return std::nullopt;
        }
    }
    if (!rules.audience.empty()) {
        auto aud = claims->find("aud");
        bool match = false;
        if (aud != claims->end() && aud->is_string()) {
            match = aud->get<std::string>() == rules.audience;
        } else if (aud != claims->end() && aud->is_array()) {
            for (const auto& a : *aud) {
                match = match || (a.is_string() && a.get<std::string>() == rules.audience);
            }
        }
        if (!match) {
            why = "wrong aud";
            return std::nullopt;
        }
    }
    if (auto kind = claims->find("kind"); kind != claims->end()) {
        if (!kind->is_string() || (*kind != "user" && *kind != "agent")) {
            why = "kind is neither user nor agent";
            return std::nullopt;
        }
        out.kind = kind->get<std::string>();
    }
    if (auto roles = claims->find("roles"); roles != claims->end()) {
        if (!roles->is_array() || roles->size() > 16) {
            why = "roles is not an array of at most 16 strings";
            return std::nullopt;
        }
        for (const auto& r : *roles) {
            if (!r.is_string()) {
                why = "roles is not an array of strings";
                return std::nullopt;
            }
            out.roles.push_back(r.get<std::string>());
        }
        out.has_roles = true;
    }
    return out;
}

std::string mintJwt(const JwtKey& key, const JwtClaims& claims, std::int64_t iat,
                    std::string_view audience, std::string_view issuer) {
    json header = {{"alg", key.algName()}, {"typ", "JWT"}};
    json body = {{"sub", claims.sub}, {"iat", iat}, {"exp", claims.exp}, {"kind", claims.kind}};
    if (claims.nbf != 0) {
        body["nbf"] = claims.nbf;
    }
    if (claims.has_roles) {
        body["roles"] = claims.roles;
    }
    if (!audience.empty()) {
        body["aud"] = std::string(audience);
    }
    if (!issuer.empty()) {
        body["iss"] = std::string(issuer);
    }
    return key.signRaw(header.dump(), body.dump());
}

}  // namespace tundra::auth
