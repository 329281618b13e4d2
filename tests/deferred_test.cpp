// Deferred chain semantics (docs/deferred.md), on Deferreds without a client: callbacks run inline.

#include "deferq/combinators.hpp"
#include "deferq/deferred.hpp"
#include "deferq/log.hpp"
#include "deferq/task.hpp"

#include <catch2/catch.hpp>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <array>
#include <sstream>
#include <thread>

using deferq::Deferred;
using deferq::error_code;
using deferq::Failure;

TEST_CASE("a callback added before the result fires once when it arrives", "[deferred]") {
    Deferred<int> d;
    int calls = 0, seen = 0;
    d.add_callback([&](int value) {
        ++calls;
        seen = value;
    });
    CHECK(calls == 0);
    d.callback(7);
    CHECK(calls == 1);
    CHECK(seen == 7);
}

TEST_CASE("a callback added after the result fires at once, exactly once", "[deferred]") {
    auto d = Deferred<int>::succeed(3);
    int calls = 0;
    d.add_callback([&](int) { ++calls; });
    CHECK(calls == 1);
    d.add_callback([&](int) { ++calls; });
    CHECK(calls == 2);
}

TEST_CASE("a callback returning T replaces the value, one returning void observes", "[deferred]") {
    Deferred<int> d;
    std::vector<int> seen;
    d.add_callback([&](int v) { seen.push_back(v); });
    d.add_callback([](int v) { return v * 10; });
    d.add_callback([&](int v) { seen.push_back(v); });
    d.callback(4);
    CHECK(seen == std::vector<int>{4, 40});
}

TEST_CASE("an exception thrown in a callback moves the chain to the errback side", "[deferred]") {
    Deferred<int> d;
    bool skipped_callback_ran = false;
    std::string message;
    error_code code{};
    d.add_callback([](int) -> int { throw std::runtime_error("boom"); });
    d.add_callback([&](int) { skipped_callback_ran = true; });
    d.add_errback([&](const Failure& f) {
        message = f.message();
        code = f.code();
    });
    d.callback(1);
    CHECK_FALSE(skipped_callback_ran);
    CHECK(message == "boom");
    CHECK(code == error_code::callback_error);
}

TEST_CASE("an errback returning a value recovers and later callbacks see it", "[deferred]") {
    auto d = Deferred<int>::fail(Failure(error_code::timeout, "late"));
    int seen = 0;
    d.add_errback([](const Failure& f) { return f.check(error_code::timeout) ? -1 : -2; });
    d.add_callback([&](int v) { seen = v; });
    CHECK(seen == -1);
}

TEST_CASE("an errback returning void observes and the failure passes on", "[deferred]") {
    auto d = Deferred<int>::fail(Failure(error_code::remote_error, "x"));
    int observed = 0, second = 0;
    d.add_errback([&](const Failure&) { ++observed; });
    d.add_errback([&](const Failure& f) {
        if (f.check(error_code::remote_error)) ++second;
    });
    CHECK(observed == 1);
    CHECK(second == 1);
}

TEST_CASE("add_callbacks runs exactly one side, add_both runs for both outcomes", "[deferred]") {
    int values = 0, failures = 0, both = 0;
    auto ok = Deferred<int>::succeed(1);
    ok.add_callbacks([&](int) { ++values; }, [&](const Failure&) { ++failures; });
    ok.add_both([&] { ++both; });
    auto bad = Deferred<int>::fail(Failure(error_code::cancelled, "c"));
    bad.add_callbacks([&](int) { ++values; }, [&](const Failure&) { ++failures; });
    bad.add_both([&] { ++both; });
    CHECK(values == 1);
    CHECK(failures == 1);
    CHECK(both == 2);
}

TEST_CASE("then changes the type and propagates failures", "[deferred]") {
    Deferred<int> d;
    auto text = d.then([](int v) { return std::to_string(v) + "!"; });
    std::string seen;
    text.add_callback([&](std::string& s) { seen = s; });
    d.callback(5);
    CHECK(seen == "5!");

    Deferred<int> failing;
    auto child = failing.then([](int v) { return v * 2.0; });
    error_code code{};
    child.add_errback([&](const Failure& f) { code = f.code(); });
    failing.errback(Failure(error_code::worker_lost, "gone"));
    CHECK(code == error_code::worker_lost);
}

