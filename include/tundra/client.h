// SPDX-License-Identifier: Apache-2.0
// Public API of the Tundra client library: a blocking client (one TCP socket, poll() timeouts,
// the v1 codec) that registers, sends, and receives typed events, and reconnects by itself,
// resuming the session so a caller sees each delivery once. Guide and example: docs/CLIENT.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "tundra/protocol.h"

namespace tundra::client {

// ---- errors ------------------------------------------------------------------------------------

/// Where a failure came from. Only `Server` carries a code the server sent.
enum class ErrorKind : std::uint8_t {
    Server,           ///< the server answered with ERROR: `code` and `text` are the server's
    InvalidArgument,  ///< refused locally before anything was sent (e.g. payload over the limit)
    Connect,          ///< the TCP connection or TLS handshake failed (refused, unreachable, DNS,
                      ///< certificate)
    Timeout,          ///< no answer before the deadline
    Disconnected,     ///< the connection broke; a request in flight may or may not have run
    Protocol,         ///< the server sent something this client cannot decode
    Closed,           ///< logged out, taken over, gave up reconnecting, or never connected
    Overflow,  ///< the event queue was full: the oldest events were discarded (ErrorEvent only)
};

/// Lower-case name of an ErrorKind ("server", "connect", ...).
const char* errorKindName(ErrorKind kind);

/// A failure as a value. Server errors keep the server's code and text verbatim; local ones
/// set `code` when a wire code describes them (TooLarge for an oversized payload), else 0.
struct ClientError {
    ErrorKind kind = ErrorKind::Server;
    ErrorCode code{};  ///< server code (may be one this version does not know), or 0
    std::string text;

    /// True unless the error came from the server.
    [[nodiscard]] bool local() const { return kind != ErrorKind::Server; }
    /// One line for people: "UNKNOWN_RECIPIENT (6): no such user 'bob'" or the local text.
    [[nodiscard]] std::string message() const;
};

/// A value or a ClientError. value() on an error (or error() on a value) throws
/// std::bad_variant_access: check ok() first.
template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}            // NOLINT: implicit
    Result(ClientError error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

    [[nodiscard]] bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    [[nodiscard]] const ClientError& error() const { return std::get<1>(v_); }

private:
    std::variant<T, ClientError> v_;
};

/// Result of an operation that has no value.
template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(ClientError error) : error_(std::move(error)) {}  // NOLINT: implicit

    [[nodiscard]] bool ok() const { return !error_.has_value(); }
    explicit operator bool() const { return ok(); }
    [[nodiscard]] const ClientError& error() const { return error_.value(); }

private:
    std::optional<ClientError> error_;
};

// ---- configuration -----------------------------------------------------------------------------

/// Delays between reconnect attempts: initial * multiplier^n, capped at max, each scaled by a
/// random factor in [1 - jitter, 1 + jitter] (then capped again) so clients spread out.
struct BackoffPolicy {
    std::chrono::milliseconds initial{100};
    std::chrono::milliseconds max{5000};
    double multiplier = 2.0;
    double jitter = 0.2;
    /// Consecutive failed attempts before giving up (ConnectionEvent::Kind::Closed); 0 = never.
    unsigned max_attempts = 0;
};

/// TLS to the server's TLS listener (tundrad --tls-port). The frames inside are the same.
struct TlsOptions {
    bool enabled = false;
    /// PEM CA bundle the server certificate must chain to; "" = the system's default CAs.
    std::string ca_file;
    /// Accept any certificate (self-signed test servers). Encrypts, but does not know who the
    /// server is: never for production.
    bool insecure = false;
    /// The name sent as SNI and checked against the certificate (DNS name or IP address);
    /// "" = Options::host.
    std::string server_name;
    /// A client certificate and key (PEM) for servers that require one (mTLS); "" = none.
    std::string cert_file;
    std::string key_file;
};

