#pragma once
/// What every workload phase of deferq-bench needs: how much to do (the plan), where the programs
/// and logs are, and the helpers that run one measurement, time it and charge each process its CPU.

#include "child_process.hpp"
#include "cluster.hpp"
#include "load_result.hpp"
#include "report.hpp"

#include <sys/types.h>
#include <unistd.h>

#include <zmq.hpp>

#include <chrono>
#include <cstdint>
#include <iostream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace deferq::bench {

/// How much each workload does (DESIGN.md "Performance"; --quick shrinks it for CI).
struct plan {
    std::uint64_t latency_calls = 5'000;
    std::uint64_t throughput_calls = 200'000;
    unsigned spread_jobs = 40;
    unsigned spread_workers = 4;
    std::int64_t spread_job_ms = 100;
    std::uint64_t memory_jobs = 1'000'000;
    std::uint64_t warmup_calls = 2'000;
    std::uint64_t cpu_jobs = 1'000;         ///< W5: count_primes(0, cpu_primes_below) jobs
    std::int64_t cpu_primes_below = 40'000; ///< about 2 ms of one CPU per job
    std::uint64_t sleep_jobs = 400;         ///< W5: sleep_ms(sleep_job_ms) jobs
    std::int64_t sleep_job_ms = 5;
    /// W6: echo of this many MiB, that many calls each (one at a time).
    std::vector<std::pair<std::size_t, unsigned>> big_args{{1, 20}, {16, 10}, {60, 5}};
    std::chrono::seconds run_limit{180}; ///< no single run may take longer
};

inline plan quick_plan() {
    using namespace std::chrono_literals;
    return {.latency_calls = 300,
            .throughput_calls = 5'000,
            .spread_jobs = 8,
            .spread_workers = 4,
            .spread_job_ms = 100,
            .memory_jobs = 50'000,
            .warmup_calls = 300,
            .cpu_jobs = 100,
            .cpu_primes_below = 40'000,
            .sleep_jobs = 40,
            .sleep_job_ms = 5,
            .big_args = {{1, 3}, {16, 3}},
            .run_limit = 20s};
}

/// What every phase needs.
struct bench_setup {
    plan counts;
    program_paths programs;
    std::string log_dir;
    zmq::context_t& context;
    unsigned repeats;
    std::string broker; ///< a running broker's client endpoint (--broker), or empty: start one
};

inline void progress(const std::string& text) {
    std::cerr << "deferq-bench: " << text << std::endl;
}

/// 1234567 → "1,234,567".
inline std::string grouped(std::uint64_t value) {
    auto digits = std::to_string(value);
    std::string out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

inline figures figures_of(const load_result& result) {
    figures out;
    auto latencies = summarize(result);
    out.calls_per_second = result.calls_per_second();
    out.p50_us = latencies.p50_us;
    out.p99_us = latencies.p99_us;
    out.calls = result.calls;
    out.failures = result.failures;
    out.error = result.error;
    return out;
}

/// The processes of a system under test besides this one (the caller): the hop between caller and
/// servers (the broker or the proxy; -1 for none) and the servers.
struct process_parts {
    pid_t hop;
    std::vector<pid_t> servers;
};

/// Runs a load (returning a load_result, or figures already) and adds the CPU time each part used
/// per answered call to its figures.
template <typename Run> figures with_cpu(const process_parts& parts, Run&& run) {
    auto servers_cpu = [&] {
        std::chrono::microseconds total{0};
        for (auto pid : parts.servers)
            total += cpu_time(pid);
        return total;
    };
    auto self = ::getpid();
    auto client_before = cpu_time(self), servers_before = servers_cpu();
    auto hop_before = parts.hop > 0 ? cpu_time(parts.hop) : std::chrono::microseconds{0};
    figures out;
    if constexpr (std::is_same_v<decltype(run()), figures>)
        out = run();
    else
        out = figures_of(run());
    if (out.calls == 0) return out;
    auto per_call = [&](std::chrono::microseconds used) {
        return static_cast<double>(used.count()) / static_cast<double>(out.calls);
    };
    out.cpu_client_us = per_call(cpu_time(self) - client_before);
    if (!parts.servers.empty()) out.cpu_servers_us = per_call(servers_cpu() - servers_before);
    if (parts.hop > 0) out.cpu_hop_us = per_call(cpu_time(parts.hop) - hop_before);
    return out;
}

/// Runs one measurement; an exception becomes the run's error (the table still prints).
template <typename Run> figures measure(const std::string& label, Run&& run) {
    progress(label);
    try {
        return run();
    } catch (const std::exception& e) {
        figures failed;
        failed.error = e.what();
        return failed;
    }
}

/// Gives every row that has fewer than `repeats` runs an errored run, so that a failed phase shows.
inline void mark_failed(std::vector<row>& rows, unsigned repeats, const std::string& error) {
    for (auto& r : rows)
        while (r.runs.size() < repeats) {
            figures failed;
            failed.error = error;
            r.runs.push_back(failed);
        }
}

} // namespace deferq::bench
