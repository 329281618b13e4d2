// The broker's rules (broker/src/core/broker_core.*), driven with injected time and a recording
// outbox: duplicates, cancels, deadlines, expiry and requeue, declines, limits. Each test quotes
// the clause of docs/protocol.md it checks.

#include "core_harness.hpp"

#include <catch2/catch.hpp>

using namespace deferq::test;
using namespace std::chrono_literals;
using deferq::error_code;
using kind = sent_message::kind;

TEST_CASE("a repeated request for a queued or a running call is ignored", "[broker_core]") {
    // "The broker SHALL NOT hold two jobs for the same (client routing id, correlation id)."
    core_harness h;
    h.call("c", 7);
    h.call("c", 7); // queued: no worker yet
    CHECK(h.counters.duplicate_requests == 1);
    CHECK(h.counters.queued_jobs == 1);
    h.worker("w", 1, 0);
    REQUIRE(h.given("w").size() == 1);
    h.call("c", 7); // running
    CHECK(h.counters.duplicate_requests == 2);
    REQUIRE(h.reply("w", h.given("w")[0]));
    CHECK(h.out.of(kind::reply, "c").size() == 1);
    h.call("c", 7); // answered: a new call
    CHECK(h.given("w").size() == 2);
}

TEST_CASE("cancelling a queued call drops its job", "[broker_core]") {
    core_harness h;
    h.call("c", 1, "f", 60'000);
    REQUIRE(h.core.armed_deadlines() == 1);
    h.core.on_cancel(h.client("c"), 1);
    CHECK(h.counters.cancels == 1);
    CHECK(h.counters.queued_jobs == 0);
    CHECK(h.core.armed_deadlines() == 0);
    h.worker("w", 1, 0);
    CHECK(h.given("w").empty());
}

TEST_CASE("cancelling a running call cancels it on its worker, whose slot stays taken until it "
          "answers",
          "[broker_core]") {
    core_harness h;
    h.worker("w", 1, 0);
    h.call("c", 1);
    h.call("c", 2);
    auto job = h.given("w").at(0);
    h.core.on_cancel(h.client("c"), 1);
    auto cancels = h.out.of(kind::cancel, "w");
    REQUIRE(cancels.size() == 1);
    CHECK(cancels[0].id == job);
    CHECK(h.given("w").size() == 1); // the slot is still the cancelled job's
    REQUIRE(h.reply("w", job));      // the worker's late answer is accepted, not delivered
    CHECK(h.out.of(kind::reply).empty());
    CHECK(h.given("w").size() == 2); // the slot goes to the next call
}

TEST_CASE("a call whose deadline passes fails with timeout, queued or running", "[broker_core]") {
    // "The broker SHALL fail a call whose deadline passes with timeout, and cancel its job."
    core_harness h;
    h.call("c", 1, "f", 500); // queued: nobody offers f
    h.advance(499ms);
    CHECK(h.out.of(kind::error).empty());
    h.advance(1ms);
    auto errors = h.out.of(kind::error, "c");
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].code == error_code::timeout);
    CHECK(errors[0].text == "deadline passed while queued");

    h.worker("w", 1, 0);
    h.call("c", 2, "f", 300);
    auto job = h.given("w").at(0);
    CHECK(h.out.of(kind::job).at(0).remaining_ms == 300);
    h.advance(300ms);
    errors = h.out.of(kind::error, "c");
    REQUIRE(errors.size() == 2);
    CHECK(errors[1].code == error_code::timeout);
    CHECK(errors[1].text == "deadline passed while running on w");
    REQUIRE(h.out.of(kind::cancel, "w").size() == 1);
    CHECK(h.out.of(kind::cancel, "w")[0].id == job);
    CHECK(h.counters.timeouts == 2);
}

