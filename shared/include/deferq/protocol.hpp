#pragma once
/// deferq wire protocol, version 1: constants, frame encoding and validated decoding.
/// The normative text is docs/protocol.md; this header is its implementation.
///
/// Decoding never trusts its input: every function below checks frame counts and sizes and returns
/// a `decode_error` for anything malformed (docs/style.md, errors tier 2). Decoded structs hold
/// views into the frames they came from, so they are valid only while those frames live.

#include "deferq/error_code.hpp"

#include <zmq.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace deferq::protocol {

inline constexpr std::string_view client_protocol = "DFQC01";
inline constexpr std::string_view worker_protocol = "DFQW01";

/// Command byte (frame 2). Values are wire values.
enum class command : std::uint8_t {
    request = 0x01, ///< client→broker, broker→worker; worker→broker it means READY
    reply = 0x02,
    error = 0x03,
    heartbeat = 0x04,
    cancel = 0x05,
    disconnect = 0x06,
    progress = 0x07,
    credit = 0x08,
    decline = 0x09,
    drain = 0x0A,
    batch = 0x0B, ///< several messages in one frame (docs/protocol.md §3a)
    call = 0x0C,  ///< worker→broker: a call made from inside a job (docs/protocol.md §3b)
    wait = 0x0D,  ///< worker→broker: a job's handler waits, holding no slot (§3b)
    held = 0x0E,  ///< worker→broker: a job it holds from an earlier connection (§3c)
};
inline constexpr command ready = command::request;

std::string_view to_string(command cmd) noexcept;

/// Defaults shared by every part (docs/protocol.md §4).
inline constexpr std::chrono::milliseconds default_heartbeat_interval{1000};
inline constexpr std::uint32_t default_liveness = 3;
inline constexpr std::uint32_t default_max_attempts = 3;
inline constexpr std::size_t default_max_function_name = 128;
inline constexpr std::uint32_t default_max_worker_functions = 1024;
inline constexpr std::uint32_t default_max_worker_slots = 1024;
inline constexpr std::int64_t default_max_message_size = 64 * 1024 * 1024;
/// The longest text frame a peer accepts: an error's type and message, a progress note, a worker
/// name in a reply (fixed; docs/protocol.md §4, Limits). Longer text makes the message malformed.
inline constexpr std::size_t max_text_frame = 1 << 20;

/// `text` cut to max_text_frame bytes (at a character boundary, marked "… (cut)"), so that a long
/// exception message cannot make a worker's ERROR malformed.
std::string_view cut_text(std::string_view text, std::string& storage);
/// What a peer accepts of the heartbeat interval and liveness a broker announces: it clamps them to
/// these bounds, so that no announcement makes its timers overflow (docs/protocol.md §4).
inline constexpr std::chrono::milliseconds min_heartbeat_interval{10};
inline constexpr std::chrono::milliseconds max_heartbeat_interval{3'600'000};
inline constexpr std::uint32_t max_liveness = 1000;

/// Per-call options carried in a REQUEST (frame 5, 8 bytes).
struct request_options {
    std::uint32_t timeout_ms = 0;  ///< 0: no deadline
    std::uint8_t priority = 0;     ///< higher first
    std::uint8_t max_attempts = 0; ///< 0: broker default
    /// The client sends this call again (a new connection, or a new broker instance): a broker
    /// that adopts jobs waits for the workers' reports before it runs it again (§3c). Sent only to
    /// a broker that announced `broker_features::adopts_jobs`.
    bool resent = false;
    friend bool operator==(const request_options&, const request_options&) = default;
};

/// Why a message was rejected. The text is for logs.
struct decode_error {
    std::string reason;
};

template <typename T> using decoded = std::variant<T, decode_error>;

// ---- integer frames
// -------------------------------------------------------------------------------

zmq::message_t u8_frame(std::uint8_t value);
zmq::message_t u32_frame(std::uint32_t value);
zmq::message_t u64_frame(std::uint64_t value);
zmq::message_t f64_frame(double value);
zmq::message_t options_frame(const request_options& options);
zmq::message_t string_frame(std::string_view text);

