#pragma once
/// What one message from the broker means to a client (docs/protocol.md §2), read without sockets
/// or threads: the client's I/O loop and the client fuzz target (tests/fuzz) share this code.

#include "deferq/client.hpp"
#include "deferq/failure.hpp"
#include "deferq/protocol.hpp"

#include <zmq.hpp>

#include <cstdint>
#include <span>
#include <string_view>

namespace deferq::detail {

/// Receives the meaning of one message from the broker. For each message read_broker_message calls
/// on_heard (when the header is valid) and then exactly one other method — one per record for a
/// BATCH (docs/protocol.md §3a).
class broker_message_sink {
public:
    virtual ~broker_message_sink() = default;
    /// The message has a valid header and the client protocol id: the broker is alive.
    virtual void on_heard() = 0;
    /// REPLY: `reply.payload` views the message's frames (valid during the call only).
    virtual void on_reply(std::uint64_t correlation_id, const raw_reply& reply) = 0;
    /// ERROR, as the Failure the call ends with.
    virtual void on_error(std::uint64_t correlation_id, const Failure& failure) = 0;
    virtual void on_progress(std::uint64_t correlation_id, double fraction,
                             std::string_view note) = 0;
    virtual void on_heartbeat(const protocol::broker_heartbeat& heartbeat) = 0;
    virtual void on_disconnect() = 0;
    /// The message is malformed or not one a broker sends a client; it must be dropped.
    virtual void on_bad_message(std::string_view reason) = 0;
};

/// Validates one whole message as the client's DEALER socket received it (frame 0 is the empty
/// delimiter) and tells `sink` what it means. Never throws for bad input: untrusted bytes end in
/// on_bad_message. `batch` is the caller's reusable BATCH reader.
void read_broker_message(std::span<const zmq::message_t> frames, protocol::batch_reader& batch,
                         broker_message_sink& sink);

} // namespace deferq::detail
