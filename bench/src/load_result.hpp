#pragma once
/// What one run of a load measured: answered calls, failures, the wall time from the first call to
/// the last answer, and one latency per answered call.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace deferq::bench {

using clock_type = std::chrono::steady_clock;

/// The outcome of one run. Plain value; several clients' results merge into one.
struct load_result {
    std::uint64_t calls = 0;    ///< answered with the right result
    std::uint64_t failures = 0; ///< failed, answered wrongly, or never answered
    clock_type::time_point first_call{};
    clock_type::time_point last_answer{};
    std::vector<std::int64_t> latencies_ns; ///< one per answered call, issue to answer
    std::string error; ///< why the run stopped early; empty when it ran to the end

    double seconds() const;
    double calls_per_second() const;
    /// Adds another client's calls; the wall time spans both.
    void merge(load_result&& other);
};

/// Percentiles of a result's latencies, microseconds (NaN when there are none).
struct latency_summary {
    double p50_us;
    double p99_us;
};
latency_summary summarize(const load_result& result);

/// The median of `values`, ignoring NaNs (NaN when none is left).
double median(std::vector<double> values);

} // namespace deferq::bench
