// How the worker reads a message from the broker (worker/src/worker_message.hpp), without
// sockets: jobs, cancels, the answers to its jobs' calls (docs/protocol.md §3b), heartbeats,
// refusals, DISCONNECT, BATCH, and every kind of bad message.

#include "worker_message.hpp"

#include "deferq/codec.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace {

using deferq::protocol::command;
namespace protocol = deferq::protocol;

std::string frame(const zmq::message_t& message) {
    return std::string(protocol::view(message));
}
std::string cmd(command c) {
    return frame(protocol::u8_frame(static_cast<std::uint8_t>(c)));
}
std::string u32(std::uint32_t v) {
    return frame(protocol::u32_frame(v));
}
std::string u64(std::uint64_t v) {
    return frame(protocol::u64_frame(v));
}
std::vector<zmq::message_t> build(const std::vector<std::string>& frames) {
    std::vector<zmq::message_t> out;
    for (const auto& f : frames)
        out.emplace_back(f.data(), f.size());
    return out;
}
std::vector<std::string> message(command c, std::vector<std::string> body) {
    std::vector<std::string> out{"", std::string(protocol::worker_protocol), cmd(c)};
    out.insert(out.end(), body.begin(), body.end());
    return out;
}

/// Records what read_worker_message said, as text.
struct recorder : deferq::worker_detail::worker_message_sink {
    std::vector<std::string> events;
    void on_heard() override { events.push_back("heard"); }
    void on_job(const protocol::job_request& job, zmq::message_t payload) override {
        events.push_back("job " + std::to_string(job.job_id) + " " + std::string(job.function) +
                         " " + std::to_string(job.deadline_ms) + " " + std::to_string(job.attempt) +
                         " " + frame(payload));
    }
    void on_cancel(std::uint64_t job_id) override {
        events.push_back("cancel " + std::to_string(job_id));
    }
    void on_call_reply(std::uint64_t id, const deferq::detail::raw_reply& reply) override {
        events.push_back("call reply " + std::to_string(id) + " " + std::string(reply.worker) +
                         " " + std::string(reply.payload));
    }
    void on_call_error(std::uint64_t id, const deferq::Failure& failure) override {
        events.push_back("call error " + std::to_string(id) + " " +
                         std::string(deferq::to_string(failure.code())) + " " + failure.message());
    }
    void on_heartbeat(const protocol::broker_heartbeat& beat) override {
        events.push_back("heartbeat " + std::to_string(beat.interval_ms));
    }
    void on_refused(std::string_view why) override {
        events.push_back("refused " + std::string(why));
    }
    void on_disconnect() override { events.push_back("disconnect"); }
    void on_bad_message(std::string_view reason) override {
        events.push_back("bad " + std::string(reason));
    }
};

std::vector<std::string> read(const std::vector<std::string>& frames) {
    recorder sink;
    protocol::batch_reader batch;
    auto built = build(frames);
    deferq::worker_detail::read_worker_message(built, batch, sink);
    return sink.events;
}

} // namespace

TEST_CASE("a worker reads jobs, cancels, heartbeats, refusals and DISCONNECT", "[worker_message]") {
    CHECK(read(message(command::request, {u64(5), "add", u32(900), u32(2), "args"})) ==
          std::vector<std::string>{"heard", "job 5 add 900 2 args"});
    CHECK(read(message(command::cancel, {u64(5)})) ==
          std::vector<std::string>{"heard", "cancel 5"});
    CHECK(read(message(command::heartbeat, {u64(77), u32(250), u32(3), u64(1 << 20)})) ==
          std::vector<std::string>{"heard", "heartbeat 250"});
    CHECK(read(message(command::error, {u64(0), frame(protocol::u8_frame(11)), "",
                                        "this is the client endpoint"})) ==
          std::vector<std::string>{"heard", "refused this is the client endpoint"});
    CHECK(read(message(command::disconnect, {})) ==
          std::vector<std::string>{"heard", "disconnect"});
}

TEST_CASE("a worker reads the answers to its jobs' calls, alone and in a BATCH",
          "[worker_message]") {
    // docs/protocol.md §3b: "the same frames as REPLY and ERROR to a client, under DFQW01".
    auto code = frame(protocol::u8_frame(static_cast<std::uint8_t>(deferq::error_code::timeout)));
    CHECK(read(message(command::reply, {u64(9), "w2", u32(1), "result"})) ==
          std::vector<std::string>{"heard", "call reply 9 w2 result"});
    CHECK(read(message(command::error, {u64(9), code, "", "too slow", "w2", u32(1)})) ==
          std::vector<std::string>{"heard", "call error 9 timeout too slow"});

    protocol::batch_writer writer;
    writer.begin(command::request, 5);
    writer.u64(6);
    writer.bytes("fib");
    writer.u32(0);
    writer.u32(1);
    writer.bytes("a");
    writer.begin(command::reply, 4);
    writer.u64(10);
    writer.bytes("w1");
    writer.u32(1);
    writer.bytes("r");
    writer.begin(command::cancel, 1);
    writer.u64(6);
    writer.begin(command::heartbeat, 1); // not batchable toward a worker
    writer.bytes("x");
    auto body = writer.take();
    CHECK(read(message(command::batch, {frame(body)})) ==
          std::vector<std::string>{"heard", "job 6 fib 0 1 a", "call reply 10 w1 r", "cancel 6",
                                   "bad BATCH record HEARTBEAT"});
}

TEST_CASE("every kind of bad message from the broker is dropped with a reason, never thrown",
          "[worker_message]") {
    const std::vector<std::vector<std::string>> bad = {
        {},
        {"x"},
        {"", "DFQC01", cmd(command::request)},
        {"", "DFQW01", "xx"},
        message(command::request, {u64(5), "add", u32(0)}),
        message(command::request, {u64(5), "add", u32(0), u32(1), "args", "extra"}),
        message(command::cancel, {u32(5)}),
        message(command::reply, {u64(9), "w2"}),
        message(command::error, {u64(9), frame(protocol::u8_frame(200)), "", "m", "w", u32(1)}),
        message(command::error, {u64(0), frame(protocol::u8_frame(2)), "", "m", "w", u32(1)}),
        message(command::error, {u64(4), frame(protocol::u8_frame(2)), "", "about a job"}),
        message(command::heartbeat, {u64(1)}),
        message(command::disconnect, {"body"}),
        message(command::batch, {"\\x01"}),
        message(command::batch, {}),
        message(command::call, {u64(1)}),
        message(command::wait, {u64(1)}),
        message(command::drain, {}),
    };
    for (const auto& frames : bad) {
        auto events = read(frames);
        INFO("frames: " << frames.size());
        REQUIRE_FALSE(events.empty());
        CHECK(events.back().rfind("bad ", 0) == 0);
    }
}
