// SPDX-License-Identifier: Apache-2.0
// TcpServer::Connection: the read path (bounded reads, delivery of left-over plus new input)
// and the write path (gathered sendmsg of the queued segments, EPOLLOUT after a partial write).
#include "net/connection.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <span>

#include "net/socket_ops.h"
#include "net/tls_context.h"

namespace tundra::net {

namespace {

// Segments gathered by one sendmsg: IOV_MAX, so a fan-out iteration's frames for one
// connection (hundreds of small deliveries) leave in one call; every call costs a TCP push.
constexpr std::size_t kMaxIov = 1024;
// sendmsg calls per flush (end-of-iteration or EPOLLOUT wakeup) while the kernel keeps taking
// everything offered.
constexpr int kMaxWritesPerWakeup = 16;

}  // namespace

TcpServer::Connection::TlsState::~TlsState() { SSL_free(ssl); }

TcpServer::Connection::~Connection() {
#if defined(__x86_64__) && defined(__GLIBCXX__)
    // Every idle connection pays for this object (see connection.h): a 128-byte malloc chunk.
    static_assert(sizeof(Connection) <= 120, "Connection grew past a 128-byte chunk");
#endif
    server_.loop_.cancelTimer(flush_timer_);
    if (tls_) {
        server_.loop_.cancelTimer(tls_->handshake_timer);
        tls_.reset();  // SSL_free before the fd goes
    }
    sockets::closeFd(fd_);
}

bool TcpServer::Connection::announced() const {
    return !tls_ || tls_->phase == TlsState::Phase::Established;
}

namespace {

// The subject CN of the verified client certificate, "" without one.
std::string peerCommonName(SSL* ssl) {
    if (SSL_get_verify_result(ssl) != X509_V_OK) {
        return "";
    }
    X509* cert = SSL_get1_peer_certificate(ssl);
    if (cert == nullptr) {
        return "";
    }
    std::string cn;
    X509_NAME* name = X509_get_subject_name(cert);
    const int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (idx >= 0) {
        ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
        unsigned char* utf8 = nullptr;
        const int n = ASN1_STRING_to_UTF8(&utf8, data);
        if (n > 0) {
            cn.assign(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(n));
        }
        OPENSSL_free(utf8);
    }
    X509_free(cert);
    return cn;
}

// SSL_get_error() for a result <= 0 of an SSL call; the reason for a log when it is fatal.
std::string sslFailure(int ssl_err) {
    std::string text = tlsErrorText();
    if (ssl_err == SSL_ERROR_SYSCALL && text.empty()) {
        text = errno != 0 ? std::strerror(errno) : "connection closed";
    }
    return text.empty() ? "error " + std::to_string(ssl_err) : text;
}

}  // namespace

void TcpServer::Connection::continueHandshake() {
    ERR_clear_error();
    errno = 0;
    const int r = SSL_do_handshake(tls_->ssl);
    if (r == 1) {
        tls_->phase = TlsState::Phase::Established;
        server_.loop_.cancelTimer(tls_->handshake_timer);
        tls_->handshake_timer = 0;
        ++server_.tls_handshakes_;
        ++server_.tls_open_;
        --server_.unannounced_;
        setInterest(readMask());
        ConnInfo info;
        info.peer = std::move(tls_->peer);
        tls_->peer.clear();
        info.tls = true;
        info.tls_version = SSL_get_version(tls_->ssl);
        info.tls_cipher = SSL_get_cipher_name(tls_->ssl);
        info.tls_peer_cn = peerCommonName(tls_->ssl);
        std::string shown = info.tls_peer_cn;  // the log gets no control characters from it
        std::replace_if(
            shown.begin(), shown.end(),
            [](char ch) { return static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f; }, '?');
        spdlog::debug("conn={} tls {} {} peer={}{}", id_, info.tls_version, info.tls_cipher,
                      info.peer, shown.empty() ? "" : " cn=" + shown);
        if (server_.on_connect_) {
            server_.on_connect_(id_, info);
        }
        if (readMask() != 0) {
            onReadable();  // application data may have come with the last handshake flight
        }
        return;
    }
    const int err = SSL_get_error(tls_->ssl, r);
    if (err == SSL_ERROR_WANT_READ) {
        setInterest(EPOLLIN);
        return;
    }
    if (err == SSL_ERROR_WANT_WRITE) {
        setInterest(EPOLLIN | EPOLLOUT);
        return;
    }
    const std::string why = sslFailure(err);
    tls_->phase = TlsState::Phase::Failed;
    ++server_.tls_handshake_failures_;
    std::uint64_t held = 0;
    if (server_.tls_fail_log_.allow(server_.loop_.nowMs(), held)) {
        spdlog::warn("tls handshake from {} failed: {}{} ({} more since the last line)", tls_->peer,
                     why,
                     why.find("wrong version") != std::string::npos ||
                             why.find("http request") != std::string::npos
                         ? " (a client without TLS on the TLS port?)"
                         : "",
                     held);
    }
    // What the peer sent and OpenSSL did not read (a plaintext client's frames) would make the
    // close a reset, which can destroy the alert just sent before the peer reads it; read it
    // away (bounded) so the peer sees the alert and then an orderly end.
    std::vector<std::uint8_t>& scratch = server_.loop_.scratch();
    for (int i = 0; i < 4; ++i) {
        if (sockets::readSome(fd_, scratch.data(), scratch.size()).n <= 0) {
            break;
        }
    }
    if (BIO_number_written(SSL_get_wbio(tls_->ssl)) == 0) {
        // OpenSSL sends no alert to a peer that is not speaking TLS at all (a plaintext
        // client): send a fatal protocol_version alert record ourselves, so a client that
        // looks at the first bytes can tell it reached a TLS port.
        static constexpr std::uint8_t kAlert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46};
        iovec iov{const_cast<std::uint8_t*>(kAlert), sizeof kAlert};
        (void)sockets::sendVec(fd_, &iov, 1);
    }
    server_.scheduleClose(*this, CloseReason::Error);
}

