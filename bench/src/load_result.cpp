#include "load_result.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace deferq::bench {

double load_result::seconds() const {
    if (last_answer <= first_call) return 0;
    return std::chrono::duration<double>(last_answer - first_call).count();
}

double load_result::calls_per_second() const {
    auto elapsed = seconds();
    return elapsed > 0 ? static_cast<double>(calls) / elapsed
                       : std::numeric_limits<double>::quiet_NaN();
}

void load_result::merge(load_result&& other) {
    bool empty = first_call == clock_type::time_point{};
    first_call = empty ? other.first_call : std::min(first_call, other.first_call);
    last_answer = std::max(last_answer, other.last_answer);
    calls += other.calls;
    failures += other.failures;
    latencies_ns.insert(latencies_ns.end(), other.latencies_ns.begin(), other.latencies_ns.end());
    if (error.empty()) error = std::move(other.error);
}

latency_summary summarize(const load_result& result) {
    constexpr double none = std::numeric_limits<double>::quiet_NaN();
    if (result.latencies_ns.empty()) return {none, none};
    auto sorted = result.latencies_ns;
    std::sort(sorted.begin(), sorted.end());
    // Nearest rank: the smallest latency with at least `fraction` of the calls at or below it.
    auto rank = [&](double fraction) {
        auto index =
            static_cast<std::size_t>(std::ceil(fraction * static_cast<double>(sorted.size())));
        index = std::clamp<std::size_t>(index, 1, sorted.size()) - 1;
        return static_cast<double>(sorted[index]) / 1000.0;
    };
    return {rank(0.50), rank(0.99)};
}

double median(std::vector<double> values) {
    std::erase_if(values, [](double value) { return std::isnan(value); });
    if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
    std::sort(values.begin(), values.end());
    auto middle = values.size() / 2;
    return values.size() % 2 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

} // namespace deferq::bench
