// Frame encoding and validated decoding of the wire protocol (docs/protocol.md), without sockets.

#include "deferq/protocol.hpp"

#include "deferq/codec.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

using deferq::error_code;
using deferq::protocol::command;
namespace protocol = deferq::protocol;

using frames_view = std::span<const zmq::message_t>;

/// A message as byte strings: cheap to copy and to break one frame at a time. build() makes frames.
using layout = std::vector<std::string>;

std::string bytes_of(const zmq::message_t& frame) {
    return std::string(protocol::view(frame));
}

std::vector<zmq::message_t> build(const layout& message) {
    std::vector<zmq::message_t> frames;
    frames.reserve(message.size());
    for (const auto& frame : message)
        frames.emplace_back(frame.data(), frame.size());
    return frames;
}

std::string u8(std::uint8_t value) {
    return bytes_of(protocol::u8_frame(value));
}
std::string u32(std::uint32_t value) {
    return bytes_of(protocol::u32_frame(value));
}
std::string u64(std::uint64_t value) {
    return bytes_of(protocol::u64_frame(value));
}
std::string f64(double value) {
    return bytes_of(protocol::f64_frame(value));
}
std::string options(const protocol::request_options& value) {
    return bytes_of(protocol::options_frame(value));
}
std::string payload() {
    return bytes_of(deferq::codec::encode_args(1, 2));
}

/// Frames 0 to 2 (as protocol::begin_message writes them, without a routing id), then `body`.
layout message(std::string_view protocol_id, command cmd, const layout& body = {}) {
    std::vector<zmq::message_t> frames;
    protocol::begin_message(frames, {}, protocol_id, cmd);
    layout out;
    for (const auto& frame : frames)
        out.push_back(bytes_of(frame));
    out.insert(out.end(), body.begin(), body.end());
    return out;
}

layout client(command cmd, const layout& body = {}) {
    return message(protocol::client_protocol, cmd, body);
}
layout worker(command cmd, const layout& body = {}) {
    return message(protocol::worker_protocol, cmd, body);
}

// ---- one well-formed message per decoder --------------------------------------------------------

const protocol::request_options sample_options{1500, 7, 2};

layout good_client_request() {
    return client(command::request, {u64(42), "add", options(sample_options), payload()});
}
layout good_cancel() {
    return client(command::cancel, {u64(42)});
}
layout good_broker_reply() {
    return client(command::reply, {u64(42), "worker-1", u32(2), payload()});
}
layout good_broker_error() {
    return client(command::error,
                  {u64(42), u8(6), "std::invalid_argument", "bad input", "worker-1", u32(3)});
}
layout good_progress() {
    return client(command::progress, {u64(42), f64(0.5), "half way"});
}
layout good_broker_heartbeat() {
    return client(command::heartbeat,
                  {u64(0x0123456789abcdefULL), u32(1000), u32(3), u64(64 * 1024 * 1024)});
}
layout good_worker_ready() {
    return worker(protocol::ready, {"worker-1", u32(4), u32(2), "add", "mul"});
}
layout good_worker_reply() {
    return worker(command::reply, {u64(9), payload()});
}
layout good_worker_error() {
    return worker(command::error, {u64(9), u8(1), "std::runtime_error", "boom"});
}
layout good_decline() {
    return worker(command::decline, {u64(9)});
}
layout good_credit() {
    return worker(command::credit, {u32(5)});
}
layout good_job_request() {
    return worker(command::request, {u64(9), "add", u32(250), u32(1), payload()});
}
layout good_drain() {
    return worker(command::drain);
}

// ---- every decoder behind one signature ---------------------------------------------------------

template <typename T> std::optional<std::string> rejection(const protocol::decoded<T>& result) {
    if (const auto* error = std::get_if<protocol::decode_error>(&result)) return error->reason;
    return std::nullopt;
}

/// The decoded value; fails the test (with the reason) when the message was rejected.
template <typename T> T accepted(const protocol::decoded<T>& result) {
    if (const auto* error = std::get_if<protocol::decode_error>(&result))
        FAIL("rejected: " << error->reason);
    return std::get<T>(result);
}

/// Whether `result` is a decode_error with a reason for the logs.
template <typename T> bool rejected(const protocol::decoded<T>& result) {
    auto reason = rejection(result);
    if (reason) CHECK_FALSE(reason->empty());
    return reason.has_value();
}

using decode_fn = std::function<std::optional<std::string>(frames_view)>;

struct decoder_case {
    std::string name;
    decode_fn decode;
    layout good;
    std::size_t min_frames;    ///< fewest frames a well-formed message has
    bool extra_frames_allowed; ///< header: not its business; READY: more function names
    /// Frames whose size is fixed: integers, options, and for the header the delimiter, protocol
    /// id and command.
    std::vector<std::size_t> fixed_size_frames;
};