void TcpServer::Connection::tlsShutdown() {
    if (tls_ && tls_->phase == TlsState::Phase::Established && state_ != State::Closed) {
        ERR_clear_error();
        (void)SSL_shutdown(tls_->ssl);  // one close_notify, no waiting for the peer's
        ERR_clear_error();
    }
}

void TcpServer::Connection::onEvents(std::uint32_t events) {
    if (tls_ && tls_->phase != TlsState::Phase::Established) {
        if (tls_->phase == TlsState::Phase::Handshaking && state_ == State::Open) {
            continueHandshake();
        }
        return;
    }
    std::uint32_t read_events = EPOLLIN | EPOLLHUP | EPOLLERR;
    std::uint32_t write_events = EPOLLOUT | EPOLLHUP | EPOLLERR;
    if (tls_ && tls_->read_wants_write) {
        read_events |= EPOLLOUT;  // SSL_read is waiting for the socket to take its bytes
    }
    if (tls_ && tls_->write_wants_read) {
        write_events |= EPOLLIN;  // SSL_write is waiting for bytes from the peer
    }
    // EPOLLIN may be asked for only by an SSL_write (write_wants_read) while reading is
    // paused or held: then the write below takes it, not a read.
    if ((events & read_events) != 0 && state_ == State::Open &&
        (readMask() != 0 || (events & (EPOLLHUP | EPOLLERR)) != 0 || !tls_)) {
        onReadable();
    }
    // Re-check: the read path (or the owner's callback) may have closed this connection.
    if (state_ == State::Closed) {
        return;
    }
    if ((events & write_events) != 0 && !output_.empty()) {
        flush();
    }
    if (state_ != State::Open && state_ != State::Closed && (events & (EPOLLHUP | EPOLLERR)) != 0) {
        // Not reading, so no read will report the hang-up; do not spin on it.
        server_.scheduleClose(
            *this, (events & EPOLLERR) != 0 ? CloseReason::Error : CloseReason::PeerClosed);
    }
}

void TcpServer::Connection::setInterest(std::uint32_t events) {
    if (events != interest_) {
        interest_ = events;
        server_.loop_.modify(fd_, events, this);
    }
}