inline std::string_view view(const zmq::message_t& frame) noexcept {
    return {static_cast<const char*>(frame.data()), frame.size()};
}

// ---- decoded messages
// -----------------------------------------------------------------------------

/// The fixed part of every message: frames 0 to 2.
struct header {
    std::string_view protocol;
    command cmd;
};

/// Checks frames 0 to 2 (empty delimiter, a 6-byte protocol id, a 1-byte command). The command byte
/// is not checked against the enum: the caller does that for its own endpoint and direction.
[[nodiscard]] decoded<header> decode_header(std::span<const zmq::message_t> frames);

struct client_request {
    std::uint64_t correlation_id;
    std::string_view function;
    request_options options;
    std::size_t payload_index; ///< index of the payload frame in the message (or the record)
    std::string_view payload;
};
struct correlation_only {
    std::uint64_t correlation_id;
};
struct broker_reply {
    std::uint64_t correlation_id;
    std::string_view worker;
    std::uint32_t attempt;
    std::size_t payload_index;
    std::string_view payload;
};
struct broker_error {
    std::uint64_t correlation_id;
    error_code code;
    std::string_view type;
    std::string_view message;
    std::string_view worker;
    std::uint32_t attempts;
};
struct progress_update {
    std::uint64_t id; ///< correlation id (broker→client) or job id (worker→broker)
    double fraction;
    std::string_view note;
};
/// What a broker announces it does, in its HEARTBEAT (since 1.2; bits, unknown ones ignored).
namespace broker_features {
/// It adopts the jobs a worker reports (HELD) and waits for those reports before it runs a
/// resent call again (docs/protocol.md §3c).
inline constexpr std::uint32_t adopts_jobs = 1;
} // namespace broker_features

struct broker_heartbeat {
    std::uint64_t instance;
    std::uint32_t interval_ms;
    std::uint32_t liveness;
    /// The largest message the broker accepts, bytes; 0 when not announced (a broker before 1.1).
    std::uint64_t max_message_size = 0;
    std::uint32_t features = 0; ///< broker_features bits; 0 before 1.2
};
struct worker_ready {
    std::string_view name;
    std::uint32_t slots;
    std::uint32_t prefetch;
    std::vector<std::string_view> functions;
};
struct worker_reply {
    std::uint64_t job_id;
    std::size_t payload_index;
    std::string_view payload;
};
struct worker_error {
    std::uint64_t job_id;
    error_code code;
    std::string_view type;
    std::string_view message;
};
struct job_only {
    std::uint64_t job_id;
};
/// A CALL: a job's call to the cluster, as a client REQUEST plus the job that makes it.
struct worker_call {
    std::uint64_t parent_job_id;
    client_request request; ///< its payload_index counts from the start of the message
};
struct worker_credit {
    std::uint32_t prefetch;
};
struct job_request {
    std::uint64_t job_id;
    std::string_view function;
    std::uint32_t deadline_ms;
    std::uint32_t attempt;
    std::size_t payload_index;
    std::string_view payload;
    /// Whose call it is (since 1.2; empty before): the caller's routing id and its correlation
    /// id, which the worker reports with the job to a new broker instance (HELD, §3c).
    std::string_view caller;
    std::uint64_t correlation_id = 0;
};
/// HELD (worker → broker): a job the worker holds from an earlier connection (§3c).
struct held_job {
    std::uint64_t job_id;
    std::string_view function;
    std::string_view caller;
    std::uint64_t correlation_id;
    std::uint32_t attempt;
};

/// Limits applied while decoding (the broker passes its configured ones).
struct decode_limits {
    std::size_t max_function_name = default_max_function_name;
    std::uint32_t max_worker_functions = default_max_worker_functions;
    std::uint32_t max_worker_slots = default_max_worker_slots;
};

/// Why `name` cannot name a function (empty, over limits.max_function_name); nothing when it can.
/// The broker answers a call with such a name with no_such_function and this reason.
[[nodiscard]] std::optional<std::string> function_name_problem(std::string_view name,
                                                               const decode_limits& limits = {});

