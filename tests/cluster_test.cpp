// Integration tests: a real broker and real workers (separate processes) over TCP on 127.0.0.1.

#include "cluster.hpp"

#include "deferq/client.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <fstream>
#include <regex>
#include <set>
#include <thread>

using namespace std::chrono_literals;
using deferq::test::cluster;

TEST_CASE("the reference scenario totals 330 with three different workers (CLI demo)",
          "[cluster][demo]") {
    cluster c("demo-cli");
    c.start_broker();
    for (auto name : {"w1", "w2", "w3"})
        c.add_worker(name, {"--concurrency", "1", "--calculate-delay", "300"});

    auto result = c.cli({"demo"});
    INFO(result.output);
    REQUIRE(result.exit_code == 0);
    CHECK(result.output.find("total: 330") != std::string::npos);
    std::set<std::string> workers;
    std::regex served(R"(calculate\((\d+), (\d+)\) = (\d+)\s+\[worker (\S+)\])");
    for (std::sregex_iterator it(result.output.begin(), result.output.end(), served), end;
         it != end; ++it) {
        CHECK(std::stoi((*it)[1]) + std::stoi((*it)[2]) == std::stoi((*it)[3]));
        workers.insert((*it)[4]);
    }
    // The seed's point: the work is spread over the pool, not queued on one machine.
    CHECK(workers.size() == 3);
}

TEST_CASE("the reference scenario through the library: callbacks, then and gather_results",
          "[cluster][demo]") {
    cluster c("demo-lib");
    c.start_broker();
    for (auto name : {"w1", "w2", "w3"})
        c.add_worker(name, {"--concurrency", "1", "--calculate-delay", "1000"});

    deferq::Client client({.broker = c.client_endpoint()});
    std::vector<deferq::Deferred<double>> results;
    std::mutex mutex;
    std::set<std::string> workers;
    auto started = std::chrono::steady_clock::now();
    for (auto [a, b] : {std::pair{42, 47}, {52, 58}, {62, 69}}) {
        auto d = client.call<deferq::Reply<double>>("calculate", a, b);
        d.add_callback([&](deferq::Reply<double>& reply) {
            std::lock_guard lock(mutex);
            workers.insert(reply.worker);
        });
        results.push_back(d.then([](deferq::Reply<double>& reply) { return reply.value; }));
    }
    auto values = deferq::gather_results(std::move(results)).get(30s);
    auto elapsed = std::chrono::steady_clock::now() - started;
    REQUIRE(values.size() == 3);
    CHECK(values[0] + values[1] + values[2] == 330);
    CHECK(values[0] == 89);
    CHECK(values[1] == 110);
    CHECK(values[2] == 131);
    std::lock_guard lock(mutex);
    CHECK(workers.size() == 3);
    // Three 1 s jobs in parallel take well under the 3 s they would take in a row (a whole second
    // of slack for a loaded machine, sanitizers included).
    CHECK(elapsed < 2000ms);
}

TEST_CASE("10,000 pipelined add calls from 4 threads all return the right value, each exactly once",
          "[cluster][load]") {
    cluster c("pipelined");
    c.start_broker();
    c.add_worker("a", {"--concurrency", "2"});
    c.add_worker("b", {"--concurrency", "2"});

    deferq::Client client({.broker = c.client_endpoint()});
    constexpr int threads = 4, per_thread = 2500;
    std::vector<std::atomic<int>> fired(threads * per_thread);
    std::vector<std::atomic<int>> wrong(threads * per_thread);
    std::atomic<int> failures{0};
    std::vector<std::thread> callers;
    std::vector<std::vector<deferq::Deferred<double>>> deferreds(threads);
    for (int t = 0; t < threads; ++t) {
        callers.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i) {
                int index = t * per_thread + i;
                auto d = client.call_with<double>({.timeout = 60s}, "add", index, 0.5);
                d.add_callbacks(
                    [&, index](double value) {
                        fired[index].fetch_add(1);
                        if (value != index + 0.5) wrong[index].fetch_add(1);
                    },
                    [&, index](const deferq::Failure&) {
                        fired[index].fetch_add(1);
                        failures.fetch_add(1);
                    });
                deferreds[t].push_back(d);
            }
        });
    }
    for (auto& caller : callers)
        caller.join();
    for (auto& list : deferreds) {
        auto all = deferq::gather_results(std::move(list)).get(120s);
        CHECK(all.size() == per_thread);
    }
    REQUIRE(deferq::test::eventually([&] { return client.pending() == 0; }, 10s));
    std::this_thread::sleep_for(200ms); // a second firing would show up here
    int once = 0, not_once = 0, bad = 0;
    for (int i = 0; i < threads * per_thread; ++i) {
        (fired[i].load() == 1 ? once : not_once)++;
        bad += wrong[i].load();
    }
    CHECK(once == threads * per_thread);
    CHECK(not_once == 0);
    CHECK(bad == 0);
    CHECK(failures.load() == 0);
}

