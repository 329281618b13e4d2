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
/// bytes on `worker`, and the functions of define_call_builtins.
void define_builtins(Worker& worker, const builtin_options& options);

/// Functions whose jobs call the cluster (docs/protocol.md §3b): fib_calls(n) (a Deferred),
/// fib_task(n) (a coroutine), fan_out_sleep(count, ms), call_or(function, n, fallback).
void define_call_builtins(Worker& worker);

} // namespace deferq
