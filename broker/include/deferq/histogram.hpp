#pragma once
/// A latency histogram for the broker's per-function queue wait and service time: exported as a
/// Prometheus histogram with fixed `le` buckets, summarised as p50/p99 in mmi.status.
///
/// Two sets of counts. The Prometheus buckets (bounds_seconds) are coarse, as dashboards expect;
/// interpolating inside them is what Prometheus' histogram_quantile() does, and it is far off for
/// the few, similar durations a cluster often has (three 1.0 s jobs came out as p50 1.8 s, p99
/// 2.5 s). quantile() reads finer, log-spaced buckets instead: 8 per power of two from 1 µs to
/// 2^40 ns (about 18 min), and answers the middle of the bucket that holds the nearest-rank
/// observation, kept within the smallest and largest duration seen. Its estimate is within 6.25 %
/// of that observation (the bucket's half-width is at most 1/16 of its lower bound); below 1 µs it
/// is off by less than 1 µs; above 18 min it is the largest duration seen.
///
/// observe() is a few comparisons and additions: no allocation, no lock. A histogram belongs to one
/// thread (the broker loop); snapshots copy it by value (about 2 KiB).

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>

namespace deferq {

class latency_histogram {
public:
    /// Upper bounds of the Prometheus buckets, in seconds (`le`), 100 µs to 5 min; a last,
    /// implicit bucket (+Inf) takes the rest.
    static constexpr std::array<double, 19> bounds_seconds{
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
        0.25,   0.5,     1.0,    2.5,   5.0,    10.0,  30.0, 60.0,  300.0};
    static constexpr std::size_t bucket_count = bounds_seconds.size() + 1;

    /// The promise of quantile(): its relative error at most, from 1 µs to 2^40 ns.
    static constexpr double quantile_relative_error = 1.0 / 16;

    /// Records one duration (negative durations count as 0).
    void observe(std::chrono::nanoseconds duration) noexcept {
        auto ns = static_cast<std::uint64_t>(std::max<std::int64_t>(0, duration.count()));
        auto it = std::lower_bound(bounds_ns.begin(), bounds_ns.end(), ns);
        ++_buckets[static_cast<std::size_t>(it - bounds_ns.begin())];
        ++_fine[fine_index(ns)];
        ++_count;
        _sum_ns += ns;
        _min_ns = std::min(_min_ns, ns);
        _max_ns = std::max(_max_ns, ns);
    }

    std::uint64_t count() const noexcept { return _count; }
    double sum_seconds() const noexcept { return static_cast<double>(_sum_ns) / 1e9; }
    /// Observations per Prometheus bucket (not cumulative); the last is the +Inf bucket.
    const std::array<std::uint64_t, bucket_count>& buckets() const noexcept { return _buckets; }

    /// An estimate of the q-quantile (0 ≤ q ≤ 1) in seconds: of the observation at rank ⌈q·n⌉
    /// (at least 1) among the n seen, within quantile_relative_error (see above); 0 when empty.
    double quantile(double q) const noexcept {
        if (_count == 0) return 0.0;
        auto rank = static_cast<std::uint64_t>(
            std::ceil(std::clamp(q, 0.0, 1.0) * static_cast<double>(_count)));
        rank = std::clamp<std::uint64_t>(rank, 1, _count);
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < fine_count; ++i) {
            seen += _fine[i];
            if (seen >= rank) {
                auto estimate = i + 1 == fine_count ? _max_ns : middle_ns(i);
                return static_cast<double>(std::clamp(estimate, _min_ns, _max_ns)) / 1e9;
            }
        }
        return static_cast<double>(_max_ns) / 1e9;
    }

private:
    static constexpr std::array<std::uint64_t, bounds_seconds.size()> bounds_ns = [] {
        std::array<std::uint64_t, bounds_seconds.size()> out{};
        for (std::size_t i = 0; i < out.size(); ++i)
            out[i] = static_cast<std::uint64_t>(bounds_seconds[i] * 1e9 + 0.5);
        return out;
    }();

    // Fine buckets: [0, 2^10 ns), then 8 per power of two up to 2^40 ns, then the rest.
    static constexpr int sub_bits = 3;
    static constexpr int first_power = 10;
    static constexpr int end_power = 40;
    static constexpr std::size_t fine_count = 2 + (end_power - first_power) * (1u << sub_bits);

    static constexpr std::size_t fine_index(std::uint64_t ns) noexcept {
        if (ns < (std::uint64_t{1} << first_power)) return 0;
        int power = std::bit_width(ns) - 1;
        if (power >= end_power) return fine_count - 1;
        auto sub = (ns >> (power - sub_bits)) & ((1u << sub_bits) - 1);
        return 1 + static_cast<std::size_t>(power - first_power) * (1u << sub_bits) + sub;
    }

    /// The middle of fine bucket `index` (not the last), in ns.
    static constexpr std::uint64_t middle_ns(std::size_t index) noexcept {
        if (index == 0) return std::uint64_t{1} << (first_power - 1);
        auto power = first_power + static_cast<int>((index - 1) >> sub_bits);
        auto sub = (index - 1) & ((1u << sub_bits) - 1);
        auto width = std::uint64_t{1} << (power - sub_bits);
        return ((1u << sub_bits) + sub) * width + width / 2;
    }

    std::array<std::uint64_t, bucket_count> _buckets{};
    std::array<std::uint64_t, fine_count> _fine{};
    std::uint64_t _count = 0;
    std::uint64_t _sum_ns = 0;
    std::uint64_t _min_ns = std::numeric_limits<std::uint64_t>::max();
    std::uint64_t _max_ns = 0;
};

} // namespace deferq
