// A cluster many callers share (issue 15): callers take turns at each function's workers, on real
// processes. docs/protocol.md §5, Fair share.

#include "cluster.hpp"

#include "http.hpp"

#include "deferq/client.hpp"
#include "deferq/protocol.hpp"

#include <msgpack.hpp>
#include <zmq.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using deferq::test::cluster;

TEST_CASE("a caller with one call is served in about one job time while another's backlog waits",
          "[sharing]") {
    // "Within one function's queue and priority level, the broker serves tenants in turn; no slot
    // idles while work is queued."
    cluster c("fair-share");
    c.start_broker();
    c.add_worker("w1", {"--concurrency", "1"});
    c.add_worker("w2", {"--concurrency", "1"});
    deferq::Client a({.broker = c.client_endpoint()});
    deferq::Client b({.broker = c.client_endpoint()});
    std::vector<deferq::Deferred<std::int64_t>> backlog;
    for (int i = 0; i < 400; ++i) // 400 × 50 ms on 2 slots: 10 s of work
        backlog.push_back(a.call_with<std::int64_t>({.timeout = 120s}, "sleep_ms", 50));
    CHECK(deferq::test::eventually([&] { return c.counter("queued_jobs") > 300; }, 10s));

    auto started = std::chrono::steady_clock::now();
    CHECK(b.call_with<std::int64_t>({.timeout = 60s}, "sleep_ms", 50).get(60s) == 50);
    auto waited = std::chrono::steady_clock::now() - started;
    INFO("B's call took " << std::chrono::duration<double>(waited).count() << " s");
    CHECK(waited < 2s); // FIFO: about 9 s behind A's backlog

    // A still gets every free slot: its backlog drains at the pool's pace.
    auto drain_started = std::chrono::steady_clock::now();
    for (auto& call : backlog)
        CHECK(call.get(120s) == 50);
    CHECK(std::chrono::steady_clock::now() - drain_started < 30s);
}

TEST_CASE("two callers with backlogs share the workers evenly", "[sharing]") {
    cluster c("fair-halves");
    c.start_broker();
    c.add_worker("w1", {"--concurrency", "1"});
    deferq::Client a({.broker = c.client_endpoint()});
    deferq::Client b({.broker = c.client_endpoint()});
    std::vector<deferq::Deferred<std::int64_t>> from_a, from_b;
    for (int i = 0; i < 100; ++i)
        from_a.push_back(a.call_with<std::int64_t>({.timeout = 120s}, "sleep_ms", 10));
    for (int i = 0; i < 100; ++i)
        from_b.push_back(b.call_with<std::int64_t>({.timeout = 120s}, "sleep_ms", 10));
    // When B's last call is answered, A's must be about as far along: turns, not FIFO.
    from_b.back().get(120s);
    int a_done = 0;
    for (auto& call : from_a)
        a_done += call.called();
    INFO("A had " << a_done << " of 100 answered when B's last one was");
    CHECK(a_done >= 90);
    for (auto& call : from_a)
        call.get(120s);
}