TEST_CASE("a callback returning a Deferred is waited for and flattened", "[deferred]") {
    Deferred<int> outer;
    Deferred<int> inner;
    std::vector<int> seen;
    outer.add_callback([&](int) { return inner; });
    outer.add_callback([&](int v) { seen.push_back(v); });
    outer.callback(1);
    CHECK(seen.empty()); // paused until the inner one fires
    inner.callback(99);
    CHECK(seen == std::vector<int>{99});

    Deferred<int> source;
    Deferred<std::string> later;
    auto flattened = source.then([&](int) { return later; });
    std::string got;
    flattened.add_callback([&](std::string& s) { got = s; });
    source.callback(1);
    CHECK(got.empty());
    later.callback("done");
    CHECK(got == "done");
}

TEST_CASE("firing twice is refused", "[deferred]") {
    Deferred<int> d;
    d.callback(1);
    CHECK_THROWS_AS(d.callback(2), std::logic_error);
    CHECK_THROWS_AS(d.errback(Failure(error_code::timeout, "t")), std::logic_error);
}

TEST_CASE("Failure: check, trap, raise and from_exception", "[failure]") {
    Failure f(error_code::remote_error, "bad input", "ValueError", "w1", 2);
    CHECK(f.check(error_code::remote_error));
    CHECK_FALSE(f.check(error_code::timeout));
    CHECK(f.trap(error_code::timeout, error_code::remote_error) == error_code::remote_error);
    CHECK_THROWS_AS(f.trap(error_code::timeout), Failure);
    CHECK_THROWS_AS(f.raise(), Failure);
    CHECK_THAT(std::string(f.what()), Catch::Contains("ValueError") && Catch::Contains("w1") &&
                                          Catch::Contains("attempt 2"));
    auto wrapped = Failure::from_exception(std::make_exception_ptr(std::out_of_range("oops")));
    CHECK(wrapped.code() == error_code::callback_error);
    CHECK(wrapped.type() == "std::out_of_range");
    CHECK_THROWS_AS(wrapped.raise(), std::out_of_range);
}

TEST_CASE("get returns the value or throws the Failure", "[deferred]") {
    Deferred<int> d;
    std::thread firer([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds{20});
        d.callback(11);
    });
    CHECK(d.get() == 11);
    firer.join();
    auto bad = Deferred<int>::fail(Failure(error_code::overloaded, "full"));
    CHECK_THROWS_AS(bad.get(), Failure);
    Deferred<int> never;
    CHECK_THROWS_AS(never.get(std::chrono::milliseconds{20}), Failure);
}

TEST_CASE("gather_results keeps input order and fails on the first failure", "[deferred]") {
    std::vector<Deferred<int>> inputs(3);
    auto all = deferq::gather_results(inputs);
    std::vector<int> values;
    all.add_callback([&](std::vector<int>& v) { values = v; });
    inputs[2].callback(3);
    inputs[0].callback(1);
    CHECK(values.empty());
    inputs[1].callback(2);
    CHECK(values == std::vector<int>{1, 2, 3});

    std::vector<Deferred<int>> more(2);
    auto failing = deferq::gather_results(more);
    error_code code{};
    failing.add_errback([&](const Failure& f) { code = f.code(); });
    more[1].errback(Failure(error_code::timeout, "t"));
    CHECK(code == error_code::timeout);
    CHECK(more[0].called()); // cancelled by the first failure
}

TEST_CASE("cancel fails an unfired Deferred with cancelled and runs its canceller", "[deferred]") {
    auto shared = std::make_shared<deferq::detail::state<int>>();
    int cancelled_calls = 0;
    shared->set_canceller([&] { ++cancelled_calls; });
    Deferred<int> d(shared);
    error_code code{};
    d.add_errback([&](const Failure& f) { code = f.code(); });
    d.cancel();
    d.cancel();
    CHECK(cancelled_calls == 1);
    CHECK(code == error_code::cancelled);
}

