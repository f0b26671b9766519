// SPDX-License-Identifier: Apache-2.0
// The core's only way out: queue an encoded frame for a connection, or close one.
// The server implements it on top of net::TcpServer; tests use a RecordingOutbox.
#pragma once

#include <cstdint>
#include <string_view>

#include "tundra/codec.h"

namespace tundra::core {

using ConnId = std::uint64_t;

class Outbox {
public:
    virtual ~Outbox() = default;
    /// Queues `frame` for `conn`. `delivery_id` (non-zero for message deliveries) comes back in
    /// SessionManager::onDisconnect's `unwritten` list if the frame was never fully written.
    /// Returns false if the connection is gone or closing (nothing queued). Must not call back
    /// into the SessionManager.
    virtual bool send(ConnId conn, SharedFrame frame, std::uint64_t delivery_id = 0) = 0;
    /// Stops reading from `conn`, flushes what is queued, then closes it. The SessionManager
    /// still gets onDisconnect() for it later.
    virtual void closeAfterFlush(ConnId conn) = 0;
};

}  // namespace tundra::core