TEST_CASE("the broker gives its memory back after a burst", "[sharing][memory]") {
    // "After a burst is drained, the broker returns its memory to the system."
    cluster c("memory-back");
    c.start_broker({"--unknown-function-grace", "600000", "--tenant-budget", "1073741824",
                    "--broker-budget", "1073741824"}); // the burst is over the 128 MiB default
    auto before = c.broker_rss();
    std::size_t peak = 0;
    {
        deferq::Client client({.broker = c.client_endpoint()});
        std::vector<deferq::Deferred<std::string>> calls;
        for (int i = 0; i < 90'000; ++i) // ~140 MB of arguments queued: nobody serves it
            calls.push_back(client.call<std::string>("nobody_serves", std::string(1500, 'x')));
        CHECK(deferq::test::eventually([&] { return c.counter("queued_jobs") == 90'000; }, 60s));
        peak = c.broker_rss();
        for (auto& call : calls)
            call.add_errback([](const deferq::Failure&) {}); // closing fails them: expected
    } // the client closes: the broker drops its calls
    CHECK(deferq::test::eventually([&] { return c.counter("queued_jobs") == 0; }, 30s));
    std::size_t after = 0;
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__) // their allocators keep memory
    CHECK(deferq::test::eventually(
        [&] {
            after = c.broker_rss();
            return after < before + (peak - before) / 4;
        },
        10s));
#endif
    INFO("broker RSS: " << before / 1024 << " KiB at start, " << peak / 1024 << " KiB with the "
                        << "burst queued, " << after / 1024 << " KiB after");
    CHECK(peak > before + 100 * 1024 * 1024);
}

TEST_CASE("a client that reads no replies cannot grow the broker, and others are served meanwhile",
          "[sharing][budgets][memory]") {
    // "A client that reads nothing cannot grow the broker further"; "broker RSS bounded by the
    // budget, other clients served meanwhile, RSS back near its start after the slow client
    // leaves". The slow client is a bare DEALER that sends and never receives, with the least
    // room ZeroMQ and the kernel allow: the broker's queue to it fills after a few messages.
    namespace protocol = deferq::protocol;
    constexpr std::uint64_t budget = 16 << 20;
    cluster c("slow-reader");
    c.start_broker({"--tenant-budget", std::to_string(budget), "--heartbeat-interval", "250"});
    c.add_worker("w1", {"--concurrency", "2"});
    c.add_worker("w2", {"--concurrency", "2"});
    deferq::Client b({.broker = c.client_endpoint()});
    CHECK(b.call<std::string>("echo", "warm").get(30s) == "warm");
    auto before = c.broker_rss();

    zmq::context_t context;
    zmq::socket_t slow(context, zmq::socket_type::dealer);
    slow.set(zmq::sockopt::rcvhwm, 1);
    slow.set(zmq::sockopt::rcvbuf, 4096);
    slow.set(zmq::sockopt::linger, 0);
    slow.connect(c.client_endpoint());
    msgpack::sbuffer arguments;
    msgpack::pack(arguments, std::make_tuple(std::string(10 * 1024, 's')));
    std::vector<zmq::message_t> frames;
    std::atomic<bool> sending{true};
    constexpr int calls = 30'000; // 300 MB of echo: replies that are never read
    std::thread sender([&] {
        for (std::uint64_t id = 1; id <= calls; ++id) {
            protocol::request_message(frames, id, "echo", {},
                                      zmq::message_t(arguments.data(), arguments.size()));
            if (!protocol::send_frames(slow, frames, zmq::send_flags::none)) break;
        }
        sending = false;
    });

    // Meanwhile another caller is served, call after call.
    std::size_t peak = 0;
    int served = 0;
    while (sending) {
        auto started = std::chrono::steady_clock::now();
        CHECK(b.call_with<std::string>({.timeout = 30s}, "echo", "meanwhile").get(30s) ==
              "meanwhile");
        CHECK(std::chrono::steady_clock::now() - started < 5s);
        ++served;
        peak = std::max(peak, c.broker_rss());
    }
    sender.join();
    peak = std::max(peak, c.broker_rss());
    auto held = c.counter("replies_held");
    auto cut_off = c.counter("clients_cut_off");
    slow.close(); // it leaves: what was held for it is dropped, its record expires

    std::size_t after = 0;
    CHECK(deferq::test::eventually(
        [&] {
            auto status = c.status(); // B's tenant and this status call's are left
            return status["budgets"]["held_bytes"] == 0 && status["tenants"].size() <= 2;
        },
        30s));
    CHECK(held > 0);
    CHECK(served > 0);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__) // their allocators keep memory
    // Bounded by the budget (queued + held) and ZeroMQ's short queue, not by what was sent.
    CHECK(peak < before + 4 * budget + (32 << 20));
    CHECK(deferq::test::eventually(
        [&] {
            after = c.broker_rss();
            return after < before + (16 << 20);
        },
        15s));
#endif
    WARN("broker RSS: " << before / 1024 << " KiB before, " << peak / 1024
                        << " KiB at most while 300 MB of calls were sent and no answer read, "
                        << after / 1024 << " KiB after; " << held << " messages held, " << cut_off
                        << " cut-offs; the other caller was served " << served << " times");
    CHECK(b.call<std::string>("echo", "after").get(30s) == "after");
}

TEST_CASE("/healthz and /metrics answer while more slow gateway calls run than HTTP threads",
          "[sharing][gateway]") {
    // "Gateway calls do not hold the threads that answer /healthz and /metrics."
    cluster c("healthz-flood");
    c.start_broker({"--http", "127.0.0.1:0", "--gateway"});
    c.add_worker("w1", {"--concurrency", "64"});
    constexpr int callers = 48; // more than the 32 HTTP threads
    std::vector<std::thread> flood;
    std::atomic<int> answered{0}, busy{0};
    for (int i = 0; i < callers; ++i)
        flood.emplace_back([&] {
            auto reply = deferq::test::http_post(
                c.http_endpoint(), "/rpc",
                R"({"jsonrpc": "2.0", "method": "sleep_ms", "params": [8000], "id": 1})",
                "application/json");
            if (reply.status == 200) ++answered;
            if (reply.status == 503) ++busy;
        });
    // The flood is in (its calls run 8 s, longer than a loaded machine takes to connect them all)
    CHECK(deferq::test::eventually([&] { return busy >= callers - 16; }, 6s));
    for (const char* path : {"/healthz", "/metrics"}) {
        auto started = std::chrono::steady_clock::now();
        auto reply = deferq::test::http_get(c.http_endpoint(), path);
        auto took = std::chrono::steady_clock::now() - started;
        INFO(path << " took " << std::chrono::duration<double>(took).count() << " s");
        CHECK(reply.status == 200);
        CHECK(took < 1s);
    }
    for (auto& caller : flood)
        caller.join();
    CHECK(answered + busy == callers);
    CHECK(answered == 16); // the gateway's share of the threads
    CHECK(busy == callers - 16);
}

TEST_CASE("a caller past its byte budget gets overloaded at once, and others are still served",
          "[sharing][budgets]") {
    // "Past a budget, new calls fail at once with overloaded, naming which budget."
    cluster c("budgets");
    c.start_broker({"--tenant-budget", "1048576", "--unknown-function-grace", "600000"});
    deferq::Client a({.broker = c.client_endpoint()});
    std::vector<deferq::Deferred<std::string>> calls;
    for (int i = 0; i < 2000; ++i) // 2000 × 1 KiB: twice the budget
        calls.push_back(a.call<std::string>("nobody_serves", std::string(1024, 'a')));
    auto answered = [&] {
        return std::count_if(calls.begin(), calls.end(), [](auto& call) { return call.called(); });
    };
    CHECK(deferq::test::eventually(
        [&] { return answered() > 0 && answered() + c.counter("queued_jobs") == 2000; }, 30s));
    int overloaded = 0;
    std::string message;
    for (auto& call : calls) {
        if (!call.called()) continue; // queued
        try {
            call.get(1s);
        } catch (const deferq::Failure& failure) {
            overloaded += failure.check(deferq::error_code::overloaded);
            message = failure.message();
        }
    }
    CHECK(overloaded > 900);
    CHECK(overloaded < 1100);
    CHECK_THAT(message, Catch::Contains("tenant budget") && Catch::Contains("--tenant-budget"));
    auto status = c.status();
    CHECK(status["budgets"]["tenant_budget"] == 1048576);
    CHECK(status["tenants"][0]["queued_bytes"].get<std::uint64_t>() <= 1048576);

    // Another caller has a budget of its own, and is served.
    c.add_worker("w1");
    deferq::Client b({.broker = c.client_endpoint()});
    CHECK(b.call<double>("add", 1, 2).get(30s) == 3);
    for (auto& call : calls)
        call.add_errback([](const deferq::Failure&) {});
}
