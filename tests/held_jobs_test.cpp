// The worker's memory of the answers it sent lately (docs/protocol.md §3c): what it offers again
// to a new broker instance, and when it forgets.

#include "held_jobs.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using deferq::worker_detail::clock_type;
using deferq::worker_detail::recent_answers;
using deferq::worker_detail::sent_answer;

namespace {

sent_answer answer(std::uint64_t id, std::size_t bytes, clock_type::time_point sent,
                   std::uint64_t connection = 1) {
    auto job = std::make_shared<deferq::worker_detail::job_record>();
    job->id = id;
    sent_answer out;
    out.job = std::move(job);
    out.payload = zmq::message_t(bytes);
    out.sent = sent;
    out.connection = connection;
    return out;
}

} // namespace

TEST_CASE("recent answers are kept until the broker was heard an interval after them",
          "[held_jobs]") {
    recent_answers recent(10, 1 << 20);
    auto t0 = clock_type::now();
    recent.keep(answer(1, 10, t0));
    recent.keep(answer(2, 10, t0 + 500ms));
    recent.prune(1, t0 + 900ms, 1000ms); // heard, but not an interval after either
    CHECK(recent.size() == 2);
    recent.prune(1, t0 + 1001ms, 1000ms);
    REQUIRE(recent.size() == 1);
    CHECK(recent.all().front().job->id == 2);
    recent.prune(1, t0 + 2000ms, 1000ms);
    CHECK(recent.size() == 0);
    CHECK(recent.bytes() == 0);
}

TEST_CASE("answers sent on an earlier connection stay until they were offered on this one",
          "[held_jobs]") {
    // The broker they went to died: hearing the next one says nothing about them (found by the
    // chaos test: a DISCONNECT from a restarted broker made a worker forget them).
    recent_answers recent(10, 1 << 20);
    auto t0 = clock_type::now();
    recent.keep(answer(1, 10, t0, 1));
    recent.keep(answer(2, 10, t0, 1));
    recent.prune(2, t0 + 10s, 1000ms);
    CHECK(recent.size() == 2);
    for (auto& offered : recent.all()) { // offered again, on connection 2
        offered.connection = 2;
        offered.sent = t0 + 10s;
    }
    recent.prune(2, t0 + 10500ms, 1000ms);
    CHECK(recent.size() == 2);
    recent.prune(2, t0 + 11001ms, 1000ms);
    CHECK(recent.size() == 0);
}

TEST_CASE("recent answers are bounded in number and in bytes, the newest always kept",
          "[held_jobs]") {
    auto t0 = clock_type::now();
    recent_answers by_count(3, 1 << 20);
    for (std::uint64_t id = 1; id <= 5; ++id)
        by_count.keep(answer(id, 1, t0));
    REQUIRE(by_count.size() == 3);
    CHECK(by_count.all().front().job->id == 3);

    recent_answers by_bytes(100, 1000);
    by_bytes.keep(answer(1, 600, t0));
    by_bytes.keep(answer(2, 300, t0));
    CHECK(by_bytes.size() == 2);
    by_bytes.keep(answer(3, 300, t0)); // 1,200 bytes: the oldest goes
    CHECK(by_bytes.size() == 2);
    CHECK(by_bytes.bytes() == 600);
    by_bytes.keep(answer(4, 5000, t0)); // alone over the bound: kept, the others go
    REQUIRE(by_bytes.size() == 1);
    CHECK(by_bytes.all().front().job->id == 4);
}
