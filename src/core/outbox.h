// SPDX-License-Identifier: Apache-2.0
// The core's only way out: queue an encoded frame for a connection, or close one.
// The server implements it on top of net::TcpServer; tests use a RecordingOutbox.
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "core/shared_frame.h"
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
    /// send() for a frame that is its connection's only output in a while (a heartbeat PING):
    /// the outbox may write it at once rather than hold it for a batch, in order after
    /// anything already queued. Same result and failure as send(), which this default is.
    virtual bool sendNow(ConnId conn, SharedFrame frame) { return send(conn, std::move(frame)); }
    /// Queues `frames`, several complete delivery frames back to back, as one unit: the same
    /// as a send() of each with its delivery id (the first u64 of its payload), which is what
    /// this default does. An outbox that queues them as one segment reports the id of every
    /// frame not fully written (joinedDeliveryIds). False if nothing was queued.
    virtual bool sendJoined(ConnId conn, SharedFrame frames) {
        bool queued = false;
        forEachFrame(*frames, 0, [&](std::size_t start, std::size_t end, std::uint64_t id) {
            queued = send(conn, share(ByteSpan(*frames).subspan(start, end - start)), id) || queued;
        });
        return queued;
    }
    /// Stops reading from `conn`, flushes what is queued, then closes it. The SessionManager
    /// still gets onDisconnect() for it later.
    virtual void closeAfterFlush(ConnId conn) = 0;

    /// The delivery ids of the frames in `frames` (as given to sendJoined) that end after
    /// `written` bytes, oldest first: those not fully written.
    static void joinedDeliveryIds(ByteSpan frames, std::size_t written,
                                  std::vector<std::uint64_t>& out) {
        forEachFrame(frames, written,
                     [&out](std::size_t, std::size_t, std::uint64_t id) { out.push_back(id); });
    }

private:
    /// Calls f(start, end, delivery id) for each frame of `frames` that ends after `written`.
    template <class F>
    static void forEachFrame(ByteSpan frames, std::size_t written, F&& f) {
        std::size_t at = 0;
        while (at < frames.size()) {
            const auto r = decodeFrame(frames.subspan(at), kMaxPayload);
            if (r.status != DecodeStatus::Frame) {
                return;  // not what sendJoined is given
            }
            const std::size_t end = at + r.consumed;
            if (end > written) {
                f(at, end, PayloadReader(r.payload).u64());
            }
            at = end;
        }
    }
};

}  // namespace tundra::core
