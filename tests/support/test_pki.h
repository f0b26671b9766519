// SPDX-License-Identifier: Apache-2.0
// Test support: certificates and keys made at run time with the OpenSSL API (no private key is
// ever committed): a test CA, and leaf certificates it signs (a server certificate for
// 127.0.0.1 and localhost, client certificates with a chosen CN), written as PEM files.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>

namespace tundra::testing {

class TestCa {
public:
    /// A self-signed CA with subject CN=`cn` and a fresh P-256 key.
    explicit TestCa(const std::string& cn) : key_(newKey()), cert_(X509_new(), X509_free) {
        build(cert_.get(), cn, key_, nullptr, key_, true, "");
    }

    /// Writes the CA certificate (PEM) to `path`.
    void writeCert(const std::string& path) const { writeX509(path, cert_.get()); }

    /// Issues a leaf certificate for `cn` (subjectAltName `san`, e.g.
    /// "IP:127.0.0.1,DNS:localhost", or "" for none) and writes it and its new key as PEM.
    void issue(const std::string& cn, const std::string& san, const std::string& cert_path,
               const std::string& key_path) const {
        std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(newKey(), EVP_PKEY_free);
        std::unique_ptr<X509, decltype(&X509_free)> leaf(X509_new(), X509_free);
        build(leaf.get(), cn, key.get(), cert_.get(), key_, false, san);
        writeX509(cert_path, leaf.get());
        std::FILE* f = std::fopen(key_path.c_str(), "w");
        if (f == nullptr ||
            PEM_write_PrivateKey(f, key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
            throw std::runtime_error("cannot write " + key_path);
        }
        std::fclose(f);
    }

    ~TestCa() { EVP_PKEY_free(key_); }
    TestCa(const TestCa&) = delete;
    TestCa& operator=(const TestCa&) = delete;

private:
    static EVP_PKEY* newKey() {
        EVP_PKEY* k = EVP_EC_gen("P-256");
        if (k == nullptr) {
            throw std::runtime_error("EVP_EC_gen failed");
        }
        return k;
    }

    static void addExt(X509* cert, X509* issuer, int nid, const std::string& value) {
        X509V3_CTX ctx;
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : cert, cert, nullptr, nullptr, 0);
        X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
        if (ext == nullptr) {
            throw std::runtime_error("bad extension " + value);
        }
        X509_add_ext(cert, ext, -1);
        X509_EXTENSION_free(ext);
    }

    static void build(X509* cert, const std::string& cn, EVP_PKEY* key, X509* issuer,
                      EVP_PKEY* issuer_key, bool ca, const std::string& san) {
        static long serial = 1;
        X509_set_version(cert, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++);
        X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
        X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
        X509_set_pubkey(cert, key);
        X509_NAME* name = X509_get_subject_name(cert);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
        X509_set_issuer_name(cert, issuer != nullptr ? X509_get_subject_name(issuer) : name);
        addExt(cert, issuer, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
        if (ca) {
            addExt(cert, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
        }
        if (!san.empty()) {
            addExt(cert, issuer, NID_subject_alt_name, san);
        }
        if (X509_sign(cert, issuer_key, EVP_sha256()) == 0) {
            throw std::runtime_error("X509_sign failed");
        }
    }

    static void writeX509(const std::string& path, X509* cert) {
        std::FILE* f = std::fopen(path.c_str(), "w");
        if (f == nullptr || PEM_write_X509(f, cert) != 1) {
            throw std::runtime_error("cannot write " + path);
        }
        std::fclose(f);
    }

    EVP_PKEY* key_;
    std::unique_ptr<X509, decltype(&X509_free)> cert_;
};

}  // namespace tundra::testing
