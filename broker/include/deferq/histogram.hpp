#pragma once
/// A latency histogram with fixed buckets, for the broker's per-function queue wait and service
/// time (exported as Prometheus histograms, summarised as p50/p99 in mmi.status).
///
/// observe() is a few comparisons and two additions: no allocation, no lock. A histogram belongs to
/// one thread (the broker loop); snapshots copy it by value.

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>

namespace deferq {

class latency_histogram {
public:
    /// Upper bounds of the buckets, in seconds (Prometheus `le`), 100 µs to 5 min; a last,
    /// implicit bucket (+Inf) takes the rest.
    static constexpr std::array<double, 19> bounds_seconds{
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
        0.25,   0.5,     1.0,    2.5,   5.0,    10.0,  30.0, 60.0,  300.0};
    static constexpr std::size_t bucket_count = bounds_seconds.size() + 1;

    /// Records one duration (negative durations count as 0).
    void observe(std::chrono::nanoseconds duration) noexcept {
        auto ns = std::max<std::int64_t>(0, duration.count());
        auto it = std::lower_bound(bounds_ns.begin(), bounds_ns.end(), ns);
        ++_buckets[static_cast<std::size_t>(it - bounds_ns.begin())];
        ++_count;
        _sum_ns += static_cast<std::uint64_t>(ns);
    }

    std::uint64_t count() const noexcept { return _count; }
    double sum_seconds() const noexcept { return static_cast<double>(_sum_ns) / 1e9; }
    /// Observations per bucket (not cumulative); the last is the +Inf bucket.
    const std::array<std::uint64_t, bucket_count>& buckets() const noexcept { return _buckets; }

    /// An estimate of the q-quantile (0 ≤ q ≤ 1) in seconds, interpolated linearly inside its
    /// bucket as Prometheus' histogram_quantile() does; 0 when empty. A quantile in the +Inf bucket
    /// is reported as the largest finite bound.
    double quantile(double q) const noexcept {
        if (_count == 0) return 0.0;
        double rank = std::clamp(q, 0.0, 1.0) * static_cast<double>(_count);
        std::uint64_t below = 0;
        for (std::size_t i = 0; i < bounds_seconds.size(); ++i) {
            if (_buckets[i] > 0 && static_cast<double>(below + _buckets[i]) >= rank) {
                double lower = i == 0 ? 0.0 : bounds_seconds[i - 1];
                double fraction =
                    (rank - static_cast<double>(below)) / static_cast<double>(_buckets[i]);
                return lower + (bounds_seconds[i] - lower) * std::clamp(fraction, 0.0, 1.0);
            }
            below += _buckets[i];
        }
        return bounds_seconds.back();
    }

private:
    static constexpr std::array<std::int64_t, bounds_seconds.size()> bounds_ns = [] {
        std::array<std::int64_t, bounds_seconds.size()> out{};
        for (std::size_t i = 0; i < out.size(); ++i)
            out[i] = static_cast<std::int64_t>(bounds_seconds[i] * 1e9 + 0.5);
        return out;
    }();

    std::array<std::uint64_t, bucket_count> _buckets{};
    std::uint64_t _count = 0;
    std::uint64_t _sum_ns = 0;
};

} // namespace deferq