TEST_CASE("typed failures: unknown function, wrong arguments, a throwing handler, and the cluster "
          "keeps serving",
          "[cluster][errors]") {
    cluster c("errors");
    c.start_broker();
    c.add_worker("w1", {"--concurrency", "2"});
    deferq::Client client({.broker = c.client_endpoint()});

    SECTION("an unknown function waits for a worker until its timeout") {
        try {
            client.call_with<double>({.timeout = 300ms}, "no_such_thing", 1).get(10s);
            FAIL("expected a failure");
        } catch (const deferq::Failure& failure) {
            CHECK(failure.code() == deferq::error_code::timeout);
        }
    }
    SECTION("wrong argument count names the function and its signature") {
        try {
            client.call<double>("add", 1).get(10s);
            FAIL("expected a failure");
        } catch (const deferq::Failure& failure) {
            CHECK(failure.code() == deferq::error_code::bad_arguments);
            CHECK_THAT(failure.message(), Catch::Contains("add(double, double)"));
            CHECK(failure.worker() == "w1");
        }
    }
    SECTION("wrong argument type names the argument") {
        try {
            client.call<double>("add", 1, "two").get(10s);
            FAIL("expected a failure");
        } catch (const deferq::Failure& failure) {
            CHECK(failure.code() == deferq::error_code::bad_arguments);
            CHECK_THAT(failure.message(),
                       Catch::Contains("argument 2") && Catch::Contains("string"));
        }
    }
    SECTION("a throwing handler gives remote_error with the exception's type and message") {
        try {
            client.call<std::int64_t>("fib", -1).get(10s);
            FAIL("expected a failure");
        } catch (const deferq::Failure& failure) {
            CHECK(failure.code() == deferq::error_code::remote_error);
            CHECK(failure.type() == "std::invalid_argument");
            CHECK_THAT(failure.message(), Catch::Contains("fib"));
        }
    }
    SECTION("a result of the wrong type gives bad_result") {
        try {
            client.call<std::string>("add", 1, 2).get(10s);
            FAIL("expected a failure");
        } catch (const deferq::Failure& failure) {
            CHECK(failure.code() == deferq::error_code::bad_result);
        }
    }
    // After every failure above the same worker still serves.
    CHECK(client.call<double>("add", 20, 22).get(10s) == 42);
    CHECK(client.call<std::int64_t>("fib", 10).get(10s) == 55);
}

TEST_CASE("a strict broker fails a call to a function nobody offers at once", "[cluster][errors]") {
    cluster c("strict");
    // A short registration window after the start: 2 × 100 ms × 3.
    c.start_broker({"--strict", "--unknown-function-grace", "0", "--heartbeat-interval", "100"});
    c.add_worker("w1");
    deferq::Client client({.broker = c.client_endpoint()});
    try {
        client.call<double>("no_such_thing", 1).get(10s);
        FAIL("expected a failure");
    } catch (const deferq::Failure& failure) {
        CHECK(failure.code() == deferq::error_code::no_such_function);
        CHECK_THAT(failure.message(), Catch::Contains("no_such_thing"));
    }
    CHECK(client.call<double>("add", 1, 2).get(10s) == 3);
}