int TcpServer::Connection::writeQueued() {
    flush_pending_ = false;
    if (tls_) {
        return writeQueuedTls();
    }
    iovec iov[kMaxIov];
    for (int i = 0; i < kMaxWritesPerWakeup && !output_.empty(); ++i) {
        const std::size_t count = output_.fillIov(iov, kMaxIov);
        std::size_t offered = 0;
        for (std::size_t k = 0; k < count; ++k) {
            offered += iov[k].iov_len;
        }
        ++server_.write_calls_;
        sockets::IoResult r{};
        std::vector<std::uint8_t>& stage = server_.stage_;
        // Several segments that fit the staging buffer are copied into it and written as one
        // iovec: the kernel copies each iovec of a sendmsg on its own, at a fixed cost that is
        // larger than the copy itself for the ~100-byte deliveries of a chat server (pairs of
        // direct messages, docs/BENCHMARKS.md). Bigger output is offered as it is: there the
        // copy would cost more than it saves.
        if (count > 1 && offered <= stage.size()) {
            std::uint8_t* to = stage.data();
            for (std::size_t k = 0; k < count; ++k) {
                std::memcpy(to, iov[k].iov_base, iov[k].iov_len);
                to += iov[k].iov_len;
            }
            ++server_.gathered_writes_;
            const iovec one{stage.data(), offered};
            r = sockets::sendVec(fd_, &one, 1);
        } else {
            r = sockets::sendVec(fd_, iov, count);
        }
        if (r.n < 0) {
            return sockets::wouldBlock(r.err) ? 0 : r.err;
        }
        const auto n = static_cast<std::size_t>(r.n);
        server_.bytes_out_ += n;
        output_.consume(n, &server_.pool_);
        server_.recharge(*this);
        if (n < offered) {
            break;  // the kernel buffer is full
        }
    }
    return 0;
}

void TcpServer::Connection::flush() {
    const int err = writeQueued();
    if (err != 0) {
        spdlog::debug("conn={} write: {}", id_, sockets::errorText(err));
        server_.scheduleClose(*this, CloseReason::Error);
        return;
    }
    if (!output_.empty()) {
        setInterest(readMask() | EPOLLOUT | (tls_ && tls_->write_wants_read ? EPOLLIN : 0U));
        return;
    }
    if (state_ == State::Flushing) {
        server_.scheduleClose(*this, drained_reason_);
        return;
    }
    if (read_paused_) {  // drained: read again
        read_paused_ = false;
        --server_.paused_;
        scheduleTlsRead();  // plaintext held inside OpenSSL does not wake epoll
    }
    setInterest(readMask() | (tls_ && tls_->read_wants_write ? EPOLLOUT : 0U));
}

// The queued output through SSL_write: the front of the queue (up to one 16 KiB record) is
// gathered into the server's shared staging buffer and written as one record, so the small
// deliveries of one loop iteration still leave in one record and one syscall. With
// SSL_MODE_ENABLE_PARTIAL_WRITE each SSL_write writes at most one record; an SSL_write that
// wants the socket again is repeated with the same bytes (the queue's front does not change
// until it succeeds; SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER allows the copy to move).
int TcpServer::Connection::writeQueuedTls() {
    std::vector<std::uint8_t>& stage = server_.stage_;
    iovec iov[kMaxIov];
    for (int i = 0; i < kMaxWritesPerWakeup && !output_.empty(); ++i) {
        std::size_t want = tls_->retry_len > 0 ? static_cast<std::size_t>(tls_->retry_len)
                                               : std::min(output_.bytes(), stage.size());
        const std::size_t count = output_.fillIov(iov, kMaxIov);
        std::size_t got = 0;
        for (std::size_t k = 0; k < count && got < want; ++k) {
            const std::size_t take = std::min(iov[k].iov_len, want - got);
            std::memcpy(stage.data() + got, iov[k].iov_base, take);
            got += take;
        }
        want = got;
        ++server_.write_calls_;
        ERR_clear_error();
        errno = 0;
        const int r = SSL_write(tls_->ssl, stage.data(), static_cast<int>(want));
        if (r > 0) {
            tls_->retry_len = 0;
            tls_->write_wants_read = false;
            const auto n = static_cast<std::size_t>(r);
            server_.bytes_out_ += n;
            output_.consume(n, &server_.pool_);
            server_.recharge(*this);
            continue;  // one record written (partial write mode); the next takes the rest
        }
        const int err = SSL_get_error(tls_->ssl, r);
        if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
            tls_->retry_len = static_cast<int>(want);
            tls_->write_wants_read = err == SSL_ERROR_WANT_READ;
            return 0;
        }
        const int saved = errno;
        spdlog::debug("conn={} SSL_write: {}", id_, sslFailure(err));
        return saved != 0 ? saved : EPROTO;  // closed as Error: no close_notify after it
    }
    return 0;
}