std::vector<decoder_case> all_decoders() {
    using P = decoder_case;
    return {
        P{.name = "decode_header",
          .decode = [](frames_view f) { return rejection(protocol::decode_header(f)); },
          .good = good_cancel(),
          .min_frames = 3,
          .extra_frames_allowed = true,
          .fixed_size_frames = {0, 1, 2}},
        P{.name = "decode_client_request",
          .decode = [](frames_view f) { return rejection(protocol::decode_client_request(f)); },
          .good = good_client_request(),
          .min_frames = 7,
          .extra_frames_allowed = false,
          .fixed_size_frames = {3, 5}},
        P{.name = "decode_correlation_only",
          .decode = [](frames_view f) { return rejection(protocol::decode_correlation_only(f)); },
          .good = good_cancel(),
          .min_frames = 4,
          .extra_frames_allowed = false,
          .fixed_size_frames = {3}},
        P{.name = "decode_broker_reply",
          .decode = [](frames_view f) { return rejection(protocol::decode_broker_reply(f)); },
          .good = good_broker_reply(),
          .min_frames = 7,
          .extra_frames_allowed = false,
          .fixed_size_frames = {3, 5}},
        P{.name = "decode_broker_error",
          .decode = [](frames_view f) { return rejection(protocol::decode_broker_error(f)); },
          .good = good_broker_error(),
          .min_frames = 9,
          .extra_frames_allowed = false,
          .fixed_size_frames = {3, 4, 8}},
        P{.name = "decode_progress",
          .decode = [](frames_view f) { return rejection(protocol::decode_progress(f)); },
          .good = good_progress(),
          .min_frames = 6,
          .extra_frames_allowed = false,
          .fixed_size_frames = {3, 4}},
        P{.name = "decode_broker_heartbeat",
          .decode = [](frames_view f) { return rejection(protocol::decode_broker_heartbeat(f)); },
          .good = good_broker_heartbeat(),
          .min_frames = 6,
          .extra_frames_allowed = true, // later versions may announce more
          .fixed_size_frames = {3, 4, 5, 6}},
        P{.name = "decode_worker_ready",
          .decode = [](frames_view f) { return rejection(protocol::decode_worker_ready(f)); },
          .good = good_worker_ready(),
          .min_frames = 7,
          .extra_frames_allowed = true,
          .fixed_size_frames = {4, 5}},
        P{.name = "decode_worker_reply",
          .decode = [](frames_view f) { return rejection(protocol::decode_worker_reply(f)); },
          .good = good_worker_reply(),
          .min_frames = 5,
          .extra_frames_allowed = false,
          .fixed_size_frames = {3}},
        P{.name = "decode_worker_error",
          .decode = [](frames_view f) { return rejection(protocol::decode_worker_error(f)); },
          .good = good_worker_error(),
          .min_frames = 7,
          .extra_frames_allowed = false,
          .fixed_size_frames = {3, 4}},
        P{.name = "decode_job_only",
          .decode = [](frames_view f) { return rejection(protocol::decode_job_only(f)); },
          .good = good_decline(),
          .min_frames = 4,
          .extra_frames_allowed = false,
          .fixed_size_frames = {3}},
        P{.name = "decode_worker_credit",
          .decode = [](frames_view f) { return rejection(protocol::decode_worker_credit(f)); },
          .good = good_credit(),
          .min_frames = 4,
          .extra_frames_allowed = false,
          .fixed_size_frames = {3}},
        P{.name = "decode_job_request",
          .decode = [](frames_view f) { return rejection(protocol::decode_job_request(f)); },
          .good = good_job_request(),
          .min_frames = 8,
          .extra_frames_allowed = false,
          .fixed_size_frames = {3, 5, 6}},
        P{.name = "decode_empty",
          .decode = [](frames_view f) { return rejection(protocol::decode_empty(f)); },
          .good = good_drain(),
          .min_frames = 3,
          .extra_frames_allowed = false,
          .fixed_size_frames = {}},
    };
}

std::string hex(const layout& message) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (const auto& frame : message) {
        out += '[';
        for (unsigned char byte : frame) {
            out += digits[byte >> 4];
            out += digits[byte & 0xf];
        }
        out += ']';
    }
    return out;
}

} // namespace

// ---- frame encoding -----------------------------------------------------------------------------