TEST_CASE("the CLI prints results and fails clearly", "[cluster][cli]") {
    cluster c("cli");
    c.start_broker();
    c.add_worker("w1");
    auto ok = c.cli({"call", "add", "40", "2.5"});
    CHECK(ok.exit_code == 0);
    CHECK(ok.output == "42.5\n");
    auto structured = c.cli({"call", "--json", "echo", R"({"xs":[1,2,3],"name":"deferq"})"});
    CHECK(structured.exit_code == 0);
    CHECK_THAT(structured.output,
               Catch::Contains(R"("name":"deferq")") && Catch::Contains(R"("xs":[1,2,3])"));
    auto bad = c.cli({"call", "add", "1"});
    CHECK(bad.exit_code == 1);
    CHECK_THAT(bad.output, Catch::Contains("bad_arguments"));
    auto late = c.cli({"--timeout", "300", "call", "nobody_offers_this"});
    CHECK(late.exit_code == 1);
    CHECK_THAT(late.output, Catch::Contains("timeout"));
    for (const char* program : {DEFERQ_BROKER_BIN, DEFERQ_WORKER_BIN, DEFERQ_CLI_BIN}) {
        auto help = deferq::test::run({program, "--help"}, 10s);
        CHECK(help.exit_code == 0);
        CHECK_THAT(help.output, Catch::Contains("--"));
    }
}

TEST_CASE("options come from DEFERQ_* environment variables", "[cluster][cli]") {
    cluster c("environment");
    c.start_broker();
    auto& worker = c.spawn_worker("ignored");
    worker.kill();
    // A worker configured only by environment.
    deferq::test::process env_worker({DEFERQ_WORKER_BIN}, c.log_dir() + "/worker-env.log",
                                     {{"DEFERQ_BROKER", c.worker_endpoint()},
                                      {"DEFERQ_NAME", "from-env"},
                                      {"DEFERQ_CALCULATE_DELAY", "10"}});
    auto result =
        deferq::test::run({DEFERQ_CLI_BIN, "call", "--show-worker", "calculate", "1", "2"}, 30s,
                          {{"DEFERQ_BROKER", c.client_endpoint()}});
    CHECK(result.exit_code == 0);
    CHECK_THAT(result.output, Catch::Contains("3") && Catch::Contains("from-env"));
}

TEST_CASE("the seed example pair and the coroutine example total 330", "[cluster][examples]") {
    cluster c("examples");
    c.start_broker();
    std::vector<std::unique_ptr<deferq::test::process>> workers;
    for (int i = 0; i < 3; ++i) {
        auto before = c.joined_count();
        workers.push_back(std::make_unique<deferq::test::process>(
            std::vector<std::string>{DEFERQ_EXAMPLE_WORKER_BIN, c.worker_endpoint(), "200"},
            c.log_dir() + "/example-worker-" + std::to_string(i) + ".log"));
        REQUIRE(deferq::test::eventually([&] { return c.joined_count() > before; }, 20s));
    }
    auto callbacks = deferq::test::run({DEFERQ_EXAMPLE_CLIENT_BIN, c.client_endpoint()}, 60s);
    INFO(callbacks.output);
    CHECK(callbacks.exit_code == 0);
    CHECK_THAT(callbacks.output, Catch::Contains("42 + 47 = 89") && Catch::Contains("total: 330"));
    auto coroutine = deferq::test::run({DEFERQ_EXAMPLE_COROUTINE_BIN, c.client_endpoint()}, 60s);
    INFO(coroutine.output);
    CHECK(coroutine.exit_code == 0);
    CHECK_THAT(coroutine.output, Catch::Contains("total: 330"));
    // SIGTERM drains and exits cleanly.
    for (auto& worker : workers)
        worker->signal(SIGTERM);
    for (auto& worker : workers)
        CHECK(worker->wait(10s) == std::optional<int>(0));
}

