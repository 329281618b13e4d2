#pragma once
/// The loads through deferq itself: a deferq::Client calling the worker's built-in functions
/// through a broker, with the same arguments and msgpack encoding as the anchors (anchor_load.hpp).

#include "load_result.hpp"

#include "deferq/client.hpp"

#include <sys/types.h>

#include <zmq.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace deferq::bench {

/// add(a, b) from `clients` Clients (sharing `context`), each keeping `window` calls in flight: the
/// next call is made in the previous call's callback, on the client's I/O thread, as an
/// asynchronous caller keeps its window full. `calls` in all; stops at `until`.
load_result run_deferq_window(zmq::context_t& context, const std::string& endpoint,
                              unsigned clients, unsigned window, std::uint64_t calls,
                              clock_type::time_point until);

/// add(a, b) one call at a time from the calling thread: client.call<double>(…).get().
load_result run_deferq_sequential(zmq::context_t& context, const std::string& endpoint,
                                  std::uint64_t calls, clock_type::time_point until);

/// `jobs` calls of sleep_ms(job_ms) made at once from one client; seconds() is the makespan.
load_result run_deferq_spread(zmq::context_t& context, const std::string& endpoint, unsigned jobs,
                              std::int64_t job_ms, clock_type::time_point until);

/// `calls` calls of `function` from one client keeping `window` in flight; call n's arguments are
/// `arguments(n)` and every answer must equal `expected`. Jobs that do real work (W5's CPU-bound
/// and waiting jobs).
load_result run_deferq_jobs(zmq::context_t& context, const std::string& endpoint, unsigned window,
                            std::uint64_t calls, const std::string& function,
                            std::function<zmq::message_t(std::uint64_t)> arguments, double expected,
                            clock_type::time_point until);

/// What queueing jobs at a broker with no worker cost it.
struct memory_result {
    std::uint64_t jobs = 0; ///< jobs the broker counted queued at the end
    std::size_t rss_before =
        0;                     ///< broker VmRSS with the client connected and nothing queued, bytes
    std::size_t rss_after = 0; ///< broker VmRSS with every job queued, bytes
    std::size_t client_rss_before = 0; ///< this process's VmRSS before the calls, bytes
    std::size_t client_rss_after = 0;  ///< this process's VmRSS with every call pending, bytes
    double seconds = 0; ///< from the first call until the broker counted them all queued
    std::string error;
    double bytes_per_job() const; ///< (after - before) / jobs
};

/// Queues `jobs` add(a, b) calls (per-call timeout 0) at a broker that has no worker, then reads
/// the broker's resident memory (process `broker`), and this process's, which holds the pending
/// calls. The broker's queue and per-client limits must be above `jobs`.
memory_result run_deferq_memory(zmq::context_t& context, const std::string& endpoint, pid_t broker,
                                std::uint64_t jobs, clock_type::time_point until);

/// One counter of the broker's mmi.status (throws deferq::Failure when no answer within `timeout`,
/// std::runtime_error when the counter is missing).
std::uint64_t broker_counter(Client& client, std::string_view name,
                             std::chrono::milliseconds timeout);

} // namespace deferq::bench