TEST_CASE("a job whose deadline passed is never dispatched", "[broker_core]") {
    // "The broker SHALL NOT dispatch a job whose deadline passed."
    core_harness h;
    h.call("c", 1, "f", 100);
    h.now += 200ms; // no expire_deadlines yet: the worker joins first
    h.worker("w", 1, 0);
    CHECK(h.given("w").empty());
    REQUIRE(h.out.of(kind::error, "c").size() == 1);
    CHECK(h.out.of(kind::error, "c")[0].code == error_code::timeout);
}

TEST_CASE("a deadline goes when its call ends, however it ends", "[broker_core]") {
    // Memory follows live calls: a call answered long before its deadline leaves nothing behind.
    core_harness h;
    h.worker("w", 4, 0);
    for (std::uint64_t i = 1; i <= 1000; ++i) {
        h.call("c", i, "f", 60'000);
        REQUIRE(h.reply("w", h.given("w").back()));
    }
    CHECK(h.core.armed_deadlines() == 0);
    h.call("c", 5000, "f", 60'000);
    h.core.on_cancel(h.client("c"), 5000);
    CHECK(h.core.armed_deadlines() == 0);
}

TEST_CASE("a silent worker is expired and its jobs run on another worker, then fail after "
          "max_attempts",
          "[broker_core]") {
    // "A worker silent for interval × liveness SHALL be expired; its jobs go back to the front of
    // their queues, and a job lost with max_attempts workers fails with worker_lost."
    core_harness h;
    auto silence_workers = [&] { // the client keeps heartbeating, the workers are silent
        h.advance(3001ms);
        h.client("c");
        h.core.tick(h.now);
    };
    h.worker("a", 1, 0);
    h.call("c", 1);
    REQUIRE(h.given("a").size() == 1);
    h.worker("b", 1, 0);
    silence_workers(); // a and b both silent: both expire
    CHECK(h.counters.workers_lost == 2);
    CHECK(h.counters.requeued == 1);
    CHECK(h.counters.queued_jobs == 1);

    h.worker("c1", 1, 0);
    auto jobs = h.out.of(kind::job, "c1");
    REQUIRE(jobs.size() == 1);
    CHECK(jobs[0].attempt == 2);
    silence_workers();
    h.worker("c2", 1, 0);
    REQUIRE(h.out.of(kind::job, "c2").size() == 1);
    CHECK(h.out.of(kind::job, "c2")[0].attempt == 3);
    silence_workers();
    auto errors = h.out.of(kind::error, "c");
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].code == error_code::worker_lost);
    CHECK(errors[0].attempt == 3);
    CHECK(h.counters.queued_jobs == 0);
    CHECK(h.counters.running_jobs == 0);
}

TEST_CASE("a worker that heartbeats is kept, and heartbeats go to peers that are due one",
          "[broker_core]") {
    // "The broker SHALL send a peer a HEARTBEAT when it sent it nothing for one interval."
    core_harness h;
    auto& w = h.worker("w", 1, 0);
    h.client("c");
    h.out.clear();
    for (int i = 0; i < 40; ++i) { // 10 s in ticks of 250 ms
        h.advance(250ms);
        w.last_seen = h.now;
        h.client("c"); // the client heartbeats too
        h.core.tick(h.now);
    }
    CHECK(h.counters.workers_lost == 0);
    CHECK(h.counters.clients_expired == 0);
    CHECK(h.out.of(kind::heartbeat, "w").size() == 10);
    CHECK(h.out.of(kind::heartbeat, "c").size() == 10);
}

TEST_CASE("a silent client is told DISCONNECT and forgotten, and its running job cancelled",
          "[broker_core]") {
    core_harness h;
    auto& w = h.worker("w", 1, 0);
    h.call("c", 1);
    h.call("c", 2); // queued
    h.advance(3001ms);
    w.last_seen = h.now;
    h.core.tick(h.now);
    CHECK(h.counters.clients_expired == 1);
    CHECK(h.out.of(kind::disconnect, "c").size() == 1);
    CHECK(h.out.of(kind::cancel, "w").size() == 1);
    CHECK(h.counters.queued_jobs == 0);
    CHECK(h.core.find_client("c") == nullptr);
}