/// How to reach the server and how patient to be.
struct Options {
    std::string host = "127.0.0.1";  ///< name or address (IPv4 or IPv6)
    std::uint16_t port = 4242;
    std::chrono::milliseconds connect_timeout{5000};  ///< TCP connect, per attempt
    std::chrono::milliseconds request_timeout{5000};  ///< each request's wait for its answer
    /// Reconnect and resume the session when a registered connection breaks.
    bool auto_reconnect = true;
    BackoffPolicy backoff{};
    /// How many recent delivery ids are remembered to drop duplicates.
    std::size_t dedupe_window = 4096;
    /// Most events held for nextEvent() (frames that arrive while the application waits in
    /// request calls are queued). When full, the oldest event is discarded and counted: the
    /// next nextEvent() returns an ErrorEvent of kind Overflow saying how many. 0 = no limit.
    std::size_t max_queued_events = 10000;
    /// TLS instead of plain TCP (connect_timeout covers the handshake too).
    TlsOptions tls{};
};

/// Who to register as. A saved `session` and `last_id` let a new process resume where an
/// earlier one stopped (see Client::welcome() and Client::lastId()).
struct Identity {
    std::string name;  ///< 1-32 bytes of [A-Za-z0-9_.-]
    ClientKind kind = ClientKind::User;
    std::string token;  ///< empty unless the server requires one
    Uuid session{};     ///< a session to resume; all zero = start a new one
    /// Id of the last delivery already processed: the server replays what came after it, and
    /// the client drops deliveries with this id or lower (unless the session is new and the
    /// server's ids turn out to have started again lower, as after a restart whose clock
    /// stepped back: see docs/CLIENT.md).
    std::uint64_t last_id = 0;
    /// When `session` has expired, start a new session (keeping last_id) instead of failing.
    bool new_session_if_expired = true;
    /// REGISTER with the EPHEMERAL flag: if this creates the user, the server forgets it after
    /// logout() when nothing is buffered for it (one-shot tools with generated names).
    bool ephemeral = false;
};

// ---- replies -----------------------------------------------------------------------------------

/// The server's SYSTEM WELCOME.
struct Welcome {
    Uuid session{};
    bool resumed = false;
    std::uint32_t pending = 0;  ///< replays that follow (DROPPED, kept and offline deliveries)
    std::chrono::seconds heartbeat{0};
    std::chrono::seconds session_timeout{0};
    std::uint16_t max_payload = 0;  ///< largest payload this server accepts from clients
};

/// The server's ACK: the id it gave the message and its fan-out.
struct Ack {
    std::uint64_t id = 0;
    std::uint32_t delivered = 0;  ///< online recipients it was written to
    std::uint32_t buffered = 0;   ///< offline buffers it was stored in
};

/// One USER_LIST entry.
struct UserInfo {
    std::string name;
    ClientKind kind = ClientKind::User;
    UserState state = UserState::Offline;
};

// ---- events ------------------------------------------------------------------------------------

/// A message, agent command or image addressed to this client (or to everyone).
struct Delivery {
    MsgType type = MsgType::BroadcastMessage;  ///< BroadcastMessage, BroadcastAgent or Image
    std::uint64_t id = 0;                      ///< server-assigned, strictly increasing
    std::uint64_t time_ms = 0;                 ///< server clock, ms since the Unix epoch
    std::string from;
    std::string to;              ///< empty: it went to everyone (all agents for a command)
    std::string text;            ///< BroadcastMessage
    std::uint64_t reply_to = 0;  ///< BroadcastAgent: id of the command this answers, or 0
    std::string command;         ///< BroadcastAgent
    std::string args;            ///< BroadcastAgent
    std::string mime;            ///< Image
    std::string data;            ///< Image: the raw bytes
    bool replayed = false;       ///< came from the server's buffers (flag REPLAY)
};

