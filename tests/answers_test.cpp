// Every call ends with a clear answer, mistakes included (issue 14): what a new user's slips get,
// on real processes. docs/protocol.md §4 has the rules each test quotes.

#include "cluster.hpp"

#include "deferq/client.hpp"
#include "deferq/protocol.hpp"

#include <catch2/catch.hpp>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <deque>

using namespace std::chrono_literals;
using deferq::test::cluster;

TEST_CASE("a call to a function nobody offers ends with no_such_function after the grace",
          "[answers]") {
    // "If no worker offers the function now, nor offered it within --function-memory, the call
    // SHALL fail with no_such_function once it has waited --unknown-function-grace."
    cluster c("unknown-function");
    c.start_broker();
    c.add_worker("w1");
    auto started = std::chrono::steady_clock::now();
    auto typo = c.cli({"call", "ad", "1", "2"}, 30s); // no --timeout: it must end anyway
    auto took = std::chrono::steady_clock::now() - started;
    CHECK(typo.exit_code == 1);
    CHECK_THAT(typo.output,
               Catch::Contains("no_such_function") && Catch::Contains("no worker offers 'ad'"));
    CHECK(took < 20s); // the default grace is 5 s (+ a tick)
    CHECK(c.cli({"call", "add", "1", "2"}).output == "3\n");
}