TEST_CASE("a declined job goes first in its queue and is not an attempt", "[broker_core]") {
    core_harness h;
    auto& w = h.worker("w", 1, 0);
    h.call("c", 1);
    h.call("c", 2);
    auto first = h.given("w").at(0);
    h.core.on_drain(w); // a draining worker declines what it cannot start
    REQUIRE(h.core.on_decline(w, first, h.now));
    CHECK(h.counters.queued_jobs == 2);
    h.worker("v", 1, 0);
    auto jobs = h.out.of(kind::job, "v");
    REQUIRE(jobs.size() == 1);
    CHECK(jobs[0].id == first);
    CHECK(jobs[0].attempt == 1);
}

TEST_CASE("answers about jobs a worker does not hold change nothing", "[broker_core]") {
    // "A REPLY, ERROR, PROGRESS or DECLINE for a job the worker does not hold SHALL be dropped."
    core_harness h;
    auto& a = h.worker("a", 1, 0);
    auto& b = h.worker("b", 1, 0);
    h.call("c", 1);
    auto job = h.given("a").at(0);
    CHECK_FALSE(h.core.on_reply(b, job, "forged", nullptr, h.now));
    CHECK_FALSE(h.core.on_decline(b, job, h.now));
    CHECK_FALSE(h.core.on_progress(b, {job, 0.5, ""}));
    CHECK_FALSE(h.core.on_reply(a, job + 1000, "unknown", nullptr, h.now));
    CHECK(h.out.of(kind::reply).empty());
    CHECK(h.counters.running_jobs == 1);
    CHECK(h.core.on_reply(a, job, "real", nullptr, h.now));
    REQUIRE(h.out.of(kind::reply).size() == 1);
    CHECK(h.out.of(kind::reply)[0].text == "real");
}

TEST_CASE("jobs the outbox could not deliver go back to their queue, not as an attempt",
          "[broker_core]") {
    core_harness h;
    auto& gone = h.worker("gone", 2, 0);
    h.call("c", 1);
    h.call("c", 2);
    auto jobs = h.given("gone");
    REQUIRE(jobs.size() == 2);
    gone.unreachable = true; // what the outbox does when a send fails
    h.core.take_back(gone, jobs, h.now);
    CHECK(h.counters.queued_jobs == 2);
    h.worker("next", 2, 0);
    auto given = h.out.of(kind::job, "next");
    REQUIRE(given.size() == 2);
    CHECK(given[0].attempt == 1);
    CHECK(given[1].attempt == 1);
}

TEST_CASE("limits: a full queue and a client's pending calls refuse with overloaded",
          "[broker_core]") {
    auto options = core_options();
    options.max_queue_length = 2;
    options.max_pending_per_client = 3;
    core_harness h(options);
    h.call("c", 1);
    h.call("c", 2);
    h.call("c", 3, "f"); // queue of f full
    h.call("c", 4, "g");
    h.call("c", 5, "g"); // 3 pending for c already
    auto errors = h.out.of(kind::error, "c");
    REQUIRE(errors.size() == 2);
    CHECK(errors[0].id == 3);
    CHECK(errors[0].code == error_code::overloaded);
    CHECK(errors[1].id == 5);
    CHECK(errors[1].code == error_code::overloaded);
    CHECK(h.counters.overloaded == 2);
}

TEST_CASE("a strict broker refuses a function no worker offers at once", "[broker_core]") {
    auto options = core_options();
    options.strict = true;
    core_harness h(options);
    h.advance(6000ms); // past the registration window after the start (below)
    h.call("c", 1, "nobody");
    auto errors = h.out.of(kind::error, "c");
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].code == error_code::no_such_function);
    h.worker("w", 1, 0, {"somebody"});
    h.call("c", 2, "somebody");
    CHECK(h.given("w").size() == 1);
}