TEST_CASE("a long job does not strand prefetched jobs: its worker hands them back to idle workers",
          "[cluster][flow]") {
    // docs/protocol.md §6: a worker whose running job has lasted longer than its mean lowers its
    // prefetch at once and hands back (DECLINE) the jobs it has not started.
    cluster c("prefetch-strand");
    c.start_broker();
    c.add_worker("fast", {"--concurrency", "1"});
    deferq::Client client({.broker = c.client_endpoint()});
    // Thousands of tiny calls teach the worker a large prefetch (a mean service time under
    // 400 µs); rounds until it has, as one preempted call near the end can keep the mean up.
    auto prefetch = [&] { return c.status()["workers"][0]["prefetch"].get<int>(); };
    for (int round = 0; round < 10 && prefetch() < 5; ++round) {
        std::vector<deferq::Deferred<double>> warm;
        for (int i = 0; i < 500; ++i)
            warm.push_back(client.call<double>("add", i, 1));
        for (auto& d : warm)
            d.get(30s);
        deferq::test::eventually([&] { return prefetch() >= 5; }, 1s);
    }
    REQUIRE(prefetch() >= 5);

    // Six 2 s jobs all fit into that prefetch: the only worker takes them all, and once the first
    // has run past the mean it hands the other five back (logged at debug level).
    std::vector<deferq::Deferred<deferq::Reply<std::int64_t>>> slow;
    for (int i = 0; i < 6; ++i)
        slow.push_back(
            client.call_with<deferq::Reply<std::int64_t>>({.timeout = 120s}, "sleep_ms", 2000));
    REQUIRE(deferq::test::eventually(
        [&] { return c.workers()[0]->log().find("handed back") != std::string::npos; }, 10s));
    c.add_worker("idle", {"--concurrency", "1"});
    std::map<std::string, int> served;
    for (auto& d : slow)
        ++served[d.get(120s).worker];
    INFO("fast " << served["fast"] << ", idle " << served["idle"]);
    // Stranded, the idle worker would get none of them; handed back, it runs about half.
    CHECK(served["idle"] >= 2);
    CHECK(served["fast"] + served["idle"] == 6);
}

TEST_CASE("answers held back behind quick jobs still leave when the next job turns out slow",
          "[cluster][flow]") {
    // A busy worker holds a quick job's answer back while quick jobs wait behind it, to send them
    // together (docs/architecture.md, "Threads"). Here the job behind the adds is of a function
    // that was quick so far and now sleeps 4 s: the adds' answers must not wait for it.
    cluster c("held-answers");
    c.start_broker();
    c.add_worker("w1", {"--concurrency", "1", "--prefetch", "32", "--calculate-delay", "500"});
    deferq::Client client({.broker = c.client_endpoint()});
    for (int i = 0; i < 5; ++i) { // the worker learns that both are quick
        client.call<std::int64_t>("sleep_ms", 0).get(30s);
        client.call<double>("add", i, 1).get(30s);
    }
    auto start = std::chrono::steady_clock::now();
    auto blocker = client.call<double>("calculate", 1, 2); // the adds and the sleep queue behind it
    std::vector<deferq::Deferred<double>> adds;
    for (int i = 0; i < 10; ++i)
        adds.push_back(client.call<double>("add", i, 1));
    auto slow = client.call<std::int64_t>("sleep_ms", 4000);
    CHECK(blocker.get(30s) == 3);
    for (int i = 0; i < 10; ++i)
        CHECK(adds[static_cast<std::size_t>(i)].get(30s) == i + 1);
    auto waited = std::chrono::steady_clock::now() - start;
    INFO("the adds took " << std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()
                          << " ms");
    CHECK(waited < 3s); // 0.5 s of calculate; the sleep ends after 4.5 s
    CHECK_FALSE(slow.called());
    CHECK(slow.get(30s) == 4000);
}

