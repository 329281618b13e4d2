// Calls from inside jobs (broker/src/core/calls_from_jobs.cpp; docs/protocol.md §3b): a job that
// waits gives back its slot, and the calls it makes are its children — served from its tenant,
// ending no later than it, cancelled with it. Injected time, a recording outbox, no sockets.

#include "core_harness.hpp"

#include <catch2/catch.hpp>

using namespace deferq::test;
using namespace std::chrono_literals;
using deferq::error_code;
using kind = sent_message::kind;

namespace {

/// The worker's job `parent` calls `function` (call id `call_id`).
void call_from(core_harness& h, const std::string& worker, std::uint64_t parent,
               std::uint64_t call_id, std::string_view function = "f",
               std::uint32_t timeout_ms = 0) {
    auto* w = h.core.find_worker(worker);
    REQUIRE(w != nullptr);
    std::string_view payload = "args";
    h.core.on_call(*w, parent, {call_id, function, {.timeout_ms = timeout_ms}},
                   zmq::message_t(payload.data(), payload.size()), h.now);
}

bool wait_on(core_harness& h, const std::string& worker, std::uint64_t job_id) {
    return h.core.on_wait(*h.core.find_worker(worker), job_id, h.now);
}

} // namespace

TEST_CASE("a waiting job gives back its slot: one worker of one slot computes a tree of calls",
          "[calls_from_jobs]") {
    // "A single worker with concurrency 1 must compute a recursive tree of calls without deadlock."
    core_harness h;
    h.worker("w", 1, 0);
    h.call("client", 1);
    REQUIRE(h.given("w").size() == 1);
    auto root = h.given("w")[0];
    call_from(h, "w", root, 101); // queued: the one slot is taken
    CHECK(h.given("w").size() == 1);
    CHECK(wait_on(h, "w", root)); // the root waits on its call's Deferred: the slot is free
    REQUIRE(h.given("w").size() == 2);
    auto child = h.given("w")[1];
    CHECK(wait_on(h, "w", child));
    call_from(h, "w", child, 102); // a grandchild
    REQUIRE(h.given("w").size() == 3);
    auto grandchild = h.given("w")[2];
    CHECK(h.reply("w", grandchild, "1"));
    CHECK(h.reply("w", child, "2"));
    auto answers = h.out.of(kind::reply, "w"); // the calls' answers, to the worker
    REQUIRE(answers.size() == 2);
    CHECK(answers[0].id == 102);
    CHECK(answers[1].id == 101);
    CHECK(h.reply("w", root, "3"));
    REQUIRE(h.out.of(kind::reply, "client").size() == 1);
    CHECK(h.out.of(kind::reply, "client")[0].text == "3");
    CHECK(h.core.jobs().size() == 0);
    CHECK(h.core.find_worker("w")->waiting == 0);
}

TEST_CASE("a call from a job is served from the tenant of the job's caller and ends no later "
          "than the job",
          "[calls_from_jobs]") {
    // "A child's deadline is the smaller of its own timeout and the parent's remaining time";
    // "children are scheduled under the tenant of the root call".
    core_harness h;
    h.worker("w", 2, 0);
    h.call("client", 1, "f", 1000);
    auto root = h.given("w")[0];
    h.advance(400ms);
    call_from(h, "w", root, 7, "f", 5000);
    REQUIRE(h.out.of(kind::job, "w").size() == 2);
    auto child = h.out.of(kind::job, "w")[1];
    CHECK(child.remaining_ms == 600);
    CHECK(h.core.jobs().find(child.id)->tenant == h.client("client").tenant);
    call_from(h, "w", root, 8, "f", 100);        // its own timeout is the sooner
    CHECK(h.out.of(kind::job, "w").size() == 2); // queued: both slots taken
    CHECK(wait_on(h, "w", root));
    REQUIRE(h.out.of(kind::job, "w").size() == 3);
    CHECK(h.out.of(kind::job, "w")[2].remaining_ms == 100);
    // The root's deadline passes: its children end with it, and the worker is told.
    h.advance(700ms);
    CHECK(h.out.of(kind::error, "client").size() == 1);
    CHECK(h.out.of(kind::error, "client")[0].code == error_code::timeout);
    auto cancels = h.out.of(kind::cancel, "w");
    CHECK(cancels.size() == 3); // the root and its two children
}

TEST_CASE("cancelling a job cancels the calls it made, queued and running, on other workers",
          "[calls_from_jobs]") {
    core_harness h;
    h.worker("w1", 1, 0);
    h.call("client", 1);
    auto root = h.given("w1")[0];
    h.worker("w2", 1, 0);
    call_from(h, "w1", root, 11); // runs on w2
    call_from(h, "w1", root, 12); // queued
    REQUIRE(h.given("w2").size() == 1);
    h.core.on_cancel(h.client("client"), 1);
    CHECK(h.out.of(kind::cancel, "w1").size() == 1);
    CHECK(h.out.of(kind::cancel, "w2").size() == 1);
    auto told = h.out.of(kind::error, "w1"); // the worker hears its calls end
    REQUIRE(told.size() == 2);
    CHECK(told[0].code == error_code::cancelled);
    CHECK(h.counters.queued_jobs == 0);
    // Their late answers change nothing.
    CHECK(h.reply("w2", h.given("w2")[0]));
    CHECK(h.out.of(kind::reply, "w1").empty());
}

TEST_CASE("when a job's worker dies the job runs again and the calls it made are cancelled",
          "[calls_from_jobs]") {
    // "When the parent's worker dies, the parent is re-run elsewhere and the children it had
    // started are cancelled."
    core_harness h;
    h.worker("w1", 1, 0);
    h.call("client", 1);
    auto root = h.given("w1")[0];
    h.worker("w2", 1, 0);
    call_from(h, "w1", root, 21);
    REQUIRE(h.given("w2").size() == 1);
    auto child = h.given("w2")[0];
    h.core.remove_worker(*h.core.find_worker("w1"), "expired", deferq::broker_detail::parting::lost,
                         h.now);
    CHECK(h.out.of(kind::cancel, "w2").size() == 1);
    CHECK(h.out.of(kind::cancel, "w2")[0].id == child);
    CHECK(h.reply("w2", child)); // the cancelled child frees w2
    REQUIRE(h.given("w2").size() == 2);
    CHECK(h.given("w2")[1] == root); // the root runs again, on w2
    CHECK(h.out.of(kind::error, "client").empty());
}

TEST_CASE("a call from a job the worker does not run is refused, and a job that ends cancels "
          "its calls",
          "[calls_from_jobs]") {
    core_harness h;
    h.worker("w", 1, 0);
    call_from(h, "w", 999, 31);
    auto refused = h.out.of(kind::error, "w");
    REQUIRE(refused.size() == 1);
    CHECK(refused[0].id == 31);
    CHECK(refused[0].code == error_code::cancelled);
    h.call("client", 1);
    auto root = h.given("w")[0];
    call_from(h, "w", root, 32); // queued behind the root
    CHECK(h.reply("w", root));   // the root returns without waiting for it
    auto told = h.out.of(kind::error, "w");
    REQUIRE(told.size() == 2);
    CHECK(told[1].id == 32);
    CHECK_THAT(told[1].text, Catch::Contains("ended"));
    CHECK(h.core.jobs().size() == 0);
    CHECK_FALSE(wait_on(h, "w", root)); // a WAIT for a job it no longer holds
}
