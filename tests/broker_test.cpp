// The broker's validation of untrusted input and its disconnect rule (docs/protocol.md §4,
// Validation), checked on a broker in this process stepped by hand, with raw sockets that send
// whatever bytes the test wants. Each test quotes the clause it checks.

#include "inproc_broker.hpp"

#include "deferq/broker.hpp"
#include "deferq/codec.hpp"
#include "deferq/log.hpp"

#include <catch2/catch.hpp>
#include <spdlog/sinks/ostream_sink.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <sstream>
#include <thread>

using namespace std::chrono_literals;
using deferq::protocol::command;
using namespace deferq::test;

namespace {

/// A heartbeat interval longer than any test: every bad message of a test falls in one interval and
/// no peer expires.
deferq::broker_options options() {
    deferq::broker_options o;
    o.heartbeat_interval = 60s;
    return o;
}

const std::string client_id = "DFQC01", worker_id = "DFQW01";

std::string payload(int a, int b) {
    return std::string(deferq::protocol::view(deferq::codec::encode_args(a, b)));
}

std::string options_frame() {
    return std::string(deferq::protocol::view(deferq::protocol::options_frame({})));
}

frame_list request(std::uint64_t correlation_id, const std::string& function,
                   std::string arguments = payload(1, 2)) {
    return {"",
            client_id,
            command_frame(command::request),
            u64(correlation_id),
            function,
            options_frame(),
            arguments};
}

frame_list ready(const std::string& name, const std::vector<std::string>& functions) {
    frame_list message{"", worker_id, command_frame(command::request), name, u32(1), u32(0)};
    message.insert(message.end(), functions.begin(), functions.end());
    return message;
}

frame_list reply(std::uint64_t job_id, const std::string& result) {
    return {"", worker_id, command_frame(command::reply), u64(job_id), result};
}

std::string encoded(double value) {
    return std::string(deferq::protocol::view(deferq::codec::encode_value(value)));
}

/// The messages with this command among those waiting on the socket.
std::vector<frame_list> received(zmq::socket_t& socket, command cmd) {
    std::vector<frame_list> found;
    for (auto& message : drain(socket))
        if (message.size() >= 3 && message[2] == command_frame(cmd)) found.push_back(message);
    return found;
}

/// The one job the worker socket was given since it was last read.
std::optional<std::uint64_t> job_given(zmq::socket_t& worker) {
    auto jobs = received(worker, command::request);
    if (jobs.size() != 1) return std::nullopt;
    return read_u64(jobs[0][3]);
}

std::uint64_t value(const std::atomic<std::uint64_t>& counter) {
    return counter.load();
}

/// Captures what the "deferq" logger writes while it lives.
class log_capture {
public:
    log_capture() : _sink(std::make_shared<spdlog::sinks::ostream_sink_mt>(_text)) {
        deferq::log().sinks().push_back(_sink);
    }
    ~log_capture() {
        auto& sinks = deferq::log().sinks();
        sinks.erase(std::remove(sinks.begin(), sinks.end(), _sink), sinks.end());
    }
    int count(const std::string& needle) const {
        auto text = _text.str();
        int n = 0;
        for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
            ++n;
        return n;
    }

private:
    std::ostringstream _text;
    std::shared_ptr<spdlog::sinks::ostream_sink_mt> _sink;
};

} // namespace

