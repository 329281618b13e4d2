#pragma once
/// W6: big arguments (issue 18). The median round trip of echo(x) with x a msgpack `bin` of 1, 16
/// and 60 MiB, one call at a time, through deferq (`client.call<std::vector<char>>("echo", bytes)`
/// with the worker's built-in echo) and through the echo anchor: a plain zmq::proxy with 2 DEALER
/// workers that send each message back as it came, fed by a DEALER that copies the bytes in once
/// and out once. Both check every answer (its size and bytes at a few places).

#include "phase.hpp"

#include <vector>

namespace deferq::bench {

/// The W6 rows: an anchor row and a deferq row per size, `repeats` runs of each.
std::vector<row> big_args(const bench_setup& setup);

} // namespace deferq::bench
