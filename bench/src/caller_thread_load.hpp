#pragma once
/// Loads driven the way users call (issue 18): the caller's own thread makes the calls and takes
/// the results back through a mutex + condition-variable queue that the callbacks fill. With a
/// window above 1 the caller issues calls while fewer than `window` are outstanding, otherwise
/// waits on the queue, takes every answer there at once, then issues more.

#include "load_result.hpp"

#include <zmq.hpp>

#include <cstdint>
#include <string>

namespace deferq::bench {

/// add(a, b) through deferq: client.call<double>("add", a, b) + add_callbacks pushing into the
/// queue (the callbacks run on the client's I/O thread). `clients` threads, each with its own
/// deferq::Client and its own queue, `window` calls in flight each, `calls` in all. A call's
/// latency ends when the caller's thread takes its answer from the queue.
load_result run_deferq_caller_thread(zmq::context_t& context, const std::string& endpoint,
                                     unsigned clients, unsigned window, std::uint64_t calls,
                                     clock_type::time_point until);

/// add(a, b) through the plain proxy anchor (plain_proxy.hpp), fed the way a client library with
/// one I/O thread is: the caller's thread hands each call to an I/O thread that owns the DEALER
/// (over an inproc PAIR socket), and the I/O thread puts the answers into the same kind of queue.
/// What one hand-off each way costs, without deferq's work.
load_result run_plain_proxy_io_thread(zmq::context_t& context, const std::string& endpoint,
                                      unsigned clients, unsigned window, std::uint64_t calls,
                                      clock_type::time_point until);

} // namespace deferq::bench
