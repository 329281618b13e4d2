#include "deferq/protocol.hpp"

#include <bit>
#include <cmath>
#include <cstring>

#if defined(__SANITIZE_THREAD__)
// ThreadSanitizer annotations (libtsan). libzmq is not instrumented: over inproc it hands the very
// buffer one thread filled to another through a lock-free pipe, which TSan cannot see. A release
// on the buffer before it is sent and an acquire after it is received tell TSan what libzmq
// guarantees (tests/tsan.supp).
extern "C" void __tsan_acquire(void* address);
extern "C" void __tsan_release(void* address);
#endif

namespace deferq::protocol {
namespace {

/// The frame's buffer is about to go to another thread (inproc) or the kernel (TCP).
void handing_over(zmq::message_t& frame) {
#if defined(__SANITIZE_THREAD__)
    if (frame.size() > 0) __tsan_release(frame.data());
#else
    (void)frame;
#endif
}

/// The frame's buffer came from another thread (inproc) or the kernel (TCP).
void taking_over(zmq::message_t& frame) {
#if defined(__SANITIZE_THREAD__)
    if (frame.size() > 0) __tsan_acquire(frame.data());
#else
    (void)frame;
#endif
}

template <typename Int> zmq::message_t int_frame(Int value) {
    zmq::message_t frame(sizeof(Int));
    auto* out = static_cast<unsigned char*>(frame.data());
    for (std::size_t i = 0; i < sizeof(Int); ++i)
        out[i] = static_cast<unsigned char>(value >> (8 * (sizeof(Int) - 1 - i)));
    return frame;
}

template <typename Int> Int read_int(const unsigned char* in) {
    Int value = 0;
    for (std::size_t i = 0; i < sizeof(Int); ++i)
        value = static_cast<Int>((value << 8) | in[i]);
    return value;
}

inline std::string_view frame_view(const zmq::message_t& frame) noexcept {
    return view(frame);
}
inline std::string_view frame_view(std::string_view frame) noexcept {
    return frame;
}

/// Walks the body frames of one message (zmq frames from index 3) or of one BATCH record (views
/// from index 0), recording the first problem met. Keeps each decoder short.
template <typename Frame> class body_reader {
public:
    body_reader(std::span<const Frame> frames, std::size_t first) : _frames(frames), _next(first) {}

    template <typename Int> Int integer(const char* what) {
        const auto* frame = next(what);
        if (!frame) return 0;
        auto bytes = frame_view(*frame);
        if (bytes.size() != sizeof(Int)) {
            fail(std::string(what) + " must be " + std::to_string(sizeof(Int)) + " bytes, got " +
                 std::to_string(bytes.size()));
            return 0;
        }
        return read_int<Int>(reinterpret_cast<const unsigned char*>(bytes.data()));
    }

    double f64(const char* what) {
        auto bits = integer<std::uint64_t>(what);
        auto value = std::bit_cast<double>(bits);
        if (!_error && !std::isfinite(value)) fail(std::string(what) + " is not finite");
        return value;
    }

    std::string_view text(const char* what, std::size_t max_size, bool allow_empty = true) {
        const auto* frame = next(what);
        if (!frame) return {};
        auto bytes = frame_view(*frame);
        if (bytes.size() > max_size)
            fail(std::string(what) + " too long");
        else if (!allow_empty && bytes.empty())
            fail(std::string(what) + " is empty");
        return bytes;
    }

    /// The payload frame: its index in the sequence, and its bytes.
    std::size_t payload(const char* what, std::string_view& bytes) {
        const auto* frame = next(what);
        if (!frame) return 0;
        bytes = frame_view(*frame);
        return _next - 1;
    }

    /// The next frame's bytes; empty (and failed) when there is none.
    std::optional<std::string_view> raw(const char* what) {
        const auto* frame = next(what);
        if (!frame) return std::nullopt;
        return frame_view(*frame);
    }

    error_code code(const char* what) {
        auto value = integer<std::uint8_t>(what);
        if (_error) return error_code::protocol_error;
        auto code = error_code_from_wire(value);
        if (!code) {
            fail(std::string("unknown ") + what + " " + std::to_string(value));
            return error_code::protocol_error;
        }
        return *code;
    }

    std::size_t remaining() const { return _next < _frames.size() ? _frames.size() - _next : 0; }
    /// Passes over the frames left (announcements a later version may add).
    void skip_rest() { _next = std::max(_next, _frames.size()); }

    /// Finishes: no frames may be left over.
    template <typename T> decoded<T> finish(T value) {
        if (!_error && _next < _frames.size())
            fail(std::to_string(_frames.size() - _next) + " unexpected extra frame(s)");
        if (!_error && _next > _frames.size()) fail("missing frames");
        if (_error) return decode_error{std::move(*_error)};
        return value;
    }

    void fail(std::string reason) {
        if (!_error) _error = std::move(reason);
    }
    bool failed() const { return _error.has_value(); }

private:
    const Frame* next(const char* what) {
        if (_error) return nullptr;
        if (_next >= _frames.size()) {
            fail(std::string("missing ") + what);
            return nullptr;
        }
        return &_frames[_next++];
    }

    std::span<const Frame> _frames;
    std::size_t _next;
    std::optional<std::string> _error;
};

/// Where the body frames start: after the header in a whole message, at once in a BATCH record.
template <typename Frame> constexpr std::size_t first_body_frame = 3;
template <> constexpr std::size_t first_body_frame<std::string_view> = 0;

inline constexpr std::size_t max_text = max_text_frame; // type names, messages, notes, worker names

} // namespace

std::string_view to_string(command cmd) noexcept {
    switch (cmd) {
    case command::request:
        return "REQUEST";
    case command::reply:
        return "REPLY";
    case command::error:
        return "ERROR";
    case command::heartbeat:
        return "HEARTBEAT";
    case command::cancel:
        return "CANCEL";
    case command::disconnect:
        return "DISCONNECT";
    case command::progress:
        return "PROGRESS";
    case command::credit:
        return "CREDIT";
    case command::decline:
        return "DECLINE";
    case command::drain:
        return "DRAIN";
    case command::batch:
        return "BATCH";
    case command::call:
        return "CALL";
    case command::wait:
        return "WAIT";
    case command::held:
        return "HELD";
    }
    return "UNKNOWN";
}

zmq::message_t u8_frame(std::uint8_t value) {
    return int_frame(value);
}
zmq::message_t u32_frame(std::uint32_t value) {
    return int_frame(value);
}
zmq::message_t u64_frame(std::uint64_t value) {
    return int_frame(value);
}
zmq::message_t f64_frame(double value) {
    return int_frame(std::bit_cast<std::uint64_t>(value));
}
zmq::message_t string_frame(std::string_view text) {
    return zmq::message_t(text.data(), text.size());
}

zmq::message_t options_frame(const request_options& options) {
    zmq::message_t frame(8);
    auto* out = static_cast<unsigned char*>(frame.data());
    auto timeout = int_frame(options.timeout_ms);
    std::memcpy(out, timeout.data(), 4);
    out[4] = options.priority;
    out[5] = options.max_attempts;
    out[6] = options.resent ? 1 : 0; // flags (since 1.2): bit 0, resent
    out[7] = 0;
    return frame;
}

decoded<header> decode_header(std::span<const zmq::message_t> frames) {
    if (frames.size() < 3) return decode_error{"fewer than 3 frames"};
    if (frames[0].size() != 0) return decode_error{"frame 0 is not the empty delimiter"};
    if (frames[1].size() != 6) return decode_error{"protocol id must be 6 bytes"};
    if (frames[2].size() != 1) return decode_error{"command must be 1 byte"};
    return header{view(frames[1]),
                  static_cast<command>(*static_cast<const std::uint8_t*>(frames[2].data()))};
}

namespace {

// Each decoder is written once, over any frame sequence (a whole message or a BATCH record).

template <typename Frame>
decoded<client_request> client_request_from(std::span<const Frame> frames,
                                            std::size_t first = first_body_frame<Frame>) {
    body_reader<Frame> in(frames, first);
    client_request out{};
    out.correlation_id = in.template integer<std::uint64_t>("correlation id");
    // Any name decodes: a call to a name that cannot be a function's is answered
    // (function_name_problem), not dropped. The frame is bounded by the message size.
    out.function = in.text("function name", SIZE_MAX);
    if (auto options = in.raw("options")) {
        if (options->size() != 8)
            in.fail("options must be 8 bytes");
        else {
            const auto* bytes = reinterpret_cast<const unsigned char*>(options->data());
            out.options.timeout_ms = read_int<std::uint32_t>(bytes);
            out.options.priority = bytes[4];
            out.options.max_attempts = bytes[5];
            out.options.resent = (bytes[6] & 1) != 0;
            if ((bytes[6] & ~1) != 0 || bytes[7] != 0) in.fail("reserved option bits must be 0");
        }
    }
    out.payload_index = in.payload("payload", out.payload);
    return in.finish(out);
}

template <typename Frame>
decoded<correlation_only> correlation_only_from(std::span<const Frame> frames) {
    body_reader<Frame> in(frames, first_body_frame<Frame>);
    correlation_only out{in.template integer<std::uint64_t>("correlation id")};
    return in.finish(out);
}

template <typename Frame> decoded<broker_reply> broker_reply_from(std::span<const Frame> frames) {
    body_reader<Frame> in(frames, first_body_frame<Frame>);
    broker_reply out{};
    out.correlation_id = in.template integer<std::uint64_t>("correlation id");
    out.worker = in.text("worker name", max_text);
    out.attempt = in.template integer<std::uint32_t>("attempt");
    out.payload_index = in.payload("payload", out.payload);
    return in.finish(out);
}

template <typename Frame> decoded<broker_error> broker_error_from(std::span<const Frame> frames) {
    body_reader<Frame> in(frames, first_body_frame<Frame>);
    broker_error out{};
    out.correlation_id = in.template integer<std::uint64_t>("correlation id");
    out.code = in.code("error code");
    out.type = in.text("type", max_text);
    out.message = in.text("message", max_text);
    out.worker = in.text("worker name", max_text);
    out.attempts = in.template integer<std::uint32_t>("attempts");
    return in.finish(out);
}

template <typename Frame> decoded<worker_reply> worker_reply_from(std::span<const Frame> frames) {
    body_reader<Frame> in(frames, first_body_frame<Frame>);
    worker_reply out{};
    out.job_id = in.template integer<std::uint64_t>("job id");
    out.payload_index = in.payload("payload", out.payload);
    return in.finish(out);
}

template <typename Frame>
decoded<worker_error> worker_error_from(std::span<const Frame> frames, bool any_code = false) {
    body_reader<Frame> in(frames, first_body_frame<Frame>);
    worker_error out{};
    out.job_id = in.template integer<std::uint64_t>("job id");
    out.code = in.code("error code");
    if (!in.failed() && !any_code) {
        switch (out.code) {
        case error_code::remote_error:
        case error_code::bad_arguments:
        case error_code::no_such_function:
        case error_code::cancelled:
        case error_code::timeout:
        case error_code::too_large: // its result is over the broker's message size limit
            break;
        default:
            in.fail("a worker may not report " + std::string(to_string(out.code)));
        }
    }
    out.type = in.text("type", max_text);
    out.message = in.text("message", max_text);
    return in.finish(out);
}

template <typename Frame> decoded<job_only> job_only_from(std::span<const Frame> frames) {
    body_reader<Frame> in(frames, first_body_frame<Frame>);
    job_only out{in.template integer<std::uint64_t>("job id")};
    return in.finish(out);
}

template <typename Frame>
decoded<job_request> job_request_from(std::span<const Frame> frames, const decode_limits& limits) {
    body_reader<Frame> in(frames, first_body_frame<Frame>);
    job_request out{};
    out.job_id = in.template integer<std::uint64_t>("job id");
    out.function = in.text("function name", limits.max_function_name, false);
    out.deadline_ms = in.template integer<std::uint32_t>("deadline");
    out.attempt = in.template integer<std::uint32_t>("attempt");
    out.payload_index = in.payload("payload", out.payload);
    if (in.remaining() > 0) { // since 1.2: whose call it is (§3c)
        out.caller = in.text("caller", 255);
        out.correlation_id = in.template integer<std::uint64_t>("correlation id");
    }
    return in.finish(out);
}

using message_frames = std::span<const zmq::message_t>;
using record_frames = std::span<const std::string_view>;
using message_reader = body_reader<zmq::message_t>;

} // namespace

decoded<client_request> decode_client_request(message_frames frames) {
    return client_request_from(frames);
}
decoded<client_request> decode_client_request(record_frames frames) {
    return client_request_from(frames);
}
decoded<worker_call> decode_worker_call(message_frames frames) {
    if (frames.size() < 4) return decode_error{"missing frames"};
    if (frames[3].size() != 8)
        return decode_error{"parent job id must be 8 bytes, got " +
                            std::to_string(frames[3].size())};
    auto parent = read_int<std::uint64_t>(static_cast<const unsigned char*>(frames[3].data()));
    auto request = client_request_from(frames, 4);
    if (auto* error = std::get_if<decode_error>(&request)) return *error;
    return worker_call{parent, std::get<client_request>(request)};
}
decoded<correlation_only> decode_correlation_only(message_frames frames) {
    return correlation_only_from(frames);
}
decoded<correlation_only> decode_correlation_only(record_frames frames) {
    return correlation_only_from(frames);
}
decoded<broker_reply> decode_broker_reply(message_frames frames) {
    return broker_reply_from(frames);
}
decoded<broker_reply> decode_broker_reply(record_frames frames) {
    return broker_reply_from(frames);
}
decoded<broker_error> decode_broker_error(message_frames frames) {
    return broker_error_from(frames);
}
decoded<broker_error> decode_broker_error(record_frames frames) {
    return broker_error_from(frames);
}
decoded<worker_reply> decode_worker_reply(message_frames frames) {
    return worker_reply_from(frames);
}
decoded<worker_reply> decode_worker_reply(record_frames frames) {
    return worker_reply_from(frames);
}
decoded<worker_error> decode_worker_error(message_frames frames) {
    return worker_error_from(frames);
}
decoded<worker_error> decode_refusal(message_frames frames) {
    return worker_error_from(frames, true);
}
decoded<worker_error> decode_worker_error(record_frames frames) {
    return worker_error_from(frames);
}
decoded<job_only> decode_job_only(message_frames frames) {
    return job_only_from(frames);
}
decoded<job_only> decode_job_only(record_frames frames) {
    return job_only_from(frames);
}
decoded<job_request> decode_job_request(message_frames frames, const decode_limits& limits) {
    return job_request_from(frames, limits);
}
decoded<job_request> decode_job_request(record_frames frames, const decode_limits& limits) {
    return job_request_from(frames, limits);
}

decoded<progress_update> decode_progress(message_frames frames) {
    message_reader in(frames, 3);
    progress_update out{};
    out.id = in.integer<std::uint64_t>("id");
    out.fraction = in.f64("fraction");
    if (!in.failed() && (out.fraction < 0.0 || out.fraction > 1.0))
        in.fail("fraction outside 0.0 to 1.0");
    out.note = in.text("note", max_text);
    return in.finish(out);
}

decoded<broker_heartbeat> decode_broker_heartbeat(message_frames frames) {
    message_reader in(frames, 3);
    broker_heartbeat out{};
    out.instance = in.integer<std::uint64_t>("broker instance");
    out.interval_ms = in.integer<std::uint32_t>("heartbeat interval");
    out.liveness = in.integer<std::uint32_t>("liveness");
    if (!in.failed() && (out.interval_ms == 0 || out.liveness == 0))
        in.fail("heartbeat interval and liveness must be positive");
    if (!in.failed() && in.remaining() > 0) {
        out.max_message_size = in.integer<std::uint64_t>("max message size");
        if (!in.failed() && out.max_message_size == 0) in.fail("max message size must be positive");
    }
    if (!in.failed() && in.remaining() > 0) out.features = in.integer<std::uint32_t>("features");
    in.skip_rest(); // a later version may announce more (docs/protocol.md §2, HEARTBEAT)
    return in.finish(out);
}

decoded<worker_ready> decode_worker_ready(message_frames frames, const decode_limits& limits) {
    message_reader in(frames, 3);
    worker_ready out{};
    out.name = in.text("worker name", limits.max_function_name);
    out.slots = in.integer<std::uint32_t>("slots");
    out.prefetch = in.integer<std::uint32_t>("prefetch");
    if (!in.failed() && (out.slots == 0 || out.slots > limits.max_worker_slots))
        in.fail("slots must be 1 to " + std::to_string(limits.max_worker_slots));
    if (!in.failed() && out.prefetch > limits.max_worker_slots)
        in.fail("prefetch above " + std::to_string(limits.max_worker_slots));
    auto count = in.remaining();
    if (!in.failed() && (count == 0 || count > limits.max_worker_functions))
        in.fail("a worker must offer 1 to " + std::to_string(limits.max_worker_functions) +
                " functions");
    if (!in.failed()) {
        out.functions.reserve(count);
        for (std::size_t i = 0; i < count && !in.failed(); ++i)
            out.functions.push_back(in.text("function name", limits.max_function_name, false));
    }
    return in.finish(std::move(out));
}

decoded<held_job> decode_held_job(message_frames frames, const decode_limits& limits) {
    message_reader in(frames, 3);
    held_job out{};
    out.job_id = in.integer<std::uint64_t>("job id");
    out.function = in.text("function name", limits.max_function_name, false);
    out.caller = in.text("caller", 255);
    out.correlation_id = in.integer<std::uint64_t>("correlation id");
    out.attempt = in.integer<std::uint32_t>("attempt");
    return in.finish(out);
}

decoded<worker_credit> decode_worker_credit(message_frames frames) {
    message_reader in(frames, 3);
    worker_credit out{in.integer<std::uint32_t>("prefetch")};
    return in.finish(out);
}

decoded<std::monostate> decode_empty(message_frames frames) {
    message_reader in(frames, 3);
    return in.finish(std::monostate{});
}

// ---- BATCH (docs/protocol.md §3a)
// -------------------------------------------------------------------------

std::string_view cut_text(std::string_view text, std::string& storage) {
    if (text.size() <= max_text_frame) return text;
    constexpr std::string_view mark = "\u2026 (cut)";
    auto end = max_text_frame - mark.size();
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80)
        --end; // not inside a UTF-8 sequence
    storage.assign(text.substr(0, end));
    storage += mark;
    return storage;
}

