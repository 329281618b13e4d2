#pragma once
/// W7: a cluster shared by several callers (docs/protocol.md §4, Fair share; Replies waiting).
/// Fair share: a caller's single call while another's backlog is queued, in multiples of its job
/// time. Slow reader: the broker's resident memory while a bare socket sends calls and reads no
/// answer, and after it leaves.

#include "cluster.hpp"
#include "report.hpp"

#include <zmq.hpp>

#include <string>
#include <vector>

namespace deferq::bench {

struct sharing_plan {
    unsigned backlog_jobs = 400;       ///< caller A's sleep_ms jobs, on 2 workers of 1 slot
    std::int64_t job_ms = 50;          ///< each job's length, A's and B's
    unsigned probe_calls = 5;          ///< caller B's calls, one after another
    unsigned slow_calls = 30'000;      ///< the slow reader's echo calls
    std::size_t slow_payload = 10'240; ///< bytes of each
    std::uint64_t tenant_budget = 16u << 20;
};

/// The W7 rows: `repeats` runs of each, a fresh cluster each run.
std::vector<row> sharing_rows(const program_paths& programs, const std::string& log_dir,
                              zmq::context_t& context, unsigned repeats, const sharing_plan& plan);

} // namespace deferq::bench