TEST_CASE("an unhandled failure is logged once when the last handle goes away", "[deferred]") {
    std::ostringstream captured;
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
    deferq::log().sinks().push_back(sink);
    {
        auto d = Deferred<int>::fail(Failure(error_code::remote_error, "nobody looked"));
        auto copy = d;
    }
    {
        auto handled = Deferred<int>::fail(Failure(error_code::remote_error, "somebody looked"));
        handled.add_errback([](const Failure&) {});
    }
    deferq::log().sinks().pop_back();
    auto text = captured.str();
    CHECK_THAT(text,
               Catch::Contains("Unhandled error in Deferred") && Catch::Contains("nobody looked"));
    CHECK(text.find("Unhandled error in Deferred") == text.rfind("Unhandled error in Deferred"));
    CHECK(text.find("somebody looked") == std::string::npos);
}

TEST_CASE("deferred_list reports every outcome in input order", "[deferred][combinators]") {
    std::vector<Deferred<int>> inputs(3);
    auto list = deferq::deferred_list(inputs, {.consume_errors = true});
    std::vector<deferq::Outcome<int>> outcomes;
    list.add_callback([&](std::vector<deferq::Outcome<int>>& all) { outcomes = all; });
    inputs[1].errback(Failure(error_code::remote_error, "bad"));
    inputs[0].callback(10);
    CHECK(outcomes.empty());
    inputs[2].callback(30);
    REQUIRE(outcomes.size() == 3);
    CHECK(outcomes[0].ok());
    CHECK(outcomes[0].value() == 10);
    CHECK_FALSE(outcomes[1].ok());
    CHECK(outcomes[1].failure().check(error_code::remote_error));
    CHECK(outcomes[2].value() == 30);
    CHECK(outcomes[2].index == 2);
}

TEST_CASE("deferred_list fire_on_one_callback fires with the first success",
          "[deferred][combinators]") {
    std::vector<Deferred<int>> inputs(3);
    auto list =
        deferq::deferred_list(inputs, {.fire_on_one_callback = true, .consume_errors = true});
    std::vector<deferq::Outcome<int>> outcomes;
    list.add_callback([&](std::vector<deferq::Outcome<int>>& got) { outcomes = got; });
    inputs[0].errback(Failure(error_code::timeout, "t"));
    CHECK(outcomes.empty());
    inputs[2].callback(7);
    REQUIRE(outcomes.size() == 1);
    CHECK(outcomes[0].index == 2);
    CHECK(outcomes[0].value() == 7);
    inputs[1].callback(8); // too late: the list fired already, nothing breaks
}

TEST_CASE("deferred_list fire_on_one_errback fails with the first failure",
          "[deferred][combinators]") {
    std::vector<Deferred<int>> inputs(2);
    auto list = deferq::deferred_list(inputs, {.fire_on_one_errback = true});
    error_code code{};
    list.add_errback([&](const Failure& f) { code = f.code(); });
    inputs[0].callback(1);
    inputs[1].errback(Failure(error_code::worker_lost, "gone"));
    CHECK(code == error_code::worker_lost);
}

TEST_CASE("race takes the first success and cancels the others", "[deferred][combinators]") {
    std::vector<Deferred<int>> inputs(3);
    auto winner = deferq::race(inputs);
    int value = 0;
    winner.add_callback([&](int v) { value = v; });
    inputs[1].errback(Failure(error_code::remote_error, "lost the race early"));
    CHECK(value == 0);
    inputs[2].callback(42);
    CHECK(value == 42);
    REQUIRE(inputs[0].called());
    error_code loser{};
    inputs[0].add_errback([&](const Failure& f) { loser = f.code(); });
    CHECK(loser == error_code::cancelled);
}

TEST_CASE("race fails only when every input failed, with the last failure",
          "[deferred][combinators]") {
    std::vector<Deferred<int>> inputs(2);
    auto winner = deferq::race(inputs);
    std::string message;
    winner.add_errback([&](const Failure& f) { message = f.message(); });
    inputs[0].errback(Failure(error_code::timeout, "first"));
    CHECK(message.empty());
    inputs[1].errback(Failure(error_code::timeout, "second"));
    CHECK(message == "second");
}