std::optional<std::string> function_name_problem(std::string_view name,
                                                 const decode_limits& limits) {
    if (name.empty()) return std::string("the function name is empty");
    if (name.size() > limits.max_function_name)
        return "the function name is " + std::to_string(name.size()) +
               " bytes long; the broker takes names of at most " +
               std::to_string(limits.max_function_name) + " bytes (--max-function-name)";
    return std::nullopt;
}

bool batchable(std::string_view protocol_id, command cmd, bool to_broker) noexcept {
    bool client = protocol_id == client_protocol;
    switch (cmd) {
    case command::request:
        // client→broker and broker→worker; from a worker, 0x01 is READY.
        return client ? to_broker : !to_broker;
    case command::cancel:
        return client ? to_broker : !to_broker;
    case command::reply:
    case command::error:
        return client ? !to_broker : to_broker;
    default:
        return false;
    }
}

void batch_writer::begin(command cmd, std::uint8_t frames) {
    _buffer.push_back(static_cast<char>(cmd));
    _buffer.push_back(static_cast<char>(frames));
    ++_records;
}

void batch_writer::bytes(std::string_view frame) {
    auto size = static_cast<std::uint32_t>(frame.size());
    char length[4] = {static_cast<char>(size >> 24), static_cast<char>(size >> 16),
                      static_cast<char>(size >> 8), static_cast<char>(size)};
    _buffer.append(length, 4);
    _buffer.append(frame);
}