TEST_CASE("a call's deadline goes when the call ends, on the client", "[cluster][memory]") {
    // Memory follows live calls, not calls/s × timeout (issue 13).
    cluster c("deadlines");
    c.start_broker({"--unknown-function-grace", "60000"});
    deferq::Client client({.broker = c.client_endpoint()});
    std::vector<deferq::Deferred<double>> calls;
    for (int i = 0; i < 2000; ++i) // queued: no worker yet
        calls.push_back(client.call_with<double>({.timeout = 60s}, "add", i, 1));
    CHECK(deferq::test::eventually([&] { return client.armed_deadlines() == 2000; }, 10s));
    c.add_worker("w1");
    for (auto& call : calls)
        call.get(30s);
    CHECK(deferq::test::eventually([&] { return client.armed_deadlines() == 0; }, 5s));
    auto cancelled = client.call_with<double>({.timeout = 60s}, "sleep_ms", 5000);
    CHECK(deferq::test::eventually([&] { return client.armed_deadlines() == 1; }, 5s));
    cancelled.cancel();
    CHECK(deferq::test::eventually([&] { return client.armed_deadlines() == 0; }, 5s));
    cancelled.add_errback([](const deferq::Failure&) {}); // handled: cancelled on purpose
}

TEST_CASE("a Deferred kept after its call ended does not keep the call's arguments",
          "[cluster][memory]") {
    // The Deferred's state and the client's record of the call are one object: the record lets go
    // of the arguments when the call ends, whoever keeps the Deferred.
    cluster c("kept-deferreds");
    c.start_broker();
    c.add_worker("w1");
    deferq::Client client({.broker = c.client_endpoint()});
    auto resident = [] {
        std::ifstream statm("/proc/self/statm");
        std::size_t size = 0, pages = 0;
        statm >> size >> pages;
        return pages * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    };
    // 40 MiB: beyond glibc's largest mmap threshold, so a buffer freed leaves the process at once.
    std::string big(std::size_t{40} << 20, 'x');
    auto before = resident();
    std::vector<deferq::Deferred<double>> kept;
    for (int i = 0; i < 6; ++i) { // add(string, 1) fails with bad_arguments: a small answer
        kept.push_back(client.call<double>("add", big, 1));
        CHECK_THROWS_AS(kept.back().get(60s), deferq::Failure);
    }
    auto grew = resident() - std::min(resident(), before);
    INFO("the process grew by " << (grew >> 20) << " MiB with 6 calls of 40 MiB kept");
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    CHECK(grew < (std::size_t{100} << 20));
#else
    WARN("the size check is skipped: the sanitizers' allocators keep freed memory (quarantine)");
#endif
}

TEST_CASE("a bytes result comes back in the reply's own frame, big or small, and only bytes do",
          "[cluster][bytes]") {
    cluster c("bytes");
    c.start_broker();
    c.add_worker("w1", {"--concurrency", "2"});
    deferq::Client client({.broker = c.client_endpoint()});

    std::vector<char> big(3 << 20);
    for (std::size_t i = 0; i < big.size(); ++i)
        big[i] = static_cast<char>(i * 7 + i / 4096);
    auto echoed = client.call<deferq::Bytes>("echo", big).get(30s);
    CHECK(echoed.shares_message()); // over 2 KiB: its own frame all the way
    REQUIRE(echoed.size() == big.size());
    CHECK(echoed.view() == std::string_view(big.data(), big.size()));
    // Passed on as an argument, it packs as the bin it came as.
    auto again = client.call<deferq::Reply<deferq::Bytes>>("echo", echoed).get(30s);
    CHECK(again.value == echoed);
    CHECK(again.worker == "w1");

    CHECK(client.call<deferq::Bytes>("echo", std::string("small")).get(10s).view() == "small");
    try {
        client.call<deferq::Bytes>("add", 1, 2).get(10s);
        FAIL("expected a failure");
    } catch (const deferq::Failure& failure) {
        CHECK(failure.code() == deferq::error_code::bad_result);
        CHECK_THAT(failure.message(), Catch::Contains("expected bytes, got integer 3"));
    }
}
