#pragma once
/// The functions deferq-worker offers out of the box.

#include "deferq/protocol.hpp"
#include "deferq/worker.hpp"

#include <chrono>
#include <cstdint>

namespace deferq {

/// The largest n of bytes(n): its reply, n bytes of msgpack bin with a 5-byte header, fits one
/// message of the default --max-message-size (64 MiB).
inline constexpr std::uint64_t default_max_bytes =
    static_cast<std::uint64_t>(protocol::default_max_message_size) - 5;

struct builtin_options {
    /// How long calculate(a, b) takes (the seed's "long-running calculation").
    std::chrono::milliseconds calculate_delay{1000};
    /// The largest n bytes(n) accepts. TODO(limits): the broker's own limit, once workers learn it.
    std::uint64_t max_bytes = default_max_bytes;
};

/// Defines calculate, add, sleep_ms, time_left_ms, fib, count_primes, monte_carlo_pi, echo and
/// bytes on `worker`.
void define_builtins(Worker& worker, const builtin_options& options);

} // namespace deferq
