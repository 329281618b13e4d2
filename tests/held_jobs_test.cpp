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

/// The job ids of the answers kept, oldest first.
std::vector<std::uint64_t> ids(recent_answers& recent) {
    std::vector<std::uint64_t> out;
    recent.for_each([&](sent_answer& kept) { out.push_back(kept.job->id); });
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
    CHECK(ids(recent) == std::vector<std::uint64_t>{2});
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
    recent.for_each([&](sent_answer& offered) { // offered again, on connection 2
        offered.connection = 2;
        offered.sent = t0 + 10s;
    });
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
    CHECK(ids(by_count) == std::vector<std::uint64_t>{3, 4, 5});

    recent_answers by_bytes(100, 1000);
    by_bytes.keep(answer(1, 600, t0));
    by_bytes.keep(answer(2, 300, t0));
    CHECK(by_bytes.size() == 2);
    by_bytes.keep(answer(3, 300, t0)); // 1,200 bytes: the oldest goes
    CHECK(by_bytes.size() == 2);
    CHECK(by_bytes.bytes() == 600);
    by_bytes.keep(answer(4, 5000, t0)); // alone over the bound: kept, the others go
    REQUIRE(by_bytes.size() == 1);
    CHECK(ids(by_bytes) == std::vector<std::uint64_t>{4});
}

TEST_CASE("recent answers keep their order across the ring's turns and growth, and let go of "
          "what they drop",
          "[held_jobs]") {
    auto t0 = clock_type::now();
    recent_answers recent(40, 1 << 20);
    std::vector<std::weak_ptr<deferq::worker_detail::job_record>> jobs;
    std::uint64_t oldest = 1;
    for (std::uint64_t id = 1; id <= 300; ++id) {
        auto kept = answer(id, 8, t0 + std::chrono::milliseconds(id));
        jobs.push_back(kept.job);
        recent.keep(std::move(kept));
        if (id % 7 == 0) { // heard: what went more than 20 ms before goes
            recent.prune(1, t0 + std::chrono::milliseconds(id), 20ms);
            if (id > 20) oldest = std::max(oldest, id - 20);
        }
        oldest = std::max(oldest, id >= 40 ? id - 39 : 1);
        std::vector<std::uint64_t> expected;
        for (auto each = oldest; each <= id; ++each)
            expected.push_back(each);
        REQUIRE(ids(recent) == expected);
        CHECK(recent.bytes() == 8 * expected.size());
    }
    for (std::uint64_t id = 1; id < oldest; ++id)
        CHECK(jobs[id - 1].expired()); // dropped answers hold no job record
    recent.clear();
    CHECK(recent.size() == 0);
    CHECK(recent.bytes() == 0);
    CHECK(jobs.back().expired());
}