namespace {

deferq::Task<int> add_awaited(Deferred<int> a, Deferred<int> b) {
    int x = co_await a;
    int y = co_await b;
    co_return x + y;
}

deferq::Task<int> recover_awaited(Deferred<int> failing) {
    try {
        co_await failing;
    } catch (const Failure& f) {
        co_return f.check(error_code::timeout) ? -1 : -2;
    }
    co_return 0;
}

deferq::Task<> escapes(Deferred<int> failing) {
    co_await failing;
}

} // namespace

TEST_CASE("co_await on a Deferred inside a Task gives values and throws failures",
          "[deferred][task]") {
    Deferred<int> a, b;
    auto sum = add_awaited(a, b);
    CHECK_FALSE(sum.deferred().called());
    b.callback(2); // order of firing does not matter
    a.callback(40);
    CHECK(sum.deferred().get() == 42);

    Deferred<int> failing;
    auto recovered = recover_awaited(failing);
    failing.errback(Failure(error_code::timeout, "late"));
    CHECK(recovered.deferred().get() == -1);

    Deferred<int> again;
    auto escaped = escapes(again);
    again.errback(Failure(error_code::remote_error, "boom"));
    error_code code{};
    escaped.deferred().add_errback([&](const Failure& f) { code = f.code(); });
    CHECK(code == error_code::remote_error);
}

TEST_CASE("add_both with a generic callable sees both outcomes", "[deferred]") {
    std::vector<std::string> seen;
    auto record = [&](const auto& outcome) {
        if constexpr (std::is_same_v<std::decay_t<decltype(outcome)>, Failure>)
            seen.push_back("failure");
        else
            seen.push_back("value " + std::to_string(outcome));
    };
    Deferred<int>::succeed(5).add_both(record);
    Deferred<int>::fail(Failure(error_code::cancelled, "c")).add_both(record);
    CHECK(seen == std::vector<std::string>{"value 5", "failure"});
}

TEST_CASE("a Deferred whose last handle goes away in its own callback outlives its running chain",
          "[deferred]") {
    // The chain keeps its state alive, and releases it only after its mutex: ASan and TSan catch
    // a use after free here (found by TSan with a coroutine resumed from a callback).
    auto holder = std::make_unique<Deferred<int>>(Deferred<int>::succeed(5));
    int seen = 0;
    holder->add_callback([&](int value) {
        seen = value;
        holder.reset(); // the last outside handle
    });
    CHECK(seen == 5);
    CHECK(holder == nullptr);
}

// get() on a handle given up moves the value out (issue 18: a 16 MiB result was copied once more
// by get()); on a handle kept, or when a callback may still come, it copies.

namespace {

/// A value that counts its copies.
struct counted {
    static inline int copies = 0;
    int value = 0;
    counted() = default;
    explicit counted(int v) : value(v) {}
    counted(const counted& other) : value(other.value) { ++copies; }
    counted(counted&&) noexcept = default;
    counted& operator=(const counted& other) {
        value = other.value;
        ++copies;
        return *this;
    }
    counted& operator=(counted&&) noexcept = default;
};

} // namespace

TEST_CASE("get() on a temporary Deferred moves the value out, without a copy", "[deferred]") {
    counted::copies = 0;
    auto value = Deferred<counted>::succeed(counted(5)).get();
    CHECK(value.value == 5);
    CHECK(counted::copies == 0);
}

TEST_CASE("get() on a temporary moves a value that arrives later from another thread",
          "[deferred]") {
    counted::copies = 0;
    // As a Client does: the resolver holds the state, the caller the only handle.
    auto shared = std::make_shared<deferq::detail::state<counted>>();
    std::thread fire([shared] {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        shared->resolve(
            deferq::detail::state<counted>::result_type(std::in_place_index<0>, counted(9)));
    });
    auto value = Deferred<counted>(shared).get(std::chrono::seconds(10));
    fire.join();
    CHECK(value.value == 9);
    CHECK(counted::copies == 0);
}

