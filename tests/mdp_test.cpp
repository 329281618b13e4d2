// Integration tests for 7/MDP (MDP/0.1) compatibility (docs/interop.md): a Majordomo client and a
// Majordomo worker written in Python from the RFC (tests/mdp/) use a real broker, alongside
// deferq's own clients and workers.

#include "cluster.hpp"

#include "deferq/client.hpp"

#include <catch2/catch.hpp>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <csignal>
#include <set>

using namespace std::chrono_literals;
using deferq::test::cluster;
using deferq::test::eventually;
using deferq::test::process;
using nlohmann::json;

namespace {

const std::string mdp_dir = std::string(DEFERQ_SOURCE_DIR) + "/tests/mdp/";

/// Runs tests/mdp/mdp_client.py against the cluster; its replies, one JSON object each.
std::vector<json> mdp_client(cluster& c, std::vector<std::string> args) {
    std::vector<std::string> argv{DEFERQ_PYTHON, mdp_dir + "mdp_client.py", "--broker",
                                  c.client_endpoint()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto result = deferq::test::run(argv, 60s);
    INFO(result.output);
    REQUIRE(result.exit_code == 0);
    std::vector<json> replies;
    std::size_t start = 0;
    while (start < result.output.size()) {
        auto end = result.output.find('\n', start);
        if (end == std::string::npos) end = result.output.size();
        auto line = result.output.substr(start, end - start);
        if (!line.empty() && line[0] == '{') replies.push_back(json::parse(line));
        start = end + 1;
    }
    return replies;
}

/// Starts tests/mdp/mdp_worker.py and waits until the broker logs that it joined.
std::unique_ptr<process> mdp_worker(cluster& c, const std::string& name, const std::string& service,
                                    std::vector<std::string> extra = {}) {
    auto before = c.joined_count();
    std::vector<std::string> argv{DEFERQ_PYTHON, mdp_dir + "mdp_worker.py",
                                  "--broker",    c.worker_endpoint(),
                                  "--service",   service};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto worker = std::make_unique<process>(argv, c.log_dir() + "/mdp-worker-" + name + ".log");
    if (!eventually([&] { return c.joined_count() > before || worker->exited(); }, 20s) ||
        worker->exited())
        throw std::runtime_error("MDP worker " + name + " did not join; log:\n" + worker->log());
    return worker;
}

void send(zmq::socket_t& socket, const std::vector<std::string>& frames) {
    for (std::size_t i = 0; i < frames.size(); ++i)
        socket.send(zmq::buffer(frames[i]),
                    i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
}

std::optional<std::vector<std::string>> receive(zmq::socket_t& socket,
                                                std::chrono::milliseconds timeout) {
    zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;
    std::vector<zmq::message_t> frames;
    (void)zmq::recv_multipart(socket, std::back_inserter(frames));
    std::vector<std::string> out;
    for (auto& frame : frames)
        out.push_back(frame.to_string());
    return out;
}

} // namespace

TEST_CASE("a Majordomo client calls a Majordomo worker through the broker", "[mdp]") {
    cluster c("mdp-mdp");
    c.start_broker();
    auto worker = mdp_worker(c, "echo", "echo");

    SECTION("REQ: one call at a time, msgpack and raw bodies pass unchanged") {
        auto replies = mdp_client(
            c, {"--service", "echo", "--args", R"(["hello", 42])", "--raw", "plain text"});
        REQUIRE(replies.size() == 2);
        CHECK(replies[0]["service"] == "echo");
        CHECK(replies[0]["result"] == json::parse(R"(["hello", 42])"));
        CHECK(replies[1]["raw"] == "plain text");
    }
    SECTION("DEALER: pipelined calls each get their reply") {
        auto replies = mdp_client(c, {"--socket", "dealer", "--service", "echo", "--args", "[1]",
                                      "--args", "[2]", "--args", "[3]"});
        REQUIRE(replies.size() == 3);
        std::multiset<int> values;
        for (auto& reply : replies)
            values.insert(reply["result"][0].get<int>());
        CHECK(values == std::multiset<int>{1, 2, 3});
    }
    SECTION("mmi.service answers 200, 404 and 501 as 8/MMI says") {
        auto replies = mdp_client(
            c, {"--service", "mmi.service", "--raw", "echo", "--raw", "nobody", "--raw-replies"});
        REQUIRE(replies.size() == 2);
        CHECK(replies[0]["service"] == "mmi.service");
        CHECK(replies[0]["raw"] == "200");
        CHECK(replies[1]["raw"] == "404");
        auto other = mdp_client(c, {"--service", "mmi.nothing", "--raw", "x", "--raw-replies"});
        REQUIRE(other.size() == 1);
        CHECK(other[0]["raw"] == "501");
    }
    // The MDP worker is an ordinary worker record with one slot.
    auto status = c.status();
    REQUIRE(status["workers"].size() == 1);
    CHECK(status["workers"][0]["slots"] == 1);
    CHECK(status["workers"][0]["prefetch"] == 0);
    CHECK(status["workers"][0]["functions"] == json::parse(R"(["echo"])"));
}

TEST_CASE("a Majordomo client calls a deferq worker's functions", "[mdp]") {
    cluster c("mdp-client");
    c.start_broker({"--mdp-timeout", "1000"});
    c.add_worker("w1", {"--concurrency", "2"});

    SECTION("add with msgpack arguments returns the msgpack result") {
        auto replies = mdp_client(c, {"--service", "add", "--args", "[2, 3]"});
        REQUIRE(replies.size() == 1);
        CHECK(replies[0]["service"] == "add");
        CHECK(replies[0]["result"] == 5);
    }
    SECTION("a DEALER client pipelines calls") {
        auto replies = mdp_client(c, {"--socket", "dealer", "--service", "add", "--args", "[1, 1]",
                                      "--args", "[2, 2]", "--args", "[3, 3]"});
        REQUIRE(replies.size() == 3);
        std::multiset<double> values;
        for (auto& reply : replies)
            values.insert(reply["result"].get<double>());
        CHECK(values == std::multiset<double>{2, 4, 6});
    }
    SECTION("failures arrive as [error, code, message, type] body frames") {
        auto replies = mdp_client(c, {"--service", "add", "--args", "[1]"});
        REQUIRE(replies.size() == 1);
        CHECK(replies[0]["error"] == "bad_arguments");
        CHECK(replies[0]["message"].get<std::string>().find("add(double, double)") !=
              std::string::npos);

        replies = mdp_client(c, {"--service", "fib", "--args", "[-1]"});
        REQUIRE(replies.size() == 1);
        CHECK(replies[0]["error"] == "remote_error");
        CHECK(replies[0]["type"] == "std::invalid_argument");

        replies = mdp_client(c, {"--service", "add", "--frames", "one", "two"});
        REQUIRE(replies.size() == 1);
        CHECK(replies[0]["error"] == "bad_arguments");
    }
    SECTION("a call nobody serves fails with timeout after the broker's MDP deadline") {
        auto started = std::chrono::steady_clock::now();
        auto replies = mdp_client(c, {"--service", "nobody_serves_this", "--args", "[]"});
        REQUIRE(replies.size() == 1);
        CHECK(replies[0]["service"] == "nobody_serves_this");
        CHECK(replies[0]["error"] == "timeout");
        CHECK(std::chrono::steady_clock::now() - started >= 900ms);
    }
}

TEST_CASE("a deferq client calls a Majordomo worker's service", "[mdp]") {
    cluster c("mdp-worker");
    c.start_broker();
    auto worker = mdp_worker(c, "echo", "echo");
    deferq::Client client({.broker = c.client_endpoint()});

    // The MDP worker receives the msgpack argument array as the body and echoes it back.
    auto reply = client.call<deferq::Reply<std::vector<std::string>>>("echo", "a", "b").get(20s);
    CHECK(reply.value == std::vector<std::string>{"a", "b"});
    CHECK(reply.worker.starts_with("mdp-"));
    // A body the caller cannot decode as the type it asked for is bad_result.
    try {
        client.call<std::int64_t>("echo", "not a number").get(20s);
        FAIL("expected bad_result");
    } catch (const deferq::Failure& failure) {
        CHECK(failure.code() == deferq::error_code::bad_result);
    }
    // Many calls queue for its single slot and all come back.
    std::vector<deferq::Deferred<std::vector<std::int64_t>>> calls;
    for (int i = 0; i < 20; ++i)
        calls.push_back(client.call<std::vector<std::int64_t>>("echo", i));
    auto all = deferq::gather_results(std::move(calls)).get(30s);
    REQUIRE(all.size() == 20);
    for (int i = 0; i < 20; ++i)
        CHECK(all[i] == std::vector<std::int64_t>{i});
}

TEST_CASE("a call to a Majordomo worker that times out fails at once, and the worker serves on",
          "[mdp]") {
    // 7/MDP has no cancel: the worker finishes the request and the broker drops its REPLY.
    cluster c("mdp-timeout");
    c.start_broker();
    auto worker = mdp_worker(c, "slow", "echo", {"--delay-ms", "3000"});
    deferq::Client client({.broker = c.client_endpoint()});
    auto started = std::chrono::steady_clock::now();
    try {
        client.call_with<std::vector<std::string>>({.timeout = 200ms}, "echo", "late").get(20s);
        FAIL("expected timeout");
    } catch (const deferq::Failure& failure) {
        CHECK(failure.code() == deferq::error_code::timeout);
    }
    CHECK(std::chrono::steady_clock::now() - started < 2000ms); // not the worker's 3 s
    auto reply = client.call_with<std::vector<std::string>>({.timeout = 20s}, "echo", "next");
    CHECK(reply.get(20s) == std::vector<std::string>{"next"});
    CHECK(c.counter("late_replies") == 0);
    CHECK(c.counter("workers_lost") == 0);
}

TEST_CASE("a Majordomo worker killed mid-job has its job requeued", "[mdp][fault]") {
    // The broker SHALL expire a silent worker and requeue its jobs (docs/protocol.md §4).
    cluster c("mdp-kill");
    // Heartbeats every second (expiry 3 s): the rescuer, a Python process on a loaded machine,
    // is not expired by a stall, which would run the job a third time.
    c.start_broker({"--heartbeat-interval", "1000"});
    auto doomed =
        mdp_worker(c, "doomed", "echo", {"--heartbeat-ms", "1000", "--delay-ms", "60000"});
    deferq::Client client({.broker = c.client_endpoint()});
    auto call = client.call_with<deferq::Reply<std::vector<std::string>>>({.timeout = 30s}, "echo",
                                                                          "survives");
    REQUIRE(eventually([&] { return doomed->log().find("request 1") != std::string::npos; }, 20s));
    doomed->kill();
    auto rescuer = mdp_worker(c, "rescuer", "echo", {"--heartbeat-ms", "1000"});
    auto reply = call.get(30s);
    CHECK(reply.value == std::vector<std::string>{"survives"});
    CHECK(reply.attempt == 2);
    CHECK(c.counter("requeued") >= 1);
    CHECK(c.counter("workers_lost") >= 1);
}

TEST_CASE("a Majordomo worker registers again after the broker restarts", "[mdp][fault]") {
    cluster c("mdp-restart");
    c.start_broker({"--heartbeat-interval", "250"});
    auto worker = mdp_worker(c, "echo", "echo", {"--heartbeat-ms", "250"});
    auto joined = c.joined_count();
    c.restart_broker();
    // Its next HEARTBEAT reaches a broker that does not know it: DISCONNECT, then READY again.
    REQUIRE(eventually([&] { return c.joined_count() > joined; }, 20s)); // the log is appended
    auto replies = mdp_client(c, {"--service", "echo", "--args", R"(["again"])"});
    REQUIRE(replies.size() == 1);
    CHECK(replies[0]["result"] == json::parse(R"(["again"])"));
}

TEST_CASE("malformed Majordomo messages are counted and dropped, and everything keeps working",
          "[mdp][validation]") {
    // A malformed message is counted (malformed_messages), logged and dropped (docs/protocol.md
    // §4).
    cluster c("mdp-malformed");
    c.start_broker();
    auto worker = mdp_worker(c, "echo", "echo");
    auto before = c.counter("malformed_messages");
    auto lost_before = c.counter("workers_lost");

    zmq::context_t context;
    zmq::socket_t client(context, zmq::socket_type::dealer);
    client.set(zmq::sockopt::linger, 0);
    client.connect(c.client_endpoint());
    const std::string c1 = "MDPC01", w1 = "MDPW01";
    const std::vector<std::vector<std::string>> bad_client_messages{
        {"", c1},                                // no service
        {"", c1, "", "body"},                    // empty service
        {"", c1, "echo"},                        // no body
        {"", c1, std::string(200, 'x'), "body"}, // service name too long
    };
    for (const auto& message : bad_client_messages)
        send(client, message);

    zmq::socket_t stranger(context, zmq::socket_type::dealer);
    stranger.set(zmq::sockopt::linger, 0);
    stranger.connect(c.worker_endpoint());
    const std::vector<std::vector<std::string>> bad_worker_messages{
        {"", w1},                                  // no command
        {"", w1, "\x01\x01"},                      // command of 2 bytes
        {"", w1, "\x09"},                          // unknown command
        {"", w1, std::string(1, '\0')},            // command 0
        {"", w1, "\x01"},                          // READY without a service
        {"", w1, "\x01", "svc", "extra"},          // READY with an extra frame
        {"", w1, "\x01", ""},                      // READY with an empty service
        {"", w1, "\x02", "address", "", "body"},   // REQUEST from a worker
        {"", w1, "\x03", "abc", "", "body"},       // REPLY with a foreign address
        {"", w1, "\x03", "12345678", "x", "body"}, // REPLY without the delimiter
        {"", w1, "\x04", "extra"},                 // HEARTBEAT with a body
        {"", w1, "\x05", "extra"},                 // DISCONNECT with a body
    };
    for (const auto& message : bad_worker_messages)
        send(stranger, message);
    // More than 10 bad messages from one peer in an interval: it is disconnected and what it
    // sends next is ignored, not parsed (counted as ignored_messages).
    auto expected = before + bad_client_messages.size() + bad_worker_messages.size();
    REQUIRE(eventually(
        [&] {
            auto status = c.status()["counters"];
            return status["malformed_messages"].get<std::size_t>() +
                       status["ignored_messages"].get<std::size_t>() ==
                   expected;
        },
        10s));
    CHECK(c.counter("peers_disconnected") == 1);
    CHECK(c.counter("workers_lost") == lost_before); // a stranger's garbage touches no worker

    SECTION("a registered MDP worker that sends garbage is disconnected") {
        // 7/MDP: the broker SHOULD treat a peer that sends invalid messages as invalid.
        zmq::socket_t fake(context, zmq::socket_type::dealer);
        fake.set(zmq::sockopt::linger, 0);
        fake.connect(c.worker_endpoint());
        auto joined = c.joined_count();
        send(fake, {"", w1, "\x01", "fake_service"});
        REQUIRE(eventually([&] { return c.joined_count() > joined; }, 10s));
        send(fake, {"", w1, "\x03", "short", ""});
        auto answer = receive(fake, 5s);
        // Its first message may be the broker's HEARTBEAT; the DISCONNECT follows.
        while (answer && answer->size() == 3 && (*answer)[2] == "\x04")
            answer = receive(fake, 5s);
        REQUIRE(answer);
        CHECK(*answer == std::vector<std::string>{"", w1, "\x05"});
        CHECK(eventually([&] { return c.counter("workers_lost") == lost_before + 1; }, 10s));
    }
    SECTION("a worker may not register in the mmi. namespace (8/MMI)") {
        zmq::socket_t fake(context, zmq::socket_type::dealer);
        fake.set(zmq::sockopt::linger, 0);
        fake.connect(c.worker_endpoint());
        send(fake, {"", w1, "\x01", "mmi.service"});
        auto answer = receive(fake, 5s);
        REQUIRE(answer);
        CHECK(*answer == std::vector<std::string>{"", w1, "\x05"});
    }

    // Everything keeps working, for both kinds of client.
    auto replies = mdp_client(c, {"--service", "echo", "--args", R"(["still here"])"});
    REQUIRE(replies.size() == 1);
    CHECK(replies[0]["result"] == json::parse(R"(["still here"])"));
    deferq::Client deferq_client({.broker = c.client_endpoint()});
    CHECK(deferq_client.call<std::vector<std::string>>("echo", "fine").get(20s) ==
          std::vector<std::string>{"fine"});
}
