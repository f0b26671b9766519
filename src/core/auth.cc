// SPDX-License-Identifier: Apache-2.0
// Authentication and authorization in the core: REGISTER and AUTH_REFRESH verified through the
// injected Authenticator, the per-source failure lockout, token deadlines on a wheel, and the
// FORBIDDEN check. Without an Authenticator nothing here changes what the core does.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/session_state.h"

namespace tundra::core {

bool SessionManager::Impl::lockedOut(Conn& c, std::uint16_t seq) {
    if (c.source == nullptr || now() >= c.source->auth_blocked_until_ms) {
        return false;
    }
    ++metrics().auth_lockouts_total;
    sendError(c, seq, ErrorCode::AuthFailed, "authentication failed");
    return true;
}

void SessionManager::Impl::authFailed(Conn& c, std::uint16_t seq, std::string_view why) {
    ++metrics().auth_failures_total;
    const std::int64_t t = now();
    std::uint32_t failures = 0;
    if (SourceEntry* src = c.source; src != nullptr) {
        if (t - src->auth_last_failure_ms > cfg().auth_fail_lockout_max_ms) {
            src->auth_failures = 0;  // quiet for long enough: start again
        }
        failures = ++src->auth_failures;
        src->auth_last_failure_ms = t;
        if (cfg().auth_fail_limit > 0 && failures >= cfg().auth_fail_limit) {
            const std::uint32_t doublings =
                std::min<std::uint32_t>(failures - cfg().auth_fail_limit, 20);
            const std::int64_t lockout =
                std::min<std::int64_t>(std::int64_t{1000} << doublings,
                                       std::max<std::int64_t>(cfg().auth_fail_lockout_max_ms, 0));
            src->auth_blocked_until_ms = t + lockout;
        }
    }
    std::uint64_t held = 0;
    if (log_auth_failed_.allow(t, held)) {
        spdlog::debug(
            "conn={} authentication failed: {} ({} failures from its address; {} more "
            "not logged)",
            c.id, why, failures, held);
    }
    sendError(c, seq, ErrorCode::AuthFailed, "authentication failed");
}

void SessionManager::Impl::applyIdentity(Conn& c, const AuthResult& r) {
    c.perms = r.identity.permissions;
    if (r.expires_at_s <= 0) {
        c.auth_deadline_ms = 0;
        return;
    }
    // The token's end in wall time becomes a steady deadline (a wall clock step later does not
    // move it; the leeway absorbs the difference).
    const std::int64_t left_ms = r.expires_at_s * 1000 - clock_.wallMs();
    c.auth_deadline_ms = std::max<std::int64_t>(now() + std::max<std::int64_t>(left_ms, 0), 1);
    fileConn(c);
}

bool SessionManager::Impl::authenticate(Conn& c, std::uint16_t seq, const msg::Register& r) {
    if (lockedOut(c, seq)) {
        return false;
    }
    AuthResult res;
    auto cert = r.token.empty() ? cert_names_.find(c.id) : cert_names_.end();
    if (cert != cert_names_.end() && cert->second == r.username) {
        res = auth_->certificate(r.username, r.kind);  // the TLS client certificate names it
    } else {
        res = auth_->verify(r.username, r.token, r.kind, clock_.wallMs() / 1000);
    }
    if (!res.ok || res.identity.name != r.username) {
        authFailed(c, seq, res.ok ? "identity is not the username" : res.reason);
        return false;
    }
    applyIdentity(c, res);
    return true;
}

void SessionManager::Impl::handleAuthRefresh(Conn& c, std::uint16_t seq, ByteSpan payload) {
    msg::AuthRefresh m;
    if (const char* why = msg::parse(payload, m)) {
        sendError(c, seq, ErrorCode::InvalidFormat, why);
        return;
    }
    if (auth_) {
        if (lockedOut(c, seq)) {
            return;
        }
        const AuthResult res =
            auth_->verify(c.user->name, m.token, c.user->kind, clock_.wallMs() / 1000);
        if (!res.ok || res.identity.name != c.user->name) {
            // The connection keeps its current token until that one expires.
            authFailed(c, seq, res.ok ? "identity is not the username" : res.reason);
            return;
        }
        applyIdentity(c, res);
        spdlog::debug("conn={} session={} token refreshed", c.id, sessionText(c.user));
    }
    send(c, share(msg::encode(msg::Ack{0, 0, 0}, seq)));
}

bool SessionManager::Impl::checkToken(Conn& c, std::int64_t t) {
    if (c.auth_deadline_ms == 0 || t < c.auth_deadline_ms) {
        return true;
    }
    if (!c.registered()) {
        c.auth_deadline_ms = 0;  // its REGISTER failed after the token was checked
        return true;             // register_timeout applies
    }
    ++metrics().auth_expired_total;
    std::uint64_t held = 0;
    if (log_auth_expired_.allow(t, held)) {
        spdlog::info("conn={} session={} user={} closed: token expired ({} more not logged)", c.id,
                     sessionText(c.user), c.user->name, held);
    }
    sendError(c, 0, ErrorCode::AuthFailed, "token expired");
    closeConn(c);
    return false;
}

bool SessionManager::Impl::permitted(Conn& c, std::uint16_t seq, std::uint32_t need,
                                     std::string_view what) {
    if ((c.perms & need) == need) {
        return true;
    }
    sendError(c, seq, ErrorCode::Forbidden, what);
    return false;
}

}  // namespace tundra::core
