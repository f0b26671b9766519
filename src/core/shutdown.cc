// SPDX-License-Identifier: Apache-2.0
// Shutdown: SYSTEM SHUTDOWN(retry_after_s) to every open connection, then close it after flush.
#include <spdlog/spdlog.h>

#include "core/session_state.h"

namespace tundra::core {

void SessionManager::Impl::shutdown(std::uint16_t retry_after_s) {
    msg::System s;
    s.event = SystemEvent::Shutdown;
    s.text = "server shutting down";
    s.retry_after_s = retry_after_s;
    SharedFrame frame = share(msg::encode(s, 0));
    spdlog::info("shutdown: telling {} connections to retry after {} s", conns_.size(),
                 retry_after_s);
    conns_.forEach([&](Conn& c) {
        if (!c.closed) {
            send(c, frame);
            closeConn(c);
        }
    });
}

}  // namespace tundra::core