TEST_CASE("every kind of malformed message is dropped and counted, and changes no job",
          "[broker][validation]") {
    // "A malformed message SHALL be counted (`malformed_messages`), logged at most once per peer
    // per interval, and dropped; it never changes any job's state."
    zmq::context_t context;
    auto o = options();
    o.max_malformed = 0; // count them all; the disconnect rule has its own tests
    inproc_broker b(context, o);
    auto client = b.client("client");
    auto worker = b.worker("worker");
    send(worker, ready("w", {"g"}));
    send(client, request(1, "f"));
    b.step();
    REQUIRE(value(b.counters().queued_jobs) == 1);
    REQUIRE(value(b.counters().live_workers) == 1);

    auto heartbeat = command_frame(command::heartbeat);
    std::vector<std::pair<const char*, frame_list>> from_client{
        {"only the delimiter", {""}},
        {"no command frame", {"", client_id}},
        {"no empty delimiter", {"x", client_id, heartbeat}},
        {"unknown protocol id", {"", "MDPX01", heartbeat}},
        {"another protocol version", {"", "DFQC02", heartbeat}},
        {"the worker protocol on the client endpoint", {"", worker_id, heartbeat}},
        {"a 5-byte protocol id", {"", "DFQC0", heartbeat}},
        {"a 2-byte command", {"", client_id, heartbeat + heartbeat}},
        {"unknown command 0x00", {"", client_id, u8(0)}},
        {"unknown command 0xff", {"", client_id, u8(0xff)}},
        {"a command a client may not send (REPLY)",
         {"", client_id, command_frame(command::reply), u64(1), "w", u32(1), payload(1, 2)}},
        {"a truncated correlation id",
         {"", client_id, command_frame(command::request), u64(2).substr(1), "f", options_frame(),
          payload(1, 2)}},
        {"a padded correlation id",
         {"", client_id, command_frame(command::request), u64(2) + "x", "f", options_frame(),
          payload(1, 2)}},
        {"a truncated options frame",
         {"", client_id, command_frame(command::request), u64(2), "f", options_frame().substr(1),
          payload(1, 2)}},
        {"reserved option bytes set",
         {"", client_id, command_frame(command::request), u64(2), "f",
          options_frame().substr(0, 6) + "\x01\x01", payload(1, 2)}},
        {"no payload",
         {"", client_id, command_frame(command::request), u64(2), "f", options_frame()}},
        {"an extra frame",
         [] {
             auto message = request(2, "f");
             message.push_back("extra");
             return message;
         }()},
        {"a truncated CANCEL", {"", client_id, command_frame(command::cancel), u32(1)}},
        {"a HEARTBEAT with a body", {"", client_id, heartbeat, "body"}},
    };
    std::vector<std::pair<const char*, frame_list>> from_worker{
        {"the client protocol on the worker endpoint", {"", client_id, heartbeat}},
        {"a duplicate READY", ready("w", {"g"})},
        {"READY with 0 slots",
         {"", worker_id, command_frame(command::request), "w", u32(0), u32(0), "g"}},
        {"READY with a truncated slots frame",
         {"", worker_id, command_frame(command::request), "w", u32(1).substr(1), u32(0), "g"}},
        {"READY offering no function",
         {"", worker_id, command_frame(command::request), "w", u32(1), u32(0)}},
        {"a truncated job id in REPLY",
         {"", worker_id, command_frame(command::reply), u64(1).substr(2), payload(1, 2)}},
        {"REPLY without a payload", {"", worker_id, command_frame(command::reply), u64(1)}},
        {"ERROR with an unknown code",
         {"", worker_id, command_frame(command::error), u64(1), u8(0xee), "T", "m"}},
        {"ERROR with a code a worker may not report",
         {"", worker_id, command_frame(command::error), u64(1), u8(8), "T", "m"}},
        {"PROGRESS with a fraction over 1",
         {"", worker_id, command_frame(command::progress), u64(1),
          std::string(deferq::protocol::view(deferq::protocol::f64_frame(1.5))), "n"}},
        {"PROGRESS with a NaN fraction",
         {"", worker_id, command_frame(command::progress), u64(1),
          std::string(deferq::protocol::view(
              deferq::protocol::f64_frame(std::numeric_limits<double>::quiet_NaN()))),
          "n"}},
        {"a truncated CREDIT", {"", worker_id, command_frame(command::credit), u32(1).substr(2)}},
        {"CREDIT over the slot limit", {"", worker_id, command_frame(command::credit), u32(5000)}},
        {"a padded DECLINE", {"", worker_id, command_frame(command::decline), u64(1) + "x"}},
        {"DRAIN with a body", {"", worker_id, command_frame(command::drain), "x"}},
        {"a CALL with no request after its parent job id",
         {"", worker_id, command_frame(command::call), u64(1)}},
        {"a CALL with a short parent job id",
         {"", worker_id, command_frame(command::call), u32(1)}},
        {"a padded WAIT", {"", worker_id, command_frame(command::wait), u64(1) + "x"}},
        {"a padded CANCEL of a call",
         {"", worker_id, command_frame(command::cancel), u64(1) + "x"}},
        {"unknown command 0x0e", {"", worker_id, u8(0x0e)}},
        {"unknown command 0x0b", {"", worker_id, u8(0x0b)}},
    };
    auto check_dropped = [&](zmq::socket_t& socket,
                             const std::vector<std::pair<const char*, frame_list>>& kinds) {
        for (const auto& [name, message] : kinds) {
            INFO(name);
            auto before = value(b.counters().malformed_messages);
            send(socket, message);
            b.step();
            CHECK(value(b.counters().malformed_messages) == before + 1);
            CHECK(value(b.counters().queued_jobs) == 1);
            CHECK(value(b.counters().requests) == 1);
            CHECK(value(b.counters().live_workers) == 1);
        }
    };
    check_dropped(client, from_client);
    check_dropped(worker, from_worker);

    SECTION("undecodable msgpack in mmi.service arguments is malformed, and still answered") {
        // "undecodable msgpack there is malformed too (the call is still answered with
        // `bad_arguments`, so it does not hang)"
        drain(client);
        auto before = value(b.counters().malformed_messages);
        send(client, request(7, "mmi.service", "\xc1"));
        b.step();
        CHECK(value(b.counters().malformed_messages) == before + 1);
        auto errors = received(client, command::error);
        REQUIRE(errors.size() == 1);
        CHECK(read_u64(errors[0][3]) == 7);
        CHECK(errors[0][4] == u8(static_cast<std::uint8_t>(deferq::error_code::bad_arguments)));
    }
    SECTION("the broker never decodes a payload it only moves") {
        // "the broker never decodes a payload, it only moves the frame"
        auto before = value(b.counters().malformed_messages);
        send(client, request(8, "g", "\xc1"));
        b.step();
        CHECK(value(b.counters().malformed_messages) == before);
        auto job = job_given(worker);
        REQUIRE(job);
    }
    SECTION("the queued job still runs when a worker comes") {
        auto good = b.worker("good");
        send(good, ready("good", {"f"}));
        b.step();
        auto job = job_given(good);
        REQUIRE(job);
        drain(client);
        send(good, reply(*job, encoded(3)));
        b.step();
        auto replies = received(client, command::reply);
        REQUIRE(replies.size() == 1);
        CHECK(read_u64(replies[0][3]) == 1);
        CHECK(replies[0][6] == encoded(3));
    }
    CHECK(value(b.counters().peers_disconnected) == 0); // --max-malformed 0: the rule is off
}