TEST_CASE("get() on a kept handle copies, and the Deferred can be read again", "[deferred]") {
    counted::copies = 0;
    auto d = Deferred<counted>::succeed(counted(3));
    CHECK(d.get().value == 3);
    CHECK(counted::copies == 1);
    CHECK(d.get().value == 3);
    int seen = 0;
    d.add_callback([&](counted& c) { seen = c.value; });
    CHECK(seen == 3);
}

TEST_CASE("get() on a temporary copies while another handle may still add callbacks",
          "[deferred]") {
    counted::copies = 0;
    auto d = Deferred<counted>::succeed(counted(4));
    auto other = d;
    CHECK(std::move(d).get().value == 4);
    CHECK(counted::copies == 1);
    int seen = 0;
    other.add_callback([&](counted& c) { seen = c.value; });
    CHECK(seen == 4);
}

TEST_CASE("get() on a temporary copies when its state was handed to a combinator", "[deferred]") {
    counted::copies = 0;
    Deferred<counted> d;
    auto all = deferq::gather_results(std::vector<Deferred<counted>>{d});
    d.callback(counted(6));
    counted::copies = 0;
    CHECK(std::move(d).get().value == 6);
    CHECK(counted::copies == 1); // the combinator's step could come later: not taken
    CHECK(std::move(all).get().at(0).value == 6);
}

TEST_CASE("handles count copies and assignments, not moves", "[deferred]") {
    counted::copies = 0;
    Deferred<counted> d;
    {
        Deferred<counted> a = d;
        Deferred<counted> b;
        b = a;                              // copy-assigned: three handles
        Deferred<counted> c = std::move(b); // moved: still three
        c = std::move(a);                   // the old state of c... is d's: two handles now
    }
    d.callback(counted(8));
    CHECK(std::move(d).get().value == 8);
    CHECK(counted::copies == 0);
}

TEST_CASE("a Deferred's queue of links keeps their order across its inline slot and its vector",
          "[deferred]") {
    deferq::detail::fifo<int> queue;
    std::vector<int> out;
    auto pop = [&] {
        out.push_back(queue.front());
        queue.pop_front();
    };
    CHECK(queue.empty());
    queue.push_back(1); // inline
    queue.push_back(2); // behind it
    queue.push_back(3);
    pop();
    queue.push_back(4); // not empty: behind 2 and 3
    pop();
    pop();
    queue.push_back(5);
    pop();
    pop();
    CHECK(queue.empty());
    queue.push_back(6); // empty again: inline
    pop();
    CHECK(queue.empty());
    CHECK(out == std::vector<int>{1, 2, 3, 4, 5, 6});
}

TEST_CASE("a link's callable lives inline when small, on the heap when not, and ends once",
          "[deferred]") {
    using link = deferq::detail::inline_function<int(int), 48>;
    static int alive = 0;
    struct counted {
        counted() { ++alive; }
        counted(const counted&) { ++alive; }
        counted(counted&&) noexcept { ++alive; }
        ~counted() { --alive; }
    };
    std::array<char, 40> small_bytes{};
    std::array<char, 200> big_bytes{};
    small_bytes[0] = 1;
    big_bytes[199] = 2;
    {
        link empty;
        CHECK_FALSE(empty);
        link small = [small_bytes, c = counted()](int x) { return x + small_bytes[0]; };
        link big = [big_bytes, c = counted()](int x) { return x + big_bytes[199]; };
        CHECK(alive == 2);
        CHECK(small(1) == 2);
        CHECK(big(1) == 3);
        link moved = std::move(small); // the inline one moves; the heap one keeps its pointer
        link moved_big = std::move(big);
        CHECK_FALSE(small);
        CHECK_FALSE(big);
        CHECK(alive == 2);
        CHECK(moved(10) == 11);
        CHECK(moved_big(10) == 12);
        moved = std::move(moved_big); // replaces: the small one ends
        CHECK(alive == 1);
        CHECK(moved(0) == 2);
        moved = nullptr;
        CHECK(alive == 0);
        CHECK_FALSE(moved);
        link kept = [c = counted()](int x) { return x; };
        CHECK(alive == 1);
    }
    CHECK(alive == 0);
}
