// Handlers that wait (issue 16; docs/protocol.md §3b), on real processes: a job returns a Deferred
// or is a coroutine, calls the cluster through its worker's connection, and holds no slot while
// it waits; its calls are its children and end with it.

#include "cluster.hpp"

#include "deferq/client.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <string>

using namespace std::chrono_literals;
using deferq::test::cluster;

TEST_CASE("one worker of concurrency 1 computes a recursive tree of calls, as a Deferred and as "
          "a coroutine",
          "[handlers_that_wait]") {
    // "A single worker with concurrency 1 must compute a recursive tree of calls without
    // deadlock."
    cluster c("tree-one-slot");
    c.start_broker();
    c.add_worker("w1", {"--concurrency", "1"});
    deferq::Client client({.broker = c.client_endpoint()});
    CHECK(client.call_with<std::int64_t>({.timeout = 60s}, "fib_calls", 12).get(60s) == 144);
    CHECK(client.call_with<std::int64_t>({.timeout = 60s}, "fib_task", 12).get(60s) == 144);
    CHECK(client.call<std::int64_t>("fib_task", 0).get(30s) == 0);
    // Bad input to a waiting handler is a clear error, as for any other.
    CHECK_THROWS_WITH(client.call<std::int64_t>("fib_task", -1).get(30s),
                      Catch::Contains("bad_arguments") && Catch::Contains("n must be 0 to"));
    CHECK(c.counter("running_jobs") == 0);
}

TEST_CASE("a child's failure reaches the parent's errback, which may recover",
          "[handlers_that_wait]") {
    cluster c("child-failure");
    c.start_broker({"--unknown-function-grace", "200"});
    c.add_worker("w1", {"--concurrency", "2"});
    deferq::Client client({.broker = c.client_endpoint()});
    CHECK(client.call<std::int64_t>("call_or", "no_such_fn", 1, -7).get(30s) == -7);
    CHECK(client.call<std::int64_t>("call_or", "fib_task", 10, -7).get(30s) == 55);
    CHECK(client.call<std::int64_t>("call_or", "fib_task", -1, -7).get(30s) == -7);
}

TEST_CASE("cancelling a parent cancels its children on other workers, and its deadline bounds "
          "them",
          "[handlers_that_wait]") {
    // "Cancelling the parent (by its caller, or its deadline) cancels its running and queued
    // children."
    cluster c("family-cancel");
    c.start_broker();
    c.add_worker("w1", {"--concurrency", "1"});
    c.add_worker("w2", {"--concurrency", "4"});
    deferq::Client client({.broker = c.client_endpoint()});
    auto parent = client.call_with<std::int64_t>({.timeout = 120s}, "fan_out_sleep", 6, 60'000);
    CHECK(deferq::test::eventually([&] { return c.counter("running_jobs") >= 5; }, 20s));
    parent.cancel();
    CHECK_THROWS_WITH(parent.get(5s), Catch::Contains("cancelled"));
    auto cancelled_at = std::chrono::steady_clock::now();
    CHECK(deferq::test::eventually(
        [&] { return c.counter("running_jobs") == 0 && c.counter("queued_jobs") == 0; }, 10s));
    INFO("the family was gone "
         << std::chrono::duration<double>(std::chrono::steady_clock::now() - cancelled_at).count()
         << " s after the cancel");

    auto started = std::chrono::steady_clock::now();
    auto bounded = client.call_with<std::int64_t>({.timeout = 1500ms}, "fan_out_sleep", 3, 60'000);
    CHECK_THROWS_WITH(bounded.get(30s), Catch::Contains("timeout"));
    CHECK(std::chrono::steady_clock::now() - started < 10s);
    CHECK(deferq::test::eventually(
        [&] { return c.counter("running_jobs") == 0 && c.counter("queued_jobs") == 0; }, 10s));
}

TEST_CASE("kill -9 of a parent's worker mid-tree: the root call still ends once, with the right "
          "value",
          "[handlers_that_wait]") {
    // "When the parent's worker dies, the parent is re-run elsewhere and the children it had
    // started are cancelled."
    cluster c("family-kill");
    c.start_broker({"--heartbeat-interval", "200"});
    auto& first = c.add_worker("w1", {"--concurrency", "1"});
    deferq::Client client({.broker = c.client_endpoint()});
    int fired = 0;
    std::int64_t value = 0;
    auto root = client.call_with<std::int64_t>({.timeout = 120s}, "fan_out_sleep", 4, 1500);
    root.add_callback([&](std::int64_t v) {
        ++fired;
        value = v;
    });
    // The root is on w1 (the only worker), waiting; its children run there one at a time.
    CHECK(deferq::test::eventually([&] { return c.counter("running_jobs") >= 2; }, 20s));
    c.add_worker("w2", {"--concurrency", "4"});
    first.signal(SIGKILL);
    CHECK(root.get(60s) == 6000);
    CHECK(c.counter("requeued") >= 1);
    // Once the broker holds nothing more, no second answer can come.
    CHECK(deferq::test::eventually(
        [&] { return c.counter("running_jobs") == 0 && c.counter("queued_jobs") == 0; }, 10s));
    CHECK(fired == 1);
    CHECK(value == 6000);
}
