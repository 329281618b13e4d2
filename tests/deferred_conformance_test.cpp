// The full Deferred on real processes (docs/deferred.md): cancellation that reaches the broker and
// the worker, deadlines that travel with the job, race, progress, priorities, threads, errbacks and
// chaining on remote failures, the combinators over real calls, Failure's check/trap/raise.

#include "cluster.hpp"

#include "deferq/client.hpp"
#include "deferq/log.hpp"

#include <catch2/catch.hpp>

#include <spdlog/sinks/ostream_sink.h>

#include <atomic>
#include <csignal>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>

using namespace std::chrono_literals;
using deferq::error_code;
using deferq::Failure;
using deferq::test::cluster;
using deferq::test::eventually;

namespace {

error_code failure_code(auto&& deferred) {
    try {
        deferred.get(30s);
    } catch (const Failure& failure) {
        return failure.code();
    }
    FAIL("expected a failure");
    return error_code::protocol_error;
}

std::uint64_t worker_jobs_done(cluster& c) {
    std::uint64_t done = 0;
    auto status = c.status();
    for (auto& worker : status["workers"])
        done += worker["jobs_done"].get<std::uint64_t>();
    return done;
}

std::size_t occurrences(const std::string& text, std::string_view needle) {
    std::size_t count = 0;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
        ++count;
    return count;
}

/// Runs `body` with a sink on deferq's log and returns what was logged. `body` must destroy every
/// Client it made (their I/O threads log) before it returns.
template <typename F> std::string logged_during(F&& body) {
    std::ostringstream captured;
    deferq::log().sinks().push_back(std::make_shared<spdlog::sinks::ostream_sink_mt>(captured));
    struct remove_sink {
        ~remove_sink() { deferq::log().sinks().pop_back(); }
    } guard;
    body();
    return captured.str();
}

constexpr std::string_view unhandled = "Unhandled error in Deferred";

} // namespace

TEST_CASE("cancel of a queued job removes it from the broker: it never runs",
          "[conformance][cancel]") {
    cluster c("cancel-queued");
    c.start_broker();
    c.add_worker("only", {"--concurrency", "1"});
    deferq::Client client({.broker = c.client_endpoint()});
    // Long enough that the status polls and the cancel all happen while it runs, even when
    // each poll (a new client and connection) is slow.
    auto busy = client.call<std::int64_t>("sleep_ms", 3000);
    REQUIRE(eventually([&] { return c.counter("running_jobs") == 1; }, 5s));
    auto queued = client.call<std::int64_t>("sleep_ms", 1);
    REQUIRE(eventually([&] { return c.counter("queued_jobs") == 1; }, 5s));
    queued.cancel();
    // The Deferred fails with cancelled at once.
    CHECK(queued.called());
    CHECK(failure_code(queued) == error_code::cancelled);
    CHECK(eventually([&] { return c.counter("queued_jobs") == 0; }, 5s));
    CHECK(busy.get(20s) == 3000);
    std::this_thread::sleep_for(200ms);
    // The counter on the worker's side proves the cancelled job never ran.
    CHECK(worker_jobs_done(c) == 1);
    CHECK(c.counter("cancels") == 1);
}

