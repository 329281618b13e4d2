// The choice of worker (broker/src/core/dispatcher.*), through the core with injected time: credit
// (slots + prefetch), the most free slots first, least recently used on a tie, priority then age.
// docs/protocol.md §5.

#include "core_harness.hpp"

#include <catch2/catch.hpp>

using namespace deferq::test;
using kind = sent_message::kind;

TEST_CASE("a worker is given at most its slots plus its prefetch", "[dispatcher]") {
    // The broker SHALL NOT give a worker more jobs than its slots plus its prefetch.
    core_harness h;
    h.worker("w", 1, 2);
    for (std::uint64_t i = 1; i <= 5; ++i)
        h.call("c", i);
    CHECK(h.given("w").size() == 3);
    CHECK(h.counters.queued_jobs == 2);
    CHECK(h.counters.running_jobs == 3);
    // Each answer frees one credit, which the next queued job takes at once.
    REQUIRE(h.reply("w", h.given("w")[0]));
    CHECK(h.given("w").size() == 4);
    CHECK(h.counters.queued_jobs == 1);
}

TEST_CASE("jobs go to the worker with the most free slots, then the least recently used",
          "[dispatcher]") {
    core_harness h;
    h.worker("a", 2, 0);
    h.worker("b", 2, 0);
    for (std::uint64_t i = 1; i <= 4; ++i)
        h.call("c", i);
    // a, then b (more free slots), then a (tie: b was used last), then b.
    auto jobs = h.out.of(kind::job);
    REQUIRE(jobs.size() == 4);
    CHECK(jobs[0].peer == "a");
    CHECK(jobs[1].peer == "b");
    CHECK(jobs[2].peer == "a");
    CHECK(jobs[3].peer == "b");
}

TEST_CASE("a job goes to a free slot before a busy worker's prefetch", "[dispatcher]") {
    // A long job waits for a free slot rather than in a busy worker's prefetch.
    core_harness h;
    h.worker("busy", 1, 4);
    h.call("c", 1);
    h.call("c", 2); // prefetched on the only worker
    REQUIRE(h.given("busy").size() == 2);
    h.worker("idle", 1, 0);
    h.call("c", 3);
    CHECK(h.given("idle").size() == 1); // it had a free slot; busy had only prefetch
}

TEST_CASE("higher priorities leave the queue first, and each priority in arrival order",
          "[dispatcher]") {
    core_harness h;
    h.call("c", 1, "f", 0, 0);
    h.call("c", 2, "f", 0, 5);
    h.call("c", 3, "f", 0, 0);
    h.call("c", 4, "f", 0, 5);
    h.worker("w", 1, 0);
    std::vector<std::uint64_t> order;
    for (int i = 0; i < 4; ++i) {
        auto jobs = h.given("w");
        REQUIRE(jobs.size() == static_cast<std::size_t>(i + 1));
        order.push_back(jobs.back());
        REQUIRE(h.reply("w", jobs.back()));
    }
    auto replies = h.out.of(kind::reply);
    REQUIRE(replies.size() == 4);
    CHECK(replies[0].id == 2);
    CHECK(replies[1].id == 4);
    CHECK(replies[2].id == 1);
    CHECK(replies[3].id == 3);
}

TEST_CASE("a worker of several functions takes the best job among them", "[dispatcher]") {
    core_harness h;
    h.call("c", 1, "f");
    h.call("c", 2, "g", 0, 3); // higher priority, other function
    h.call("c", 3, "g");
    h.worker("w", 1, 0, {"f", "g"});
    REQUIRE(h.given("w").size() == 1);
    REQUIRE(h.reply("w", h.given("w")[0]));
    REQUIRE(h.reply("w", h.given("w")[1]));
    REQUIRE(h.reply("w", h.given("w")[2]));
    auto replies = h.out.of(kind::reply);
    REQUIRE(replies.size() == 3);
    CHECK(replies[0].id == 2); // priority first
    CHECK(replies[1].id == 1); // then the older of f and g
    CHECK(replies[2].id == 3);
}

TEST_CASE("a draining worker is given nothing more", "[dispatcher]") {
    core_harness h;
    auto& w = h.worker("w", 2, 0);
    h.call("c", 1);
    h.core.on_drain(w);
    h.call("c", 2);
    CHECK(h.given("w").size() == 1);
    CHECK(h.counters.queued_jobs == 1);
}

TEST_CASE("a larger prefetch (CREDIT) gives the worker more jobs at once", "[dispatcher]") {
    core_harness h;
    auto& w = h.worker("w", 1, 0);
    for (std::uint64_t i = 1; i <= 4; ++i)
        h.call("c", i);
    REQUIRE(h.given("w").size() == 1);
    h.core.on_credit(w, 2, h.now);
    CHECK(h.given("w").size() == 3);
}

TEST_CASE("callers share a function's workers in turn, and no slot waits while work is queued",
          "[dispatcher][fair]") {
    // "Within one function's queue and priority level, the broker serves tenants in turn; it stays
    // work-conserving."
    core_harness h;
    h.worker("w", 1, 0);
    for (std::uint64_t i = 1; i <= 400; ++i)
        h.call("a", i); // a's backlog: the first runs, 399 queued
    h.call("b", 1);     // b comes later, with one job
    REQUIRE(h.given("w").size() == 1);
    for (int i = 0; i < 3; ++i) // a's first ends; b waits behind one more job of a at most
        REQUIRE(h.reply("w", h.given("w").back()));
    auto replies = h.out.of(kind::reply);
    REQUIRE(replies.size() == 3);
    CHECK(replies[0].peer == "a");
    CHECK((replies[1].peer == "b" || replies[2].peer == "b"));
    // Then a alone again: every free slot takes a's next job at once.
    for (int i = 0; i < 10; ++i)
        REQUIRE(h.reply("w", h.given("w").back()));
    CHECK(h.out.of(kind::reply, "a").size() == 12);
    CHECK(h.counters.queued_jobs == 400 - 12 - 1); // 12 answered, 1 running
}

TEST_CASE("priority stays strict above the callers' turns", "[dispatcher][fair]") {
    core_harness h;
    for (std::uint64_t i = 1; i <= 3; ++i)
        h.call("a", i, "f", 0, 0);
    h.call("b", 1, "f", 0, 0);
    h.call("c", 1, "f", 0, 9);
    h.worker("w", 1, 0);
    std::vector<std::string> order;
    for (int i = 0; i < 5; ++i) {
        REQUIRE(h.reply("w", h.given("w").back()));
        order.push_back(h.out.of(kind::reply).back().peer);
    }
    CHECK(order == std::vector<std::string>{"c", "a", "b", "a", "a"});
}
