// Hostile peers against a real broker process (docs/security.md, docs/protocol.md §4 Validation):
// raw ZeroMQ sockets send every kind of bad message, oversize ones included, while a legitimate
// client runs the reference scenario; and a registered worker tries to answer another worker's job.

#include "cluster.hpp"
#include "raw_peer.hpp"

#include "deferq/client.hpp"
#include "deferq/codec.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <set>
#include <thread>

using namespace std::chrono_literals;
using deferq::protocol::command;
using deferq::test::cluster;
using deferq::test::eventually;
using namespace deferq::test;

namespace {

const std::string client_id = "DFQC01", worker_id = "DFQW01";

std::string bytes(const zmq::message_t& message) {
    return std::string(deferq::protocol::view(message));
}
std::string options_frame() {
    return bytes(deferq::protocol::options_frame({}));
}
std::string f64(double value) {
    return bytes(deferq::protocol::f64_frame(value));
}

/// Every malformed kind a client can send (docs/protocol.md §4, Validation): more than
/// max_malformed (10) of them, so the last ones reach a disconnected, ignored peer.
std::vector<frame_list> malformed_from_client() {
    auto hb = command_frame(command::heartbeat);
    auto request = command_frame(command::request);
    auto args = bytes(deferq::codec::encode_args(1, 2));
    return {
        {""},                      // too few frames
        {"", client_id},           // no command
        {"x", client_id, hb},      // no empty delimiter
        {"", "MDPX01", hb},        // unknown protocol id
        {"", "DFQC02", hb},        // another version
        {"", worker_id, hb},       // the other endpoint's id
        {"", client_id, u8(0x42)}, // unknown command
        {"", client_id, command_frame(command::reply), u64(1), "w", u32(1), args}, // not a client's
        {"", client_id, request, u64(1).substr(3), "add", options_frame(), args},  // truncated u64
        {"", client_id, request, u64(1), "add", options_frame().substr(2), args},  // short options
        {"", client_id, request, u64(1), "add", options_frame()},                  // no payload
        {"", client_id, request, u64(1), "", options_frame(), args},               // empty name
        {"", client_id, command_frame(command::cancel), u32(7)},                   // truncated u64
        {"", client_id, hb, "unexpected body"},                                    // extra frame
    };
}

/// What a registered worker may not send: malformed messages and answers for jobs it does not
/// hold. More than max_malformed (10) in all.
std::vector<frame_list> bad_from_worker(std::uint64_t seed) {
    auto payload = bytes(deferq::codec::encode_value(666.0));
    return {
        {"", worker_id, command_frame(command::request), "hostile", u32(1), u32(0), "hostile-fn"},
        {"", worker_id, command_frame(command::reply), u64(seed), payload},     // a job it does not
        {"", worker_id, command_frame(command::reply), u64(seed + 1), payload}, // hold (a scan)
        {"", worker_id, command_frame(command::error), u64(seed + 2), u8(1), "E", "forged"},
        {"", worker_id, command_frame(command::progress), u64(seed + 3), f64(0.5), ""},
        {"", worker_id, command_frame(command::decline), u64(seed + 4)},
        {"", worker_id, command_frame(command::reply), u64(seed).substr(1), payload},  // truncated
        {"", worker_id, command_frame(command::error), u64(seed), u8(0xee), "E", "m"}, // bad code
        {"", worker_id, command_frame(command::progress), u64(seed),
         f64(std::numeric_limits<double>::quiet_NaN()), ""},
        {"", worker_id, command_frame(command::credit), "xx"},
        {"", worker_id, command_frame(command::cancel), u64(seed)}, // not a worker's command
        {"", worker_id, u8(0x0b)},
        {"", client_id, command_frame(command::heartbeat)},
    };
}

/// Raw sockets that attack both endpoints round after round, on their own thread, until destroyed.
class hostile_peers {
public:
    hostile_peers(std::string clients, std::string workers, std::size_t oversize)
        : _clients(std::move(clients)), _workers(std::move(workers)), _oversize(oversize),
          _thread([this](std::stop_token stop) { run(stop); }) {}
    ~hostile_peers() {
        {
            std::lock_guard lock(_mutex);
            _thread.request_stop();
        }
        _wake.notify_all();
    }

    int rounds() const { return _rounds.load(); }
    /// Rounds in which the broker answered each hostile peer as the protocol says.
    int answered() const { return _answered.load(); }

private:
    void run(std::stop_token stop) {
        for (std::uint64_t n = 0; !stop.stop_requested(); ++n) {
            if (round(n)) ++_answered;
            ++_rounds;
            // Pacing, not synchronisation: a round every 20 ms or so keeps the 2-core test machines
            // usable for the legitimate traffic.
            std::unique_lock lock(_mutex);
            _wake.wait_for(lock, 20ms, [&] { return stop.stop_requested(); });
        }
    }