TEST_CASE("a call to a function no worker offers fails with no_such_function after the grace",
          "[broker_core]") {
    // "A call to a function that no worker offers, nor offered within function_memory, SHALL fail
    // with no_such_function once it has waited unknown_function_grace for a worker."
    core_harness h;
    h.now += 6000ms; // past the registration window after the broker's start (below)
    h.call("c", 1, "typo");
    for (int i = 0; i < 19; ++i) { // 4.75 s in ticks of 250 ms
        h.advance(250ms);
        h.client("c");
        h.core.tick(h.now);
    }
    CHECK(h.out.of(kind::error, "c").empty());
    h.advance(250ms);
    h.client("c");
    h.core.tick(h.now);
    auto errors = h.out.of(kind::error, "c");
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].code == error_code::no_such_function);
    CHECK_THAT(errors[0].text, Catch::Contains("no worker offers 'typo' (waited 5.0 s"));
    CHECK(h.counters.queued_jobs == 0);
}

TEST_CASE("a worker that comes within the grace gets the call", "[broker_core]") {
    core_harness h;
    h.call("c", 1, "late");
    h.advance(2000ms);
    h.client("c");
    h.core.tick(h.now);
    h.advance(2000ms);
    h.client("c");
    h.core.tick(h.now);
    h.worker("w", 1, 0, {"late"});
    CHECK(h.given("w").size() == 1);
    h.advance(2000ms);
    h.client("c");
    h.core.tick(h.now);
    CHECK(h.out.of(kind::error).empty());
}

TEST_CASE("a function whose workers left lately is waited for until the call's timeout",
          "[broker_core]") {
    // Its workers may be restarting: the caller's timeout bounds the wait, not the grace.
    core_harness h;
    auto& w = h.worker("w", 1, 0);
    h.core.remove_worker(w, "disconnected", deferq::broker_detail::parting::goodbye, h.now);
    h.call("c", 1, "f", 20'000);
    for (int i = 0; i < 40; ++i) { // 10 s
        h.advance(250ms);
        h.client("c");
        h.core.tick(h.now);
    }
    CHECK(h.out.of(kind::error, "c").empty());
    h.worker("w2", 1, 0);
    CHECK(h.given("w2").size() == 1);
}

TEST_CASE("a strict broker waits out the registration window after its start before refusing",
          "[broker_core]") {
    // "strict: no_such_function at once, once the broker has been up for the registration
    // window: --unknown-function-grace, and at least twice interval × liveness."
    auto options = core_options();
    options.strict = true;
    core_harness h(options);
    h.advance(50ms);
    h.call("c", 1, "add"); // workers may be re-registering after a restart
    CHECK(h.out.of(kind::error, "c").empty());
    h.worker("w", 1, 0, {"add"});
    CHECK(h.given("w").size() == 1);
    h.call("c", 2, "sub");
    h.advance(5950ms); // the window: twice interval × liveness (6 s), at least the grace (5 s)
    h.client("c");
    h.core.tick(h.now); // the window is over: the waiting call fails...
    auto errors = h.out.of(kind::error, "c");
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].id == 2);
    h.call("c", 3, "sub"); // ...and new ones at once
    REQUIRE(h.out.of(kind::error, "c").size() == 2);
    CHECK(h.out.of(kind::error, "c")[1].code == error_code::no_such_function);
}