TEST_CASE("integer frames are big-endian and exactly as wide as their type", "[protocol]") {
    CHECK(u8(0xab) == std::string("\xab", 1));
    CHECK(u32(0x01020304) == std::string("\x01\x02\x03\x04", 4));
    CHECK(u64(0x0102030405060708ULL) == std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
    CHECK(u32(0) == std::string(4, '\0'));
    CHECK(u64(0) == std::string(8, '\0'));
    CHECK(f64(1.0) == std::string("\x3f\xf0\x00\x00\x00\x00\x00\x00", 8));
}

TEST_CASE("options frame is timeout_ms, priority, max_attempts and two zero reserved bytes",
          "[protocol]") {
    auto frame = options({0x0a0b0c0d, 0xfe, 0x03});
    CHECK(frame == std::string("\x0a\x0b\x0c\x0d\xfe\x03\x00\x00", 8));
}

TEST_CASE("string frames keep every byte, including NUL", "[protocol]") {
    std::string text("a\0b\xff", 4);
    auto frame = protocol::string_frame(text);
    CHECK(frame.size() == 4);
    CHECK(protocol::view(frame) == text);
    CHECK(protocol::string_frame("").size() == 0);
}

TEST_CASE("begin_message writes a routing id only when one is given", "[protocol]") {
    std::vector<zmq::message_t> frames;
    protocol::begin_message(frames, "peer", protocol::worker_protocol, command::heartbeat);
    REQUIRE(frames.size() == 4);
    CHECK(protocol::view(frames[0]) == "peer");
    CHECK(frames[1].size() == 0);
    CHECK(protocol::view(frames[2]) == "DFQW01");
    CHECK(protocol::view(frames[3]) == std::string("\x04", 1));

    protocol::begin_message(frames, {}, protocol::client_protocol, command::drain);
    REQUIRE(frames.size() == 3);
    CHECK(frames[0].size() == 0);
    CHECK(protocol::view(frames[1]) == "DFQC01");
    CHECK(protocol::view(frames[2]) == std::string("\x0a", 1));
}

TEST_CASE("u64 frames round-trip through the decoders", "[protocol]") {
    for (std::uint64_t value :
         {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{0x0102030405060708ULL},
          std::uint64_t{0x8000000000000000ULL}, std::numeric_limits<std::uint64_t>::max()}) {
        INFO("value " << value);
        auto cancel = build(client(command::cancel, {u64(value)}));
        CHECK(accepted(protocol::decode_correlation_only(cancel)).correlation_id == value);
        auto decline = build(worker(command::decline, {u64(value)}));
        CHECK(accepted(protocol::decode_job_only(decline)).job_id == value);
    }
}

TEST_CASE("u32 frames round-trip through the decoders", "[protocol]") {
    for (std::uint32_t value :
         {std::uint32_t{0}, std::uint32_t{1}, std::uint32_t{0x01020304}, std::uint32_t{0x80000000},
          std::numeric_limits<std::uint32_t>::max()}) {
        INFO("value " << value);
        auto credit = build(worker(command::credit, {u32(value)}));
        CHECK(accepted(protocol::decode_worker_credit(credit)).prefetch == value);
        auto request =
            build(worker(command::request, {u64(1), "f", u32(value), u32(value), payload()}));
        auto job = accepted(protocol::decode_job_request(request));
        CHECK(job.deadline_ms == value);
        CHECK(job.attempt == value);
    }
}

TEST_CASE("u8 frames round-trip every wire error code", "[protocol]") {
    for (int wire = 1; wire <= deferq::max_wire_error_code; ++wire) {
        INFO("code " << wire);
        auto code = static_cast<std::uint8_t>(wire);
        auto to_client = build(client(command::error, {u64(1), u8(code), "", "", "", u32(1)}));
        if (code == static_cast<std::uint8_t>(deferq::error_code::callback_error)) {
            CHECK(rejected(protocol::decode_broker_error(to_client))); // the client's own code
            continue;
        }
        CHECK(static_cast<int>(accepted(protocol::decode_broker_error(to_client)).code) == wire);
    }
}

TEST_CASE("a worker may report only the codes a handler can cause", "[protocol]") {
    // docs/protocol.md: ERROR (worker → broker) carries remote_error, bad_arguments,
    // no_such_function, cancelled, timeout or too_large.
    for (int wire = 1; wire <= deferq::max_wire_error_code; ++wire) {
        INFO("code " << wire);
        auto code = static_cast<deferq::error_code>(wire);
        bool allowed =
            code == deferq::error_code::remote_error || code == deferq::error_code::bad_arguments ||
            code == deferq::error_code::no_such_function || code == deferq::error_code::cancelled ||
            code == deferq::error_code::timeout || code == deferq::error_code::too_large;
        auto from_worker =
            build(worker(command::error, {u64(1), u8(static_cast<std::uint8_t>(wire)), "", ""}));
        auto result = protocol::decode_worker_error(from_worker);
        CHECK(std::holds_alternative<protocol::worker_error>(result) == allowed);
    }
}

TEST_CASE("a progress fraction outside 0.0 to 1.0 is rejected", "[protocol]") {
    for (double value :
         {-0.5, 1.5, std::numeric_limits<double>::max(), std::numeric_limits<double>::lowest()}) {
        INFO("value " << value);
        auto frames = build(client(command::progress, {u64(1), f64(value), ""}));
        CHECK(std::holds_alternative<protocol::decode_error>(protocol::decode_progress(frames)));
    }
}

TEST_CASE("f64 frames round-trip exactly, sign of zero included", "[protocol]") {
    for (double value :
         {0.0, -0.0, 0.25, 1.0, 1.0 / 3.0, std::numeric_limits<double>::denorm_min()}) {
        INFO("value " << value);
        auto frames = build(client(command::progress, {u64(1), f64(value), ""}));
        auto decoded = accepted(protocol::decode_progress(frames)).fraction;
        CHECK(decoded == value);
        CHECK(std::signbit(decoded) == std::signbit(value));
    }
}

TEST_CASE("options frames round-trip through decode_client_request", "[protocol]") {
    for (auto value :
         {protocol::request_options{0, 0, 0}, protocol::request_options{1500, 7, 2},
          protocol::request_options{std::numeric_limits<std::uint32_t>::max(), 255, 255}}) {
        INFO("timeout " << value.timeout_ms << " priority " << int(value.priority)
                        << " max_attempts " << int(value.max_attempts));
        auto frames = build(client(command::request, {u64(1), "f", options(value), payload()}));
        CHECK(accepted(protocol::decode_client_request(frames)).options == value);
    }
}

// ---- properties shared by every decoder ---------------------------------------------------------

TEST_CASE("every decoder accepts its well-formed message", "[protocol]") {
    for (const auto& decoder : all_decoders()) {
        INFO(decoder.name << " on " << hex(decoder.good));
        auto frames = build(decoder.good);
        CHECK(decoder.decode(frames).value_or("accepted") == "accepted");
    }
}

TEST_CASE("every decoder rejects a message missing frames", "[protocol]") {
    for (const auto& decoder : all_decoders()) {
        REQUIRE(decoder.good.size() >= decoder.min_frames);
        for (std::size_t count = 0; count < decoder.min_frames; ++count) {
            layout cut(decoder.good.begin(),
                       decoder.good.begin() + static_cast<std::ptrdiff_t>(count));
            INFO(decoder.name << " with " << count << " frame(s)");
            auto frames = build(cut);
            auto reason = decoder.decode(frames);
            REQUIRE(reason.has_value());
            CHECK_FALSE(reason->empty());
        }
    }
}

TEST_CASE("every fixed-length decoder rejects an extra frame", "[protocol]") {
    for (const auto& decoder : all_decoders()) {
        if (decoder.extra_frames_allowed) continue;
        for (const std::string& extra : {std::string(), std::string("x"), u64(1)}) {
            auto longer = decoder.good;
            longer.push_back(extra);
            INFO(decoder.name << " with an extra frame of " << extra.size() << " byte(s)");
            auto frames = build(longer);
            CHECK(decoder.decode(frames).has_value());
        }
    }
}

TEST_CASE("every decoder rejects a fixed-size frame that is shorter or longer", "[protocol]") {
    for (const auto& decoder : all_decoders()) {
        for (auto index : decoder.fixed_size_frames) {
            REQUIRE(index < decoder.good.size());
            const auto& original = decoder.good[index];
            std::vector<std::string> variants{original + '\0', original + std::string(8, 'x')};
            if (!original.empty()) {
                variants.push_back(original.substr(0, original.size() - 1));
                variants.push_back(std::string());
            }
            for (const auto& variant : variants) {
                auto broken = decoder.good;
                broken[index] = variant;
                INFO(decoder.name << ": frame " << index << " of " << variant.size()
                                  << " byte(s) instead of " << original.size());
                auto frames = build(broken);
                CHECK(decoder.decode(frames).has_value());
            }
        }
    }
}

TEST_CASE("decoders never throw on 2,000 random multipart messages", "[protocol][fuzz]") {
    std::mt19937 random(20240601); // fixed seed: the same messages on every run
    std::uniform_int_distribution<int> frame_count(0, 10);
    std::uniform_int_distribution<int> frame_size(0, 20);
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_int_distribution<int> coin(0, 1);
    auto decoders = all_decoders();

    std::size_t exceptions = 0, broken_promises = 0, headers_accepted = 0, bodies_accepted = 0;
    std::string first_problem;
    for (int round = 0; round < 2000; ++round) {
        layout message(static_cast<std::size_t>(frame_count(random)));
        for (auto& frame : message) {
            frame.resize(static_cast<std::size_t>(frame_size(random)));
            for (auto& c : frame)
                c = static_cast<char>(byte(random));
        }
        // Half the messages get a valid header, so that the body checks run too.
        if (message.size() >= 3 && coin(random) == 1) {
            message[0].clear();
            message[1] = coin(random) ? "DFQC01" : "DFQW01";
            message[2] = u8(static_cast<std::uint8_t>(byte(random) % 11));
        }
        auto frames = build(message);
        for (const auto& decoder : decoders) {
            try {
                if (!decoder.decode(frames)) {
                    if (decoder.name == "decode_header")
                        ++headers_accepted;
                    else
                        ++bodies_accepted;
                }
            } catch (const std::exception& e) {
                if (exceptions++ == 0)
                    first_problem = decoder.name + " threw " + e.what() + " on " + hex(message);
            } catch (...) {
                if (exceptions++ == 0)
                    first_problem = decoder.name + " threw a non-std exception on " + hex(message);
            }
        }
        // What an accepted message promises: indexes in range, names within their limits.
        auto check = [&](bool kept, const char* what) {
            if (!kept && broken_promises++ == 0)
                first_problem = std::string(what) + " on " + hex(message);
        };
        if (auto request = protocol::decode_client_request(frames); !rejection(request)) {
            const auto& r = std::get<protocol::client_request>(request);
            check(r.payload_index == 6 && r.payload_index < frames.size(),
                  "client_request payload index");
        }
        if (auto ready = protocol::decode_worker_ready(frames); !rejection(ready)) {
            const auto& r = std::get<protocol::worker_ready>(ready);
            check(r.slots >= 1 && r.slots <= protocol::default_max_worker_slots,
                  "worker_ready slots");
            check(!r.functions.empty() && r.functions.size() + 6 == frames.size(),
                  "worker_ready functions");
        }
        if (auto progress = protocol::decode_progress(frames); !rejection(progress))
            check(std::isfinite(std::get<protocol::progress_update>(progress).fraction),
                  "progress fraction");
        if (auto job = protocol::decode_job_request(frames); !rejection(job))
            check(std::get<protocol::job_request>(job).payload_index == 7,
                  "job_request payload index");
    }
    INFO(first_problem);
    CHECK(exceptions == 0);
    CHECK(broken_promises == 0);
    // The generator does reach past the header (otherwise this test would prove little).
    CHECK(headers_accepted > 100);
    CHECK(bodies_accepted > 0);
}

// ---- decode_header ------------------------------------------------------------------------------

TEST_CASE("decode_header reads the protocol id and the command", "[protocol]") {
    auto frames = build(worker(command::credit, {u32(1)}));
    auto head = accepted(protocol::decode_header(frames));
    CHECK(head.protocol == protocol::worker_protocol);
    CHECK(head.cmd == command::credit);
}

TEST_CASE("decode_header rejects fewer than three frames", "[protocol]") {
    CHECK(rejected(protocol::decode_header(build({}))));
    CHECK(rejected(protocol::decode_header(build({""}))));
    CHECK(rejected(protocol::decode_header(build({"", "DFQC01"}))));
}

TEST_CASE("decode_header rejects a non-empty delimiter", "[protocol]") {
    CHECK(rejected(protocol::decode_header(build({"x", "DFQC01", u8(1)}))));
    CHECK(rejected(protocol::decode_header(build({std::string(1, '\0'), "DFQC01", u8(1)}))));
}

TEST_CASE("decode_header rejects a protocol id that is not 6 bytes", "[protocol]") {
    for (std::string id : {"", "DFQC0", "DFQC011", "DFQC01DFQC01"}) {
        INFO("protocol id '" << id << "'");
        CHECK(rejected(protocol::decode_header(build({"", id, u8(1)}))));
    }
}

TEST_CASE("decode_header rejects a command that is not 1 byte", "[protocol]") {
    CHECK(rejected(protocol::decode_header(build({"", "DFQC01", ""}))));
    CHECK(rejected(protocol::decode_header(build({"", "DFQC01", std::string("\x01\x01", 2)}))));
}

TEST_CASE("decode_header leaves the protocol id and command byte for the caller to judge",
          "[protocol]") {
    // "The command byte is not checked against the enum: the caller does that" (protocol.hpp).
    auto frames = build({"", "XXXX99", u8(0xff)});
    auto head = accepted(protocol::decode_header(frames));
    CHECK(head.protocol == "XXXX99");
    CHECK(static_cast<int>(head.cmd) == 0xff);
}

// ---- client endpoint ----------------------------------------------------------------------------

TEST_CASE("decode_client_request reads every field", "[protocol]") {
    auto frames = build(good_client_request());
    auto request = accepted(protocol::decode_client_request(frames));
    CHECK(request.correlation_id == 42);
    CHECK(request.function == "add");
    CHECK(request.options == sample_options);
    REQUIRE(request.payload_index == 6);
    CHECK(bytes_of(frames[request.payload_index]) == payload());
}

TEST_CASE("decode_client_request takes any function name, and function_name_problem says which "
          "cannot be a function's",
          "[protocol]") {
    // "A REQUEST whose function name is empty or over the limit SHALL be answered with
    // no_such_function, naming the limit" (not dropped as malformed).
    auto request_for = [](std::string name) {
        return build(client(command::request,
                            {u64(1), std::move(name), options(sample_options), payload()}));
    };
    auto empty = request_for("");
    CHECK(accepted(protocol::decode_client_request(empty)).function.empty());
    CHECK_THAT(protocol::function_name_problem("").value_or(""), Catch::Contains("empty"));

    auto longest = std::string(protocol::default_max_function_name, 'f');
    CHECK(accepted(protocol::decode_client_request(request_for(longest))).function.size() == 128);
    CHECK_FALSE(protocol::function_name_problem(longest));
    auto too_long = std::string(10'000, 'f');
    CHECK(accepted(protocol::decode_client_request(request_for(too_long))).function.size() ==
          10'000);
    auto problem = protocol::function_name_problem(too_long).value_or("");
    CHECK_THAT(problem, Catch::Contains("10000 bytes") && Catch::Contains("128 bytes"));
    CHECK(problem.size() < 200); // the name itself is not echoed

    protocol::decode_limits limits;
    limits.max_function_name = 4;
    CHECK_FALSE(protocol::function_name_problem("abcd", limits));
    CHECK(protocol::function_name_problem("abcde", limits));
}

TEST_CASE("decode_client_request rejects nonzero reserved option bits", "[protocol]") {
    for (std::size_t reserved : {6u, 7u}) {
        for (char value : {'\x01', '\x02', '\x80', '\xff'}) {
            if (reserved == 6 && value == '\x01') continue; // the resent flag (§3c)
            auto bytes = options(sample_options);
            bytes[reserved] = value;
            INFO("option byte " << reserved << " = " << int(static_cast<unsigned char>(value)));
            auto frames = build(client(command::request, {u64(1), "add", bytes, payload()}));
            CHECK(rejected(protocol::decode_client_request(frames)));
        }
    }
}

TEST_CASE("the resent flag travels in option byte 6, bit 0 (§3c)", "[protocol]") {
    auto resent = sample_options;
    resent.resent = true;
    auto frame = protocol::options_frame(resent);
    auto bytes = std::string(protocol::view(frame));
    CHECK(bytes[6] == '\x01');
    auto frames = build(client(command::request, {u64(1), "add", bytes, payload()}));
    CHECK(accepted(protocol::decode_client_request(frames)).options.resent);
    frames = build(client(command::request, {u64(1), "add", options(sample_options), payload()}));
    CHECK_FALSE(accepted(protocol::decode_client_request(frames)).options.resent);
}

TEST_CASE("HELD and a JOB that names its caller decode (§3c)", "[protocol]") {
    auto frames =
        build({"", "DFQW01", std::string(1, '\x0e'), u64(9), "add", "caller-id", u64(42), u32(2)});
    auto held = accepted(protocol::decode_held_job(frames));
    CHECK(held.job_id == 9);
    CHECK(held.function == "add");
    CHECK(held.caller == "caller-id");
    CHECK(held.correlation_id == 42);
    CHECK(held.attempt == 2);
    frames.pop_back();
    CHECK(rejected(protocol::decode_held_job(frames)));
    auto job = build({"", "DFQW01", std::string(1, '\x01'), u64(9), "add", u32(0), u32(1), "args",
                      "caller-id", u64(42)});
    auto decoded = accepted(protocol::decode_job_request(job));
    CHECK(decoded.caller == "caller-id");
    CHECK(decoded.correlation_id == 42);
    job.pop_back();
    CHECK(rejected(protocol::decode_job_request(job))); // a caller without its correlation id
    job.pop_back();
    CHECK(accepted(protocol::decode_job_request(job)).caller.empty()); // before 1.2
}

TEST_CASE("decode_client_request accepts an empty payload frame, which the broker never decodes",
          "[protocol]") {
    auto frames = build(client(command::request, {u64(1), "add", options(sample_options), ""}));
    CHECK(accepted(protocol::decode_client_request(frames)).payload_index == 6);
}

TEST_CASE("decode_correlation_only reads the correlation id", "[protocol]") {
    auto frames = build(good_cancel());
    CHECK(accepted(protocol::decode_correlation_only(frames)).correlation_id == 42);
}

TEST_CASE("decode_broker_reply reads every field", "[protocol]") {
    auto frames = build(good_broker_reply());
    auto reply = accepted(protocol::decode_broker_reply(frames));
    CHECK(reply.correlation_id == 42);
    CHECK(reply.worker == "worker-1");
    CHECK(reply.attempt == 2);
    REQUIRE(reply.payload_index == 6);
    CHECK(bytes_of(frames[reply.payload_index]) == payload());
}

TEST_CASE("decode_broker_error reads every field", "[protocol]") {
    auto frames = build(good_broker_error());
    auto error = accepted(protocol::decode_broker_error(frames));
    CHECK(error.correlation_id == 42);
    CHECK(error.code == error_code::bad_arguments);
    CHECK(error.type == "std::invalid_argument");
    CHECK(error.message == "bad input");
    CHECK(error.worker == "worker-1");
    CHECK(error.attempts == 3);
}

TEST_CASE("decode_broker_error accepts an empty type name and worker name", "[protocol]") {
    // "remote exception type name (may be empty)", "worker name (empty when no worker was
    // involved)".
    auto frames = build(client(command::error, {u64(1), u8(8), "", "queue full", "", u32(0)}));
    auto error = accepted(protocol::decode_broker_error(frames));
    CHECK(error.code == error_code::overloaded);
    CHECK(error.type.empty());
    CHECK(error.worker.empty());
}

TEST_CASE("decode_broker_error rejects an unknown error code", "[protocol]") {
    for (int code : {0, 12, 255}) {
        INFO("code " << code);
        auto frames = build(client(
            command::error, {u64(1), u8(static_cast<std::uint8_t>(code)), "t", "m", "w", u32(1)}));
        CHECK(rejected(protocol::decode_broker_error(frames)));
    }
}

TEST_CASE("decode_progress reads every field", "[protocol]") {
    auto frames = build(good_progress());
    auto update = accepted(protocol::decode_progress(frames));
    CHECK(update.id == 42);
    CHECK(update.fraction == 0.5);
    CHECK(update.note == "half way");
}

TEST_CASE("decode_progress rejects a fraction that is not finite", "[protocol]") {
    for (double fraction :
         {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::signaling_NaN(),
          std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity()}) {
        INFO("fraction " << fraction);
        auto from_broker = build(client(command::progress, {u64(1), f64(fraction), "note"}));
        CHECK(rejected(protocol::decode_progress(from_broker)));
        auto from_worker = build(worker(command::progress, {u64(1), f64(fraction), "note"}));
        CHECK(rejected(protocol::decode_progress(from_worker)));
    }
}

TEST_CASE("decode_broker_heartbeat reads every field", "[protocol]") {
    auto frames = build(good_broker_heartbeat());
    auto heartbeat = accepted(protocol::decode_broker_heartbeat(frames));
    CHECK(heartbeat.instance == 0x0123456789abcdefULL);
    CHECK(heartbeat.interval_ms == 1000);
    CHECK(heartbeat.liveness == 3);
    CHECK(heartbeat.max_message_size == 64 * 1024 * 1024);
}

TEST_CASE("a heartbeat without the max message size (a broker before 1.1) still decodes",
          "[protocol]") {
    // "HEARTBEAT (broker → peer): u64 instance, u32 interval, u32 liveness, then, from 1.1, u64 max
    // message size."
    auto frames = build(client(command::heartbeat, {u64(7), u32(1000), u32(3)}));
    auto heartbeat = accepted(protocol::decode_broker_heartbeat(frames));
    CHECK(heartbeat.instance == 7);
    CHECK(heartbeat.max_message_size == 0);
    auto zero_size = build(client(command::heartbeat, {u64(7), u32(1000), u32(3), u64(0)}));
    CHECK(rejected(protocol::decode_broker_heartbeat(zero_size)));
}

TEST_CASE("decode_broker_heartbeat rejects a zero interval or a zero liveness", "[protocol]") {
    auto zero_interval = build(client(command::heartbeat, {u64(1), u32(0), u32(3)}));
    CHECK(rejected(protocol::decode_broker_heartbeat(zero_interval)));
    auto zero_liveness = build(worker(command::heartbeat, {u64(1), u32(1000), u32(0)}));
    CHECK(rejected(protocol::decode_broker_heartbeat(zero_liveness)));
    auto smallest = build(worker(command::heartbeat, {u64(0), u32(1), u32(1)}));
    CHECK(accepted(protocol::decode_broker_heartbeat(smallest)).interval_ms == 1);
}

// ---- worker endpoint ----------------------------------------------------------------------------

TEST_CASE("decode_worker_ready reads the name, slots, prefetch and every function", "[protocol]") {
    auto frames = build(good_worker_ready());
    auto ready = accepted(protocol::decode_worker_ready(frames));
    CHECK(ready.name == "worker-1");
    CHECK(ready.slots == 4);
    CHECK(ready.prefetch == 2);
    CHECK(ready.functions == std::vector<std::string_view>{"add", "mul"});
}

TEST_CASE("decode_worker_ready rejects a worker offering no function", "[protocol]") {
    auto frames = build(worker(protocol::ready, {"w", u32(1), u32(0)}));
    CHECK(rejected(protocol::decode_worker_ready(frames)));
}

TEST_CASE("decode_worker_ready rejects zero slots", "[protocol]") {
    auto frames = build(worker(protocol::ready, {"w", u32(0), u32(0), "add"}));
    CHECK(rejected(protocol::decode_worker_ready(frames)));
}

TEST_CASE("decode_worker_ready takes slots up to max_worker_slots", "[protocol]") {
    auto ready_with = [](std::uint32_t slots, std::uint32_t prefetch) {
        return build(worker(protocol::ready, {"w", u32(slots), u32(prefetch), "add"}));
    };
    auto most = ready_with(protocol::default_max_worker_slots, 0);
    CHECK(accepted(protocol::decode_worker_ready(most)).slots ==
          protocol::default_max_worker_slots);
    auto too_many = ready_with(protocol::default_max_worker_slots + 1, 0);
    CHECK(rejected(protocol::decode_worker_ready(too_many)));
    auto huge = ready_with(std::numeric_limits<std::uint32_t>::max(), 0);
    CHECK(rejected(protocol::decode_worker_ready(huge)));

    protocol::decode_limits limits;
    limits.max_worker_slots = 8;
    auto eight = ready_with(8, 8);
    CHECK(accepted(protocol::decode_worker_ready(eight, limits)).slots == 8);
    auto nine = ready_with(9, 0);
    CHECK(rejected(protocol::decode_worker_ready(nine, limits)));
    auto prefetch_nine = ready_with(8, 9);
    CHECK(rejected(protocol::decode_worker_ready(prefetch_nine, limits)));
}

TEST_CASE("decode_worker_ready takes functions up to max_worker_functions", "[protocol]") {
    auto ready_offering = [](std::size_t count) {
        layout body{"w", u32(1), u32(0)};
        for (std::size_t i = 0; i < count; ++i)
            body.push_back("f" + std::to_string(i));
        return build(worker(protocol::ready, body));
    };
    protocol::decode_limits limits;
    limits.max_worker_functions = 2;
    auto two = ready_offering(2);
    CHECK(accepted(protocol::decode_worker_ready(two, limits)).functions.size() == 2);
    auto three = ready_offering(3);
    CHECK(rejected(protocol::decode_worker_ready(three, limits)));

    auto most = ready_offering(protocol::default_max_worker_functions);
    CHECK(accepted(protocol::decode_worker_ready(most)).functions.size() ==
          protocol::default_max_worker_functions);
    auto too_many = ready_offering(protocol::default_max_worker_functions + 1);
    CHECK(rejected(protocol::decode_worker_ready(too_many)));
}

TEST_CASE("decode_worker_ready rejects an empty or over-long function name", "[protocol]") {
    auto empty_first = build(worker(protocol::ready, {"w", u32(1), u32(0), "", "add"}));
    CHECK(rejected(protocol::decode_worker_ready(empty_first)));
    auto empty_last = build(worker(protocol::ready, {"w", u32(1), u32(0), "add", ""}));
    CHECK(rejected(protocol::decode_worker_ready(empty_last)));

    auto longest = build(worker(protocol::ready, {"w", u32(1), u32(0), std::string(128, 'f')}));
    CHECK(accepted(protocol::decode_worker_ready(longest)).functions.at(0).size() == 128);
    auto too_long =
        build(worker(protocol::ready, {"w", u32(1), u32(0), "add", std::string(129, 'f')}));
    CHECK(rejected(protocol::decode_worker_ready(too_long)));

    protocol::decode_limits limits;
    limits.max_function_name = 3;
    auto four = build(worker(protocol::ready, {"w", u32(1), u32(0), "abcd"}));
    CHECK(rejected(protocol::decode_worker_ready(four, limits)));
}

TEST_CASE("decode_worker_reply reads the job id and the payload index", "[protocol]") {
    auto frames = build(good_worker_reply());
    auto reply = accepted(protocol::decode_worker_reply(frames));
    CHECK(reply.job_id == 9);
    REQUIRE(reply.payload_index == 4);
    CHECK(bytes_of(frames[reply.payload_index]) == payload());
}

TEST_CASE("decode_worker_error reads every field", "[protocol]") {
    auto frames = build(good_worker_error());
    auto error = accepted(protocol::decode_worker_error(frames));
    CHECK(error.job_id == 9);
    CHECK(error.code == error_code::remote_error);
    CHECK(error.type == "std::runtime_error");
    CHECK(error.message == "boom");
}

TEST_CASE("decode_worker_error rejects an unknown error code", "[protocol]") {
    for (int code : {0, 12, 255}) {
        INFO("code " << code);
        auto frames =
            build(worker(command::error, {u64(1), u8(static_cast<std::uint8_t>(code)), "t", "m"}));
        CHECK(rejected(protocol::decode_worker_error(frames)));
    }
}

TEST_CASE("decode_job_only reads the job id", "[protocol]") {
    auto frames = build(good_decline());
    CHECK(accepted(protocol::decode_job_only(frames)).job_id == 9);
}

TEST_CASE("decode_worker_credit reads the prefetch", "[protocol]") {
    auto frames = build(good_credit());
    CHECK(accepted(protocol::decode_worker_credit(frames)).prefetch == 5);
}

TEST_CASE("decode_job_request reads every field", "[protocol]") {
    auto frames = build(good_job_request());
    auto job = accepted(protocol::decode_job_request(frames));
    CHECK(job.job_id == 9);
    CHECK(job.function == "add");
    CHECK(job.deadline_ms == 250);
    CHECK(job.attempt == 1);
    REQUIRE(job.payload_index == 7);
    CHECK(bytes_of(frames[job.payload_index]) == payload());
}

TEST_CASE("decode_job_request rejects an empty or over-long function name", "[protocol]") {
    auto empty = build(worker(command::request, {u64(1), "", u32(0), u32(1), payload()}));
    CHECK(rejected(protocol::decode_job_request(empty)));
    auto too_long =
        build(worker(command::request, {u64(1), std::string(129, 'f'), u32(0), u32(1), payload()}));
    CHECK(rejected(protocol::decode_job_request(too_long)));

    protocol::decode_limits limits;
    limits.max_function_name = 3;
    auto three = build(worker(command::request, {u64(1), "abc", u32(0), u32(1), payload()}));
    CHECK(accepted(protocol::decode_job_request(three, limits)).function == "abc");
    auto four = build(worker(command::request, {u64(1), "abcd", u32(0), u32(1), payload()}));
    CHECK(rejected(protocol::decode_job_request(four, limits)));
}

TEST_CASE("decode_empty accepts a bare header and rejects any body frame", "[protocol]") {
    for (auto cmd : {command::heartbeat, command::disconnect, command::drain}) {
        auto bare = build(worker(cmd));
        CHECK_FALSE(rejected(protocol::decode_empty(bare)));
        auto with_body = build(worker(cmd, {""}));
        CHECK(rejected(protocol::decode_empty(with_body)));
    }
}

TEST_CASE(
    "decode_empty reports a message shorter than the header as missing frames, not extra ones",
    "[protocol]") {
    for (std::size_t count = 0; count < 3; ++count) {
        layout cut(count, std::string());
        INFO(count << " frame(s)");
        auto reason = rejection(protocol::decode_empty(build(cut)));
        REQUIRE(reason.has_value());
        CHECK_THAT(*reason, !Catch::Matchers::Contains("extra"));
    }
}

// ---- BATCH (docs/protocol.md §3a)
// -----------------------------------------------------------------

namespace {

/// A batch of one record holding `body` (the body frames of a single message) under `cmd`.
std::string batch_of(command cmd, const layout& body) {
    protocol::batch_writer writer;
    writer.begin(cmd, static_cast<std::uint8_t>(body.size()));
    for (const auto& frame : body)
        writer.bytes(frame);
    return bytes_of(writer.take());
}

/// The decoders of the batchable kinds, over a record's frames.
using record_decode_fn = std::function<std::optional<std::string>(protocol::record_frames)>;
struct record_case {
    std::string name;
    command cmd;
    record_decode_fn decode;
    layout good; ///< the whole single message; its body (from frame 3) becomes the record
    std::vector<std::size_t> fixed_size_frames;
};

std::vector<record_case> record_decoders() {
    using R = protocol::record_frames;
    return {
        {"client REQUEST",
         command::request,
         [](R f) { return rejection(protocol::decode_client_request(f)); },
         good_client_request(),
         {3, 5}},
        {"client CANCEL",
         command::cancel,
         [](R f) { return rejection(protocol::decode_correlation_only(f)); },
         good_cancel(),
         {3}},
        {"broker REPLY",
         command::reply,
         [](R f) { return rejection(protocol::decode_broker_reply(f)); },
         good_broker_reply(),
         {3, 5}},
        {"broker ERROR",
         command::error,
         [](R f) { return rejection(protocol::decode_broker_error(f)); },
         good_broker_error(),
         {3, 4, 8}},
        {"worker REPLY",
         command::reply,
         [](R f) { return rejection(protocol::decode_worker_reply(f)); },
         good_worker_reply(),
         {3}},
        {"worker ERROR",
         command::error,
         [](R f) { return rejection(protocol::decode_worker_error(f)); },
         good_worker_error(),
         {3, 4}},
        {"job REQUEST",
         command::request,
         [](R f) { return rejection(protocol::decode_job_request(f)); },
         good_job_request(),
         {3, 5, 6}},
        {"job CANCEL",
         command::cancel,
         [](R f) { return rejection(protocol::decode_job_only(f)); },
         good_decline(),
         {3}},
    };
}

/// Parses `batch` as one record and decodes it; the reason when anything rejects it.
std::optional<std::string> decode_record(const record_case& decoder, const layout& message) {
    layout body(message.begin() + 3, message.end());
    auto batch = batch_of(decoder.cmd, body);
    protocol::batch_reader reader;
    if (auto error = reader.parse(batch)) return "framing: " + *error;
    REQUIRE(reader.size() == 1);
    auto record = reader.record(0);
    CHECK(record.cmd == decoder.cmd);
    return decoder.decode(record.frames);
}

} // namespace

TEST_CASE("a BATCH record is checked exactly like the body of its single message", "[protocol]") {
    // A receiver SHALL handle the records of a BATCH exactly as if each had come as its own
    // message.
    for (const auto& decoder : record_decoders()) {
        INFO(decoder.name);
        CHECK(decode_record(decoder, decoder.good).value_or("accepted") == "accepted");
        auto longer = decoder.good;
        longer.push_back("x");
        CHECK(decode_record(decoder, longer).has_value());
        for (std::size_t count = 4; count < decoder.good.size(); ++count) {
            layout cut(decoder.good.begin(), decoder.good.begin() + static_cast<long>(count));
            INFO("cut to " << count << " frames");
            CHECK(decode_record(decoder, cut).has_value());
        }
        for (auto index : decoder.fixed_size_frames) {
            auto broken = decoder.good;
            broken[index] += "x";
            INFO("frame " << index << " one byte too long");
            CHECK(decode_record(decoder, broken).has_value());
        }
    }
}

TEST_CASE("BATCH records round-trip every field and keep their order", "[protocol]") {
    protocol::batch_writer writer;
    auto arguments = payload();
    for (std::uint64_t id = 1; id <= 3; ++id) {
        writer.begin(command::request, 4);
        writer.u64(id);
        writer.bytes("add");
        writer.options(sample_options);
        writer.bytes(arguments);
    }
    writer.begin(command::cancel, 1);
    writer.u64(2);
    CHECK(writer.records() == 4);
    auto frame = writer.take();
    CHECK(writer.empty());

    protocol::batch_reader reader;
    REQUIRE_FALSE(reader.parse(protocol::view(frame)));
    REQUIRE(reader.size() == 4);
    for (std::uint64_t id = 1; id <= 3; ++id) {
        auto record = reader.record(id - 1);
        REQUIRE(record.cmd == command::request);
        auto request = accepted(protocol::decode_client_request(record.frames));
        CHECK(request.correlation_id == id);
        CHECK(request.function == "add");
        CHECK(request.options == sample_options);
        CHECK(request.payload == arguments);
    }
    CHECK(reader.record(3).cmd == command::cancel);
    CHECK(accepted(protocol::decode_correlation_only(reader.record(3).frames)).correlation_id == 2);
}

TEST_CASE("a BATCH with broken framing is rejected as a whole", "[protocol]") {
    // A BATCH whose framing is broken is malformed as a whole and none of it is applied.
    auto good = batch_of(command::cancel, {u64(7)});
    protocol::batch_reader reader;
    REQUIRE_FALSE(reader.parse(good));
    std::vector<std::pair<std::string, std::string>> broken{
        {"empty", ""},
        {"one byte", good.substr(0, 1)},
        {"truncated length", good.substr(0, 4)},
        {"length past the end", good.substr(0, good.size() - 1)},
        {"trailing byte", good + "x"},
        {"frame count 0", std::string("\x05\x00", 2)},
        {"frame count 17", std::string("\x05\x11", 2) + std::string(17 * 4, '\0')},
        {"a good record, then a broken one", good + good.substr(0, 3)},
    };
    std::string too_many;
    for (std::size_t i = 0; i <= protocol::max_batch_records; ++i)
        too_many += good;
    broken.emplace_back("65,537 records", too_many);
    for (const auto& [what, bytes] : broken) {
        INFO(what);
        auto reason = reader.parse(bytes);
        REQUIRE(reason.has_value());
        CHECK_FALSE(reason->empty());
    }
}

TEST_CASE("only replies, errors, requests and cancels are batchable, each one way", "[protocol]") {
    using protocol::batchable;
    auto client = protocol::client_protocol;
    auto worker = protocol::worker_protocol;
    CHECK(batchable(client, command::request, true));
    CHECK(batchable(client, command::cancel, true));
    CHECK_FALSE(batchable(client, command::reply, true));
    CHECK(batchable(client, command::reply, false));
    CHECK(batchable(client, command::error, false));
    CHECK_FALSE(batchable(client, command::request, false));
    CHECK(batchable(worker, command::request, false));
    CHECK(batchable(worker, command::cancel, false));
    CHECK(batchable(worker, command::reply, true));
    CHECK(batchable(worker, command::error, true));
    CHECK_FALSE(batchable(worker, protocol::ready, true));
    for (auto cmd : {command::heartbeat, command::disconnect, command::progress, command::credit,
                     command::decline, command::drain, command::batch}) {
        INFO(protocol::to_string(cmd));
        for (bool to_broker : {true, false}) {
            CHECK_FALSE(batchable(client, cmd, to_broker));
            CHECK_FALSE(batchable(worker, cmd, to_broker));
        }
    }
}

TEST_CASE("batch_reader never throws on 5,000 random byte strings", "[protocol][fuzz]") {
    std::mt19937 random(20261125);
    std::uniform_int_distribution<int> size(0, 64), byte(0, 255), small(0, 20);
    protocol::batch_reader reader;
    std::size_t accepted_batches = 0;
    for (int round = 0; round < 5000; ++round) {
        std::string bytes(static_cast<std::size_t>(size(random)), '\0');
        for (auto& c : bytes)
            c = static_cast<char>(byte(random));
        // Plausible headers now and then, so that some batches parse.
        if (bytes.size() >= 6 && round % 2 == 0) {
            bytes[1] = 1;
            bytes[2] = bytes[3] = bytes[4] = 0;
            bytes[5] = static_cast<char>(std::min<std::size_t>(bytes.size() - 6, small(random)));
            bytes.resize(6 + static_cast<unsigned char>(bytes[5]));
        }
        auto reason = reader.parse(bytes);
        if (!reason) {
            ++accepted_batches;
            for (std::size_t i = 0; i < reader.size(); ++i)
                for (auto frame : reader.record(i).frames) {
                    CHECK(frame.data() >= bytes.data());
                    CHECK(frame.data() + frame.size() <= bytes.data() + bytes.size());
                }
        }
    }
    CHECK(accepted_batches > 100);
}