/// An ERROR from the broker to a worker: about job 0, the broker refuses this connection (it is
/// not the worker endpoint: docs/protocol.md §4, Wrong endpoint). Any code.
[[nodiscard]] decoded<worker_error> decode_refusal(std::span<const zmq::message_t> frames);

// Each decoder takes the whole message (frames 0…n, no routing id) and checks frames 3…n. Those of
// the batchable kinds also take the body frames of one BATCH record (views, from index 0).
using record_frames = std::span<const std::string_view>;
[[nodiscard]] decoded<client_request> decode_client_request(std::span<const zmq::message_t> frames);
[[nodiscard]] decoded<client_request> decode_client_request(record_frames frames);
[[nodiscard]] decoded<correlation_only>
decode_correlation_only(std::span<const zmq::message_t> frames);
[[nodiscard]] decoded<correlation_only> decode_correlation_only(record_frames frames);
[[nodiscard]] decoded<broker_reply> decode_broker_reply(std::span<const zmq::message_t> frames);
[[nodiscard]] decoded<broker_reply> decode_broker_reply(record_frames frames);
[[nodiscard]] decoded<broker_error> decode_broker_error(std::span<const zmq::message_t> frames);
[[nodiscard]] decoded<broker_error> decode_broker_error(record_frames frames);
[[nodiscard]] decoded<progress_update> decode_progress(std::span<const zmq::message_t> frames);
[[nodiscard]] decoded<broker_heartbeat>
decode_broker_heartbeat(std::span<const zmq::message_t> frames);
[[nodiscard]] decoded<worker_ready> decode_worker_ready(std::span<const zmq::message_t> frames,
                                                        const decode_limits& limits = {});
[[nodiscard]] decoded<worker_reply> decode_worker_reply(std::span<const zmq::message_t> frames);
[[nodiscard]] decoded<worker_reply> decode_worker_reply(record_frames frames);
[[nodiscard]] decoded<worker_error> decode_worker_error(std::span<const zmq::message_t> frames);
[[nodiscard]] decoded<worker_error> decode_worker_error(record_frames frames);
[[nodiscard]] decoded<job_only> decode_job_only(std::span<const zmq::message_t> frames);
[[nodiscard]] decoded<held_job> decode_held_job(std::span<const zmq::message_t> frames,
                                                const decode_limits& limits = {});
/// CALL (worker → broker): [u64 parent job id] then a REQUEST's body.
[[nodiscard]] decoded<worker_call> decode_worker_call(std::span<const zmq::message_t> frames);
[[nodiscard]] decoded<job_only> decode_job_only(record_frames frames);
[[nodiscard]] decoded<worker_credit> decode_worker_credit(std::span<const zmq::message_t> frames);
[[nodiscard]] decoded<job_request> decode_job_request(std::span<const zmq::message_t> frames,
                                                      const decode_limits& limits = {});
[[nodiscard]] decoded<job_request> decode_job_request(record_frames frames,
                                                      const decode_limits& limits = {});
/// For commands without body frames (HEARTBEAT from a peer, DISCONNECT, DRAIN).
[[nodiscard]] decoded<std::monostate> decode_empty(std::span<const zmq::message_t> frames);

// ---- BATCH (docs/protocol.md §3a)
// -------------------------------------------------------------------------

inline constexpr std::size_t max_batch_records = 65'536;
inline constexpr std::size_t max_record_frames = 16;
/// Payloads above this go in their single form, handed to ZeroMQ without a copy.
inline constexpr std::size_t max_batched_payload = 2048;
/// A sender sends what it has batched once it holds this much (and starts another batch): bounded
/// buffers and a bounded wait for the first record, with ~1,000 small records a message.
inline constexpr std::size_t batch_flush_bytes = 64 * 1024;

/// May a record of this command travel in a BATCH on this endpoint (protocol id) in this direction?
bool batchable(std::string_view protocol_id, command cmd, bool to_broker) noexcept;