    /// One round with fresh routing ids; true when every answer the broker owes came.
    bool round(std::uint64_t n) {
        auto tag = std::to_string(n);
        bool ok = true;

        // A client that keeps sending malformed messages: disconnected (DISCONNECT), then ignored.
        auto client = raw_dealer(_context, _clients, "hostile-client-" + tag);
        for (const auto& message : malformed_from_client())
            send(client, message);
        ok &= wait_for(client, command::disconnect, 5s).has_value();

        // Undecodable msgpack in the one payload the broker reads: answered with bad_arguments.
        auto service = raw_dealer(_context, _clients, "hostile-service-" + tag);
        send(service, {"", client_id, command_frame(command::request), u64(1), "mmi.service",
                       options_frame(), "\xc1"});
        ok &= wait_for(service, command::error, 5s).has_value();

        // A worker that registers, then answers jobs it does not hold and sends garbage.
        auto worker = raw_dealer(_context, _workers, "hostile-worker-" + tag);
        send(worker, {"", worker_id, command_frame(command::request), "hostile", u32(1), u32(0),
                      "hostile-fn"});
        ok &= wait_for(worker, command::heartbeat, 5s).has_value(); // READY is answered so
        for (const auto& message : bad_from_worker(n * 1000 + 1))
            send(worker, message);
        ok &= wait_for(worker, command::disconnect, 5s).has_value();

        // A worker that never registered answers a job: counted as a late reply, told DISCONNECT.
        auto stranger = raw_dealer(_context, _workers, "hostile-stranger-" + tag);
        send(stranger, {"", worker_id, command_frame(command::reply), u64(n + 7),
                        bytes(deferq::codec::encode_value(1))});
        ok &= wait_for(stranger, command::disconnect, 5s).has_value();

        // Messages beyond --max-message-size on both endpoints: ZeroMQ drops the connection.
        auto big_client = raw_dealer(_context, _clients, "hostile-big-client-" + tag);
        send(big_client, {"", client_id, command_frame(command::request), u64(1), "add",
                          options_frame(), std::string(_oversize, '\x90')});
        auto big_worker = raw_dealer(_context, _workers, "hostile-big-worker-" + tag);
        send(big_worker, {"", worker_id, command_frame(command::reply), u64(1),
                          std::string(_oversize, '\x90')});
        return ok;
    }

    zmq::context_t _context;
    std::string _clients, _workers;
    std::size_t _oversize;
    std::atomic<int> _rounds{0}, _answered{0};
    std::mutex _mutex;
    std::condition_variable_any _wake;
    std::jthread _thread; // last: started once everything else is ready, joined first
};

} // namespace

TEST_CASE("under hostile traffic on both endpoints the reference scenario still totals 330",
          "[security][hostile]") {
    // "A malformed message SHALL be counted (`malformed_messages`), logged at most once per peer
    // per interval, and dropped; it never changes any job's state." and "A peer that sends more
    // than `max_malformed` bad messages (default 10) within one heartbeat interval SHALL be
    // disconnected."
    cluster c("hostile");
    constexpr std::size_t max_message = 64 * 1024;
    c.start_broker({"--max-message-size", std::to_string(max_message)});
    for (auto name : {"w1", "w2", "w3"})
        c.add_worker(name, {"--concurrency", "1", "--calculate-delay", "300"});

    hostile_peers hostile(c.client_endpoint(), c.worker_endpoint(), 2 * max_message);
    REQUIRE(eventually([&] { return hostile.rounds() >= 2; }, 30s));

    deferq::Client client({.broker = c.client_endpoint()});
    for (int run = 0; run < 3; ++run) {
        INFO("run " << run);
        auto rounds_before = hostile.rounds();
        std::vector<deferq::Deferred<double>> results;
        for (auto [a, b] : {std::pair{42, 47}, {52, 58}, {62, 69}})
            results.push_back(client.call_with<double>({.timeout = 30s}, "calculate", a, b));
        auto values = deferq::gather_results(std::move(results)).get(60s);
        REQUIRE(values.size() == 3);
        CHECK(values[0] == 89);
        CHECK(values[1] == 110);
        CHECK(values[2] == 131);
        CHECK(values[0] + values[1] + values[2] == 330);
        // The attack went on while the scenario ran.
        CHECK(eventually([&] { return hostile.rounds() > rounds_before; }, 10s));
    }

    // Read before the status: the attack goes on meanwhile, and a round answered after the broker
    // reported its counters would be missing from them.
    auto answered = hostile.answered();
    auto rounds = hostile.rounds();
    CHECK(answered >= rounds - 2); // a round in progress between the two reads may not be done
    CHECK_FALSE(c.broker().exited());
    auto status = c.status();
    const auto& counters = status["counters"];
    INFO(counters.dump());
    CHECK(counters["malformed_messages"].get<int>() >= rounds * 10);
    // Each finished round disconnects its client and its registered worker.
    CHECK(counters["peers_disconnected"].get<int>() >= 2 * answered);
    CHECK(counters["ignored_messages"].get<int>() >= answered);
    CHECK(counters["late_replies"].get<int>() >= answered);
    CHECK(counters["replies"].get<int>() == 9); // every legitimate result, once
    std::set<std::string> workers;
    for (const auto& worker : status["workers"])
        workers.insert(worker["name"].get<std::string>());
    CHECK(workers.count("w1") == 1);
    CHECK(workers.count("w2") == 1);
    CHECK(workers.count("w3") == 1);
    auto log = c.broker().log();
    CHECK_THAT(log, Catch::Contains("disconnected client peer"));
    CHECK_THAT(log, Catch::Contains("disconnected worker peer"));
    // Still serving after the attack.
    CHECK(client.call_with<double>({.timeout = 10s}, "add", 1, 2).get(20s) == 3);
}

