// Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/{broker,client,worker}) from real
// messages, made with the protocol's own encoders. Run by hand after a protocol change:
//   build-fuzz/tests/fuzz/deferq_fuzz_seeds tests/fuzz/corpus

#include "fuzz_input.hpp"

#include "deferq/codec.hpp"
#include "deferq/protocol.hpp"

#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <sys/stat.h>
#include <vector>

namespace {

using namespace deferq;
using protocol::command;
using frames = std::vector<std::string>;

std::string bytes(const zmq::message_t& message) {
    return std::string(protocol::view(message));
}
std::string cmd(command c) {
    return bytes(protocol::u8_frame(static_cast<std::uint8_t>(c)));
}
std::string u32(std::uint32_t v) {
    return bytes(protocol::u32_frame(v));
}
std::string u64(std::uint64_t v) {
    return bytes(protocol::u64_frame(v));
}
std::string f64(double v) {
    return bytes(protocol::f64_frame(v));
}

// ---- broker seeds: op = peer | 4 (header) | 8 (job id patch) | 16 (step)
// -------------------------

constexpr std::uint8_t client0 = 0, client1 = 1, worker0 = 2, worker1 = 3;
constexpr std::uint8_t header = 4, patch = 8, step = 16, wait = 96;

struct session {
    std::string text;
    void add(std::uint8_t op, const frames& body) { fuzz::write_message(text, op, body); }
};

frames request(std::uint64_t id, const std::string& function, const std::string& payload,
               std::uint32_t timeout_ms = 0) {
    return {cmd(command::request), u64(id), function,
            bytes(protocol::options_frame({.timeout_ms = timeout_ms})), payload};
}
/// A BATCH message (docs/protocol.md §3a) of records, each given as its command and body frames.
frames batch(const std::vector<std::pair<command, frames>>& records) {
    protocol::batch_writer writer;
    for (const auto& [record_command, body] : records) {
        writer.begin(record_command, static_cast<std::uint8_t>(body.size()));
        for (const auto& frame : body)
            writer.bytes(frame);
    }
    return {cmd(command::batch), bytes(writer.take())};
}
frames request_body(std::uint64_t id, const std::string& function, const std::string& payload) {
    return {u64(id), function, bytes(protocol::options_frame({})), payload};
}

frames ready(const std::string& name, std::uint32_t slots, const frames& functions) {
    frames out{cmd(command::request), name, u32(slots), u32(0)};
    out.insert(out.end(), functions.begin(), functions.end());
    return out;
}

std::map<std::string, std::string> broker_seeds() {
    std::map<std::string, std::string> seeds;
    {
        session s; // the reference scenario
        s.add(worker0 | header | step, ready("w1", 1, {"calculate"}));
        s.add(worker1 | header | step, ready("w2", 1, {"calculate"}));
        s.add(client0 | header, request(1, "calculate", bytes(codec::encode_args(42, 47))));
        s.add(client0 | header, request(2, "calculate", bytes(codec::encode_args(52, 58))));
        s.add(client0 | header | step, request(3, "calculate", bytes(codec::encode_args(62, 69))));
        s.add(worker0 | header | patch | step,
              {cmd(command::reply), u64(0), bytes(codec::encode_value(89.0))});
        s.add(worker1 | header | patch | step,
              {cmd(command::reply), u64(0), bytes(codec::encode_value(110.0))});
        s.add(worker0 | header | patch | step,
              {cmd(command::reply), u64(0), bytes(codec::encode_value(131.0))});
        s.add(client0 | header | step, {cmd(command::heartbeat)});
        s.add(worker0 | header | step, {cmd(command::heartbeat)});
        seeds["reference"] = s.text;
    }
    {
        session s; // calls from inside a job (docs/protocol.md §3b): CALL, WAIT, a worker's CANCEL
        s.add(worker0 | header | step, ready("w", 1, {"f"}));
        s.add(client0 | header | step, request(1, "f", bytes(codec::encode_args(1))));
        s.add(worker0 | header | patch | step, {cmd(command::wait), u64(0)});
        frames call{cmd(command::call), u64(0)};
        auto body = request_body(11, "f", bytes(codec::encode_args(2)));
        call.insert(call.end(), body.begin(), body.end());
        s.add(worker0 | header | patch | step, call);
        s.add(worker0 | header | patch | step,
              {cmd(command::reply), u64(0), bytes(codec::encode_value(2))});
        call[2] = u64(12); // a second call, for a job it does not run: refused
        s.add(worker0 | header | step, call);
        s.add(worker0 | header | step, {cmd(command::cancel), u64(12)});
        s.add(client0 | header | step, {cmd(command::cancel), u64(1)});
        seeds["calls-from-jobs"] = s.text;
    }
    {
        session s; // progress, error, credit, decline, drain, disconnect
        s.add(client0 | header, request(7, "f", bytes(codec::encode_args(1))));
        s.add(client1 | header | step, request(7, "f", bytes(codec::encode_args(2))));
        s.add(worker0 | header | step, ready("w", 2, {"f", "g"}));
        s.add(worker0 | header | patch | step, {cmd(command::progress), u64(0), f64(0.5), "half"});
        s.add(worker0 | header | patch | step,
              {cmd(command::error), u64(0), bytes(protocol::u8_frame(1)), "E", "failed"});
        s.add(worker0 | header | step, {cmd(command::credit), u32(3)});
        s.add(worker0 | header | patch | step, {cmd(command::decline), u64(0)});
        s.add(worker0 | header | step, {cmd(command::drain)});
        s.add(worker0 | header | step, {cmd(command::disconnect)});
        s.add(client1 | header | step, {cmd(command::cancel), u64(7)});
        s.add(client0 | header | step, {cmd(command::disconnect)});
        seeds["worker-commands"] = s.text;
    }
    {
        session s; // the broker's own services, a deadline, a cancel of a running job
        s.add(client0 | header | step, request(1, "mmi.status", bytes(codec::encode_args())));
        s.add(client0 | header | step,
              request(2, "mmi.service", bytes(codec::encode_args(std::string("f")))));
        s.add(client0 | header | step, request(3, "mmi.nothing", bytes(codec::encode_args())));
        s.add(client1 | header | step | wait, request(4, "f", bytes(codec::encode_args(1)), 1));
        s.add(client1 | header | step, request(6, "f", bytes(codec::encode_args(1)), 1));
        s.add(worker1 | header | step | wait, ready("w", 1, {"f"}));
        s.add(client1 | header | step, request(5, "f", bytes(codec::encode_args(1)), 60000));
        s.add(client1 | header | step, {cmd(command::cancel), u64(5)});
        s.add(worker1 | header | patch | step,
              {cmd(command::reply), u64(0), bytes(codec::encode_nil())});
        seeds["services-deadlines"] = s.text;
    }
    {
        session s; // batches both ways: requests and a cancel in, replies and an error back
        s.add(worker0 | header | step, ready("w", 4, {"add"}));
        s.add(client0 | header | step,
              batch({{command::request, request_body(1, "add", bytes(codec::encode_args(1, 2)))},
                     {command::request, request_body(2, "add", bytes(codec::encode_args(3, 4)))},
                     {command::request, request_body(3, "add", bytes(codec::encode_args(5, 6)))},
                     {command::cancel, {u64(3)}}}));
        s.add(worker0 | header | step,
              batch({{command::reply, {u64(1), bytes(codec::encode_value(3))}},
                     {command::error, {u64(2), bytes(protocol::u8_frame(1)), "E", "failed"}}}));
        seeds["batches"] = s.text;
    }
    {
        session s; // batched requests answered: one by its job's REPLY, one refused at once (its
                   // name is longer than the target's 16-byte limit) with an ERROR of its own
        s.add(worker0 | header | step, ready("w", 4, {"add"}));
        s.add(client0 | header | step,
              batch({{command::request, request_body(1, "add", bytes(codec::encode_args(1, 2)))},
                     {command::request, request_body(2, "add-a-name-too-long-to-run",
                                                     bytes(codec::encode_args(3, 4)))}}));
        s.add(worker0 | header | patch | step,
              {cmd(command::reply), u64(0), bytes(codec::encode_value(3))});
        seeds["batches-answered"] = s.text;
    }
    {
        session s; // a peer that keeps sending garbage, then a forged reply
        s.add(worker0 | header | step, ready("w", 1, {"f"}));
        s.add(client0 | header | step, request(1, "f", bytes(codec::encode_args(1))));
        for (int i = 0; i < 11; ++i)
            s.add(client1 | header, {"\x42"});
        s.add(client1 | header | step, {cmd(command::request), "short", "f"});
        s.add(worker1 | header | step, ready("forger", 1, {"g"}));
        s.add(worker1 | header | step,
              {cmd(command::reply), u64(12345), bytes(codec::encode_value(1))});
        s.add(worker0 | header | step, ready("w", 1, {"f"}));
        s.add(worker0 | step, {"", "DFQC01", cmd(command::heartbeat)});
        seeds["bad-peers"] = s.text;
    }
    return seeds;
}

// ---- client seeds: op = 1 (header) | 2 (correlation id patch) | (id - 1) << 4 -------------------

std::uint8_t to(std::uint64_t id) {
    return static_cast<std::uint8_t>(1 | 2 | ((id - 1) << 4));
}
frames reply(const std::string& payload) {
    return {cmd(command::reply), u64(0), "w1", u32(1), payload};
}

std::map<std::string, std::string> client_seeds() {
    std::map<std::string, std::string> seeds;
    {
        std::string text; // every pending call answered with a value of its type
        fuzz::write_message(text, 1, {cmd(command::heartbeat), u64(42), u32(1000), u32(3)});
        fuzz::write_message(text, to(1), reply(bytes(codec::encode_value(89.0))));
        fuzz::write_message(text, to(2), reply(bytes(codec::encode_value(std::int64_t{110}))));
        fuzz::write_message(text, to(3), reply(bytes(codec::encode_value(std::string("ok")))));
        fuzz::write_message(text, to(4),
                            reply(bytes(codec::encode_value(std::vector<double>{1.5, 2}))));
        fuzz::write_message(
            text, to(5),
            reply(bytes(codec::encode_value(std::map<std::string, std::int64_t>{{"a", 1}}))));
        fuzz::write_message(text, to(6), reply(bytes(codec::encode_nil())));
        fuzz::write_message(
            text, to(7),
            reply(bytes(codec::encode_value(std::map<std::string, std::string>{{"k", "v"}}))));
        fuzz::write_message(text, to(8),
                            reply(bytes(codec::encode_value(std::vector<std::string>{"x", "y"}))));
        seeds["replies"] = text;
    }
    {
        std::string text; // progress, errors, a wrong type, a restart, a disconnect
        fuzz::write_message(text, to(3), {cmd(command::progress), u64(0), f64(0.25), "quarter"});
        fuzz::write_message(text, to(3),
                            {cmd(command::error), u64(0), bytes(protocol::u8_frame(1)),
                             "ValueError", "bad input", "w2", u32(1)});
        fuzz::write_message(text, to(1), reply(bytes(codec::encode_value(std::string("x")))));
        fuzz::write_message(text, to(4), reply("\xc1"));
        fuzz::write_message(text, 1, {cmd(command::heartbeat), u64(1), u32(1000), u32(3)});
        fuzz::write_message(text, 1, {cmd(command::heartbeat), u64(2), u32(250), u32(3)});
        fuzz::write_message(text, 1, {cmd(command::disconnect)});
        fuzz::write_message(text, to(2),
                            {cmd(command::error), u64(0), bytes(protocol::u8_frame(2)), "",
                             "deadline passed", "", u32(0)});
        seeds["errors-progress"] = text;
    }
    {
        std::string text; // answers in one BATCH, as the broker sends them
        fuzz::write_message(
            text, 1,
            batch({{command::reply, {u64(1), "w1", u32(1), bytes(codec::encode_value(89.0))}},
                   {command::reply,
                    {u64(3), "w2", u32(2), bytes(codec::encode_value(std::string("ok")))}},
                   {command::error,
                    {u64(2), bytes(protocol::u8_frame(2)), "", "too late", "", u32(1)}}}));
        seeds["batch"] = text;
    }
    return seeds;
}

// ---- worker seeds: op = 1 (header) | 2 (id patch) | (call id - 1) << 4 --------------------------

std::map<std::string, std::string> worker_seeds() {
    std::map<std::string, std::string> seeds;
    auto call = [](std::uint8_t id) { return static_cast<std::uint8_t>(1 | 2 | ((id - 1) << 4)); };
    {
        std::string text; // jobs, a cancel, answers to calls, a heartbeat
        fuzz::write_message(text, 1,
                            {cmd(command::request), u64(5), "calculate", u32(0), u32(1),
                             bytes(codec::encode_args(42, 47))});
        fuzz::write_message(text, 1, {cmd(command::cancel), u64(5)});
        fuzz::write_message(
            text, call(1),
            {cmd(command::reply), u64(0), "w2", u32(1), bytes(codec::encode_value(89.0))});
        fuzz::write_message(text, call(3),
                            {cmd(command::error), u64(0), bytes(protocol::u8_frame(2)), "",
                             "too late", "w2", u32(1)});
        fuzz::write_message(text, 1,
                            {cmd(command::heartbeat), u64(1), u32(1000), u32(3), u64(1 << 20)});
        seeds["jobs-calls"] = text;
    }
    {
        std::string text; // one BATCH as the broker sends it, a refusal, a disconnect
        fuzz::write_message(
            text, 1,
            batch({{command::request,
                    {u64(6), "fib_task", u32(500), u32(1), bytes(codec::encode_args(10))}},
                   {command::reply, {u64(2), "w1", u32(1), bytes(codec::encode_value(55))}},
                   {command::error,
                    {u64(4), bytes(protocol::u8_frame(10)), "", "cancelled", "", u32(0)}},
                   {command::cancel, {u64(6)}}}));
        fuzz::write_message(text, 1,
                            {cmd(command::error), u64(0), bytes(protocol::u8_frame(11)), "",
                             "this is the client endpoint"});
        fuzz::write_message(text, 1, {cmd(command::disconnect)});
        seeds["batch-refusal"] = text;
    }
    return seeds;
}

void write_all(const std::string& dir, const std::map<std::string, std::string>& seeds) {
    ::mkdir(dir.c_str(), 0755);
    for (const auto& [name, text] : seeds) {
        std::ofstream out(dir + "/" + name, std::ios::binary);
        out << text;
        std::printf("%s/%s: %zu bytes\n", dir.c_str(), name.c_str(), text.size());
    }
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    std::string root = argv[1];
    ::mkdir(root.c_str(), 0755);
    write_all(root + "/broker", broker_seeds());
    write_all(root + "/client", client_seeds());
    write_all(root + "/worker", worker_seeds());
    return 0;
}
