// SPDX-License-Identifier: Apache-2.0
// TlsContext: builds the server SSL_CTX (TLS 1.2 minimum, no renegotiation, ECDHE+AEAD for TLS
// 1.2, partial writes with a moving buffer, released idle buffers, optional mTLS).
#include "net/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <string_view>

namespace tundra::net {

const char* const kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

std::string tlsErrorText() {
    std::string out;
    unsigned long e = 0;
    char buf[256];
    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) {
            out += "; ";
        }
        // "error:0A000086:SSL routines::certificate verify failed" -> keep the readable tail.
        std::string_view s(buf);
        const auto pos = s.rfind(':');
        out += pos == std::string_view::npos ? s : s.substr(pos + 1);
    }
    return out;
}

namespace {

std::string describeCert(SSL_CTX* ctx) {
    X509* cert = SSL_CTX_get0_certificate(ctx);
    if (cert == nullptr) {
        return "";
    }
    char subject[256] = "";
    X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof subject);
    std::string out = subject;
    BIO* bio = BIO_new(BIO_s_mem());
    if (bio != nullptr) {
        if (ASN1_TIME_print(bio, X509_get0_notAfter(cert)) == 1) {
            char* data = nullptr;
            const long n = BIO_get_mem_data(bio, &data);
            out += ", expires ";
            out.append(data, static_cast<std::size_t>(n));
        }
        BIO_free(bio);
    }
    return out;
}

}  // namespace

std::shared_ptr<TlsContext> TlsContext::createServer(const TlsFiles& files, std::string& error) {
    ERR_clear_error();
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == nullptr) {
        error = "SSL_CTX_new: " + tlsErrorText();
        return nullptr;
    }
    std::shared_ptr<TlsContext> out(new TlsContext(ctx));
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(
        ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1) {
        error = "cipher list: " + tlsErrorText();
        return nullptr;
    }
    // No server-side session cache: it would keep a few KiB per connection for up to 20,480
    // sessions. Resumption still works through (stateless) session tickets.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    static const unsigned char kSidContext[] = "tundra";
    SSL_CTX_set_session_id_context(ctx, kSidContext, sizeof kSidContext - 1);
    if (SSL_CTX_use_certificate_chain_file(ctx, files.cert_file.c_str()) != 1) {
        error = "tls_cert " + files.cert_file + ": " + tlsErrorText();
        return nullptr;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, files.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
        const std::string why = tlsErrorText();
        error = why.find("mismatch") != std::string::npos
                    ? "tls_key " + files.key_file + " does not match tls_cert " + files.cert_file
                    : "tls_key " + files.key_file + ": " + why;
        return nullptr;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        error = "tls_key " + files.key_file + " does not match tls_cert " + files.cert_file + ": " +
                tlsErrorText();
        return nullptr;
    }
    if (!files.client_ca_file.empty()) {
        if (SSL_CTX_load_verify_locations(ctx, files.client_ca_file.c_str(), nullptr) != 1) {
            error = "tls_client_ca " + files.client_ca_file + ": " + tlsErrorText();
            return nullptr;
        }
        STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files.client_ca_file.c_str());
        if (names == nullptr) {
            error = "tls_client_ca " + files.client_ca_file + ": no certificate in it";
            ERR_clear_error();
            return nullptr;
        }
        SSL_CTX_set_client_CA_list(ctx, names);  // takes ownership
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
        out->verify_clients_ = true;
    }
    out->description_ = describeCert(ctx);
    return out;
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

}  // namespace tundra::net