/// Builds the body frame of a BATCH, record by record: begin(cmd, n), then exactly n frames.
/// Reused across batches (clear() keeps its capacity). Owned by one thread.
class batch_writer {
public:
    void begin(command cmd, std::uint8_t frames);
    void bytes(std::string_view frame);
    void u8(std::uint8_t value);
    void u32(std::uint32_t value);
    void u64(std::uint64_t value);
    void options(const request_options& options);

    bool empty() const noexcept { return _records == 0; }
    std::size_t records() const noexcept { return _records; }
    /// True once the batch holds batch_flush_bytes: send it before adding more.
    bool full() const noexcept { return _buffer.size() >= batch_flush_bytes; }
    /// The batch frame (an exact-size copy); the writer is empty again.
    zmq::message_t take();
    void clear();

private:
    std::string _buffer;
    std::size_t _records = 0;
};

/// Sends what `batch` holds as one BATCH message ([routing id] [empty] [protocol] [BATCH] [body])
/// and empties it; `scratch` is the caller's reusable frame vector. As send_frames.
[[nodiscard]] bool send_batch(zmq::socket_t& socket, std::vector<zmq::message_t>& scratch,
                              std::string_view routing_id, std::string_view protocol,
                              batch_writer& batch);

/// One record of a parsed BATCH: its command and its body frames (views into the batch frame).
struct batch_record {
    command cmd;
    record_frames frames;
};

/// Splits a BATCH body frame into records without copying. Reused across batches. The records
/// are valid while the frame lives and until the next parse().
class batch_reader {
public:
    /// The reason when the framing is broken (the whole batch is malformed), else nothing.
    [[nodiscard]] std::optional<std::string> parse(std::string_view body);
    std::size_t size() const noexcept { return _records.size(); }
    batch_record record(std::size_t index) const;

private:
    struct entry {
        command cmd;
        std::size_t first, count;
    };
    std::vector<std::string_view> _views;
    std::vector<entry> _records;
};

// ---- sending
// --------------------------------------------------------------------------------------

/// What became of a message handed to a socket.
enum class send_outcome : std::uint8_t {
    sent,
    would_block, ///< the peer's queue is full (its high-water mark): the frames are intact
    gone,        ///< the peer is unroutable (ROUTER_MANDATORY): the frames are intact
};

/// Sends frames as one multipart message; retries when a signal interrupts (EINTR); throws
/// zmq::error_t for other socket errors. ZeroMQ refuses a message at its first frame or not at
/// all, so a message that was not sent keeps every frame and can be sent again later.
[[nodiscard]] send_outcome try_send_frames(zmq::socket_t& socket, std::span<zmq::message_t> frames,
                                           zmq::send_flags flags = zmq::send_flags::dontwait);

/// As try_send_frames, for callers to whom a full queue and a gone peer are the same: true when
/// sent.
[[nodiscard]] inline bool send_frames(zmq::socket_t& socket, std::span<zmq::message_t> frames,
                                      zmq::send_flags flags = zmq::send_flags::dontwait) {
    return try_send_frames(socket, frames, flags) == send_outcome::sent;
}

/// Starts a message: [routing id (when not empty)] [empty] [protocol] [command].
void begin_message(std::vector<zmq::message_t>& out, std::string_view routing_id,
                   std::string_view protocol, command cmd);
/// A whole REQUEST from a client (docs/protocol.md §2), its arguments frame taken as it is.
void request_message(std::vector<zmq::message_t>& out, std::uint64_t correlation_id,
                     std::string_view function, const request_options& options,
                     zmq::message_t arguments);

/// zmq::poll that treats an interrupted call (EINTR: a signal arrived) as "nothing ready".
int poll(zmq::pollitem_t* items, std::size_t count, std::chrono::milliseconds timeout);

/// Receives one whole multipart message into `out` (cleared first). Returns false when none is
/// ready; retries when a signal interrupts (EINTR), which even a non-blocking receive can meet.
[[nodiscard]] bool receive_frames(zmq::socket_t& socket, std::vector<zmq::message_t>& out,
                                  zmq::recv_flags flags = zmq::recv_flags::dontwait);

} // namespace deferq::protocol
