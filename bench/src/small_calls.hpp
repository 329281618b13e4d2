#pragma once
/// W1 (latency) and W2 (throughput) of small add(a, b) calls: deferq against the plain-ZeroMQ
/// anchors (raw server, proxy with REP servers, plain proxy with DEALER workers), measured in the
/// same run.

#include "phase.hpp"

#include <vector>

namespace deferq::bench {

/// The W1 rows when `latency`, the W2 rows when `throughput`; `repeats` runs of each.
std::vector<row> latency_and_throughput(const bench_setup& setup, bool latency, bool throughput);

} // namespace deferq::bench
