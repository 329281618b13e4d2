#pragma once
/// The client side of the anchors (anchor_server.hpp): add(a, b) calls over a plain DEALER socket,
/// with the same arguments, msgpack encoding and result check as the deferq loads
/// (deferq_load.hpp).

#include "load_result.hpp"

#include <zmq.hpp>

#include <cstdint>
#include <string>

namespace deferq::bench {

enum class anchor_kind {
    raw,   ///< DEALER ↔ ROUTER server: frames [id][args]
    proxy, ///< DEALER → zmq::proxy → REP servers: frames [empty][id][args] (REP's envelope)
    plain_proxy, ///< DEALER → zmq::proxy → DEALER workers (plain_proxy.hpp): frames [id][args]
};

/// `clients` threads, each with its own DEALER on `context` and at most `window` calls in flight,
/// make `calls` calls in all; the next call goes out as soon as an answer frees a place in the
/// window. Stops at `until` (then the unanswered calls count as failures and `error` says so).
load_result run_anchor_load(zmq::context_t& context, anchor_kind kind, const std::string& endpoint,
                            unsigned clients, unsigned window, std::uint64_t calls,
                            clock_type::time_point until);

} // namespace deferq::bench
