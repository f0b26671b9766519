// SPDX-License-Identifier: Apache-2.0
// The client's requests: each gets a sequence number and waits for the frame that carries it
// (its answer or an ERROR), dispatching everything else as events. Messages, agent commands,
// images, ping, health and the user list.
#include <algorithm>

#include "client/client_impl.h"
#include "tundra/messages.h"

namespace tundra::client {

Result<OwnedFrame> Client::Impl::waitReply(std::uint16_t seq, std::initializer_list<MsgType> types,
                                           TimePoint deadline) {
    OwnedFrame f;
    ClientError error;
    for (;;) {
        switch (readFrame(deadline, f, error)) {
            case ReadStatus::Frame:
                break;
            case ReadStatus::Interrupted:
                continue;
            case ReadStatus::Timeout:
                return localError(ErrorKind::Timeout,
                                  "no answer from " + endpoint() + " within the timeout");
            case ReadStatus::Failed:
                return error;
        }
        if (f.header.sequence == seq) {
            if (f.type() == MsgType::Error) {
                msg::Error e;
                if (msg::parse(f.span(), e) != nullptr) {
                    return protocolError("ERROR");
                }
                return ClientError{ErrorKind::Server, static_cast<ErrorCode>(e.code),
                                   std::string(e.text)};
            }
            if (std::find(types.begin(), types.end(), f.type()) != types.end()) {
                return f;
            }
        }
        dispatch(f);
    }
}

Result<OwnedFrame> Client::Impl::request(const std::function<Bytes(std::uint16_t)>& build,
                                         std::initializer_list<MsgType> answers) {
    TimePoint deadline = SteadyClock::now() + opt.request_timeout;
    if (auto l = ensureLink(deadline); !l) {
        return l.error();
    }
    std::uint16_t seq = nextSeq();
    Bytes frame = build(seq);
    if (auto c = checkSize(frame); !c) {
        return c.error();
    }
    if (auto w = writeFrame(frame, deadline); !w) {
        return w.error();
    }
    return waitReply(seq, answers, deadline);
}

Result<void> Client::Impl::checkSize(const Bytes& frame) const {
    if (frame.empty()) {
        return localError(
            ErrorKind::InvalidArgument,
            "payload exceeds the protocol limit of " + std::to_string(kMaxPayload) + " bytes",
            ErrorCode::TooLarge);
    }
    std::size_t payload = frame.size() - kHeaderSize;
    if (payload > max_payload) {
        return localError(ErrorKind::InvalidArgument,
                          "payload of " + std::to_string(payload) +
                              " bytes exceeds the server's limit of " + std::to_string(max_payload),
                          ErrorCode::TooLarge);
    }
    return {};
}

Result<Ack> Client::Impl::ackRequest(const std::function<Bytes(std::uint16_t)>& build) {
    auto reply = request(build, {MsgType::Ack});
    if (!reply) {
        return reply.error();
    }
    msg::Ack a;
    if (msg::parse(reply->span(), a) != nullptr) {
        return protocolError("ACK");
    }
    return Ack{a.id, a.delivered, a.buffered};
}

// ---- Client: requests ---------------------------------------------------------------------

Result<Ack> Client::sendMessage(std::string_view to, std::string_view text) {
    return impl_->ackRequest([&](std::uint16_t seq) {
        return msg::encode(msg::Message{to, text}, seq, flags::kAck);
    });
}

Result<std::uint16_t> Client::postMessage(std::string_view to, std::string_view text) {
    Impl& m = *impl_;
    TimePoint deadline = SteadyClock::now() + m.opt.request_timeout;
    if (auto l = m.ensureLink(deadline); !l) {
        return l.error();
    }
    std::uint16_t seq = m.nextSeq();
    Bytes frame = msg::encode(msg::Message{to, text}, seq);
    if (auto c = m.checkSize(frame); !c) {
        return c.error();
    }
    if (auto w = m.writeFrame(frame, deadline); !w) {
        return w.error();
    }
    return seq;
}

Result<Ack> Client::sendAgentCommand(std::string_view to, std::string_view command,
                                     std::string_view args, std::uint64_t reply_to) {
    return impl_->ackRequest([&](std::uint16_t seq) {
        return msg::encode(msg::AgentCommand{to, reply_to, command, args}, seq, flags::kAck);
    });
}

Result<Ack> Client::reply(const Delivery& request, std::string_view command,
                          std::string_view args) {
    return sendAgentCommand(request.from, command, args, request.id);
}

Result<Ack> Client::sendImage(std::string_view to, std::string_view mime, std::string_view data) {
    return impl_->ackRequest([&](std::uint16_t seq) {
        return msg::encode(msg::Image{to, mime, data}, seq, flags::kAck);
    });
}

Result<std::chrono::microseconds> Client::ping() {
    Impl& m = *impl_;
    std::uint64_t token = ++m.ping_token;
    TimePoint sent{};
    auto reply = m.request(
        [&](std::uint16_t seq) {
            sent = SteadyClock::now();
            return msg::encodePing(MsgType::Ping, token, seq);
        },
        {MsgType::Pong});
    TimePoint received = SteadyClock::now();
    if (!reply) {
        return reply.error();
    }
    msg::Ping p;
    if (msg::parse(reply->span(), p) != nullptr || p.token != token) {
        return protocolError("PONG");
    }
    return std::chrono::duration_cast<std::chrono::microseconds>(received - sent);
}

Result<std::string> Client::health() {
    auto reply = impl_->request(
        [](std::uint16_t seq) { return msg::encodeEmpty(MsgType::HealthCheck, seq); },
        {MsgType::HealthResult});
    if (!reply) {
        return reply.error();
    }
    msg::HealthResult h;
    if (msg::parse(reply->span(), h) != nullptr) {
        return protocolError("HEALTH_RESULT");
    }
    return std::string(h.json);
}

Result<std::vector<UserInfo>> Client::listUsers(std::string_view prefix) {
    auto reply =
        impl_->request([&](std::uint16_t seq) { return msg::encode(msg::ListUsers{prefix}, seq); },
                       {MsgType::UserList});
    if (!reply) {
        return reply.error();
    }
    msg::UserList list;
    if (msg::parse(reply->span(), list) != nullptr) {
        return protocolError("USER_LIST");
    }
    std::vector<UserInfo> out;
    out.reserve(list.users.size());
    for (const auto& u : list.users) {
        out.push_back(UserInfo{std::string(u.name), u.kind, u.state});
    }
    return out;
}

}  // namespace tundra::client
