#pragma once
/// The benchmark's one table: a row per workload and system, with the medians over the repeats; as
/// text (a Markdown table) or as JSON.

#include <cstdint>
#include <iosfwd>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace deferq::bench {

inline constexpr double no_figure = std::numeric_limits<double>::quiet_NaN();

/// What one run of one row measured. NaN: not measured (or not meaningful for this row).
struct figures {
    double calls_per_second = no_figure;
    double p50_us = no_figure;
    double p99_us = no_figure;
    /// deferq rows: this row against the proxy / raw / plain proxy anchor of the same repeat (p50
    /// ÷ p50 for latency rows, calls/s ÷ calls/s for throughput rows). big_args rows: MB/s ÷ the
    /// echo anchor's MB/s in ratio_proxy.
    double ratio_proxy = no_figure;
    double ratio_raw = no_figure;
    double ratio_plain = no_figure;
    double megabytes_per_second = no_figure; ///< big_args: payload bytes ÷ p50 round trip, 10⁶ B/s
    double ratio_base = no_figure;           ///< scaling: calls/s ÷ the first run of the group
    double makespan_s = no_figure;           ///< spread
    double ideal_s = no_figure;              ///< spread: jobs × duration ÷ workers
    double efficiency = no_figure;           ///< spread: ideal ÷ makespan
    double rss_growth_bytes = no_figure;     ///< memory
    double bytes_per_job = no_figure;        ///< memory: growth ÷ jobs
    double bytes_beyond_payload = no_figure; ///< memory: bytes_per_job − payload_bytes
    double payload_bytes = no_figure;        ///< memory
    double rss_left_bytes = no_figure;       ///< slow_reader: growth left after the reader went
    double client_bytes_per_call =
        no_figure; ///< memory: the calling process's growth ÷ pending calls
    /// CPU time per answered call (user + system, all threads, µs) of the calling process, of the
    /// hop (broker or proxy) and of the servers (workers, REP servers, raw server) over the run.
    double cpu_client_us = no_figure;
    double cpu_hop_us = no_figure;
    double cpu_servers_us = no_figure;
    std::uint64_t calls = 0;    ///< answered rightly (memory: queued)
    std::uint64_t failures = 0; ///< failed, wrong, unanswered
    std::string error;          ///< why the run did not complete
};

/// scaling: W5's add rows (ratio to 1 worker, 1 client); scaling_work: W5's rows of jobs that work
/// or wait (ratio to 1 worker).
/// sharing: W7's fair-share row (ratio_base: p50 ÷ the job time); slow_reader: W7's memory row.
/// big_args: W6's echo of large binary arguments (megabytes_per_second; ratio to the echo anchor).
enum class row_kind {
    latency,
    throughput,
    spread,
    memory,
    scaling,
    scaling_work,
    sharing,
    slow_reader,
    big_args
};

/// A goal from DESIGN.md: `metric` of the medians compared with `limit`.
struct goal {
    std::string text; ///< "p50 ≤ 1.25× proxy"
    double figures::*metric;
    double limit;
    bool at_most; ///< true: metric ≤ limit; false: metric ≥ limit
};

struct row {
    std::string workload; ///< "W1 latency: 1 client, 1 in flight, 2 workers"
    std::string system;   ///< "raw anchor", "proxy anchor", "deferq", …
    row_kind kind;
    bool is_anchor = false;
    std::optional<goal> target;
    std::string hop_label;     ///< what the hop is: "broker", "proxy", "" (none)
    std::string servers_label; ///< what the servers are: "workers", "REP servers", "server"
    std::vector<figures> runs; ///< one per repeat

    /// Medians over the runs of every figure; counts summed; the first error.
    figures medians() const;
    /// Empty when there is no goal or no figure; else whether the medians meet it.
    std::optional<bool> goal_met() const;
};

/// What the table's caption says about the run.
struct run_context {
    bool quick = false;
    unsigned repeats = 1;
    unsigned cpus = 0;
    std::string load_average; ///< /proc/loadavg's first three fields at the start
};

void print_table(std::ostream& out, const std::vector<row>& rows, const run_context& context);
void print_json(std::ostream& out, const std::vector<row>& rows, const run_context& context);

} // namespace deferq::bench
