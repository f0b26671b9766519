// SPDX-License-Identifier: Apache-2.0
// TlsContext: the server side's OpenSSL SSL_CTX (certificate chain, key, optional client CA for
// mTLS, protocol and cipher policy), shared by the connections accepted while it is current.
// Moves bytes only: it knows nothing of frames.
#pragma once

#include <memory>
#include <string>

struct ssl_ctx_st;  // SSL_CTX, without pulling <openssl/ssl.h> into every includer

namespace tundra::net {

struct TlsFiles {
    std::string cert_file;       ///< PEM: the certificate, then any intermediates
    std::string key_file;        ///< PEM: the private key
    std::string client_ca_file;  ///< PEM CA bundle; non-empty: client certificates required
};

/// One immutable SSL_CTX. Replaced as a whole on reload: connections made with an older
/// context keep it alive through OpenSSL's own reference count, so nothing is dropped.
class TlsContext {
public:
    /// Loads and checks the files. nullptr with `error` ("tls_cert /x.pem: ...") on failure.
    static std::shared_ptr<TlsContext> createServer(const TlsFiles& files, std::string& error);
    ~TlsContext();
    TlsContext(const TlsContext&) = delete;
    TlsContext& operator=(const TlsContext&) = delete;

    [[nodiscard]] ssl_ctx_st* raw() const { return ctx_; }
    [[nodiscard]] bool verifiesClients() const { return verify_clients_; }
    /// The certificate's subject and expiry, for the log ("CN=tundra.example, expires ...").
    [[nodiscard]] const std::string& description() const { return description_; }

private:
    explicit TlsContext(ssl_ctx_st* ctx) : ctx_(ctx) {}
    ssl_ctx_st* ctx_;
    bool verify_clients_ = false;
    std::string description_;
};

/// The OpenSSL error queue as text (oldest first, "; "-separated), emptied. "" if empty.
std::string tlsErrorText();

/// The TLS 1.2 cipher list both sides use: ECDHE key exchange with AEAD ciphers only. TLS 1.3
/// keeps OpenSSL's defaults (all AEAD).
extern const char* const kTls12Ciphers;

}  // namespace tundra::net