void batch_writer::u8(std::uint8_t value) {
    char byte = static_cast<char>(value);
    bytes({&byte, 1});
}

void batch_writer::u32(std::uint32_t value) {
    char out[4];
    for (int i = 0; i < 4; ++i)
        out[i] = static_cast<char>(value >> (8 * (3 - i)));
    bytes({out, 4});
}

void batch_writer::u64(std::uint64_t value) {
    char out[8];
    for (int i = 0; i < 8; ++i)
        out[i] = static_cast<char>(value >> (8 * (7 - i)));
    bytes({out, 8});
}

void batch_writer::options(const request_options& options) {
    auto frame = options_frame(options);
    bytes(view(frame));
}

zmq::message_t batch_writer::take() {
    zmq::message_t frame(_buffer.data(), _buffer.size());
    clear();
    // One large record (up to max_batched_payload… or an error message) may have grown it: a
    // writer kept per peer gives back what it does not usually need.
    if (_buffer.capacity() > 2 * batch_flush_bytes) std::string().swap(_buffer);
    return frame;
}

void batch_writer::clear() {
    _buffer.clear();
    _records = 0;
}

bool send_batch(zmq::socket_t& socket, std::vector<zmq::message_t>& scratch,
                std::string_view routing_id, std::string_view protocol, batch_writer& batch) {
    begin_message(scratch, routing_id, protocol, command::batch);
    scratch.push_back(batch.take());
    return send_frames(socket, scratch);
}

