#pragma once
/// The functions deferq-worker offers out of the box.

#include "deferq/worker.hpp"

#include <chrono>
#include <cstdint>

namespace deferq {

struct builtin_options {
    /// How long calculate(a, b) takes (the seed's "long-running calculation").
    std::chrono::milliseconds calculate_delay{1000};
};

/// Defines calculate, add, sleep_ms, time_left_ms, fib, count_primes, monte_carlo_pi, echo and
/// bytes on `worker`.
void define_builtins(Worker& worker, const builtin_options& options);

} // namespace deferq
