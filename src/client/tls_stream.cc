// SPDX-License-Identifier: Apache-2.0
// TlsStream and TlsClientContext: OpenSSL on the client's non-blocking socket. TLS 1.2 minimum,
// the same ECDHE+AEAD list as the server for TLS 1.2, no renegotiation, the certificate checked
// against the CA file (or the system CAs) and the host name unless `insecure`.
#include "client/tls_stream.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <string_view>

#include "client/client_impl.h"

namespace tundra::client {

namespace {

constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// The OpenSSL error queue as readable text, emptied.
std::string errorText() {
    std::string out;
    unsigned long e = 0;
    char buf[256];
    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, buf, sizeof buf);
        std::string_view s(buf);
        const auto pos = s.rfind(':');
        if (!out.empty()) {
            out += "; ";
        }
        out += pos == std::string_view::npos ? s : s.substr(pos + 1);
    }
    return out;
}

bool isIpLiteral(const std::string& host) {
    unsigned char buf[16];
    return ::inet_pton(AF_INET, host.c_str(), buf) == 1 ||
           ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

Result<std::shared_ptr<TlsClientContext>> TlsClientContext::create(const TlsOptions& options) {
    ERR_clear_error();
    SSL_CTX* raw = SSL_CTX_new(TLS_client_method());
    if (raw == nullptr) {
        return localError(ErrorKind::Connect, "TLS setup failed: " + errorText());
    }
    std::shared_ptr<TlsClientContext> ctx(new TlsClientContext(raw));
    SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION);
    SSL_CTX_set_options(
        raw, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(raw, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_cipher_list(raw, kTls12Ciphers);
    if (!options.insecure) {
        SSL_CTX_set_verify(raw, SSL_VERIFY_PEER, nullptr);
        const bool loaded =
            options.ca_file.empty()
                ? SSL_CTX_set_default_verify_paths(raw) == 1
                : SSL_CTX_load_verify_locations(raw, options.ca_file.c_str(), nullptr) == 1;
        if (!loaded) {
            return localError(ErrorKind::Connect,
                              "cannot load the CA file " + options.ca_file + ": " + errorText());
        }
    }
    if (!options.cert_file.empty()) {
        if (SSL_CTX_use_certificate_chain_file(raw, options.cert_file.c_str()) != 1 ||
            SSL_CTX_use_PrivateKey_file(
                raw, (options.key_file.empty() ? options.cert_file : options.key_file).c_str(),
                SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(raw) != 1) {
            return localError(ErrorKind::Connect, "cannot use the client certificate " +
                                                      options.cert_file + ": " + errorText());
        }
    }
    return ctx;
}

TlsClientContext::~TlsClientContext() { SSL_CTX_free(ctx_); }

Result<std::unique_ptr<TlsStream>> TlsStream::handshake(
    const std::shared_ptr<TlsClientContext>& ctx, int fd, const TlsOptions& options,
    const std::string& host, const std::string& endpoint, TimePoint deadline) {
    ERR_clear_error();
    SSL* ssl = SSL_new(ctx->raw());
    if (ssl == nullptr) {
        return localError(ErrorKind::Connect, "TLS setup failed: " + errorText());
    }
    std::unique_ptr<TlsStream> stream(new TlsStream(ssl));
    stream->ctx_ = ctx;
    SSL_set_fd(ssl, fd);
    const std::string& name = options.server_name.empty() ? host : options.server_name;
    if (!isIpLiteral(name)) {
        // SSL_set_tlsext_host_name without its C cast. SNI is for DNS names only.
        SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                 const_cast<char*>(name.c_str()));
    }
    if (!options.insecure) {
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        const int ok = isIpLiteral(name) ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                                         : X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0);
        if (ok != 1) {
            return localError(ErrorKind::Connect, "TLS: cannot check the name " + name);
        }
    }
    for (;;) {
        ERR_clear_error();
        errno = 0;
        const int r = SSL_connect(ssl);
        if (r == 1) {
            return stream;
        }
        const int err = SSL_get_error(ssl, r);
        short events = 0;
        if (err == SSL_ERROR_WANT_READ) {
            events = POLLIN;
        } else if (err == SSL_ERROR_WANT_WRITE) {
            events = POLLOUT;
        } else {
            std::string why = errorText();
            const long verify = SSL_get_verify_result(ssl);
            if (verify != X509_V_OK) {
                why += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
            }
            if (why.empty()) {
                why = errno != 0 ? std::strerror(errno) : "the server closed the connection";
            }
            if (why.find("wrong version number") != std::string::npos ||
                why.find("packet length too long") != std::string::npos ||
                why.find("record layer failure") != std::string::npos) {
                why += " (the server does not speak TLS on this port: is it the plaintext port?)";
            }
            std::string text = "TLS handshake with ";
            text.append(endpoint).append(" failed: ").append(why);
            return localError(ErrorKind::Connect, text);
        }
        pollfd p{fd, events, 0};
        const int ready = ::poll(&p, 1, pollTimeoutMs(deadline, SteadyClock::now()));
        if (ready == 0) {
            return localError(ErrorKind::Timeout, "TLS handshake with " + endpoint + " timed out");
        }
        if (ready < 0 && errno != EINTR) {
            return localError(ErrorKind::Connect, "TLS handshake with " + endpoint +
                                                      " failed: " + std::strerror(errno));
        }
    }
}

TlsStream::~TlsStream() { SSL_free(ssl_); }

ssize_t TlsStream::result(int r) {
    const int err = SSL_get_error(ssl_, r);
    switch (err) {
        case SSL_ERROR_WANT_READ:
            wait_events_ = POLLIN;
            errno = EAGAIN;
            return -1;
        case SSL_ERROR_WANT_WRITE:
            wait_events_ = POLLOUT;
            errno = EAGAIN;
            return -1;
        case SSL_ERROR_ZERO_RETURN:
            return 0;
        case SSL_ERROR_SYSCALL:
            if (errno != 0) {
                last_error_ = std::strerror(errno);
                return -1;
            }
            return 0;
        default:
            last_error_ = errorText();
            errno = EPROTO;
            return -1;
    }
}

ssize_t TlsStream::read(void* buf, std::size_t n) {
    ERR_clear_error();
    errno = 0;
    const int r = SSL_read(ssl_, buf, static_cast<int>(std::min<std::size_t>(n, INT_MAX)));
    return r > 0 ? r : result(r);
}

ssize_t TlsStream::write(const void* buf, std::size_t n) {
    ERR_clear_error();
    errno = 0;
    const int r = SSL_write(ssl_, buf, static_cast<int>(std::min<std::size_t>(n, INT_MAX)));
    if (r > 0) {
        return r;
    }
    const ssize_t out = result(r);
    if (out == 0) {
        errno = EPIPE;  // a write never "reaches the end"
        return -1;
    }
    return out;
}

bool TlsStream::pending() const { return SSL_pending(ssl_) > 0; }

void TlsStream::shutdown() {
    ERR_clear_error();
    (void)SSL_shutdown(ssl_);
    ERR_clear_error();
}

}  // namespace tundra::client
