// A function's queue (broker/src/core/job_queue.*): strict priority, then callers (tenants) in
// turn, each in arrival order; O(1) removal from anywhere. docs/protocol.md §5, Fair share.

#include "core/job_queue.hpp"
#include "core/records.hpp"

#include <catch2/catch.hpp>

#include <deque>
#include <map>
#include <random>
#include <vector>

using namespace deferq::broker_detail;

namespace {

struct queue_fixture {
    std::deque<job> jobs;
    std::map<std::string, tenant_record> tenants;
    job_queue queue;

    job& push(const std::string& tenant, std::uint8_t priority = 0,
              queue_end end = queue_end::back) {
        auto& j = jobs.emplace_back();
        j.id = jobs.size();
        j.priority = priority;
        j.tenant = &tenants[tenant];
        queue.push(j, end);
        return j;
    }

    /// Takes every job, in serving order (their ids).
    std::vector<std::uint64_t> drain() {
        std::vector<std::uint64_t> order;
        while (auto* j = queue.front()) {
            order.push_back(j->id);
            queue.pop_front();
        }
        return order;
    }
};

} // namespace

TEST_CASE("an empty queue has no front", "[job_queue]") {
    queue_fixture q;
    CHECK(q.queue.front() == nullptr);
    CHECK(q.queue.empty());
    q.queue.pop_front(); // harmless
    CHECK(q.queue.size() == 0);
}

TEST_CASE("one caller's jobs leave in arrival order", "[job_queue]") {
    queue_fixture q;
    for (int i = 0; i < 5; ++i)
        q.push("a");
    CHECK(q.queue.size() == 5);
    CHECK(q.drain() == std::vector<std::uint64_t>{1, 2, 3, 4, 5});
    CHECK(q.queue.lines() == 0);
}

TEST_CASE("callers take turns: one job each per round", "[job_queue]") {
    // "Within one function's queue and priority level, the broker serves tenants in turn."
    queue_fixture q;
    for (int i = 0; i < 4; ++i)
        q.push("a"); // 1..4
    q.push("b");     // 5
    q.push("c");     // 6
    q.push("b");     // 7
    CHECK(q.drain() == std::vector<std::uint64_t>{1, 5, 6, 2, 7, 3, 4});
}

TEST_CASE("a caller who comes late waits for no backlog of the others", "[job_queue]") {
    queue_fixture q;
    for (int i = 0; i < 400; ++i)
        q.push("a");
    q.queue.pop_front(); // a's first job is running: a has been served
    auto& late = q.push("b");
    CHECK(q.queue.front() == &late); // a newcomer goes ahead of those served already
    auto& later = q.push("c");
    q.queue.pop_front();
    CHECK(q.queue.front() == &later); // newcomers in their order
    q.queue.pop_front();
    CHECK(q.queue.front()->tenant == &q.tenants["a"]);
}

TEST_CASE("priority is strict above the turns", "[job_queue]") {
    queue_fixture q;
    q.push("a", 0); // 1
    q.push("b", 0); // 2
    q.push("a", 5); // 3
    q.push("c", 5); // 4
    q.push("a", 5); // 5
    CHECK(q.drain() == std::vector<std::uint64_t>{3, 4, 5, 1, 2});
}

TEST_CASE("a job taken back goes first in its line, and its caller first in the round",
          "[job_queue]") {
    queue_fixture q;
    q.push("a"); // 1
    q.push("b"); // 2
    auto& back = q.jobs.emplace_back();
    back.id = 99;
    back.tenant = &q.tenants["c"];
    q.queue.push(back, queue_end::front);
    q.push("a"); // 4 (ids follow the deque's size)
    CHECK(q.drain() == std::vector<std::uint64_t>{99, 1, 2, 4});
}

TEST_CASE("a job leaves from anywhere at once, and empty lines go", "[job_queue]") {
    queue_fixture q;
    auto& a1 = q.push("a");
    auto& a2 = q.push("a");
    auto& b1 = q.push("b");
    auto& a3 = q.push("a");
    q.queue.remove(a2); // middle
    q.queue.remove(b1); // b's only job: its line goes
    CHECK(q.queue.size() == 2);
    CHECK(q.queue.lines() == 1);
    q.queue.remove(a1); // head
    CHECK(q.queue.front() == &a3);
    q.queue.remove(a3); // last
    CHECK(q.queue.empty());
    CHECK(q.queue.lines() == 0);
}

