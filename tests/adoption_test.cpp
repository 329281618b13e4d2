// The broker core's adoption rules (docs/protocol.md §3c): jobs a worker reports holding from an
// earlier broker connection (HELD) are adopted, a client's resent call attaches to its job, and a
// job runs again only when nobody holds it.

#include "core_harness.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using deferq::test::core_harness;
using kind = deferq::test::sent_message::kind;

namespace {

/// A worker reports job `job_id` of `caller`'s call `correlation_id` to `f`.
void report(core_harness& h, const std::string& worker, std::uint64_t job_id,
            const std::string& caller, std::uint64_t correlation_id, std::uint32_t attempt = 1) {
    auto* w = h.core.find_worker(worker);
    REQUIRE(w);
    h.core.on_held(*w, {job_id, "f", caller, correlation_id, attempt}, h.now);
}

/// The client sends call `correlation_id` again, as after a reconnect.
void resend(core_harness& h, const std::string& client, std::uint64_t correlation_id,
            std::uint32_t timeout_ms = 0) {
    auto& c = h.client(client);
    h.core.on_request(c, {correlation_id, "f", {.timeout_ms = timeout_ms, .resent = true}},
                      zmq::message_t(std::string_view("args")), h.now);
}

/// Time passes by `by`, with a tick every 250 ms; every worker and client keeps sending
/// heartbeats meanwhile.
void pass_time(core_harness& h, std::chrono::milliseconds by) {
    for (auto left = by; left > 0ms; left -= 250ms) {
        for (auto& [id, worker] : h.core.workers().all())
            worker->last_seen = h.now;
        for (auto& [id, client] : h.core.clients().all())
            client->last_seen = h.now;
        h.advance(std::min<std::chrono::milliseconds>(left, 250ms), true);
    }
}

} // namespace

TEST_CASE("a reported job is adopted and its caller's resent call attaches to it: it runs once",
          "[adoption]") {
    core_harness h;
    h.worker("w", 1, 0);
    report(h, "w", 77, "c", 5);
    CHECK(h.counters.jobs_adopted == 1);
    CHECK(h.counters.running_jobs == 1);
    resend(h, "c", 5, 60'000);
    CHECK(h.given("w").empty()); // the worker runs it already
    CHECK(h.core.unclaimed() == 0);
    CHECK(h.core.armed_deadlines() == 1); // the caller's deadline holds for the adopted job
    REQUIRE(h.reply("w", 77, "42"));
    auto replies = h.out.of(kind::reply, "c");
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].id == 5);
    CHECK(replies[0].text == "42");
    CHECK(h.counters.running_jobs == 0);
    CHECK(h.core.armed_deadlines() == 0);
}

TEST_CASE("an answer that comes before the caller's resend is kept and delivered once",
          "[adoption]") {
    core_harness h;
    h.worker("w", 1, 0);
    report(h, "w", 77, "c", 5);
    REQUIRE(h.reply("w", 77, "42"));
    CHECK(h.out.of(kind::reply).empty()); // nobody asked yet
    CHECK(h.core.unclaimed() == 1);
    resend(h, "c", 5);
    auto replies = h.out.of(kind::reply, "c");
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].id == 5);
    CHECK(replies[0].text == "42");
    CHECK(h.core.unclaimed() == 0);
    CHECK(h.given("w").empty());
}

TEST_CASE("a resent call that comes before the worker's report waits for it, then attaches",
          "[adoption]") {
    core_harness h; // the broker has just started
    resend(h, "c", 5);
    CHECK(h.counters.resent_parked == 1);
    h.worker("w", 1, 0);
    CHECK(h.given("w").empty()); // parked: not given to the idle worker
    report(h, "w", 77, "c", 5);
    CHECK(h.core.parked() == 1); // its entry goes when the window ends
    REQUIRE(h.reply("w", 77, "42"));
    REQUIRE(h.out.of(kind::reply, "c").size() == 1);
    h.advance(3100ms, true);
    CHECK(h.given("w").empty()); // it ran once
    CHECK(h.core.parked() == 0);
    CHECK(h.counters.queued_jobs == 0);
}

TEST_CASE("a resent call nobody reports runs once the adoption window has passed", "[adoption]") {
    core_harness h;
    h.worker("w", 1, 0);
    resend(h, "c", 5);
    resend(h, "c", 6);
    h.call("c", 7); // a new call does not wait
    REQUIRE(h.given("w").size() == 1);
    pass_time(h, 2900ms);
    CHECK(h.given("w").size() == 1);
    pass_time(h, 250ms);
    CHECK(h.counters.queued_jobs == 2);
    REQUIRE(h.reply("w", h.given("w")[0]));
    CHECK(h.given("w").size() == 2);
    // Long after the start, a resent call is an ordinary call.
    pass_time(h, 1s);
    resend(h, "c", 8);
    CHECK(h.counters.resent_parked == 2);
    CHECK(h.counters.queued_jobs == 2);
}