std::optional<std::string> batch_reader::parse(std::string_view body) {
    _views.clear();
    _records.clear();
    if (body.empty()) return "empty batch";
    const auto* in = reinterpret_cast<const unsigned char*>(body.data());
    std::size_t at = 0, size = body.size();
    while (at < size) {
        if (_records.size() == max_batch_records)
            return "more than " + std::to_string(max_batch_records) + " records";
        if (size - at < 2) return "truncated record header";
        auto cmd = static_cast<command>(in[at]);
        std::size_t count = in[at + 1];
        at += 2;
        if (count == 0 || count > max_record_frames)
            return "record frame count must be 1 to " + std::to_string(max_record_frames);
        auto first = _views.size();
        for (std::size_t i = 0; i < count; ++i) {
            if (size - at < 4) return "truncated frame length";
            auto length = read_int<std::uint32_t>(in + at);
            at += 4;
            if (length > size - at) return "frame length past the end of the batch";
            _views.emplace_back(body.data() + at, length);
            at += length;
        }
        _records.push_back({cmd, first, count});
    }
    return std::nullopt;
}

batch_record batch_reader::record(std::size_t index) const {
    const auto& entry = _records[index];
    return {entry.cmd, std::span<const std::string_view>(_views).subspan(entry.first, entry.count)};
}

