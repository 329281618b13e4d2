// Unit tests of latency_histogram: fixed buckets, Prometheus `le` semantics, quantile estimates.

#include "deferq/histogram.hpp"

#include <catch2/catch.hpp>

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

TEST_CASE("histogram quantiles interpolate inside the bucket, like histogram_quantile",
          "[histogram]") {
    latency_histogram h;
    CHECK(h.quantile(0.5) == 0.0);
    for (int i = 0; i < 100; ++i)
        h.observe(i < 90 ? 20ms : 200ms); // 90 in (10 ms, 25 ms], 10 in (100 ms, 250 ms]
    CHECK(h.quantile(0.5) > 0.010);
    CHECK(h.quantile(0.5) <= 0.025);
    CHECK(h.quantile(0.99) > 0.100);
    CHECK(h.quantile(0.99) <= 0.250);
    CHECK(h.quantile(0.0) >= 0.0);
    latency_histogram slow;
    slow.observe(1h);
    CHECK(slow.quantile(0.5) == latency_histogram::bounds_seconds.back());
}

TEST_CASE("histogram bounds increase strictly", "[histogram]") {
    const auto& bounds = latency_histogram::bounds_seconds;
    for (std::size_t i = 1; i < bounds.size(); ++i)
        CHECK(bounds[i] > bounds[i - 1]);
}
