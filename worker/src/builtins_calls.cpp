// Built-in functions whose jobs call the cluster and wait (docs/protocol.md §3b): examples of the
// Deferred form and the coroutine form, and what the tests of families run.

#include "builtins.hpp"

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace deferq {
namespace {

/// fib(n) by calls: the largest n (about 2 × fib(n) calls).
constexpr std::int64_t max_fib_calls = 25;

void check_fib(const char* name, std::int64_t n) {
    if (n < 0 || n > max_fib_calls)
        throw bad_arguments_error(std::string(name) + "(int64 n): n must be 0 to " +
                                  std::to_string(max_fib_calls) + ", got " + std::to_string(n));
}

} // namespace

void define_call_builtins(Worker& worker) {
    // Deferred form: fib(n) = fib(n-1) + fib(n-2), each a call of its own, gathered.
    worker.define("fib_calls", [](std::int64_t n, const JobContext& context) {
        check_fib("fib_calls", n);
        if (n < 2) return Deferred<std::int64_t>::succeed(n);
        std::vector<Deferred<std::int64_t>> parts{context.call<std::int64_t>("fib_calls", n - 1),
                                                  context.call<std::int64_t>("fib_calls", n - 2)};
        return gather_results(std::move(parts)).then([](std::vector<std::int64_t> values) {
            return values[0] + values[1];
        });
    });
    // Coroutine form: the same, with co_await.
    worker.define("fib_task", [](std::int64_t n, const JobContext& context) -> Task<std::int64_t> {
        check_fib("fib_task", n);
        if (n < 2) co_return n;
        auto a = context.call<std::int64_t>("fib_task", n - 1);
        auto b = context.call<std::int64_t>("fib_task", n - 2);
        co_return co_await a + co_await b;
    });
    // count calls of sleep_ms(ms), all at once; the sum of what they return.
    worker.define("fan_out_sleep", [](std::int64_t count, std::int64_t ms,
                                      const JobContext& context) {
        if (count < 1 || count > 1000)
            throw bad_arguments_error("fan_out_sleep(int64 count, int64 ms): count must be 1 to "
                                      "1000");
        std::vector<Deferred<std::int64_t>> parts;
        for (std::int64_t i = 0; i < count; ++i)
            parts.push_back(context.call<std::int64_t>("sleep_ms", ms));
        return gather_results(std::move(parts)).then([](std::vector<std::int64_t> values) {
            std::int64_t sum = 0;
            for (auto value : values)
                sum += value;
            return sum;
        });
    });
    // function(n), or `fallback` when that call fails: a child's Failure in the parent's chain.
    worker.define("call_or", [](std::string function, std::int64_t n, std::int64_t fallback,
                                const JobContext& context) {
        return context.call<std::int64_t>(function, n).add_errback([fallback](const Failure&) {
            return fallback;
        });
    });
}

} // namespace deferq