/// A SYSTEM frame other than WELCOME: JOINED, LEFT, DROPPED, SHUTDOWN, NOTICE, BYE.
struct SystemNotice {
    SystemEvent event = SystemEvent::Notice;
    std::string text;
    std::string name;                 ///< Joined, Left
    std::uint32_t dropped = 0;        ///< Dropped: offline messages lost while away
    std::uint16_t retry_after_s = 0;  ///< Shutdown
};

/// An ERROR that is not the answer to a request still being waited for, e.g. the refusal of a
/// postMessage(): `sequence` is the refused frame's (0 when the server sent it on its own).
/// Also the client's own report that its event queue overflowed: `error.kind` Overflow,
/// `dropped` the number of events discarded (the oldest ones, just before the events that
/// follow this one) since the previous such report.
struct ErrorEvent {
    ClientError error;
    std::uint16_t sequence = 0;
    std::uint64_t dropped = 0;  ///< Overflow: events discarded
};

/// A change of the connection, reported in order with the deliveries around it.
struct ConnectionEvent {
    enum class Kind : std::uint8_t {
        Lost,        ///< the connection broke; reconnecting (reason says why)
        Resumed,     ///< reconnected, same session; replays follow
        NewSession,  ///< reconnected, but the old session had expired; replays follow
        Closed,      ///< no more reconnects: taken over, refused, or out of attempts
    };
    Kind kind = Kind::Lost;
    ClientError reason{};   ///< Lost, Closed
    Welcome welcome{};      ///< Resumed, NewSession
    unsigned attempts = 0;  ///< Resumed, NewSession: connection attempts it took
};

/// Everything nextEvent() can return.
using Event = std::variant<Delivery, SystemNotice, ErrorEvent, ConnectionEvent>;

/// What the client discarded on its own, since it was created (Client::stats()).
struct ClientStats {
    /// Events discarded because the queue held Options::max_queued_events (each batch is also
    /// reported by an ErrorEvent of kind Overflow).
    std::uint64_t events_dropped = 0;
    /// Deliveries not returned because they had been returned already (replays).
    std::uint64_t duplicates_dropped = 0;
    /// Times a new session brought ids below those seen before (a server restarted with its
    /// clock behind): the duplicate filter then started over and lastId() went down.
    std::uint64_t id_sequence_resets = 0;
};

/// Where a Client stands.
enum class ConnectionState : std::uint8_t {
    Disconnected,  ///< not connected yet, or close()d
    Connected,     ///< TCP up, not registered (health and ping work)
    Registered,
    Reconnecting,  ///< lost a registered connection; nextEvent() and requests retry
    Closed,        ///< logged out, taken over, or gave up: no automatic reconnects
};

// ---- the client --------------------------------------------------------------------------------

/// A connection to one tundrad. Every call blocks for at most its timeout (plus one reconnect
/// attempt when one is due). Frames that arrive while a request waits for its answer (matched
/// by sequence number) are queued as events (at most Options::max_queued_events; past that the
/// oldest are discarded and counted); server PINGs are answered on the spot, and after
/// a heartbeat of silence the client pings the server itself. All of this happens only inside
/// calls, so call nextEvent() at least once per heartbeat interval, or the server will close
/// the connection (the client then resumes the session, with no loss).
///
/// When a registered connection breaks, the client reconnects with exponential backoff,
/// registers again with its session UUID and the last delivery id it received, and reports a
/// ConnectionEvent; replays are deduplicated by id, so each delivery is returned once. A
/// delivery is only discarded as a duplicate when it was returned before; after a new session
/// (not a resume) a server whose ids restarted lower is followed, not ignored.
///
/// Not thread-safe: use each Client from one thread at a time. Movable, not copyable.
/// Destroying it closes the socket without LOGOUT (the session detaches and can be resumed).
class Client {
public:
    explicit Client(Options options = {});
    ~Client();
    Client(Client&&) noexcept;
    Client& operator=(Client&&) noexcept;
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    /// Opens the TCP connection. Error kind Connect with text such as
    /// "cannot connect to 127.0.0.1:4242: Connection refused".
    Result<void> connect();

