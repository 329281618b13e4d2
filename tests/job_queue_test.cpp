// The broker's per-function job queue (broker/src/job_queue.hpp): priority, arrival order, lazy
// removal.

#include "core/job_queue.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <optional>
#include <set>
#include <vector>

using deferq::broker_detail::job_queue;

namespace {

bool all_live(std::uint64_t) {
    return true;
}

/// Pops every live job, in queue order.
std::vector<std::uint64_t> drain(job_queue& queue, const std::set<std::uint64_t>& stale = {}) {
    auto is_live = [&](std::uint64_t id) { return !stale.contains(id); };
    std::vector<std::uint64_t> order;
    while (auto id = queue.front(is_live)) {
        order.push_back(*id);
        queue.pop_front();
    }
    return order;
}

} // namespace

TEST_CASE("an empty queue has no front", "[job_queue]") {
    job_queue queue;
    CHECK_FALSE(queue.front(all_live).has_value());
    CHECK(queue.entries() == 0);
    queue.pop_front(); // harmless on an empty queue
    CHECK(queue.entries() == 0);
}

TEST_CASE("the queue serves higher priorities first", "[job_queue]") {
    job_queue queue;
    queue.push_back(0, 1);
    queue.push_back(5, 2);
    queue.push_back(1, 3);
    queue.push_back(255, 4);
    queue.push_back(5, 5);
    CHECK(queue.entries() == 5);
    REQUIRE(queue.front(all_live) == std::optional<std::uint64_t>{4});
    CHECK(queue.front_priority() == 255);
    CHECK(drain(queue) == std::vector<std::uint64_t>{4, 2, 5, 3, 1});
    CHECK(queue.entries() == 0);
}

TEST_CASE("the queue is FIFO within one priority", "[job_queue]") {
    job_queue queue;
    for (std::uint64_t id = 10; id < 20; ++id)
        queue.push_back(3, id);
    CHECK(drain(queue) == std::vector<std::uint64_t>{10, 11, 12, 13, 14, 15, 16, 17, 18, 19});
}

TEST_CASE("front does not remove the job, pop_front does", "[job_queue]") {
    job_queue queue;
    queue.push_back(0, 1);
    queue.push_back(0, 2);
    CHECK(queue.front(all_live) == std::optional<std::uint64_t>{1});
    CHECK(queue.front(all_live) == std::optional<std::uint64_t>{1});
    CHECK(queue.entries() == 2);
    queue.pop_front();
    CHECK(queue.front(all_live) == std::optional<std::uint64_t>{2});
    CHECK(queue.entries() == 1);
}

TEST_CASE("push_front goes first within its priority, behind higher priorities", "[job_queue]") {
    job_queue queue;
    queue.push_back(2, 1);
    queue.push_back(2, 2);
    queue.push_back(9, 3);
    queue.push_back(0, 4);
    queue.push_front(2, 100); // a requeued job (its worker was lost)
    queue.push_front(2, 101); // requeued after it: now the very first of level 2
    queue.push_front(1, 102); // a level that did not exist yet
    CHECK(queue.entries() == 7);
    CHECK(drain(queue) == std::vector<std::uint64_t>{3, 101, 100, 1, 2, 102, 4});
}

TEST_CASE("front skips stale ids and counts them out of entries", "[job_queue]") {
    job_queue queue;
    queue.push_back(1, 1);
    queue.push_back(1, 2);
    queue.push_back(1, 3);
    queue.push_back(0, 4);
    std::set<std::uint64_t> stale{1, 2};
    auto is_live = [&](std::uint64_t id) { return !stale.contains(id); };

    // Stale ids still count until something walks over them.
    CHECK(queue.entries() == 4);
    CHECK(queue.front(is_live) == std::optional<std::uint64_t>{3});
    CHECK(queue.entries() == 2);
    CHECK(queue.front_priority() == 1);

    // A whole level of stale ids is skipped for the next level.
    stale.insert(3);
    CHECK(queue.front(is_live) == std::optional<std::uint64_t>{4});
    CHECK(queue.front_priority() == 0);
    CHECK(queue.entries() == 1);

    stale.insert(4);
    CHECK_FALSE(queue.front(is_live).has_value());
    CHECK(queue.entries() == 0);
}

TEST_CASE("stale ids behind the front stay counted until reached", "[job_queue]") {
    job_queue queue;
    for (std::uint64_t id = 1; id <= 4; ++id)
        queue.push_back(0, id);
    std::set<std::uint64_t> stale{2, 3};
    CHECK(drain(queue, stale) == std::vector<std::uint64_t>{1, 4});
    CHECK(queue.entries() == 0);
}

TEST_CASE("compact keeps only live ids, in order, and recounts entries", "[job_queue]") {
    job_queue queue;
    for (std::uint64_t id = 1; id <= 6; ++id)
        queue.push_back(id % 2 == 0 ? 7 : 3, id); // 7: 2 4 6; 3: 1 3 5
    queue.push_front(3, 50);
    std::set<std::uint64_t> stale{2, 3, 50};
    auto is_live = [&](std::uint64_t id) { return !stale.contains(id); };

    CHECK(queue.entries() == 7);
    queue.compact(is_live);
    CHECK(queue.entries() == 4);

    // After compacting, the remaining ids come out in the same order even if nothing is stale any
    // more.
    CHECK(drain(queue) == std::vector<std::uint64_t>{4, 6, 1, 5});
}

TEST_CASE("compact of a queue with no live ids empties it, and it still works after",
          "[job_queue]") {
    job_queue queue;
    queue.push_back(1, 1);
    queue.push_back(2, 2);
    queue.compact([](std::uint64_t) { return false; });
    CHECK(queue.entries() == 0);
    CHECK_FALSE(queue.front(all_live).has_value());

    queue.push_back(1, 3);
    queue.push_back(2, 4);
    CHECK(queue.entries() == 2);
    CHECK(drain(queue) == std::vector<std::uint64_t>{4, 3});
}
