// SPDX-License-Identifier: Apache-2.0
// The Client facade: construction, the accessors, and the error names and texts. The work is
// done by Client::Impl (client_impl.h), split by concern: connection.cc, session.cc,
// requests.cc, events.cc.
#include "client/client_impl.h"

namespace tundra::client {

const char* errorKindName(ErrorKind kind) {
    switch (kind) {
        case ErrorKind::Server:
            return "server";
        case ErrorKind::InvalidArgument:
            return "invalid_argument";
        case ErrorKind::Connect:
            return "connect";
        case ErrorKind::Timeout:
            return "timeout";
        case ErrorKind::Disconnected:
            return "disconnected";
        case ErrorKind::Protocol:
            return "protocol";
        case ErrorKind::Closed:
            return "closed";
        case ErrorKind::Overflow:
            return "overflow";
    }
    return "unknown";
}

std::string ClientError::message() const {
    if (kind != ErrorKind::Server) {
        return text;
    }
    std::string out = errorCodeName(code);
    out += " (" + std::to_string(static_cast<unsigned>(code)) + ")";
    if (!text.empty()) {
        out += ": " + text;
    }
    return out;
}

// ---- Client -------------------------------------------------------------------------------

Client::Client(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Client::~Client() = default;
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;

bool Client::hasQueuedEvents() const {
    return !impl_->events.empty() || impl_->overflow_unreported != 0;
}
ConnectionState Client::state() const { return impl_->state; }
int Client::fd() const { return impl_->fd; }
const Welcome& Client::welcome() const { return impl_->welcome; }
std::uint64_t Client::lastId() const { return impl_->dedupe.highest(); }
std::uint64_t Client::reconnects() const { return impl_->reconnect_count; }
ClientStats Client::stats() const {
    return ClientStats{impl_->events_dropped, impl_->dedupe.duplicates(), impl_->dedupe.resets()};
}
const Options& Client::options() const { return impl_->opt; }
std::string Client::endpoint() const { return impl_->endpoint(); }

}  // namespace tundra::client