TEST_CASE("a forged REPLY from a registered worker for another worker's job is dropped, and the "
          "real result arrives",
          "[security][hostile]") {
    // "A REPLY, ERROR, PROGRESS or DECLINE from a worker for a job that worker does not hold [...]
    // SHALL be dropped and counted (`late_replies`); it never changes the job's state. A worker
    // cannot complete, fail, decline or see another worker's job."
    cluster c("forged-reply");
    // A long interval: the raw forger sends no heartbeats and must not expire during the test.
    c.start_broker({"--heartbeat-interval", "5000"});
    // A long job: the forger acts while the real worker holds it, even on a loaded machine.
    c.add_worker("real", {"--concurrency", "1", "--calculate-delay", "4000"});
    zmq::context_t context;
    auto forger = raw_dealer(context, c.worker_endpoint(), "forger");
    send(forger,
         {"", worker_id, command_frame(command::request), "forger", u32(1), u32(0), "probe"});
    REQUIRE(wait_for(forger, command::heartbeat, 10s));

    // Job ids are sequential from a random start: the forger learns one from a job of its own...
    deferq::Client client({.broker = c.client_endpoint()});
    auto probe = client.call_with<std::string>({.timeout = 20s}, "probe");
    auto own = wait_for(forger, command::request, 10s);
    REQUIRE(own);
    auto own_id = read_u64((*own)[3]);
    send(forger, {"", worker_id, command_frame(command::reply), u64(own_id),
                  bytes(deferq::codec::encode_value(std::string("probed")))});
    CHECK(probe.get(20s) == "probed");

    // ...so the next call's job id is the next one.
    auto real = client.call_with<deferq::Reply<double>>({.timeout = 30s}, "calculate", 42, 47);
    nlohmann::json status;
    bool dispatched = eventually(
        [&] {
            status = c.status();
            for (const auto& worker : status["workers"])
                if (worker["name"] == "real" && worker["held"] == 1) return true;
            return false;
        },
        10s);
    INFO(status.dump());
    REQUIRE(dispatched);
    auto late_before = c.counter("late_replies");
    auto target = own_id + 1;
    send(forger, {"", worker_id, command_frame(command::reply), u64(target),
                  bytes(deferq::codec::encode_value(999.0))});
    send(forger, {"", worker_id, command_frame(command::error), u64(target), u8(1), "Forged",
                  "forged failure"});
    send(forger, {"", worker_id, command_frame(command::progress), u64(target), f64(0.9), "x"});
    send(forger, {"", worker_id, command_frame(command::decline), u64(target)});
    for (auto id = target + 1; id <= target + 3; ++id) // and a few more, in case of a gap
        send(forger, {"", worker_id, command_frame(command::reply), u64(id),
                      bytes(deferq::codec::encode_value(999.0))});

    auto reply = real.get(30s);
    CHECK(reply.value == 89);
    CHECK(reply.worker == "real");
    CHECK(reply.attempt == 1);
    CHECK(c.counter("late_replies") == late_before + 7);
    // Seven bad messages are under the disconnect limit: the forger is still registered, and it
    // never saw the other worker's job.
    CHECK(c.counter("live_workers") == 2);
    CHECK(c.counter("peers_disconnected") == 0);
    CHECK_FALSE(wait_for(forger, command::request, 200ms).has_value());
}

TEST_CASE(
    "deferq-broker --max-tracked-peers bounds whom it can disconnect, and bad messages beyond it "
    "are still counted",
    "[security][hostile]") {
    // docs/protocol.md §4: "peers tracked for the two rules above: 4096 per endpoint
    // (--max-tracked-peers)". With room for one peer, a second bad client is counted, not cut off.
    cluster c("tracked-peers");
    c.start_broker({"--max-malformed", "1", "--max-tracked-peers", "1"});
    zmq::context_t context;
    auto first = raw_dealer(context, c.client_endpoint(), "first-offender");
    for (int i = 0; i < 2; ++i)
        send(first, {"", client_id, u8(0x42)});
    REQUIRE(wait_for(first, command::disconnect, 10s));
    auto second = raw_dealer(context, c.client_endpoint(), "second-offender");
    for (int i = 0; i < 2; ++i)
        send(second, {"", client_id, u8(0x42)});
    CHECK(eventually([&] { return c.counter("malformed_messages") == 4; }, 10s));
    CHECK_FALSE(wait_for(second, command::disconnect, 300ms).has_value());
    CHECK(c.counter("peers_disconnected") == 1);
}