TEST_CASE("a call whose function name cannot be a function's is answered at once",
          "[broker_core]") {
    core_harness h;
    h.call("c", 1, "");
    h.call("c", 2, std::string(10'000, 'x'));
    auto errors = h.out.of(kind::error, "c");
    REQUIRE(errors.size() == 2);
    CHECK(errors[0].code == error_code::no_such_function);
    CHECK_THAT(errors[0].text, Catch::Contains("empty"));
    CHECK_THAT(errors[1].text, Catch::Contains("at most 128 bytes"));
    CHECK(h.counters.queued_jobs == 0);
}

TEST_CASE("byte budgets: past a tenant's or the broker's, a call fails at once, naming it",
          "[broker_core][budgets]") {
    // "Past a budget, new calls fail at once with overloaded, naming which budget."
    auto options = core_options();
    options.tenant_budget = 1000;
    options.broker_budget = 1500;
    core_harness h(options);
    std::string chunk(400, 'x');
    h.call("a", 1, "f", 0, 0, chunk);
    h.call("a", 2, "f", 0, 0, chunk); // a: 800 queued
    h.call("a", 3, "f", 0, 0, chunk); // 1200 > a's 1000
    auto errors = h.out.of(kind::error, "a");
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].id == 3);
    CHECK(errors[0].code == error_code::overloaded);
    CHECK_THAT(errors[0].text,
               Catch::Contains("tenant budget") && Catch::Contains("--tenant-budget"));
    h.call("b", 1, "f", 0, 0, chunk); // 1200 in all
    h.call("b", 2, "f", 0, 0, chunk); // 1600 > the broker's 1500
    errors = h.out.of(kind::error, "b");
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].id == 2);
    CHECK_THAT(errors[0].text,
               Catch::Contains("broker budget") && Catch::Contains("--broker-budget"));
    // Budgets follow the queue: once jobs leave it, calls fit again.
    h.worker("w", 4, 0);
    h.call("b", 3, "f", 0, 0, chunk);
    CHECK(h.out.of(kind::error, "b").size() == 1);
    CHECK(h.counters.overloaded == 2);
}

TEST_CASE("replies waiting: a tenant's jobs wait while its clients have half its budget to read, "
          "and go again below a quarter",
          "[broker_core][budgets]") {
    auto options = core_options();
    options.tenant_budget = 1000;
    core_harness h(options);
    auto& slow = h.client("slow");
    h.call("slow", 1);
    h.call("slow", 2);
    h.call("fast", 1);
    h.out.hold(slow, 500); // its connection had no room for 500 bytes
    h.core.review_replies(slow, h.now);
    CHECK(slow.tenant->paused);
    h.worker("w", 4, 0);
    REQUIRE(h.given("w").size() == 1); // only fast's job (the third)
    auto third = h.given("w")[0];
    // New calls count what waits to be read against the budget.
    h.call("slow", 3, "f", 0, 0, std::string(600, 'x'));
    auto errors = h.out.of(kind::error, "slow");
    REQUIRE(errors.size() == 1);
    CHECK_THAT(errors[0].text, Catch::Contains("not read yet"));
    h.out.hold(slow, 300); // it reads, but not enough yet
    h.core.review_replies(slow, h.now);
    CHECK(h.given("w").size() == 1);
    h.out.hold(slow, 100);
    h.core.review_replies(slow, h.now);
    CHECK_FALSE(slow.tenant->paused);
    CHECK(h.given("w") == std::vector<std::uint64_t>{third, third - 2, third - 1});
}

TEST_CASE("replies waiting: a client with more than the tenant budget to read is told DISCONNECT "
          "and forgotten",
          "[broker_core][budgets]") {
    auto options = core_options();
    options.tenant_budget = 1000;
    core_harness h(options);
    auto& slow = h.client("slow");
    h.worker("w", 1, 0);
    h.call("slow", 1);
    h.call("slow", 2); // queued
    h.out.hold(slow, 1001);
    h.core.review_replies(slow, h.now);
    CHECK(h.counters.clients_cut_off == 1);
    CHECK(h.out.of(kind::disconnect, "slow").size() == 1);
    CHECK(h.core.find_client("slow") == nullptr);
    CHECK(h.out.held_bytes() == 0);
    CHECK(h.out.of(kind::cancel, "w").size() == 1); // its running job is cancelled
    CHECK(h.counters.queued_jobs == 0);
}
