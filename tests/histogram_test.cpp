// Unit tests of latency_histogram: fixed buckets, Prometheus `le` semantics, quantile estimates.

#include "deferq/histogram.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

using namespace std::chrono_literals;
using deferq::latency_histogram;

TEST_CASE("a histogram puts a duration in the first bucket whose bound it does not exceed",
          "[histogram]") {
    latency_histogram h;
    h.observe(500us); // exactly on a bound: le="0.0005"
    h.observe(501us);
    h.observe(7ms);
    h.observe(10min); // past the last bound: +Inf
    h.observe(-5ms);  // clock oddities count as 0
    const auto& buckets = h.buckets();
    CHECK(buckets[0] == 1); // the negative one, ≤ 100 µs
    CHECK(buckets[2] == 1); // ≤ 500 µs
    CHECK(buckets[3] == 1); // ≤ 1 ms
    CHECK(buckets[6] == 1); // ≤ 10 ms
    CHECK(buckets.back() == 1);
    CHECK(h.count() == 5);
    CHECK(h.sum_seconds() == Approx(0.0005 + 0.000501 + 0.007 + 600.0));
}

TEST_CASE("three 1.0 s jobs give p50 and p99 of 1.0 s, not 1.8 s and 2.5 s", "[histogram]") {
    // The case: interpolating inside the Prometheus bucket (1 s, 2.5 s] said 1.8 s / 2.5 s.
    latency_histogram h;
    for (auto ms : {1000, 1003, 1001})
        h.observe(std::chrono::milliseconds{ms});
    CHECK(h.quantile(0.5) == Approx(1.0).epsilon(0.1));
    CHECK(h.quantile(0.99) == Approx(1.0).epsilon(0.1));
    CHECK(h.quantile(0.5) >= 1.0); // never outside what was seen
    CHECK(h.quantile(0.99) <= 1.003);
    latency_histogram same;
    for (int i = 0; i < 3; ++i)
        same.observe(1s);
    CHECK(same.quantile(0.5) == 1.0); // all alike: exact
}

namespace {

/// The exact nearest-rank q-quantile of `values` (seconds).
double nearest_rank(std::vector<double> values, double q) {
    std::sort(values.begin(), values.end());
    auto rank = std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(q * values.size())));
    return values[rank - 1];
}

} // namespace

TEST_CASE("quantiles of a spread of durations are within the promised error", "[histogram]") {
    // Log-uniform from 2 µs to 200 s, a uniform band inside one Prometheus bucket (1 s to 2.5 s),
    // and two clusters (90 at 20 ms, 10 at 200 ms).
    std::vector<std::vector<double>> sets(3);
    std::uint64_t state = 42;
    auto uniform = [&] { // a fixed sequence: the test is the same on every run
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        return static_cast<double>(state >> 11) / static_cast<double>(1ULL << 53);
    };
    for (int i = 0; i < 5000; ++i)
        sets[0].push_back(2e-6 * std::pow(1e8, uniform()));
    for (int i = 0; i < 1000; ++i)
        sets[1].push_back(1.0 + 1.5 * uniform());
    for (int i = 0; i < 100; ++i)
        sets[2].push_back(i < 90 ? 0.020 : 0.200);
    for (const auto& values : sets) {
        latency_histogram h;
        for (double seconds : values)
            h.observe(std::chrono::nanoseconds{static_cast<std::int64_t>(seconds * 1e9)});
        for (double q : {0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1.0}) {
            double exact = nearest_rank(values, q);
            INFO("q " << q << ": exact " << exact << " s, estimate " << h.quantile(q) << " s");
            CHECK(std::abs(h.quantile(q) - exact) <=
                  exact * latency_histogram::quantile_relative_error + 1e-9);
        }
    }
}

TEST_CASE("quantiles at the ends of the range: below 1 µs, beyond 18 min, empty", "[histogram]") {
    latency_histogram h;
    CHECK(h.quantile(0.5) == 0.0);
    h.observe(300ns);
    CHECK(h.quantile(0.5) == Approx(300e-9)); // one value: the smallest and largest seen
    h.observe(700ns);
    CHECK(std::abs(h.quantile(0.5) - 300e-9) < 1e-6);
    latency_histogram slow;
    slow.observe(1h);
    slow.observe(2h);
    CHECK(slow.quantile(0.5) == 7200.0); // beyond the fine buckets: the largest seen
    CHECK(slow.quantile(0.99) == 7200.0);
}

TEST_CASE("histogram bounds increase strictly", "[histogram]") {
    const auto& bounds = latency_histogram::bounds_seconds;
    for (std::size_t i = 1; i < bounds.size(); ++i)
        CHECK(bounds[i] > bounds[i - 1]);
}