send_outcome try_send_frames(zmq::socket_t& socket, std::span<zmq::message_t> frames,
                             zmq::send_flags flags) {
    for (std::size_t i = 0; i < frames.size(); ++i) {
        auto more = i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
        while (true) {
            try {
                handing_over(frames[i]);
                if (!socket.send(frames[i], flags | more))
                    return send_outcome::would_block; // EAGAIN (only on the first frame)
                break;
            } catch (const zmq::error_t& e) {
                if (e.num() == EINTR) continue; // a signal came; the frame was not taken: again
                if (e.num() == EHOSTUNREACH) return send_outcome::gone; // ROUTER_MANDATORY
                throw;
            }
        }
    }
    return send_outcome::sent;
}

void begin_message(std::vector<zmq::message_t>& out, std::string_view routing_id,
                   std::string_view protocol, command cmd) {
    out.clear();
    if (!routing_id.empty()) out.emplace_back(routing_id.data(), routing_id.size());
    out.emplace_back();
    out.emplace_back(protocol.data(), protocol.size());
    out.push_back(u8_frame(static_cast<std::uint8_t>(cmd)));
}

void request_message(std::vector<zmq::message_t>& out, std::uint64_t correlation_id,
                     std::string_view function, const request_options& options,
                     zmq::message_t arguments) {
    begin_message(out, {}, client_protocol, command::request);
    out.push_back(u64_frame(correlation_id));
    out.push_back(string_frame(function));
    out.push_back(options_frame(options));
    out.push_back(std::move(arguments));
}

int poll(zmq::pollitem_t* items, std::size_t count, std::chrono::milliseconds timeout) {
    try {
        return zmq::poll(items, count, timeout);
    } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) return 0;
        throw;
    }
}

bool receive_frames(zmq::socket_t& socket, std::vector<zmq::message_t>& out,
                    zmq::recv_flags flags) {
    out.clear();
    while (true) {
        zmq::message_t frame;
        zmq::recv_result_t got;
        try {
            got = socket.recv(frame, out.empty() ? flags : zmq::recv_flags::none);
        } catch (const zmq::error_t& e) {
            // A signal came while ZeroMQ processed its commands (even a non-blocking receive does):
            // nothing was taken, receive again.
            if (e.num() == EINTR) continue;
            throw;
        }
        if (!got) return false;
        taking_over(frame);
        bool more = frame.more();
        out.push_back(std::move(frame));
        if (!more) return true;
    }
}

} // namespace deferq::protocol