TEST_CASE("a call with an empty or over-long function name is answered, naming the limit",
          "[broker][validation]") {
    // "A REQUEST whose function name is empty or over the limit SHALL be answered with
    // no_such_function, naming the limit; the name is not echoed."
    zmq::context_t context;
    inproc_broker b(context, options());
    auto client = b.client("client");
    send(client, request(1, ""));
    send(client, request(2, std::string(10'000, 'x')));
    b.step();
    auto errors = received(client, command::error);
    REQUIRE(errors.size() == 2);
    auto code = u8(static_cast<std::uint8_t>(deferq::error_code::no_such_function));
    CHECK(read_u64(errors[0][3]) == 1);
    CHECK(errors[0][4] == code);
    CHECK_THAT(errors[0][6], Catch::Contains("empty"));
    CHECK(read_u64(errors[1][3]) == 2);
    CHECK(errors[1][4] == code);
    CHECK_THAT(errors[1][6], Catch::Contains("10000 bytes") && Catch::Contains("128 bytes"));
    CHECK(errors[1][6].size() < 200);
    CHECK(value(b.counters().malformed_messages) == 0);
    CHECK(value(b.counters().queued_jobs) == 0);
}

TEST_CASE("a peer at the wrong endpoint is told, in its own protocol, where to connect",
          "[broker][validation]") {
    // "A peer that speaks the other endpoint's protocol SHALL be answered with ERROR
    // (protocol_error) about call or job 0, naming both endpoints."
    zmq::context_t context;
    inproc_broker b(context, options());
    auto lost_client = b.worker("lost-client"); // a client's DEALER on the worker endpoint
    send(lost_client, {"", client_id, command_frame(command::heartbeat)});
    auto lost_worker = b.client("lost-worker"); // a worker's DEALER on the client endpoint
    send(lost_worker, ready("w", {"f"}));
    b.step();

    auto to_client = drain(lost_client);
    REQUIRE(to_client.size() == 1);
    REQUIRE(to_client[0].size() == 9);
    CHECK(to_client[0][1] == client_id);
    CHECK(to_client[0][2] == command_frame(command::error));
    CHECK(read_u64(to_client[0][3]) == 0);
    CHECK(to_client[0][4] == u8(static_cast<std::uint8_t>(deferq::error_code::protocol_error)));
    CHECK_THAT(to_client[0][6], Catch::Contains("this is the broker's worker endpoint") &&
                                    Catch::Contains(b.broker().client_endpoint()));

    auto to_worker = drain(lost_worker);
    REQUIRE(to_worker.size() == 1);
    REQUIRE(to_worker[0].size() == 7);
    CHECK(to_worker[0][1] == worker_id);
    CHECK(to_worker[0][2] == command_frame(command::error));
    CHECK(read_u64(to_worker[0][3]) == 0);
    CHECK_THAT(to_worker[0][6], Catch::Contains("this is the broker's client endpoint") &&
                                    Catch::Contains(b.broker().worker_endpoint()));
    CHECK(value(b.counters().live_workers) == 0);
}

TEST_CASE("a client that keeps sending malformed messages is disconnected, forgotten and ignored",
          "[broker][validation][disconnect]") {
    // "A peer that sends more than `max_malformed` bad messages (default 10) within one heartbeat
    // interval SHALL be disconnected. [...] a client is forgotten as if it had expired (its queued
    // calls are dropped [...]); the broker sends the peer DISCONNECT, counts it
    // (`peers_disconnected`), and drops every message from that routing id unread for
    // `offender_ban` (default 10 s), counting them (`ignored_messages`)."
    zmq::context_t context;
    inproc_broker b(context, options());
    auto client = b.client("hostile");
    send(client, request(1, "f"));
    b.step();
    REQUIRE(value(b.counters().queued_jobs) == 1);
    REQUIRE(value(b.counters().live_clients) == 1);
    drain(client);

    frame_list garbage{"", client_id, u8(0x42)};
    for (int i = 0; i < 10; ++i)
        send(client, garbage);
    b.step();
    CHECK(value(b.counters().malformed_messages) == 10);
    CHECK(value(b.counters().peers_disconnected) == 0); // 10 is allowed: "more than"
    CHECK(value(b.counters().live_clients) == 1);

    send(client, garbage);
    b.step();
    CHECK(value(b.counters().malformed_messages) == 11);
    CHECK(value(b.counters().peers_disconnected) == 1);
    CHECK(value(b.counters().live_clients) == 0);
    CHECK(value(b.counters().queued_jobs) == 0);
    CHECK(received(client, command::disconnect).size() == 1);

    // Ignored: even a well-formed request is dropped unread, and nothing is sent back.
    send(client, request(2, "f"));
    send(client, garbage);
    b.step();
    CHECK(value(b.counters().ignored_messages) == 2);
    CHECK(value(b.counters().requests) == 1);
    CHECK(value(b.counters().malformed_messages) == 11);
    CHECK(drain(client).empty());

    // Another client is served as before.
    auto other = b.client("other");
    send(other, request(1, "f"));
    b.step();
    CHECK(value(b.counters().requests) == 2);
    CHECK(value(b.counters().queued_jobs) == 1);
}

TEST_CASE("a worker that keeps sending bad messages is removed and its job runs on another worker",
          "[broker][validation][disconnect]") {
    // "Disconnected means: a worker is removed as if it had expired (the jobs it held are
    // requeued)"
    zmq::context_t context;
    inproc_broker b(context, options());
    auto client = b.client("client");
    auto first = b.worker("first");
    auto second = b.worker("second");
    send(first, ready("first", {"f"}));
    send(second, ready("second", {"f"}));
    send(client, request(1, "f", payload(40, 2)));
    b.step();
    auto job_first = job_given(first);
    auto job_second = job_given(second);
    REQUIRE(job_first.has_value() != job_second.has_value());
    auto& holder = job_first ? first : second;
    auto& other = job_first ? second : first;
    auto job = job_first ? *job_first : *job_second;

    for (int i = 0; i < 11; ++i)
        send(holder, {"", worker_id, command_frame(command::credit), "bad"});
    b.step();
    CHECK(value(b.counters().peers_disconnected) == 1);
    CHECK(value(b.counters().requeued) == 1);
    CHECK(value(b.counters().live_workers) == 1);
    CHECK(received(holder, command::disconnect).size() == 1);
    auto again = received(other, command::request);
    REQUIRE(again.size() == 1);
    CHECK(read_u64(again[0][3]) == job);
    CHECK(again[0][6] == u32(2)); // the second attempt
    CHECK(again[0][7] == payload(40, 2));

    // The removed worker's answer is not even read; the other worker's is delivered.
    send(holder, reply(job, encoded(666)));
    send(other, reply(job, encoded(42)));
    b.step();
    CHECK(value(b.counters().ignored_messages) == 1);
    auto replies = received(client, command::reply);
    REQUIRE(replies.size() == 1);
    CHECK(replies[0][6] == encoded(42));
}

TEST_CASE("a worker cannot complete, fail, decline or see another worker's job",
          "[broker][validation]") {
    // "A REPLY, ERROR, PROGRESS or DECLINE from a worker for a job that worker does not hold (it
    // expired, or the job was requeued, or it never had it) SHALL be dropped and counted
    // (`late_replies`); it never changes the job's state. A worker cannot complete, fail, decline
    // or see another worker's job."
    zmq::context_t context;
    auto o = options();
    inproc_broker b(context, o);
    auto client = b.client("client");
    auto holder = b.worker("holder");
    auto forger = b.worker("forger");
    send(holder, ready("holder", {"f"}));
    send(forger, ready("holder", {"other"})); // the same name does not help it
    send(client, request(1, "f"));
    b.step();
    auto job = job_given(holder);
    REQUIRE(job);
    CHECK(received(forger, command::request).empty()); // cannot see it
    drain(client);

    send(forger, reply(*job, encoded(666)));
    send(forger, {"", worker_id, command_frame(command::error), u64(*job), u8(1), "E", "forged"});
    send(forger, {"", worker_id, command_frame(command::progress), u64(*job),
                  std::string(deferq::protocol::view(deferq::protocol::f64_frame(0.5))), "n"});
    send(forger, {"", worker_id, command_frame(command::decline), u64(*job)});
    b.step();
    CHECK(value(b.counters().late_replies) == 4);
    CHECK(value(b.counters().running_jobs) == 1);
    CHECK(value(b.counters().peers_disconnected) == 0);
    CHECK(drain(client).size() == 0); // no reply, error or progress reached the client
    CHECK(received(holder, command::request).empty()); // a forged DECLINE requeued nothing

    SECTION("the holder's result is delivered") {
        send(holder, reply(*job, encoded(3)));
        b.step();
        auto replies = received(client, command::reply);
        REQUIRE(replies.size() == 1);
        CHECK(replies[0][4] == "holder");
        CHECK(replies[0][6] == encoded(3));
        CHECK(value(b.counters().replies) == 1);
    }
    SECTION("a worker that keeps scanning job ids is disconnected; the job is not touched") {
        // "Bad messages are the malformed ones and, from a registered worker, messages about a job
        // it does not hold (`late_replies`)."
        for (std::uint64_t id = *job + 1; id < *job + 10; ++id)
            send(forger, reply(id, encoded(666)));
        b.step();
        CHECK(value(b.counters().peers_disconnected) == 1);
        CHECK(value(b.counters().live_workers) == 1);
        CHECK(value(b.counters().running_jobs) == 1);
        send(holder, reply(*job, encoded(3)));
        b.step();
        auto replies = received(client, command::reply);
        REQUIRE(replies.size() == 1);
        CHECK(replies[0][6] == encoded(3));
    }
}

TEST_CASE("the broker logs a bad peer at most once per interval, and every bad peer",
          "[broker][validation]") {
    // "A malformed message SHALL be counted (`malformed_messages`), logged at most once per peer
    // per interval, and dropped"
    zmq::context_t context;
    auto o = options();
    o.max_malformed = 0;
    inproc_broker b(context, o);
    log_capture log;
    auto one = b.client("one");
    auto two = b.client("two");
    for (int i = 0; i < 50; ++i) {
        send(one, {"", client_id, u8(0x42)});
        send(two, {"", "DFQC02", u8(0x42)});
    }
    b.step();
    CHECK(value(b.counters().malformed_messages) == 100);
    CHECK(log.count("dropped malformed message from client peer") == 2);
    CHECK(log.count("client peer 6f6e65") == 1); // "one"
    CHECK(log.count("client peer 74776f") == 1); // "two"
}

TEST_CASE("untrusted text in the broker's log is escaped", "[broker][validation]") {
    // "bytes outside printable ASCII appear as `\xNN`, so a peer cannot forge log lines"
    zmq::context_t context;
    inproc_broker b(context, options());
    log_capture log;
    auto client = b.client("client");
    send(client, {"", "DFQ\nC1", u8(4)});
    b.step();
    CHECK(value(b.counters().malformed_messages) == 1);
    CHECK(log.count("unknown protocol id 'DFQ\\x0aC1'") == 1);
    CHECK(log.count("DFQ\nC1") == 0);
}

TEST_CASE("worker and function names in the broker's log are escaped", "[broker][validation]") {
    // A worker's name and a function's name come from peers as well.
    zmq::context_t context;
    auto o = options();
    o.max_queue_length = 1;
    inproc_broker b(context, o);
    log_capture log;
    auto worker = b.worker("worker");
    send(worker, ready("w\nforged", {"g"}));
    b.step();
    send(worker, {"", worker_id, command_frame(command::disconnect)});
    b.step();
    CHECK(log.count("worker w\\x0aforged joined") == 1);
    CHECK(log.count("worker w\\x0aforged disconnected") == 1);

    auto client = b.client("client");
    send(client, request(1, "f\n"));
    send(client, request(2, "f\n"));
    b.step();
    CHECK(value(b.counters().overloaded) == 1);
    CHECK(log.count("queue of 'f\\x0a' is full") == 1);
    CHECK(log.count("w\nforged") == 0);
    CHECK(log.count("'f\n'") == 0);
}

TEST_CASE("the table of bad peers is bounded, and untracked peers are still counted",
          "[broker][validation][disconnect]") {
    // "When the table is full, bad messages from new peers are still dropped and counted, logged at
    // most once per interval in all, and nobody new is disconnected."
    zmq::context_t context;
    auto o = options();
    o.max_malformed = 1;
    o.max_tracked_peers = 2;
    inproc_broker b(context, o);
    std::vector<zmq::socket_t> clients;
    for (auto name : {"a", "b", "c"})
        clients.push_back(b.client(name));
    for (auto& client : clients) {
        send(client, {"", client_id, u8(0x42)});
        send(client, {"", client_id, u8(0x42)});
        b.step();
    }
    CHECK(value(b.counters().malformed_messages) == 6);
    CHECK(value(b.counters().peers_disconnected) == 2);
    CHECK(received(clients[2], command::disconnect).empty());
}

TEST_CASE("once its ban is over, a disconnected peer is heard again",
          "[broker][validation][disconnect]") {
    zmq::context_t context;
    auto o = options();
    o.max_malformed = 1;
    o.offender_ban = 0ms;
    inproc_broker b(context, o);
    auto client = b.client("client");
    send(client, {"", client_id, u8(0x42)});
    send(client, {"", client_id, u8(0x42)});
    b.step();
    REQUIRE(value(b.counters().peers_disconnected) == 1);
    send(client, request(1, "f"));
    b.step();
    CHECK(value(b.counters().ignored_messages) == 0);
    CHECK(value(b.counters().requests) == 1);
}

TEST_CASE("a repeated request for a queued or running call is ignored and answered once",
          "[broker][dedup]") {
    // "The broker SHALL NOT hold two jobs for the same (client routing id, correlation id) while
    // the call is pending: a REQUEST that repeats a queued or running one is ignored (its reply
    // will come once)."
    zmq::context_t context;
    inproc_broker b(context, options());
    auto client = b.client("client");
    send(client, request(1, "f"));
    b.step();
    REQUIRE(value(b.counters().queued_jobs) == 1);

    send(client, request(1, "f")); // while queued
    b.step();
    CHECK(value(b.counters().duplicate_requests) == 1);
    CHECK(value(b.counters().queued_jobs) == 1);

    auto worker = b.worker("worker");
    send(worker, ready("w", {"f"}));
    b.step();
    auto job = job_given(worker);
    REQUIRE(job);
    REQUIRE(value(b.counters().running_jobs) == 1);

    send(client, request(1, "f")); // while running
    b.step();
    CHECK(value(b.counters().duplicate_requests) == 2);
    CHECK(value(b.counters().queued_jobs) == 0);
    CHECK(value(b.counters().running_jobs) == 1);
    CHECK(received(worker, command::request).empty()); // the worker got the job once

    drain(client);
    send(worker, reply(*job, encoded(3)));
    b.step();
    auto replies = received(client, command::reply);
    REQUIRE(replies.size() == 1);
    CHECK(read_u64(replies[0][3]) == 1);
    CHECK(replies[0][6] == encoded(3));
    CHECK(value(b.counters().replies) == 1);
    CHECK(value(b.counters().requests) == 3);

    // "Once the call ended for the client (answered, cancelled, timed out) its id is free again"
    send(client, request(1, "f"));
    b.step();
    CHECK(value(b.counters().duplicate_requests) == 2);
    auto again = job_given(worker);
    REQUIRE(again);
    CHECK(*again != *job);
}

TEST_CASE("a job whose worker is lost runs on the next worker, and fails after the third",
          "[broker][retry]") {
    // "When a worker expires or disconnects, the broker SHALL put the jobs it held back at the
    // front of their queues. A job dispatched `max_attempts` times (default 3, per-call override in
    // REQUEST) whose worker is lost fails with `worker_lost`."
    zmq::context_t context;
    deferq::broker_options o;
    o.heartbeat_interval = 100ms; // a silent worker expires after 200 ms
    o.liveness = 2;
    REQUIRE(o.max_attempts == 3);
    inproc_broker b(context, o);
    auto client = b.client("client");
    // The client keeps itself alive (HEARTBEAT) before each turn: only the workers are lost.
    auto step = [&] {
        send(client, {"", client_id, command_frame(command::heartbeat)});
        b.step();
    };
    send(client, request(1, "f", payload(40, 2)));
    step();
    REQUIRE(value(b.counters().queued_jobs) == 1);

    // A new worker offering "f" is given the job: the same job each time, one attempt more.
    std::optional<std::uint64_t> job;
    auto next_worker = [&](const std::string& name, std::uint32_t attempt) {
        auto worker = b.worker(name);
        send(worker, ready(name, {"f"}));
        step();
        auto jobs = received(worker, command::request);
        REQUIRE(jobs.size() == 1);
        if (!job) job = read_u64(jobs[0][3]);
        CHECK(read_u64(jobs[0][3]) == *job);
        CHECK(jobs[0][6] == u32(attempt));
        CHECK(jobs[0][7] == payload(40, 2));
        return worker;
    };

    auto first = next_worker("first", 1);
    send(first, {"", worker_id, command_frame(command::disconnect)});
    step();
    CHECK(value(b.counters().workers_lost) == 1);
    CHECK(value(b.counters().requeued) == 1);
    CHECK(value(b.counters().queued_jobs) == 1);

    auto second = next_worker("second", 2);
    std::this_thread::sleep_for(300ms); // silent for longer than interval × liveness
    step();
    CHECK(value(b.counters().workers_lost) == 2);
    CHECK(value(b.counters().requeued) == 2);
    CHECK(value(b.counters().queued_jobs) == 1);
    CHECK(received(client, command::error).empty()); // not yet

    auto third = next_worker("third", 3);
    send(third, {"", worker_id, command_frame(command::disconnect)});
    step();
    CHECK(value(b.counters().workers_lost) == 3);
    CHECK(value(b.counters().requeued) == 2); // the third loss ends the job instead
    CHECK(value(b.counters().queued_jobs) == 0);
    CHECK(value(b.counters().running_jobs) == 0);
    auto errors = received(client, command::error);
    REQUIRE(errors.size() == 1);
    CHECK(read_u64(errors[0][3]) == 1);
    CHECK(errors[0][4] == u8(static_cast<std::uint8_t>(deferq::error_code::worker_lost)));
    CHECK(errors[0][7] == "third");
    CHECK(errors[0][8] == u32(3));
    CHECK(value(b.counters().live_clients) == 1);
}

TEST_CASE("a reply to a client that went away is counted undeliverable, and others are served",
          "[broker][mandatory]") {
    // The broker's sockets are ROUTER_MANDATORY: a message to a peer that is gone fails at once
    // and is counted (`undeliverable`) instead of vanishing.
    zmq::context_t context;
    inproc_broker b(context, options());
    auto worker = b.worker("worker");
    send(worker, ready("w", {"f"}));
    std::optional<std::uint64_t> job;
    {
        auto gone = b.client("gone"); // linger 0
        send(gone, request(1, "f"));
        b.step();
        job = job_given(worker);
        REQUIRE(job);
    }
    // The ROUTER learns that the inproc peer closed from a command sent by ZeroMQ's reaper
    // thread. Until it has, a message to the peer still goes into the dying pipe, so the test
    // waits for that with PROGRESS, which the broker forwards at once.
    auto progress =
        frame_list{"",
                   worker_id,
                   command_frame(command::progress),
                   u64(*job),
                   std::string(deferq::protocol::view(deferq::protocol::f64_frame(0.5))),
                   "half"};
    for (int i = 0; i < 500 && value(b.counters().undeliverable) == 0; ++i) {
        std::this_thread::sleep_for(10ms);
        send(worker, progress);
        b.step();
    }
    REQUIRE(value(b.counters().undeliverable) >= 1);
    auto before = value(b.counters().undeliverable);
    send(worker, reply(*job, encoded(3)));
    b.step();
    CHECK(value(b.counters().undeliverable) == before + 1);
    CHECK(value(b.counters().running_jobs) == 0);

    auto other = b.client("other");
    send(other, request(1, "f"));
    b.step();
    auto next = job_given(worker);
    REQUIRE(next);
    send(worker, reply(*next, encoded(4)));
    b.step();
    auto replies = received(other, command::reply);
    REQUIRE(replies.size() == 1);
    CHECK(read_u64(replies[0][3]) == 1);
    CHECK(replies[0][6] == encoded(4));
    CHECK(value(b.counters().undeliverable) == before + 1);
}
