// deferq-bench: runs a deferq cluster of real processes on 127.0.0.1 (deferq-broker, deferq-worker)
// through its workloads, next to plain-ZeroMQ anchors measured in the same run, and prints one
// table. docs/performance.md explains the workloads, the anchors and what limits each figure.

#include "add_call.hpp"
#include "anchor_load.hpp"
#include "anchor_server.hpp"
#include "cluster.hpp"
#include "deferq_load.hpp"
#include "report.hpp"
#include "sharing_load.hpp"

#include "deferq/log.hpp"

#include <CLI/CLI.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <thread>
#include <vector>

namespace {

using namespace deferq::bench;
using namespace std::chrono_literals;

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
    std::chrono::seconds run_limit{180}; ///< no single run may take longer
};

plan quick_plan() {
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

void progress(const std::string& text) {
    std::cerr << "deferq-bench: " << text << std::endl;
}

std::string grouped(std::uint64_t value) {
    auto digits = std::to_string(value);
    std::string out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

figures figures_of(const load_result& result) {
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

/// Runs a load and adds the CPU time each part used per answered call to its figures.
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
    auto out = figures_of(run());
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
void mark_failed(std::vector<row>& rows, unsigned repeats, const std::string& error) {
    for (auto& r : rows)
        while (r.runs.size() < repeats) {
            figures failed;
            failed.error = error;
            r.runs.push_back(failed);
        }
}

/// deferq ÷ anchor: p50 ÷ p50 for latency rows, calls/s ÷ calls/s for throughput rows.
void compare(figures& deferq, const figures& proxy, const figures& raw, row_kind kind) {
    if (kind == row_kind::latency) {
        deferq.ratio_proxy = deferq.p50_us / proxy.p50_us;
        deferq.ratio_raw = deferq.p50_us / raw.p50_us;
    } else {
        deferq.ratio_proxy = deferq.calls_per_second / proxy.calls_per_second;
        deferq.ratio_raw = deferq.calls_per_second / raw.calls_per_second;
    }
}

// ---- W1 and W2: deferq against the anchors ------------------------------------------------------

std::vector<row> latency_and_throughput(const bench_setup& setup, bool latency, bool throughput) {
    const auto& counts = setup.counts;
    auto w1 = "W1 latency: " + grouped(counts.latency_calls) + " sequential add calls, 1 client";
    auto w2 = "W2 throughput: " + grouped(counts.throughput_calls) +
              " add calls, 1 client × 100 in flight";
    auto w2x4 = "W2 throughput: " + grouped(counts.throughput_calls) +
                " add calls, 4 clients × 25 in flight";
    goal latency_goal{"p50 ≤ 1.25× proxy", &figures::ratio_proxy, 1.25, true};
    const std::string deferq_system =
        setup.broker.empty() ? "2 workers" : "the broker at " + setup.broker;
    goal throughput_goal{"calls/s ≥ 0.70× proxy", &figures::ratio_proxy, 0.70, false};
    // One block of rows per workload: raw anchor, proxy anchor, deferq (and, for W1, deferq driven
    // from callbacks, which shows what the caller's thread hand-off costs).
    struct block {
        std::string workload;
        row_kind kind;
        unsigned clients, window;
        std::uint64_t calls;
        bool enabled;
        std::vector<row> rows;
    };
    std::vector<block> blocks;
    blocks.push_back({w1, row_kind::latency, 1, 1, counts.latency_calls, latency, {}});
    blocks.push_back({w2, row_kind::throughput, 1, 100, counts.throughput_calls, throughput, {}});
    blocks.push_back({w2x4, row_kind::throughput, 4, 25, counts.throughput_calls, throughput, {}});
    for (auto& b : blocks) {
        b.rows.push_back({b.workload,
                          "raw anchor: DEALER ↔ ROUTER server",
                          b.kind,
                          true,
                          std::nullopt,
                          "",
                          "server",
                          {}});
        b.rows.push_back({b.workload,
                          "proxy anchor: zmq::proxy, 2 REP servers",
                          b.kind,
                          true,
                          std::nullopt,
                          "proxy",
                          "REP servers",
                          {}});
        if (b.kind == row_kind::latency) {
            b.rows.push_back({b.workload,
                              "deferq: call().get(), " + deferq_system,
                              b.kind,
                              false,
                              latency_goal,
                              "broker",
                              "workers",
                              {}});
            b.rows.push_back({b.workload,
                              "deferq: next call from the callback",
                              b.kind,
                              false,
                              std::nullopt,
                              "broker",
                              "workers",
                              {}});
        } else {
            b.rows.push_back({b.workload,
                              "deferq: " + deferq_system,
                              b.kind,
                              false,
                              throughput_goal,
                              "broker",
                              "workers",
                              {}});
        }
    }
    std::erase_if(blocks, [](const block& b) { return !b.enabled; });
    if (blocks.empty()) return {};

    try {
        // Long enough for every run of this phase; the servers also die with this program.
        auto lifetime = std::chrono::duration_cast<std::chrono::seconds>(counts.run_limit *
                                                                         (12 * setup.repeats + 4));
        anchor_cluster anchors(setup.programs, setup.log_dir, 2, lifetime);
        deferq_cluster cluster(setup.programs, setup.log_dir, "w1w2");
        if (setup.broker.empty()) {
            progress("started the anchors' servers; starting a deferq broker with 2 workers");
            cluster.start_broker();
            cluster.add_workers(setup.context, 2, {"--concurrency", "1"});
        } else {
            progress("started the anchors' servers; using the broker at " + setup.broker);
            cluster.use_broker(setup.broker);
        }
        const auto& raw_endpoint = anchors.raw_endpoint();
        const auto& proxy_endpoint = anchors.proxy_endpoint();
        const auto& deferq_endpoint = cluster.client_endpoint();
        const process_parts raw_parts{-1, {anchors.raw_pid()}};
        const process_parts proxy_parts{anchors.proxy_pid(), anchors.rep_pids()};
        const process_parts deferq_parts{cluster.broker_pid(), cluster.worker_pids()};

        progress("warming up (" + grouped(counts.warmup_calls) + " calls each)");
        auto until = [&] { return clock_type::now() + counts.run_limit; };
        run_anchor_load(setup.context, anchor_kind::raw, raw_endpoint, 1, 100, counts.warmup_calls,
                        until());
        run_anchor_load(setup.context, anchor_kind::proxy, proxy_endpoint, 1, 100,
                        counts.warmup_calls, until());
        run_deferq_window(setup.context, deferq_endpoint, 1, 100, counts.warmup_calls, until());
        std::this_thread::sleep_for(
            300ms); // the workers' adaptive prefetch settles (CREDIT every 100 ms)

        for (unsigned repeat = 1; repeat <= setup.repeats; ++repeat) {
            auto of = " (run " + std::to_string(repeat) + "/" + std::to_string(setup.repeats) + ")";
            for (auto& b : blocks) {
                auto label = b.workload.substr(0, 2) + " " + std::to_string(b.clients) + "×" +
                             std::to_string(b.window) + " ";
                auto raw = measure(label + "raw anchor" + of, [&] {
                    return with_cpu(raw_parts, [&] {
                        return run_anchor_load(setup.context, anchor_kind::raw, raw_endpoint,
                                               b.clients, b.window, b.calls, until());
                    });
                });
                auto proxy = measure(label + "proxy anchor" + of, [&] {
                    return with_cpu(proxy_parts, [&] {
                        return run_anchor_load(setup.context, anchor_kind::proxy, proxy_endpoint,
                                               b.clients, b.window, b.calls, until());
                    });
                });
                std::vector<figures> ours;
                if (b.kind == row_kind::latency) {
                    ours.push_back(measure(label + "deferq get()" + of, [&] {
                        return with_cpu(deferq_parts, [&] {
                            return run_deferq_sequential(setup.context, deferq_endpoint, b.calls,
                                                         until());
                        });
                    }));
                }
                ours.push_back(measure(label + "deferq" + of, [&] {
                    return with_cpu(deferq_parts, [&] {
                        return run_deferq_window(setup.context, deferq_endpoint, b.clients,
                                                 b.window, b.calls, until());
                    });
                }));
                b.rows[0].runs.push_back(raw);
                b.rows[1].runs.push_back(proxy);
                for (std::size_t i = 0; i < ours.size(); ++i) {
                    compare(ours[i], proxy, raw, b.kind);
                    b.rows[2 + i].runs.push_back(ours[i]);
                }
            }
        }
    } catch (const std::exception& e) {
        progress(std::string("W1/W2 stopped: ") + e.what());
        for (auto& b : blocks)
            mark_failed(b.rows, setup.repeats, e.what());
    }
    std::vector<row> out;
    for (auto& b : blocks)
        for (auto& r : b.rows)
            out.push_back(std::move(r));
    return out;
}

// ---- W3: long jobs spread over workers ----------------------------------------------------------

std::vector<row> spread(const bench_setup& setup) {
    const auto& counts = setup.counts;
    std::vector<row> rows{{"W3 spread: " + std::to_string(counts.spread_jobs) + " × sleep_ms(" +
                               std::to_string(counts.spread_job_ms) + "), " +
                               std::to_string(counts.spread_workers) + " workers × concurrency 1",
                           "deferq",
                           row_kind::spread,
                           false,
                           goal{"efficiency ≥ 0.97", &figures::efficiency, 0.97, false},
                           "",
                           "",
                           {}}};
    try {
        progress("starting a deferq broker with " + std::to_string(counts.spread_workers) +
                 " workers");
        deferq_cluster cluster(setup.programs, setup.log_dir, "w3");
        cluster.start_broker();
        cluster.add_workers(setup.context, counts.spread_workers, {"--concurrency", "1"});
        auto rounds = (counts.spread_jobs + counts.spread_workers - 1) / counts.spread_workers;
        double ideal =
            static_cast<double>(rounds) * static_cast<double>(counts.spread_job_ms) / 1000.0;
        for (unsigned repeat = 1; repeat <= setup.repeats; ++repeat) {
            auto label = "W3 deferq (run " + std::to_string(repeat) + "/" +
                         std::to_string(setup.repeats) + ")";
            rows[0].runs.push_back(measure(label, [&] {
                auto result =
                    run_deferq_spread(setup.context, cluster.client_endpoint(), counts.spread_jobs,
                                      counts.spread_job_ms, clock_type::now() + counts.run_limit);
                auto out = figures_of(result);
                if (result.error.empty() && result.failures == 0) {
                    out.makespan_s = result.seconds();
                    out.ideal_s = ideal;
                    out.efficiency = ideal / out.makespan_s;
                }
                return out;
            }));
        }
    } catch (const std::exception& e) {
        progress(std::string("W3 stopped: ") + e.what());
        mark_failed(rows, setup.repeats, e.what());
    }
    return rows;
}

// ---- W5: how throughput grows with workers and clients
// -------------------------------------------

/// How many primes are below `limit` (a sieve): what count_primes(0, limit) must answer.
std::int64_t primes_below(std::int64_t limit) {
    if (limit < 3) return 0;
    std::vector<bool> composite(static_cast<std::size_t>(limit), false);
    std::int64_t count = 0;
    for (std::int64_t n = 2; n < limit; ++n) {
        if (composite[static_cast<std::size_t>(n)]) continue;
        ++count;
        for (auto m = n * n; m < limit; m += n)
            composite[static_cast<std::size_t>(m)] = true;
    }
    return count;
}

std::vector<row> scaling(const bench_setup& setup) {
    const auto& counts = setup.counts;
    const unsigned sizes[] = {1, 2, 4};
    std::vector<row> rows;
    auto add_row = [&](std::string workload, std::string system, row_kind kind) {
        rows.push_back({std::move(workload),
                        std::move(system),
                        kind,
                        false,
                        std::nullopt,
                        "broker",
                        "workers",
                        {}});
    };
    for (auto workers : sizes)
        for (auto clients : sizes)
            add_row("W5 scaling: " + grouped(counts.throughput_calls) +
                        " add calls, 100 in flight in all",
                    "deferq: " + std::to_string(workers) + " worker(s), " +
                        std::to_string(clients) + " client(s) × " + std::to_string(100 / clients),
                    row_kind::scaling);
    // Jobs that do real work, from 1 client × 16 in flight: CPU-bound jobs (at most 2 run at once
    // on a 2-CPU machine, whatever the workers) and jobs that wait (sleep_ms: scale with workers).
    const auto cpu_first = rows.size();
    for (auto workers : sizes)
        add_row("W5 CPU-bound: " + grouped(counts.cpu_jobs) + " × count_primes(0, " +
                    grouped(static_cast<std::uint64_t>(counts.cpu_primes_below)) +
                    "), 1 client × 16 in flight",
                "deferq: " + std::to_string(workers) + " worker(s)", row_kind::scaling_work);
    const auto sleep_first = rows.size();
    for (auto workers : sizes)
        add_row("W5 waiting: " + grouped(counts.sleep_jobs) + " × sleep_ms(" +
                    std::to_string(counts.sleep_job_ms) + "), 1 client × 16 in flight",
                "deferq: " + std::to_string(workers) + " worker(s)", row_kind::scaling_work);
    const auto primes = static_cast<double>(primes_below(counts.cpu_primes_below));
    for (std::size_t w = 0; w < std::size(sizes); ++w) {
        auto workers = sizes[w];
        try {
            progress("W5: a deferq broker with " + std::to_string(workers) + " worker(s)");
            deferq_cluster cluster(setup.programs, setup.log_dir, "w5-" + std::to_string(workers));
            cluster.start_broker();
            cluster.add_workers(setup.context, workers, {"--concurrency", "1"});
            const process_parts parts{cluster.broker_pid(), cluster.worker_pids()};
            run_deferq_window(setup.context, cluster.client_endpoint(), 1, 100, counts.warmup_calls,
                              clock_type::now() + counts.run_limit);
            std::this_thread::sleep_for(300ms); // adaptive prefetch settles
            for (unsigned repeat = 1; repeat <= setup.repeats; ++repeat)
                for (std::size_t c = 0; c < std::size(sizes); ++c) {
                    auto clients = sizes[c];
                    auto& r = rows[w * std::size(sizes) + c];
                    r.runs.push_back(measure(
                        "W5 " + std::to_string(workers) + "w " + std::to_string(clients) + "c",
                        [&] {
                            return with_cpu(parts, [&] {
                                return run_deferq_window(setup.context, cluster.client_endpoint(),
                                                         clients, 100 / clients,
                                                         counts.throughput_calls,
                                                         clock_type::now() + counts.run_limit);
                            });
                        }));
                }
            for (unsigned repeat = 1; repeat <= setup.repeats; ++repeat) {
                auto suffix = " " + std::to_string(workers) + "w (run " + std::to_string(repeat) +
                              "/" + std::to_string(setup.repeats) + ")";
                // One client × 16 in flight; every call has the same arguments and answer.
                auto run_jobs = [&](std::size_t row_index, const std::string& label,
                                    std::uint64_t jobs, const std::string& function,
                                    const zmq::message_t& arguments, double expected) {
                    rows[row_index].runs.push_back(measure(label + suffix, [&] {
                        return with_cpu(parts, [&] {
                            return run_deferq_jobs(
                                setup.context, cluster.client_endpoint(), 16, jobs, function,
                                [&](std::uint64_t) {
                                    return zmq::message_t(arguments.data(), arguments.size());
                                },
                                expected, clock_type::now() + counts.run_limit);
                        });
                    }));
                };
                run_jobs(cpu_first + w, "W5 CPU-bound", counts.cpu_jobs, "count_primes",
                         deferq::codec::encode_args(std::int64_t{0}, counts.cpu_primes_below),
                         primes);
                run_jobs(sleep_first + w, "W5 waiting", counts.sleep_jobs, "sleep_ms",
                         deferq::codec::encode_args(counts.sleep_job_ms),
                         static_cast<double>(counts.sleep_job_ms));
            }
        } catch (const std::exception& e) {
            progress(std::string("W5 stopped: ") + e.what());
            for (std::size_t c = 0; c < std::size(sizes); ++c)
                for (auto* r : {&rows[w * std::size(sizes) + c], &rows[cpu_first + w],
                                &rows[sleep_first + w]})
                    while (r->runs.size() < setup.repeats) {
                        figures failed;
                        failed.error = e.what();
                        r->runs.push_back(failed);
                    }
        }
    }
    // Each run against the first row of its group (1 worker; 1 client) in the same repeat.
    for (std::size_t first : {std::size_t{0}, cpu_first, sleep_first}) {
        auto end = first == 0 ? cpu_first : first + std::size(sizes);
        for (auto r = first; r < end; ++r)
            for (std::size_t i = 0; i < rows[r].runs.size() && i < rows[first].runs.size(); ++i)
                if (rows[first].runs[i].calls_per_second > 0)
                    rows[r].runs[i].ratio_base =
                        rows[r].runs[i].calls_per_second / rows[first].runs[i].calls_per_second;
    }
    return rows;
}

// ---- W4: broker memory per queued job -----------------------------------------------------------

std::vector<row> memory(const bench_setup& setup) {
    const auto& counts = setup.counts;
    std::vector<row> rows{
        {"W4 memory: " + grouped(counts.memory_jobs) + " add calls queued, no worker",
         "deferq broker",
         row_kind::memory,
         false,
         goal{"≤ 256 B/job + payload", &figures::bytes_beyond_payload, 256, true},
         "",
         "",
         {}}};
    auto limit = std::to_string(2 * counts.memory_jobs);
    auto payload = static_cast<double>(add_arguments(0, 0).size());
    for (unsigned repeat = 1; repeat <= setup.repeats; ++repeat) {
        auto label =
            "W4 deferq (run " + std::to_string(repeat) + "/" + std::to_string(setup.repeats) + ")";
        rows[0].runs.push_back(measure(label, [&] {
            // A fresh broker each run: the baseline is a broker that never held a job.
            deferq_cluster cluster(setup.programs, setup.log_dir, "w4-" + std::to_string(repeat));
            cluster.start_broker({"--max-queue-length", limit, "--max-pending-per-client", limit});
            auto result =
                run_deferq_memory(setup.context, cluster.client_endpoint(), cluster.broker_pid(),
                                  counts.memory_jobs, clock_type::now() + counts.run_limit);
            figures out;
            out.calls = result.jobs;
            out.error = result.error;
            out.calls_per_second =
                result.seconds > 0 ? static_cast<double>(result.jobs) / result.seconds : no_figure;
            if (result.error.empty() && result.rss_after >= result.rss_before) {
                out.rss_growth_bytes = static_cast<double>(result.rss_after - result.rss_before);
                out.bytes_per_job = result.bytes_per_job();
                out.payload_bytes = payload;
                out.bytes_beyond_payload = out.bytes_per_job - payload;
            }
            if (result.jobs > 0 && result.client_rss_after >= result.client_rss_before)
                out.client_bytes_per_call =
                    static_cast<double>(result.client_rss_after - result.client_rss_before) /
                    static_cast<double>(result.jobs);
            return out;
        }));
    }
    return rows;
}

// ---- the program --------------------------------------------------------------------------------

std::string load_average() {
    std::istringstream in(read_file("/proc/loadavg"));
    std::string one, five, fifteen;
    in >> one >> five >> fifteen;
    return one + " " + five + " " + fifteen;
}

std::string make_log_dir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/deferq-bench-XXXXXX";
    if (!::mkdtemp(pattern.data()))
        throw std::runtime_error("cannot create a directory like " + pattern);
    return pattern;
}

int serve(const std::string& mode, const std::string& ready_file, const std::string& endpoint,
          std::chrono::seconds lifetime) {
    try {
        if (mode == "raw") return serve_raw(ready_file, lifetime);
        if (mode == "proxy") return serve_proxy(ready_file, lifetime);
        return serve_rep(endpoint, ready_file, lifetime);
    } catch (const std::exception& e) {
        std::cerr << "deferq-bench --serve " << mode << ": " << e.what() << "\n";
        return 1;
    }
}

} // namespace

int main(int argc, char** argv) {
    bool quick = false, json = false, keep_logs = false;
    unsigned repeats = 1;
    std::vector<std::string> only;
    std::string bin_dir, broker_bin, worker_bin, broker;
    std::string serve_mode, ready_file, endpoint;
    std::int64_t lifetime_s = 3600;

    CLI::App app{
        "deferq-bench: measures a deferq cluster (real deferq-broker and deferq-worker processes "
        "on "
        "127.0.0.1) against plain-ZeroMQ anchors and prints one table (docs/performance.md)"};
    app.add_flag("--quick", quick, "CI smoke: reduced counts (runs in well under 30 s)");
    app.add_flag("--json", json, "Print the table as JSON (with every run's figures)");
    app.add_option("--repeat", repeats, "Runs of each workload; the table shows medians")
        ->check(CLI::Range(1, 20));
    app.add_option("--only", only,
                   "Workloads to run, comma-separated: W1,W2,W3,W4,W5,W7 (default: all)")
        ->delimiter(',')
        ->check(CLI::IsMember({"W1", "W2", "W3", "W4", "W5", "W7"}));
    app.add_option("--broker", broker,
                   "Measure W1 and W2 through this running broker (its client endpoint, e.g. "
                   "tcp://host:5555; its workers must offer add) instead of starting one; W3-W5 "
                   "need processes of their own and are skipped")
        ->check([](const std::string& value) {
            return value.starts_with("tcp://") || value.starts_with("ipc://")
                       ? std::string()
                       : std::string("a ZeroMQ endpoint such as tcp://host:5555");
        });
    app.add_option("--bin-dir", bin_dir,
                   "Where deferq-broker and deferq-worker are (default: next to deferq-bench)");
    app.add_option("--broker-bin", broker_bin, "Path of deferq-broker (overrides --bin-dir)");
    app.add_option("--worker-bin", worker_bin, "Path of deferq-worker (overrides --bin-dir)");
    app.add_flag("--keep-logs", keep_logs,
                 "Keep the processes' logs (they are kept anyway when a run fails)");
    // The anchors' servers are this program too, started by it in these hidden modes.
    app.add_option("--serve", serve_mode)->group("")->check(CLI::IsMember({"raw", "proxy", "rep"}));
    app.add_option("--ready-file", ready_file)->group("");
    app.add_option("--connect", endpoint)->group("");
    app.add_option("--lifetime", lifetime_s)
        ->group("")
        ->check(CLI::Range(std::int64_t{1}, std::int64_t{86'400}));
    CLI11_PARSE(app, argc, argv);

    if (!serve_mode.empty())
        return serve(serve_mode, ready_file, endpoint, std::chrono::seconds{lifetime_s});

    auto selected = [&](const std::string& name) {
        return only.empty() || std::find(only.begin(), only.end(), name) != only.end();
    };
    std::string log_dir;
    std::vector<row> rows;
    run_context context{.quick = quick,
                        .repeats = repeats,
                        .cpus = std::thread::hardware_concurrency(),
                        .load_average = load_average()};
    try {
        deferq::setup_logging("warn");
        auto programs = find_programs(bin_dir, broker_bin, worker_bin);
        log_dir = make_log_dir();
        progress("using " + programs.broker + " and " + programs.worker + "; logs in " + log_dir);
        zmq::context_t zmq_context;
        bench_setup setup{
            quick ? quick_plan() : plan{}, programs, log_dir, zmq_context, repeats, broker};
        auto append = [&](std::vector<row> more) {
            for (auto& r : more)
                rows.push_back(std::move(r));
        };
        if (selected("W1") || selected("W2"))
            append(latency_and_throughput(setup, selected("W1"), selected("W2")));
        if (!broker.empty()) { // W3-W5 start processes of their own
            std::vector<std::string> kept;
            for (std::string name : {"W1", "W2", "W3", "W4", "W5", "W7"})
                if (selected(name) && (name == "W1" || name == "W2"))
                    kept.push_back(name);
                else if (selected(name))
                    progress(name + " skipped: it needs processes of its own (not with --broker)");
            if (kept.empty()) throw std::runtime_error("with --broker only W1 and W2 can run");
            only = kept;
        }
        if (selected("W3")) append(spread(setup));
        if (selected("W4")) append(memory(setup));
        if (selected("W5")) append(scaling(setup));
        if (selected("W7"))
            append(sharing_rows(programs, log_dir, zmq_context, repeats,
                                quick ? sharing_plan{.backlog_jobs = 60,
                                                     .job_ms = 20,
                                                     .probe_calls = 3,
                                                     .slow_calls = 5'000}
                                      : sharing_plan{}));
    } catch (const std::exception& e) {
        std::cerr << "deferq-bench: " << e.what() << "\n";
        return 2;
    }

    if (json)
        print_json(std::cout, rows, context);
    else
        print_table(std::cout, rows, context);

    bool failed = false;
    for (const auto& r : rows)
        for (const auto& run : r.runs)
            failed = failed || !run.error.empty() || run.failures > 0;
    if (failed || keep_logs) {
        std::cerr << "deferq-bench: " << (failed ? "some runs failed; " : "") << "logs in "
                  << log_dir << "\n";
    } else {
        std::error_code ignored;
        std::filesystem::remove_all(log_dir, ignored);
    }
    return failed ? 1 : 0;
}
