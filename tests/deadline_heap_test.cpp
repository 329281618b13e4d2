// The deadline heap (shared/include/deferq/deadline_heap.hpp): earliest first, removal of any
// item, and storage that follows the armed items.

#include "deferq/deadline_heap.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <deque>
#include <random>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct item {
    explicit item(int id_ = 0) : id(id_) {}
    int id;
    deferq::deadline_hook deadline;
};

using heap = deferq::deadline_heap<item, &item::deadline>;
const auto t0 = std::chrono::steady_clock::time_point{} + 1h;

std::vector<int> pop_all(heap& deadlines, std::chrono::steady_clock::time_point now) {
    std::vector<int> order;
    while (auto* due = deadlines.pop_due(now))
        order.push_back(due->id);
    return order;
}

} // namespace

TEST_CASE("the heap gives items back earliest deadline first, only once due", "[deadline_heap]") {
    std::deque<item> items{item{1}, item{2}, item{3}, item{4}};
    heap deadlines;
    deadlines.schedule(items[0], t0 + 30ms);
    deadlines.schedule(items[1], t0 + 10ms);
    deadlines.schedule(items[2], t0 + 40ms);
    deadlines.schedule(items[3], t0 + 20ms);
    CHECK(deadlines.next() == t0 + 10ms);
    CHECK(deadlines.pop_due(t0 + 9ms) == nullptr);
    CHECK(pop_all(deadlines, t0 + 25ms) == std::vector<int>{2, 4});
    CHECK(pop_all(deadlines, t0 + 1s) == std::vector<int>{1, 3});
    CHECK(deadlines.empty());
    CHECK_FALSE(deadlines.next());
    for (auto& i : items)
        CHECK_FALSE(i.deadline.linked());
}

TEST_CASE("a cancelled item leaves the heap at once and the others keep their order",
          "[deadline_heap]") {
    std::deque<item> items;
    heap deadlines;
    for (int i = 0; i < 100; ++i) {
        items.emplace_back(i);
        deadlines.schedule(items.back(), t0 + std::chrono::milliseconds{(i * 37) % 100});
    }
    for (int i = 0; i < 100; i += 3)
        deadlines.cancel(items[i]);
    deadlines.cancel(items[0]); // twice: nothing
    CHECK(deadlines.size() == 100 - 34);
    auto order = pop_all(deadlines, t0 + 1s);
    CHECK(order.size() == 66);
    CHECK(std::none_of(order.begin(), order.end(), [](int id) { return id % 3 == 0; }));
    CHECK(std::is_sorted(order.begin(), order.end(),
                         [](int a, int b) { return (a * 37) % 100 < (b * 37) % 100; }));
}

TEST_CASE("rescheduling an armed item moves it", "[deadline_heap]") {
    std::deque<item> items{item{1}, item{2}, item{3}};
    heap deadlines;
    deadlines.schedule(items[0], t0 + 10ms);
    deadlines.schedule(items[1], t0 + 20ms);
    deadlines.schedule(items[2], t0 + 30ms);
    deadlines.schedule(items[0], t0 + 50ms); // later
    deadlines.schedule(items[2], t0 + 5ms);  // earlier
    CHECK(deadlines.size() == 3);
    CHECK(pop_all(deadlines, t0 + 1s) == std::vector<int>{3, 2, 1});
}

TEST_CASE("random schedules and cancels match a sorted model", "[deadline_heap]") {
    std::mt19937 random(7);
    std::deque<item> items;
    for (int i = 0; i < 2000; ++i)
        items.emplace_back(i);
    heap deadlines;
    std::vector<std::pair<long, int>> model; // (deadline ms, id) of the armed items
    for (int step = 0; step < 20000; ++step) {
        auto& chosen = items[random() % items.size()];
        auto ms = static_cast<long>(random() % 10000);
        std::erase_if(model, [&](auto& entry) { return entry.second == chosen.id; });
        if (random() % 3 == 0) {
            deadlines.cancel(chosen);
        } else {
            deadlines.schedule(chosen, t0 + std::chrono::milliseconds{ms});
            model.emplace_back(ms, chosen.id);
        }
        REQUIRE(deadlines.size() == model.size());
    }
    std::sort(model.begin(), model.end());
    std::vector<long> expected, got;
    for (auto& [ms, id] : model)
        expected.push_back(ms);
    while (auto* due = deadlines.pop_due(t0 + 1h))
        got.push_back(
            std::chrono::duration_cast<std::chrono::milliseconds>(due->deadline.when - t0).count());
    CHECK(got == expected);
}

TEST_CASE("the heap's storage goes back after a burst", "[deadline_heap]") {
    std::deque<item> items(100000);
    heap deadlines;
    for (auto& i : items)
        deadlines.schedule(i, t0 + 1s);
    auto full = deadlines.capacity_bytes();
    for (auto& i : items)
        deadlines.cancel(i);
    deadlines.shrink();
    CHECK(deadlines.empty());
    CHECK(deadlines.capacity_bytes() < full / 100);
}
