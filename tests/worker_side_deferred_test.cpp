// A worker program has the client's Deferred, Task, combinators and Failure (issue 16: "one
// Deferred for both sides"). This file includes only <deferq/worker.hpp> and its target links only
// deferq::worker: if either stopped providing them, it would not build.

#include <deferq/worker.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace {

deferq::Task<int> add_both(deferq::Deferred<int> a, deferq::Deferred<int> b) {
    int sum = co_await a;
    sum += co_await b;
    co_return sum;
}

} // namespace

TEST_CASE("a worker program chains Deferreds and awaits them in a Task", "[worker_side]") {
    deferq::Deferred<int> a, b;
    auto total = add_both(a, b).deferred();
    int seen = 0;
    total.add_callback([&](int value) { seen = value; });
    a.callback(40);
    CHECK(seen == 0);
    b.callback(2);
    CHECK(seen == 42);
}

TEST_CASE("a worker program gathers and races Deferreds, and recovers a Failure", "[worker_side]") {
    std::vector<deferq::Deferred<std::string>> parts(3);
    auto all = deferq::gather_results(parts);
    std::vector<std::string> joined;
    all.add_callback([&](std::vector<std::string> values) { joined = std::move(values); });
    parts[2].callback("c");
    parts[0].callback("a");
    parts[1].callback("b");
    CHECK(joined == std::vector<std::string>{"a", "b", "c"});

    std::vector<deferq::Deferred<int>> runners(2);
    auto first = deferq::race(runners);
    runners[1].callback(7);
    CHECK(first.get() == 7);

    auto failed = deferq::Deferred<int>::fail(
        deferq::Failure(deferq::error_code::remote_error, "a child failed"));
    auto recovered = failed.add_errback([](const deferq::Failure& failure) {
        return failure.check(deferq::error_code::remote_error) ? -1 : 0;
    });
    CHECK(recovered.get() == -1);
}