TEST_CASE("a name that cannot be a function's is answered at once, without echoing it",
          "[answers]") {
    // "A REQUEST whose function name is empty or over the limit SHALL be answered with
    // no_such_function, naming the limit; the name is not echoed."
    cluster c("bad-names");
    c.start_broker();
    auto empty = c.cli({"call", "", "1"}, 20s);
    CHECK(empty.exit_code == 1);
    CHECK_THAT(empty.output, Catch::Contains("no_such_function") && Catch::Contains("empty"));
    for (std::size_t length : {129, 10'240}) {
        auto name = std::string(length, 'n');
        auto result = c.cli({"call", name, "1"}, 20s);
        INFO(result.output.substr(0, 300));
        CHECK(result.exit_code == 1);
        CHECK_THAT(result.output,
                   Catch::Contains("no_such_function") && Catch::Contains("at most 128 bytes"));
        CHECK(result.output.find(name) == std::string::npos);
        CHECK(result.output.size() < 1000);
    }
}

TEST_CASE("a strict broker serves calls made just after its restart", "[answers]") {
    // "--strict answers no_such_function at once, but not during the first
    // --unknown-function-grace after the broker's start."
    cluster c("strict-restart");
    c.start_broker({"--strict"});
    c.add_worker("w1");
    CHECK(c.cli({"call", "add", "1", "2"}).output == "3\n");
    c.kill_broker();
    c.restart_broker();
    auto soon = c.cli({"call", "add", "2", "3"}, 30s); // workers are still re-registering
    CHECK(soon.exit_code == 0);
    CHECK(soon.output == "5\n");
    auto unknown = c.cli({"call", "nobody", "1"}, 30s); // ends at the window's end, or at once
    CHECK(unknown.exit_code == 1);
    CHECK_THAT(unknown.output, Catch::Contains("no_such_function"));
}

namespace {

/// Raw DEALER peers of the client endpoint, each its own connection (one file descriptor in the
/// broker), each sending one HEARTBEAT; how many the broker answered.
class many_clients {
public:
    many_clients(const std::string& endpoint, int count) {
        rlimit limit{};
        ::getrlimit(RLIMIT_NOFILE, &limit);
        limit.rlim_cur = limit.rlim_max; // this test process holds `count` sockets too
        ::setrlimit(RLIMIT_NOFILE, &limit);
        _context.set(zmq::ctxopt::max_sockets, count + 64);
        for (int i = 0; i < count; ++i) {
            auto& socket = _sockets.emplace_back(_context, zmq::socket_type::dealer);
            socket.set(zmq::sockopt::linger, 0);
            socket.connect(endpoint);
            std::vector<zmq::message_t> heartbeat;
            deferq::protocol::begin_message(heartbeat, {}, deferq::protocol::client_protocol,
                                            deferq::protocol::command::heartbeat);
            [[maybe_unused]] bool sent = deferq::protocol::send_frames(socket, heartbeat);
        }
    }

    /// Peers that got a message from the broker so far (each counted once).
    int answered() {
        _answered.resize(_sockets.size());
        std::vector<zmq::message_t> frames;
        for (std::size_t i = 0; i < _sockets.size(); ++i)
            while (deferq::protocol::receive_frames(_sockets[i], frames))
                _answered[i] = true;
        return static_cast<int>(std::count(_answered.begin(), _answered.end(), true));
    }

private:
    zmq::context_t _context;
    std::deque<zmq::socket_t> _sockets;
    std::vector<bool> _answered;
};

} // namespace

TEST_CASE("the broker raises its open-file limit, and says when it must refuse peers",
          "[answers][limits]") {
    // docs/operations.md, Sizing: every peer costs the broker one file descriptor.
    constexpr int peers = 400;
    SECTION("a soft limit under the hard one is raised, and every peer is served") {
        cluster c("files-raised");
        c.start_broker({}, {"prlimit", "--nofile=256:4096", "--"});
        CHECK_THAT(c.broker().log(), Catch::Contains("open files: up to 4096 (raised from 256)"));
        many_clients clients(c.client_endpoint(), peers);
        CHECK(deferq::test::eventually([&] { return clients.answered() == peers; }, 30s));
        CHECK(c.counter("connections_refused") == 0);
    }
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    // Not under sanitizers: at the limit libzmq retries the failing accept at once, and in a
    // sanitized broker that spin starves its I/O thread for longer than this test waits.
    SECTION("at the hard limit, refused peers are counted and logged, and the broker serves again "
            "once they leave") {
        cluster c("files-refused");
        c.start_broker({}, {"prlimit", "--nofile=256:256", "--"});
        CHECK_THAT(c.broker().log(), Catch::Contains("room for about 192 clients and workers"));
        {
            many_clients clients(c.client_endpoint(), peers);
            CHECK(deferq::test::eventually(
                [&] {
                    return c.broker().log().find("the open-file limit (256) is reached") !=
                           std::string::npos;
                },
                30s));
            // Those that got a descriptor are served; the others are not (and know nothing).
            CHECK(deferq::test::eventually([&] { return clients.answered() > 150; }, 30s));
            CHECK(clients.answered() < peers);
        }
        c.add_worker("w1");
        CHECK(c.cli({"call", "add", "1", "2"}, 30s).output == "3\n");
        CHECK(c.counter("connections_refused") > 0);
    }
#endif
}

TEST_CASE("arguments over the broker's message size limit fail with too_large before sending",
          "[answers][limits]") {
    // "A client SHALL NOT send a payload over the max message size the broker announces: the call
    // fails at once with too_large."
    cluster c("request-too-large");
    c.start_broker({"--max-message-size", "1048576"});
    c.add_worker("w1");
    deferq::Client client({.broker = c.client_endpoint()});
    CHECK(client.call<std::string>("echo", std::string("small")).get(10s) == "small");
    try {
        client.call<std::string>("echo", std::string(2 << 20, 'x')).get(10s);
        FAIL("expected too_large");
    } catch (const deferq::Failure& failure) {
        CHECK(failure.code() == deferq::error_code::too_large);
        CHECK_THAT(failure.message(), Catch::Contains("at most 1048576 bytes"));
    }
    CHECK(client.call<double>("add", 1, 2).get(10s) == 3); // the connection is still good
}

TEST_CASE("a result over the limit fails with too_large and frees the worker's slot",
          "[answers][limits]") {
    // "A worker SHALL answer a job whose result is over the announced max message size with ERROR
    // too_large, and free its slot."
    cluster c("reply-too-large");
    c.start_broker({"--max-message-size", "1048576"});
    c.add_worker("w1", {"--concurrency", "1"});
    auto big = c.cli({"call", "bytes", "2097152"}, 30s);
    CHECK(big.exit_code == 1);
    CHECK_THAT(big.output, Catch::Contains("too_large") &&
                               Catch::Contains("the result of 'bytes' is 2097157 bytes"));
    CHECK(c.cli({"call", "add", "1", "2"}, 30s).output == "3\n"); // the one slot is free
    CHECK(c.counter("running_jobs") == 0);
    CHECK_THAT(c.workers()[0]->log(), Catch::Contains("bytes; the broker takes messages of at "
                                                      "most 1048576 bytes"));
}

TEST_CASE("a client at the worker endpoint, and a worker at the client endpoint, stop and say why",
          "[answers]") {
    // "A peer that speaks the other endpoint's protocol SHALL be answered with ERROR about call or
    // job 0 naming both endpoints; deferq's client fails its calls with it, deferq-worker exits."
    cluster c("wrong-endpoint");
    c.start_broker();
    auto lost_client = deferq::test::run(
        {DEFERQ_CLI_BIN, "--broker", c.worker_endpoint(), "call", "add", "1", "2"}, 30s);
    CHECK(lost_client.exit_code != 0);
    CHECK_THAT(lost_client.output, Catch::Contains("this is the broker's worker endpoint") &&
                                       Catch::Contains(c.client_endpoint()));
    auto lost_worker = deferq::test::run({DEFERQ_WORKER_BIN, "--broker", c.client_endpoint()}, 30s);
    CHECK(lost_worker.exit_code != 0);
    CHECK_THAT(lost_worker.output, Catch::Contains("this is the broker's client endpoint") &&
                                       Catch::Contains(c.worker_endpoint()));
}
