// The broker's job table (broker/src/core/job_table.*): a job's moves — queued, taken, held,
// released, forgotten — keep the queues and the queued/running gauges consistent.

#include "core/job_table.hpp"

#include <catch2/catch.hpp>

using namespace deferq::broker_detail;
using queue_end = deferq::broker_detail::queue_end;

namespace {

struct table_fixture {
    deferq::broker_counters counters;
    job_table jobs{counters};
    client_record client;
    worker_record worker;
    tenant_record tenant;
    time_point t0 = time_point{} + std::chrono::hours{1};

    job& add(function_record& function, std::uint64_t correlation_id, std::uint8_t priority = 0) {
        return jobs.add(client, correlation_id, function, zmq::message_t("x", 1), priority, 3,
                        tenant);
    }
};

} // namespace

TEST_CASE("job ids are unique and a job is found by its id until erased", "[job_table]") {
    table_fixture t;
    auto& f = t.jobs.function("f");
    auto& a = t.add(f, 1);
    auto& b = t.add(f, 2);
    CHECK(a.id != b.id);
    CHECK(t.jobs.find(a.id) == &a);
    auto id = b.id;
    t.jobs.erase(b);
    CHECK(t.jobs.find(id) == nullptr);
    CHECK(t.jobs.size() == 1);
}

TEST_CASE("a queued job is the front of its queue until taken", "[job_table]") {
    table_fixture t;
    auto& f = t.jobs.function("f");
    auto& first = t.add(f, 1);
    auto& urgent = t.add(f, 2, 9);
    auto& back = t.add(f, 3);
    t.jobs.enqueue(first, queue_end::back, t.t0);
    t.jobs.enqueue(urgent, queue_end::back, t.t0);
    t.jobs.enqueue(back, queue_end::front, t.t0); // taken back: first within its priority
    CHECK(f.queued == 3);
    CHECK(t.counters.queued_jobs == 3);
    CHECK(t.jobs.front(f) == &urgent);
    t.jobs.pop_front(f);
    CHECK(t.jobs.front(f) == &back);
    t.jobs.pop_front(f);
    CHECK(t.jobs.front(f) == &first);
    t.jobs.pop_front(f);
    CHECK(t.jobs.front(f) == nullptr);
    CHECK(f.queued == 0);
    CHECK(t.counters.queued_jobs == 0);
}

TEST_CASE("a job that leaves its queue unserved is gone from it, and the gauges follow",
          "[job_table]") {
    table_fixture t;
    auto& f = t.jobs.function("f");
    auto& cancelled = t.add(f, 1);
    auto& kept = t.add(f, 2);
    t.jobs.enqueue(cancelled, queue_end::back, t.t0);
    t.jobs.enqueue(kept, queue_end::back, t.t0 + std::chrono::seconds{1});
    t.jobs.unqueue(cancelled);
    t.jobs.erase(cancelled);
    CHECK(f.queued == 1);
    CHECK(t.counters.queued_jobs == 1);
    CHECK(t.jobs.oldest_queued(f, t.t0 + std::chrono::seconds{5}) ==
          t.t0 + std::chrono::seconds{1});
    CHECK(t.jobs.front(f) == &kept);
}

TEST_CASE("a held job is found only through the worker that holds it", "[job_table]") {
    table_fixture t;
    auto& f = t.jobs.function("f");
    auto& j = t.add(f, 1);
    t.jobs.enqueue(j, queue_end::back, t.t0);
    t.jobs.pop_front(f);
    t.jobs.hold(j, t.worker, t.t0);
    CHECK(j.state == job_state::running);
    CHECK(j.attempts == 1);
    CHECK(t.counters.running_jobs == 1);
    worker_record other;
    CHECK(t.jobs.find_held(t.worker, j.id) == &j);
    CHECK(t.jobs.find_held(other, j.id) == nullptr);
    t.jobs.release(t.worker, j.id);
    CHECK(t.worker.held.empty());
    CHECK(t.counters.running_jobs == 0);
    CHECK(t.jobs.find_held(t.worker, j.id) == nullptr);
}

TEST_CASE("tidy forgets functions nobody offers, waits for or offered lately", "[job_table]") {
    table_fixture t;
    t.jobs.function("idle");
    auto& busy = t.jobs.function("busy");
    std::vector<job*> queued;
    for (std::uint64_t i = 0; i < 3000; ++i) {
        queued.push_back(&t.add(busy, i));
        t.jobs.enqueue(*queued.back(), queue_end::back, t.t0);
    }
    for (std::size_t i = 0; i + 1 < queued.size(); ++i) { // all but the last leave
        t.jobs.unqueue(*queued[i]);
        t.jobs.erase(*queued[i]);
    }
    t.jobs.function("offered lately").last_offered = t.t0 - std::chrono::minutes{1};
    t.jobs.function("offered long ago").last_offered = t.t0 - std::chrono::minutes{11};
    t.jobs.tidy(t.t0, std::chrono::minutes{10});
    CHECK(t.jobs.find_function("idle") == nullptr);
    CHECK(t.jobs.find_function("offered lately") != nullptr); // its workers may come back
    CHECK(t.jobs.find_function("offered long ago") == nullptr);
    REQUIRE(t.jobs.find_function("busy") == &busy);
    CHECK(busy.queue.size() == 1);
    CHECK(t.jobs.front(busy) == queued.back());
}