TEST_CASE("cancel of a running job reaches the handler, which stops early",
          "[conformance][cancel]") {
    cluster c("cancel-running");
    c.start_broker();
    auto& worker = c.add_worker("only", {"--concurrency", "1"});
    deferq::Client client({.broker = c.client_endpoint()});
    auto long_job = client.call<std::int64_t>("sleep_ms", 20'000);
    REQUIRE(eventually([&] { return c.counter("running_jobs") == 1; }, 5s));
    auto cancelled_at = std::chrono::steady_clock::now();
    long_job.cancel();
    CHECK(failure_code(long_job) == error_code::cancelled);
    // The handler saw JobContext::cancelled() and returned long before its 20 s.
    REQUIRE(eventually([&] { return c.counter("running_jobs") == 0; }, 10s));
    CHECK(std::chrono::steady_clock::now() - cancelled_at < 10s);
    CHECK(client.call<double>("add", 1, 1).get(10s) == 2); // the slot is free again
    CHECK(worker.exited() == false);
}

TEST_CASE("race gives the first success and cancels the losers on their workers",
          "[conformance][race]") {
    cluster c("race");
    c.start_broker();
    for (auto name : {"a", "b", "c"})
        c.add_worker(name, {"--concurrency", "1"});
    deferq::Client client({.broker = c.client_endpoint()});
    std::vector<deferq::Deferred<std::int64_t>> runners;
    runners.push_back(client.call<std::int64_t>("sleep_ms", 20'000));
    runners.push_back(client.call<std::int64_t>("sleep_ms", 150));
    runners.push_back(client.call<std::int64_t>("sleep_ms", 20'000));
    auto started = std::chrono::steady_clock::now();
    CHECK(deferq::race(runners).get(10s) == 150);
    CHECK(std::chrono::steady_clock::now() - started < 10s);
    CHECK(failure_code(runners[0]) == error_code::cancelled);
    CHECK(failure_code(runners[2]) == error_code::cancelled);
    CHECK(eventually([&] { return c.counter("running_jobs") == 0; }, 10s));
}

TEST_CASE("add_timeout fails a call with timeout and cancels it on the worker",
          "[conformance][timeout]") {
    cluster c("add-timeout");
    c.start_broker();
    c.add_worker("only", {"--concurrency", "1"});
    deferq::Client client({.broker = c.client_endpoint()});
    auto started = std::chrono::steady_clock::now();
    auto slow = client.call<std::int64_t>("sleep_ms", 20'000);
    slow.add_timeout(300ms);
    CHECK(failure_code(slow) == error_code::timeout);
    auto took = std::chrono::steady_clock::now() - started;
    CHECK(took >= 300ms);
    CHECK(took < 10s); // far from the job's 20 s
    CHECK(eventually([&] { return c.counter("running_jobs") == 0; }, 10s));
}

TEST_CASE("the deadline travels with the job: the worker's JobContext knows it",
          "[conformance][timeout]") {
    cluster c("deadline-travels");
    c.start_broker();
    c.add_worker("only");
    deferq::Client client({.broker = c.client_endpoint()});
    auto left = client.call_with<std::int64_t>({.timeout = 5s}, "time_left_ms").get(10s);
    CHECK(left > 3000);
    CHECK(left <= 5000);
    CHECK(client.call<std::int64_t>("time_left_ms").get(10s) == -1); // no timeout, no deadline
}

TEST_CASE("higher priority runs first among queued jobs", "[conformance][priority]") {
    cluster c("priority");
    c.start_broker();
    c.add_worker("only", {"--concurrency", "1", "--prefetch", "0"});
    deferq::Client client({.broker = c.client_endpoint()});
    // The three calls must be queued (two status polls) before the blocker ends.
    auto blocker = client.call<std::int64_t>("sleep_ms", 3000);
    REQUIRE(eventually([&] { return c.counter("running_jobs") == 1; }, 5s));
    std::mutex mutex;
    std::vector<std::string> order;
    auto record = [&](std::string name) {
        return [&, name](std::int64_t) {
            std::lock_guard lock(mutex);
            order.push_back(name);
        };
    };
    std::vector<deferq::Deferred<std::int64_t>> all;
    all.push_back(client.call_with<std::int64_t>({.priority = 0}, "sleep_ms", 1)
                      .add_callback(record("low-1")));
    all.push_back(client.call_with<std::int64_t>({.priority = 0}, "sleep_ms", 1)
                      .add_callback(record("low-2")));
    all.push_back(client.call_with<std::int64_t>({.priority = 9}, "sleep_ms", 1)
                      .add_callback(record("high")));
    REQUIRE(eventually([&] { return c.counter("queued_jobs") == 3; }, 5s));
    deferq::gather_results(all).get(10s);
    blocker.get(10s);
    std::lock_guard lock(mutex);
    CHECK(order == std::vector<std::string>{"high", "low-1", "low-2"});
}

TEST_CASE("progress reported by a handler reaches on_progress, and the result still arrives",
          "[conformance][progress]") {
    cluster c("progress");
    c.start_broker();
    c.add_worker("only");
    deferq::Client client({.broker = c.client_endpoint()});
    std::mutex mutex;
    std::vector<double> fractions;
    auto d = client.call<std::int64_t>("sleep_ms", 700);
    d.on_progress([&](double fraction, std::string_view) {
        std::lock_guard lock(mutex);
        fractions.push_back(fraction);
    });
    CHECK(d.get(10s) == 700);
    std::lock_guard lock(mutex);
    CHECK(fractions.size() >= 3);
    CHECK(fractions.size() <= 9); // rate-limited to one per 100 ms
    CHECK(std::is_sorted(fractions.begin(), fractions.end()));
}

TEST_CASE(
    "1,000 callbacks added from 8 threads while replies arrive each fire once, never concurrently",
    "[conformance][threads]") {
    cluster c("threads");
    c.start_broker();
    c.add_worker("a", {"--concurrency", "2"});
    c.add_worker("b", {"--concurrency", "2"});
    deferq::Client client({.broker = c.client_endpoint()});
    constexpr int calls = 125, threads = 8;
    std::vector<deferq::Deferred<double>> deferreds;
    for (int i = 0; i < calls; ++i)
        deferreds.push_back(client.call<double>("add", i, 1));
    std::vector<std::atomic<int>> fired(calls * threads);
    std::atomic<int> inside{0}, overlapped{0}, wrong{0};
    std::mutex ids_mutex;
    std::set<std::thread::id> callback_threads;
    std::vector<std::thread> adders;
    for (int t = 0; t < threads; ++t) {
        adders.emplace_back([&, t] {
            for (int i = 0; i < calls; ++i) {
                deferreds[i].add_callback([&, t, i](double value) {
                    if (inside.fetch_add(1) != 0) overlapped.fetch_add(1);
                    fired[t * calls + i].fetch_add(1);
                    if (value != i + 1) wrong.fetch_add(1);
                    {
                        std::lock_guard lock(ids_mutex);
                        callback_threads.insert(std::this_thread::get_id());
                    }
                    inside.fetch_sub(1);
                });
            }
        });
    }
    for (auto& adder : adders)
        adder.join();
    deferq::gather_results(deferreds).get(30s);
    REQUIRE(eventually(
        [&] {
            for (auto& count : fired)
                if (count.load() == 0) return false;
            return true;
        },
        10s));
    std::this_thread::sleep_for(100ms);
    int not_once = 0;
    for (auto& count : fired)
        not_once += count.load() != 1;
    CHECK(not_once == 0);
    CHECK(wrong == 0);
    CHECK(overlapped == 0);
    std::lock_guard lock(ids_mutex);
    CHECK(callback_threads.size() == 1); // all on the client's I/O thread
}

TEST_CASE("get() on the client's I/O thread is refused, not a deadlock", "[conformance][threads]") {
    cluster c("get-on-io");
    c.start_broker();
    c.add_worker("only");
    deferq::Client client({.broker = c.client_endpoint()});
    std::atomic<bool> refused{false};
    auto other = client.call<double>("add", 1, 1);
    client.call<double>("add", 2, 2)
        .add_callback([&](double) {
            try {
                other.get();
            } catch (const std::logic_error&) {
                refused = true;
            }
        })
        .get(10s);
    CHECK(refused);
}

TEST_CASE("an unhandled remote failure is logged once when its last handle goes away",
          "[conformance][unhandled]") {
    cluster c("unhandled");
    c.start_broker();
    c.add_worker("only");
    std::ostringstream captured;
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
    deferq::log().sinks().push_back(sink);
    {
        deferq::Client client({.broker = c.client_endpoint()});
        auto observed = client.call<std::int64_t>("fib", -1);
        observed.add_errback([](const Failure&) {});
        client.call<std::int64_t>("fib", -2); // dropped at once, fails later, nobody looks
        observed.add_both([] {});
        REQUIRE(eventually([&] { return client.pending() == 0; }, 10s));
        std::this_thread::sleep_for(100ms);
    }
    deferq::log().sinks().pop_back();
    auto text = captured.str();
    INFO(text);
    auto first = text.find("Unhandled error in Deferred");
    REQUIRE(first != std::string::npos);
    CHECK(text.find("Unhandled error in Deferred", first + 1) == std::string::npos);
    CHECK_THAT(text, Catch::Contains("-2") || Catch::Contains("fib"));
}

TEST_CASE("retries = 0: a job whose worker dies fails with worker_lost at once",
          "[conformance][retries]") {
    cluster c("retries");
    // Heartbeats every second (expiry 3 s): a stalled but live client or worker is not expired.
    c.start_broker({"--heartbeat-interval", "1000"});
    auto& worker = c.add_worker("doomed", {"--concurrency", "1"});
    deferq::Client client({.broker = c.client_endpoint()});
    // Far longer than the test: it must still run when the spare worker has joined.
    auto fragile =
        client.call_with<std::int64_t>({.timeout = 60s, .retries = 0}, "sleep_ms", 30'000);
    REQUIRE(eventually([&] { return c.counter("running_jobs") == 1; }, 5s));
    c.add_worker("spare", {"--concurrency", "1"}); // would take a requeued job: there must be none
    worker.signal(SIGKILL);
    try {
        fragile.get(20s);
        FAIL("expected worker_lost");
    } catch (const Failure& failure) {
        CHECK(failure.code() == error_code::worker_lost);
        CHECK(failure.attempts() == 1);
    }
    CHECK(c.counter("requeued") == 0);
}

TEST_CASE("an errback that rethrows passes a remote failure on and one returning a value recovers",
          "[conformance][errback]") {
    cluster c("errback-chain");
    c.start_broker();
    c.add_worker("only");
    deferq::Client client({.broker = c.client_endpoint()});
    // Written on the client's I/O thread, read after get() (which synchronises with it).
    std::optional<Failure> first, second, third;
    std::atomic<int> skipped{0}, errbacks_after_recovery{0};
    std::int64_t recovered = 0;
    auto d = client.call<std::int64_t>("sleep_ms", -1); // std::invalid_argument on the worker
    d.add_errback([&](const Failure& failure) {
         first.emplace(failure);
         throw failure; // the same failure, thrown again
     })
        .add_callback([&](std::int64_t) { ++skipped; })
        .add_errback([&](const Failure& failure) {
            second.emplace(failure);
            throw std::runtime_error("errback 2 replaced it"); // another exception
        })
        .add_callback([&](std::int64_t value) {
            ++skipped;
            return value;
        })
        .add_errback([&](const Failure& failure) -> std::int64_t {
            third.emplace(failure);
            return 42; // recovers
        })
        .add_errback([&](const Failure&) { ++errbacks_after_recovery; })
        .add_callback([&](std::int64_t value) {
            recovered = value;
            return value + 1;
        });
    CHECK(d.get(30s) == 43);
    REQUIRE(first);
    CHECK(first->code() == error_code::remote_error);
    CHECK(first->type() == "std::invalid_argument");
    CHECK(first->worker() == "only");
    // The rethrown failure reached the next errback unchanged, past the callback in between.
    REQUIRE(second);
    CHECK(second->code() == error_code::remote_error);
    CHECK(second->type() == first->type());
    CHECK(second->message() == first->message());
    CHECK(second->worker() == "only");
    // Another exception replaced it.
    REQUIRE(third);
    CHECK(third->code() == error_code::callback_error);
    CHECK(third->type() == "std::runtime_error");
    CHECK(third->message() == "errback 2 replaced it");
    CHECK(skipped == 0);
    CHECK(errbacks_after_recovery == 0);
    CHECK(recovered == 42);
}

TEST_CASE("a callback returning another call's Deferred waits for that remote call and goes on",
          "[conformance][chaining]") {
    cluster c("chaining");
    c.start_broker();
    c.add_worker("only", {"--calculate-delay", "300"});
    deferq::Client client({.broker = c.client_endpoint()});
    SECTION("add_callback returning Deferred<T>: the next callback gets the second call's result") {
        std::optional<double> next;
        auto d = client.call<double>("add", 1, 2);
        d.add_callback([&](double sum) {
             return client.call<double>("calculate", sum, 10);
         }).add_callback([&](double value) {
            next = value;
            return value * 2;
        });
        CHECK(d.get(30s) == 26);
        CHECK(next == 13);
        CHECK(worker_jobs_done(c) == 2);
    }
    SECTION("then returning Deferred<U>: flattened, two remote calls deep") {
        auto d = client.call<double>("add", 4, 6)
                     .then([&](double n) {
                         return client.call<std::int64_t>("fib", static_cast<std::int64_t>(n));
                     })
                     .then([&](std::int64_t fib) {
                         return client.call<double>("calculate", static_cast<double>(fib), 0.5);
                     });
        CHECK(d.get(30s) == 55.5);
        CHECK(worker_jobs_done(c) == 3);
    }
    SECTION("the second call's remote failure goes on down the chain") {
        std::atomic<int> callbacks_after{0};
        auto d = client.call<double>("add", 1, 1).then([&](double) {
            return client.call<std::int64_t>("sleep_ms", -1);
        });
        d.add_callback([&](std::int64_t) { ++callbacks_after; });
        try {
            d.get(30s);
            FAIL("expected the second call's failure");
        } catch (const Failure& failure) {
            CHECK(failure.code() == error_code::remote_error);
            CHECK(failure.type() == "std::invalid_argument");
        }
        CHECK(callbacks_after == 0);
    }
    SECTION("an errback returning another call's Deferred recovers with its result") {
        auto d = client.call<std::int64_t>("sleep_ms", -1);
        d.add_errback([&](const Failure&) { return client.call<std::int64_t>("fib", 20); });
        CHECK(d.get(30s) == 6765);
        CHECK(worker_jobs_done(c) == 2);
    }
}

TEST_CASE("cancel of a running call fires it once and the broker drops the worker's late answer",
          "[conformance][cancel]") {
    cluster c("cancel-once");
    c.start_broker();
    c.add_worker("only", {"--concurrency", "1"});
    deferq::Client client({.broker = c.client_endpoint()});
    std::atomic<int> values{0}, failures{0}, finally{0};
    std::atomic<bool> was_cancelled{false};
    auto job = client.call<std::int64_t>("sleep_ms", 5000); // the cancel ends it early
    job.add_callbacks([&](std::int64_t) { ++values; },
                      [&](const Failure& failure) {
                          ++failures;
                          was_cancelled = failure.check(error_code::cancelled);
                      });
    job.add_both([&] { ++finally; });
    REQUIRE(eventually([&] { return c.counter("running_jobs") == 1; }, 10s));
    job.cancel();
    CHECK(job.called()); // at once
    REQUIRE(eventually([&] { return failures.load() == 1; }, 10s));
    // The worker answers the job (it saw the cancel, or its sleep ended): the broker counts it.
    REQUIRE(eventually([&] { return worker_jobs_done(c) == 1; }, 10s));
    CHECK(c.counter("running_jobs") == 0);
    // A later round trip on the same connection: anything sent before it has been read.
    CHECK(client.call<double>("add", 1, 1).get(30s) == 2);
    CHECK(values == 0);
    CHECK(failures == 1);
    CHECK(was_cancelled);
    CHECK(finally == 1);
    CHECK(failure_code(job) == error_code::cancelled); // the result was not replaced either
    CHECK(c.counter("cancels") == 1);
    // The broker sent the client only the add's reply: the worker's answer to the cancelled job
    // stopped there.
    CHECK(c.counter("replies") == 1);
    CHECK(c.counter("errors") == 0);
}

TEST_CASE("a reply already on its way when cancel runs is dropped: the Deferred fires once",
          "[conformance][cancel]") {
    cluster c("cancel-late-reply");
    // Long liveness: the client's I/O thread is held below, its heartbeats wait meanwhile.
    c.start_broker({"--liveness", "30"});
    c.add_worker("only", {"--concurrency", "2"});
    deferq::Client client({.broker = c.client_endpoint()});
    std::atomic<int> values{0}, failures{0};
    std::atomic<bool> was_cancelled{false}, answered{false}, fired_before_cancel{true};
    auto job = client.call<std::int64_t>("sleep_ms", 300);
    job.add_callbacks([&](std::int64_t) { ++values; },
                      [&](const Failure& failure) {
                          ++failures;
                          was_cancelled = failure.check(error_code::cancelled);
                      });
    // The callback of a quick call holds the client's I/O thread (which alone reads the socket)
    // until the broker has the job's answer and sent it on, then cancels the job: its reply
    // arrives after the cancel.
    auto quick = client.call<double>("add", 1, 2);
    quick.add_callback([&](double) {
        answered = eventually([&] { return worker_jobs_done(c) == 2; }, 30s);
        fired_before_cancel = job.called();
        job.cancel();
    });
    CHECK(quick.get(60s) == 3);
    REQUIRE(answered);
    CHECK_FALSE(fired_before_cancel);
    // A later round trip on the same connection: the job's reply has been read by then.
    CHECK(client.call<double>("add", 2, 2).get(30s) == 4);
    CHECK(values == 0);
    CHECK(failures == 1);
    CHECK(was_cancelled);
    CHECK(failure_code(job) == error_code::cancelled); // the result was not replaced either
    CHECK(c.counter("replies") == 3);                  // the job's reply did reach the client ...
    CHECK(c.counter("cancels") == 0);                  // ... as its cancel came after the answer
    CHECK(c.counter("clients_expired") == 0);
    CHECK(client.pending() == 0);
}

TEST_CASE("gather_results on real calls fails with the first remote failure and cancels the rest",
          "[conformance][combinators]") {
    cluster c("gather-failure");
    c.start_broker();
    c.add_worker("a", {"--concurrency", "2"});
    c.add_worker("b", {"--concurrency", "2"});
    deferq::Client client({.broker = c.client_endpoint()});
    std::vector<deferq::Deferred<std::int64_t>> calls;
    calls.push_back(client.call<std::int64_t>("sleep_ms", 60'000));
    calls.push_back(client.call<std::int64_t>("sleep_ms", 60'000));
    calls.push_back(client.call<std::int64_t>("fib", 10));
    REQUIRE(calls[2].get(30s) == 55); // done before the failure: not cancelled
    REQUIRE(eventually([&] { return c.counter("running_jobs") == 2; }, 10s));
    calls.push_back(client.call<std::int64_t>("sleep_ms", -1));
    auto gathered = deferq::gather_results(calls);
    try {
        gathered.get(30s);
        FAIL("expected the remote failure");
    } catch (const Failure& failure) {
        // The first failure, not one of the cancellations that followed it.
        CHECK(failure.code() == error_code::remote_error);
        CHECK(failure.type() == "std::invalid_argument");
        CHECK_THAT(failure.message(), Catch::Contains("sleep_ms"));
    }
    CHECK(failure_code(calls[0]) == error_code::cancelled);
    CHECK(failure_code(calls[1]) == error_code::cancelled);
    CHECK(calls[2].get(30s) == 55);
    // consume_errors (the default) leaves the failure on the input's own chain.
    CHECK(failure_code(calls[3]) == error_code::remote_error);
    // The cancels reached the broker and the workers: the 60 s sleeps stopped.
    CHECK(eventually([&] { return c.counter("running_jobs") == 0; }, 20s));
    CHECK(c.counter("cancels") == 2);
}

TEST_CASE("gather_results consume_errors is true by default and only keeps failures out of the log",
          "[conformance][combinators][unhandled]") {
    cluster c("gather-consume");
    c.start_broker();
    c.add_worker("only", {"--concurrency", "2"});
    // A gather over a 60 s call and a failing one; its own failure is handled (get), the inputs'
    // are left to the gather.
    auto run = [&](auto gather) {
        return logged_during([&] {
            deferq::Client client({.broker = c.client_endpoint()});
            std::vector<deferq::Deferred<std::int64_t>> calls;
            calls.push_back(client.call<std::int64_t>("sleep_ms", 60'000));
            calls.push_back(client.call<std::int64_t>("sleep_ms", -1));
            auto gathered = gather(std::move(calls));
            CHECK(failure_code(gathered) == error_code::remote_error);
            REQUIRE(eventually([&] { return client.pending() == 0; }, 10s));
        });
    };
    auto by_default = run([](std::vector<deferq::Deferred<std::int64_t>> calls) {
        return deferq::gather_results(std::move(calls));
    });
    auto not_consumed = run([](std::vector<deferq::Deferred<std::int64_t>> calls) {
        return deferq::gather_results(std::move(calls), false);
    });
    INFO(by_default);
    INFO(not_consumed);
    CHECK(occurrences(by_default, unhandled) == 0);
    // Not consumed: the failing input is logged once; the input the gather cancelled is not.
    CHECK(occurrences(not_consumed, unhandled) == 1);
    CHECK_THAT(not_consumed, Catch::Contains("sleep_ms: milliseconds must be >= 0"));
    CHECK(eventually([&] { return c.counter("running_jobs") == 0; }, 20s));
}

TEST_CASE(
    "deferred_list fire_on_one_errback on real calls fails at once and lets the others finish",
    "[conformance][combinators]") {
    cluster c("list-errback");
    c.start_broker();
    c.add_worker("only", {"--concurrency", "2"});
    deferq::Client client({.broker = c.client_endpoint()});
    std::vector<deferq::Deferred<std::int64_t>> calls;
    calls.push_back(client.call<std::int64_t>("sleep_ms", 1500));
    calls.push_back(client.call<std::int64_t>("sleep_ms", -1));
    auto list = deferq::deferred_list(calls, {.fire_on_one_errback = true});
    try {
        list.get(30s);
        FAIL("expected the remote failure");
    } catch (const Failure& failure) {
        CHECK(failure.code() == error_code::remote_error);
        CHECK(failure.type() == "std::invalid_argument");
        CHECK(failure.worker() == "only");
    }
    // Unlike gather_results, the others go on: nothing was cancelled.
    CHECK(calls[0].get(30s) == 1500);
    CHECK(c.counter("cancels") == 0);
    CHECK(failure_code(calls[1]) == error_code::remote_error);
}

TEST_CASE(
    "deferred_list on real calls gives every outcome in order and consume_errors stops the log",
    "[conformance][combinators][unhandled]") {
    cluster c("list-consume");
    c.start_broker();
    c.add_worker("only", {"--concurrency", "2"});
    auto run = [&](deferq::deferred_list_options options) {
        return logged_during([&] {
            deferq::Client client({.broker = c.client_endpoint()});
            std::vector<deferq::Deferred<std::int64_t>> calls;
            calls.push_back(client.call<std::int64_t>("sleep_ms", 300));
            calls.push_back(client.call<std::int64_t>("sleep_ms", -1));
            calls.push_back(client.call<std::int64_t>("fib", 10));
            auto outcomes = deferq::deferred_list(calls, options).get(30s);
            REQUIRE(outcomes.size() == 3);
            for (std::size_t i = 0; i < outcomes.size(); ++i)
                CHECK(outcomes[i].index == i);
            REQUIRE(outcomes[0].ok());
            CHECK(outcomes[0].value() == 300);
            REQUIRE_FALSE(outcomes[1].ok());
            CHECK(outcomes[1].failure().code() == error_code::remote_error);
            CHECK(outcomes[1].failure().type() == "std::invalid_argument");
            REQUIRE(outcomes[2].ok());
            CHECK(outcomes[2].value() == 55);
            REQUIRE(eventually([&] { return client.pending() == 0; }, 10s));
        });
    };
    auto not_consumed = run({});
    auto consumed = run({.consume_errors = true});
    INFO(not_consumed);
    INFO(consumed);
    // The list reports the failure as an outcome; only consume_errors makes that count as handled.
    CHECK(occurrences(not_consumed, unhandled) == 1);
    CHECK_THAT(not_consumed, Catch::Contains("sleep_ms: milliseconds must be >= 0"));
    CHECK(occurrences(consumed, unhandled) == 0);
}

TEST_CASE("Failure check, trap and raise on a real remote failure", "[conformance][failure]") {
    cluster c("failure-api");
    c.start_broker();
    c.add_worker("only");
    deferq::Client client({.broker = c.client_endpoint()});
    SECTION("trap in an errback: no match passes the failure on unchanged, a match recovers") {
        std::atomic<bool> is_remote{false}, is_timeout{true};
        std::atomic<int> trap_returned{0};
        std::optional<Failure> passed_on; // written on the I/O thread, read after get()
        auto d = client.call<std::int64_t>("fib", -1);
        d.add_errback([&](const Failure& failure) -> std::int64_t {
             is_remote = failure.check(error_code::remote_error);
             is_timeout = failure.check(error_code::timeout);
             failure.trap(error_code::timeout, error_code::worker_lost); // rethrows
             ++trap_returned;
             return 0;
         }).add_errback([&](const Failure& failure) -> std::int64_t {
            passed_on.emplace(failure);
            return failure.trap(error_code::cancelled, error_code::remote_error) ==
                           error_code::remote_error
                       ? -1
                       : -2;
        });
        CHECK(d.get(30s) == -1);
        CHECK(is_remote);
        CHECK_FALSE(is_timeout);
        CHECK(trap_returned == 0);
        REQUIRE(passed_on);
        CHECK(passed_on->code() == error_code::remote_error); // not wrapped as callback_error
        CHECK(passed_on->type() == "std::invalid_argument");
        CHECK_THAT(passed_on->message(), Catch::Contains("fib: n must be"));
        CHECK(passed_on->worker() == "only");
        CHECK(passed_on->attempts() == 1);
        CHECK(passed_on->exception() == nullptr);
    }
    SECTION("raise throws a remote failure as itself, a callback's exception as the original") {
        try {
            client.call<std::int64_t>("fib", -1).get(30s);
            FAIL("expected the remote failure");
        } catch (const Failure& failure) {
            try {
                failure.raise();
            } catch (const Failure& raised) {
                CHECK(raised.code() == error_code::remote_error);
                CHECK(std::string(raised.what()) == failure.what());
            }
        }
        auto local = client.call<double>("add", 1, 2).add_callback([](double) -> double {
            throw std::out_of_range("local");
        });
        try {
            local.get(30s);
            FAIL("expected the callback's failure");
        } catch (const Failure& failure) {
            CHECK(failure.code() == error_code::callback_error);
            CHECK_THROWS_AS(failure.raise(), std::out_of_range);
        }
    }
}