TEST_CASE("a reported job whose call runs on another worker is cancelled where it was reported",
          "[adoption]") {
    core_harness h;
    h.advance(10s, true);
    h.worker("w1", 1, 0);
    h.call("c", 1);
    REQUIRE(h.given("w1").size() == 1);
    h.worker("w2", 1, 0);
    report(h, "w2", 99, "c", 1);
    auto cancels = h.out.of(kind::cancel, "w2");
    REQUIRE(cancels.size() == 1);
    CHECK(cancels[0].id == 99);
    CHECK(h.counters.adoptions_refused == 1);
    CHECK(h.counters.jobs_adopted == 0);
}

TEST_CASE("an adopted job nobody claims is cancelled on its worker after the window",
          "[adoption]") {
    core_harness h;
    h.worker("w", 1, 1);
    report(h, "w", 77, "c", 5);
    pass_time(h, 5750ms);
    CHECK(h.out.of(kind::cancel, "w").empty());
    pass_time(h, 500ms);
    auto cancels = h.out.of(kind::cancel, "w");
    REQUIRE(cancels.size() == 1);
    CHECK(cancels[0].id == 77);
    CHECK(h.core.unclaimed() == 0);
    // The worker's answer (cancelled) frees the slot; nothing reaches any client.
    REQUIRE(h.reply("w", 77));
    CHECK(h.out.of(kind::reply).empty());
    CHECK(h.counters.running_jobs == 0);
}

TEST_CASE("a worker that registers again reports a job this broker knows: it moves with it",
          "[adoption]") {
    core_harness h;
    h.advance(10s, true);
    h.worker("old", 1, 0);
    h.call("c", 1);
    auto job = h.given("old").at(0);
    h.worker("new", 1, 0); // the same process after a reconnect, not yet expired as "old"
    report(h, "new", job, "c", 1);
    CHECK(h.counters.jobs_adopted == 1);
    CHECK(h.counters.running_jobs == 1);
    // "old" expires: nothing to requeue.
    h.core.remove_worker(*h.core.find_worker("old"), "expired",
                         deferq::broker_detail::parting::lost, h.now);
    CHECK(h.counters.requeued == 0);
    REQUIRE(h.reply("new", job, "7"));
    REQUIRE(h.out.of(kind::reply, "c").size() == 1);
    CHECK(h.given("new").empty());
}

TEST_CASE("a reported job takes over its caller's queued call, and a lost adopted job runs again",
          "[adoption]") {
    core_harness h;
    h.advance(10s, true);
    h.call("c", 1, "f", 60'000); // requeued, say: nobody offers f yet
    h.worker("w", 1, 0);         // offers f: takes call 1 at once
    REQUIRE(h.given("w").size() == 1);
    // Another worker reports call 1's earlier job: the call runs on w already.
    h.worker("v", 1, 0, {"f", "g"});
    h.call("c", 3, "g"); // keeps v busy
    report(h, "v", 500, "c", 1);
    CHECK(h.out.of(kind::cancel, "v").size() == 1);
    // A queued call is taken over.
    h.call("c", 2, "f", 60'000);
    CHECK(h.counters.queued_jobs == 1);
    report(h, "v", 501, "c", 2);
    CHECK(h.counters.queued_jobs == 0);
    CHECK(h.counters.jobs_adopted == 1);
    // v dies: the adopted job, claimed, goes back to its queue with its arguments.
    h.core.remove_worker(*h.core.find_worker("v"), "expired", deferq::broker_detail::parting::lost,
                         h.now);
    CHECK(h.counters.requeued == 2);
    REQUIRE(h.reply("w", h.given("w")[0]));
    REQUIRE(h.given("w").size() == 2);
    REQUIRE(h.reply("w", h.given("w")[1], "2"));
    CHECK(h.out.of(kind::reply, "c").size() == 2);
}

TEST_CASE("a parked call keeps its function known while nobody offers it", "[adoption]") {
    core_harness h;
    auto& c = h.client("c");
    h.core.on_request(c, {5, "g", {.resent = true}}, zmq::message_t(std::string_view("args")),
                      h.now);
    REQUIRE(h.core.parked() == 1);
    pass_time(h, 3250ms); // the window ends; the function's record must still be there
    CHECK(h.core.parked() == 0);
    CHECK(h.counters.queued_jobs == 1);
    h.worker("w", 1, 0, {"g"});
    REQUIRE(h.given("w").size() == 1);
    REQUIRE(h.reply("w", h.given("w")[0]));
    CHECK(h.out.of(kind::reply, "c").size() == 1);
}