void TcpServer::Connection::onReadable() {
    if (tls_) {
        onReadableTls();
        return;
    }
    std::vector<std::uint8_t>& scratch = server_.loop_.scratch();
    const int max_reads = std::max(server_.options_.max_reads_per_wakeup, 1);
    for (int i = 0; i < max_reads; ++i) {
        auto r = sockets::readSome(fd_, scratch.data(), scratch.size());
        if (r.n > 0) {
            const auto n = static_cast<std::size_t>(r.n);
            server_.bytes_in_ += n;
            deliver(scratch.data(), n);
            if (state_ != State::Open || read_paused_ || server_.reads_held_ ||
                n < scratch.size()) {
                return;  // closing, paused, or the socket is (very likely) drained
            }
            continue;
        }
        if (r.n == 0) {
            server_.peerClosed(*this);  // flushes what is queued first, then closes
        } else if (!sockets::wouldBlock(r.err)) {
            spdlog::debug("conn={} read: {}", id_, sockets::errorText(r.err));
            server_.scheduleClose(*this, CloseReason::Error);
        }
        return;
    }
}

// SSL_read into the shared scratch until it is full (several records: one delivery for all of
// them) or OpenSSL wants the socket again; bounded like the plain path. Plaintext already
// decrypted inside OpenSSL (SSL_has_pending) when the bound is hit does not wake epoll, so a
// deferred read picks it up in this iteration.
void TcpServer::Connection::onReadableTls() {
    tls_->read_wants_write = false;
    std::vector<std::uint8_t>& scratch = server_.loop_.scratch();
    const int max_reads = std::max(server_.options_.max_reads_per_wakeup, 1);
    for (int i = 0; i < max_reads; ++i) {
        std::size_t fill = 0;
        int err = SSL_ERROR_NONE;
        ERR_clear_error();
        errno = 0;
        while (fill < scratch.size()) {
            const int want =
                static_cast<int>(std::min<std::size_t>(scratch.size() - fill, INT_MAX));
            const int r = SSL_read(tls_->ssl, scratch.data() + fill, want);
            if (r > 0) {
                fill += static_cast<std::size_t>(r);
                continue;
            }
            err = SSL_get_error(tls_->ssl, r);
            break;
        }
        if (fill > 0) {
            server_.bytes_in_ += fill;
            deliver(scratch.data(), fill);
            if (state_ != State::Open || read_paused_ || server_.reads_held_) {
                return;  // holdReads(false) and a drained pause schedule the rest
            }
        }
        switch (err) {
            case SSL_ERROR_NONE:
                continue;  // the scratch filled up: there may be more
            case SSL_ERROR_WANT_READ:
                return;
            case SSL_ERROR_WANT_WRITE:
                tls_->read_wants_write = true;
                setInterest(interest_ | EPOLLOUT);
                return;
            case SSL_ERROR_ZERO_RETURN:  // close_notify, or EOF (SSL_OP_IGNORE_UNEXPECTED_EOF)
                server_.peerClosed(*this);
                return;
            default: {
                spdlog::debug("conn={} SSL_read: {}", id_, sslFailure(err));
                server_.scheduleClose(*this, CloseReason::Error);  // Error: no close_notify
                return;
            }
        }
    }
    scheduleTlsRead();
}

void TcpServer::Connection::scheduleTlsRead() {
    if (!tls_ || SSL_has_pending(tls_->ssl) != 1) {
        return;
    }
    std::weak_ptr<int> alive = server_.alive_;
    TcpServer& server = server_;
    const ConnId id = id_;
    server_.loop_.defer([&server, alive, id] {
        if (alive.expired()) {
            return;
        }
        Connection* found = server.conns_.find(id);
        if (found != nullptr && found->readMask() != 0) {
            found->onReadable();
        }
    });
}

// Presents [data, data+n) after any left-over input. Without left-overs the scratch bytes are
// presented in place and only what the consumer leaves is copied.
void TcpServer::Connection::deliver(const std::uint8_t* data, std::size_t n) {
    if (!server_.on_data_) {
        return;
    }
    if (input_.empty()) {
        std::size_t used = server_.on_data_(id_, std::span<const std::uint8_t>(data, n));
        if (state_ != State::Open) {
            return;  // closing: the rest is dropped
        }
        used = std::min(used, n);
        if (used < n) {
            input_.append(data + used, n - used);
        }
        return;
    }
    input_.append(data, n);
    std::size_t used = server_.on_data_(id_, input_.bytes());
    if (state_ != State::Open) {
        releaseInput();  // the callback has returned: its span is dead
        return;
    }
    if (used >= input_.size()) {
        releaseInput();
    } else if (used > 0) {
        input_.consume(used);
    }
}

}  // namespace tundra::net