TEST_CASE("take_if takes the jobs it is told to, whatever their place", "[job_queue]") {
    queue_fixture q;
    for (int i = 0; i < 6; ++i)
        q.push(i % 2 ? "a" : "b", static_cast<std::uint8_t>(i % 3));
    std::vector<std::uint64_t> taken;
    q.queue.take_if([](const job& j) { return j.id % 2 == 0; },
                    [&](job& j) { taken.push_back(j.id); });
    CHECK(taken.size() == 3);
    CHECK(q.queue.size() == 3);
    for (auto id : q.drain())
        CHECK(id % 2 == 1);
}

TEST_CASE("random pushes, pops and removals keep every job exactly once", "[job_queue]") {
    std::mt19937 random(11);
    queue_fixture q;
    std::vector<job*> queued;
    std::size_t popped = 0, removed = 0, pushed = 0;
    for (int step = 0; step < 20000; ++step) {
        auto choice = random() % 10;
        if (choice < 5 || queued.empty()) {
            auto tenant = std::string(1, static_cast<char>('a' + random() % 5));
            // More priorities than the queue keeps empty levels for: levels close and reopen.
            queued.push_back(&q.push(tenant, static_cast<std::uint8_t>(random() % 7),
                                     random() % 4 ? queue_end::back : queue_end::front));
            ++pushed;
        } else if (choice < 8) {
            auto* front = q.queue.front();
            REQUIRE(front);
            q.queue.pop_front();
            std::erase(queued, front);
            ++popped;
        } else {
            auto index = random() % queued.size();
            q.queue.remove(*queued[index]);
            queued.erase(queued.begin() + static_cast<std::ptrdiff_t>(index));
            ++removed;
        }
        REQUIRE(q.queue.size() == queued.size());
    }
    CHECK(pushed == popped + removed + q.queue.size());
    CHECK(q.drain().size() == queued.size());
}

TEST_CASE("a paused tenant's line is passed over and keeps its place", "[job_queue]") {
    // "A client that reads nothing cannot grow the broker further": its tenant's jobs wait.
    queue_fixture q;
    q.push("a"); // 1
    q.push("a"); // 2
    q.push("b"); // 3
    q.push("b"); // 4
    q.tenants["a"].paused = true;
    REQUIRE(q.queue.front() != nullptr);
    CHECK(q.queue.front()->id == 3);
    q.queue.pop_front();
    CHECK(q.queue.front()->id == 4);
    q.queue.pop_front();
    CHECK(q.queue.front() == nullptr); // only a's jobs are left, and they wait
    CHECK(q.queue.size() == 2);
    q.tenants["a"].paused = false;
    CHECK(q.drain() == std::vector<std::uint64_t>{1, 2});
}

TEST_CASE("a paused tenant at the head of a higher priority lets lower ones go", "[job_queue]") {
    queue_fixture q;
    q.push("a", 5); // 1
    q.push("b", 0); // 2
    q.push("c", 5); // 3
    q.tenants["a"].paused = true;
    q.tenants["c"].paused = true;
    CHECK(q.drain() == std::vector<std::uint64_t>{2});
    q.tenants["c"].paused = false;
    CHECK(q.drain() == std::vector<std::uint64_t>{3});
    q.tenants["a"].paused = false;
    CHECK(q.drain() == std::vector<std::uint64_t>{1});
}

TEST_CASE("lines and levels that closed serve in order when they open again", "[job_queue]") {
    // Every round empties the queue, so each round's lines are the last round's spare nodes,
    // moved between priorities (more of them than the queue keeps empty levels for).
    queue_fixture q;
    for (int round = 0; round < 40; ++round) {
        auto high = static_cast<std::uint8_t>(7 + round % 9);
        auto low = static_cast<std::uint8_t>(round % 7);
        auto first = q.push("c", low).id;
        auto a1 = q.push("a", high).id;
        auto a2 = q.push("a", high).id;
        auto b1 = q.push("b", high).id;
        auto gone = q.push("d", high).id;
        q.queue.remove(q.jobs.back());
        auto d2 = q.push("d", high).id;
        CAPTURE(round, gone);
        CHECK(q.drain() == std::vector<std::uint64_t>{a1, b1, d2, a2, first});
        CHECK(q.queue.lines() == 0);
        CHECK(q.queue.empty());
    }
}
