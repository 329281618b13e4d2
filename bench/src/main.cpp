// deferq-bench: runs a deferq cluster of real processes on 127.0.0.1 (deferq-broker, deferq-worker)
// through its workloads, next to plain-ZeroMQ anchors measured in the same run, and prints one
// table. docs/performance.md explains the workloads, the anchors and what limits each figure.

#include "add_call.hpp"
#include "anchor_server.hpp"
#include "big_args.hpp"
#include "cluster.hpp"
#include "deferq_load.hpp"
#include "phase.hpp"
#include "plain_proxy.hpp"
#include "report.hpp"
#include "sharing_load.hpp"
#include "small_calls.hpp"

#include "deferq/log.hpp"

#include <CLI/CLI.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <thread>
#include <vector>

namespace {

using namespace deferq::bench;
using namespace std::chrono_literals;

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
        if (mode == "plain-proxy") return serve_plain_proxy(ready_file, lifetime);
        if (mode == "dealer-worker" || mode == "dealer-echo")
            return serve_dealer_worker(endpoint, ready_file, lifetime, mode == "dealer-echo");
        return serve_rep(endpoint, ready_file, lifetime);
    } catch (const std::exception& e) {
        std::cerr << "deferq-bench --serve " << mode << ": " << e.what() << "\n";
        return 1;
    }
}

/// The plain proxy fed through an I/O thread, as a ratio to the plain proxy in the workload of
/// `deferq_row`: the anchor with the one hand-off a deferq client makes between the caller's thread
/// and the thread that owns its socket, each way, which bounds deferq's ratio from the caller's
/// thread (docs/performance.md, "The floor").
std::string hand_off_floor(const std::vector<row>& rows, const row& deferq_row) {
    for (const auto& r : rows) {
        if (r.workload != deferq_row.workload ||
            !r.system.starts_with("plain proxy fed through an I/O thread"))
            continue;
        auto ratio = r.medians().ratio_plain;
        if (std::isnan(ratio)) break;
        char text[96];
        std::snprintf(text, sizeof text, "the plain proxy fed through an I/O thread: %.2f×", ratio);
        return text;
    }
    return "no I/O-thread anchor in this run";
}

/// Issue 18's ratios, one line each: deferq from the caller's thread against the plain proxy (W1,
/// W2) and deferq's echo against the echo anchor (W6, both result types), medians of the
/// per-repeat ratios.
void print_headline_ratios(std::ostream& out, const std::vector<row>& rows) {
    bool first = true;
    for (const auto& r : rows) {
        auto m = r.medians();
        std::string line;
        char text[224];
        if (r.system.starts_with("deferq: from the caller's thread") && !std::isnan(m.ratio_plain))
            std::snprintf(text, sizeof text, "%.2f× the plain proxy (%s); %s", m.ratio_plain,
                          r.kind == row_kind::latency ? "p50" : "calls/s",
                          hand_off_floor(rows, r).c_str());
        else if (r.kind == row_kind::big_args && !r.is_anchor && !std::isnan(m.ratio_proxy))
            std::snprintf(
                text, sizeof text, "%.2f× the echo anchor (MB/s, result as %s)", m.ratio_proxy,
                r.system.find("Bytes") != std::string::npos ? "deferq::Bytes" : "vector<char>");
        else
            continue;
        if (first) out << "\nissue 18 ratios (deferq ÷ anchor, same run):\n";
        first = false;
        out << "- " << r.workload << ": " << text << "\n";
    }
}

} // namespace

int main(int argc, char** argv) {
    bool quick = false, json = false, keep_logs = false;
    unsigned repeats = 1;
    std::vector<std::string> only;
    std::vector<std::string> big_sizes;
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
                   "Workloads to run, comma-separated: W1,W2,W3,W4,W5,W6,W7 (default: all)")
        ->delimiter(',')
        ->check(CLI::IsMember({"W1", "W2", "W3", "W4", "W5", "W6", "W7"}));
    app.add_option("--w6-sizes", big_sizes,
                   "W6's sizes and calls, comma-separated MiB:calls (default 1:20,16:10,60:5; "
                   "--quick 1:3,16:3), e.g. 1:500 to profile one size")
        ->delimiter(',')
        ->check([](const std::string& value) {
            auto colon = value.find(':');
            bool digits = colon != std::string::npos && colon > 0 && colon + 1 < value.size() &&
                          value.find_first_not_of("0123456789:") == std::string::npos &&
                          value.find(':', colon + 1) == std::string::npos;
            return digits ? std::string() : std::string("MiB:calls, such as 16:10");
        });
    app.add_option("--broker", broker,
                   "Measure W1 and W2 through this running broker (its client endpoint, e.g. "
                   "tcp://host:5555; its workers must offer add) instead of starting one; W3-W7 "
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
    app.add_option("--serve", serve_mode)
        ->group("")
        ->check(
            CLI::IsMember({"raw", "proxy", "rep", "plain-proxy", "dealer-worker", "dealer-echo"}));
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
        if (!big_sizes.empty()) {
            setup.counts.big_args.clear();
            for (const auto& size : big_sizes) {
                auto colon = size.find(':');
                setup.counts.big_args.emplace_back(std::stoul(size.substr(0, colon)),
                                                   std::stoul(size.substr(colon + 1)));
            }
        }
        auto append = [&](std::vector<row> more) {
            for (auto& r : more)
                rows.push_back(std::move(r));
        };
        if (selected("W1") || selected("W2"))
            append(latency_and_throughput(setup, selected("W1"), selected("W2")));
        if (!broker.empty()) { // W3-W7 start processes of their own
            std::vector<std::string> kept;
            for (std::string name : {"W1", "W2", "W3", "W4", "W5", "W6", "W7"})
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
        if (selected("W6")) append(big_args(setup));
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

    if (json) {
        print_json(std::cout, rows, context);
    } else {
        print_table(std::cout, rows, context);
        print_headline_ratios(std::cout, rows);
    }

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
