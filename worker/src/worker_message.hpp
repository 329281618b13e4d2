#pragma once
/// What one message from the broker means to a worker (docs/protocol.md §3, §3a, §3b), read
/// without sockets or threads: the worker's I/O loop and the worker fuzz target (tests/fuzz)
/// share this code. Private to the worker.

#include "deferq/call.hpp"
#include "deferq/failure.hpp"
#include "deferq/protocol.hpp"

#include <zmq.hpp>

#include <cstdint>
#include <span>
#include <string_view>

namespace deferq::worker_detail {

/// Receives the meaning of one message from the broker. For each message read_worker_message
/// calls on_heard (when the header is valid) and then exactly one other method — one per record
/// for a BATCH.
class worker_message_sink {
public:
    virtual ~worker_message_sink() = default;
    /// The message has a valid header and the worker protocol id: the broker is alive.
    virtual void on_heard() = 0;
    /// REQUEST: a job. `payload`: its arguments (the message's own frame, taken without a copy,
    /// or a copy of a BATCH record's).
    virtual void on_job(const protocol::job_request& job, zmq::message_t payload) = 0;
    virtual void on_cancel(std::uint64_t job_id) = 0;
    /// REPLY to one of the worker's calls: `reply` views the message (valid during the call).
    virtual void on_call_reply(std::uint64_t call_id, const detail::raw_reply& reply) = 0;
    /// ERROR about one of the worker's calls, as the Failure the call ends with.
    virtual void on_call_error(std::uint64_t call_id, const Failure& failure) = 0;
    virtual void on_heartbeat(const protocol::broker_heartbeat& heartbeat) = 0;
    /// ERROR about call 0: the broker refuses this worker (docs/protocol.md §4, Wrong endpoint).
    virtual void on_refused(std::string_view why) = 0;
    virtual void on_disconnect() = 0;
    /// The message is malformed or not one a broker sends a worker; it must be dropped.
    virtual void on_bad_message(std::string_view reason) = 0;
};

/// Validates one whole message as the worker's DEALER socket received it (frame 0 is the empty
/// delimiter) and tells `sink` what it means. Never throws for bad input: untrusted bytes end in
/// on_bad_message. A REQUEST's payload frame is moved out of `frames`. `batch` is the caller's
/// reusable BATCH reader.
void read_worker_message(std::span<zmq::message_t> frames, protocol::batch_reader& batch,
                         worker_message_sink& sink);

} // namespace deferq::worker_detail