    /// Registers (connecting first if needed). Resumes `identity.session` when set; on
    /// SESSION_EXPIRED starts a new session if `identity.new_session_if_expired`. Replays that
    /// follow the WELCOME are returned by nextEvent(). Enables automatic reconnects.
    Result<Welcome> registerAs(const Identity& identity);

    /// Sends a MESSAGE (to empty = everyone) and waits for its ACK.
    Result<Ack> sendMessage(std::string_view to, std::string_view text);
    /// Sends a MESSAGE without asking for an ACK and returns its sequence number. A refusal
    /// arrives later as an ErrorEvent with that sequence.
    Result<std::uint16_t> postMessage(std::string_view to, std::string_view text);
    /// Sends an AGENT_COMMAND (to empty = all agents; reply_to 0 = a new request), waits for
    /// the ACK.
    Result<Ack> sendAgentCommand(std::string_view to, std::string_view command,
                                 std::string_view args, std::uint64_t reply_to = 0);
    /// Answers an agent command: sends `command`/`args` to its sender with reply_to = its id.
    Result<Ack> reply(const Delivery& request, std::string_view command, std::string_view args);
    /// Sends an IMAGE (mime "image/..."; data non-empty) and waits for its ACK.
    Result<Ack> sendImage(std::string_view to, std::string_view mime, std::string_view data);

    /// PING round trip time. Works before registering (connects if needed).
    Result<std::chrono::microseconds> ping();
    /// The server's HEALTH_RESULT JSON object, as sent. Works before registering (connects if
    /// needed); once registered it includes this connection's own figures.
    Result<std::string> health();
    /// Known users whose name starts with `prefix` (registered clients only).
    Result<std::vector<UserInfo>> listUsers(std::string_view prefix = {});
    /// LOGOUT: waits for BYE and closes. The session ends (no reconnects); the user's offline
    /// buffer keeps collecting direct messages.
    Result<void> logout();
    /// Replaces the token (a server with auth = tokens closes a connection when its token
    /// expires): sends AUTH_REFRESH and waits for the server's ACK; later reconnects present
    /// the new token too. AUTH_FAILED leaves the connection on its old token.
    Result<void> refreshToken(std::string_view token);
    /// Closes the socket without LOGOUT and stops reconnecting; the session detaches.
    void close();

    /// Returns the next event, waiting up to `timeout` (0 = only what is already readable).
    /// nullopt on timeout, when interrupted by a signal, or when there is no connection to read
    /// (state() Disconnected or Closed). While reconnecting, makes the attempts that fall due.
    std::optional<Event> nextEvent(std::chrono::milliseconds timeout);
    /// True if nextEvent() would return at once without reading.
    [[nodiscard]] bool hasQueuedEvents() const;

    [[nodiscard]] ConnectionState state() const;
    /// The socket, for poll()ing alongside other descriptors; -1 when not connected. It changes
    /// on reconnect, so fetch it before each poll. Never read or write it directly.
    [[nodiscard]] int fd() const;
    /// The latest WELCOME (session UUID to save for a later resume, limits).
    [[nodiscard]] const Welcome& welcome() const;
    /// Highest delivery id received: save it with the session to resume without loss. It can go
    /// down once, when a new session shows the server's ids started again lower (see stats()).
    [[nodiscard]] std::uint64_t lastId() const;
    /// Successful reconnects so far.
    [[nodiscard]] std::uint64_t reconnects() const;
    /// Counters of what the client discarded (overflowed events, duplicate deliveries).
    [[nodiscard]] ClientStats stats() const;
    [[nodiscard]] const Options& options() const;
    /// "host:port" ("[::1]:4242" for IPv6 literals), as used in messages.
    [[nodiscard]] std::string endpoint() const;

    /// For tests: breaks the connection the way a dying network does. Unread frames the
    /// server already wrote are discarded (RST, no LOGOUT), and the next call reconnects.
    void dropConnectionForTesting();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace tundra::client
