#pragma once
/// A peer's connection to the broker, the same for a client and a worker: a DEALER socket with no
/// send or receive limit (what flows is bounded by calls, credits and budgets), the messages of
/// one loop turn collected into one BATCH (docs/protocol.md §3a), and the broker's liveness:
/// heartbeats both ways and the silence after which the peer reconnects (§4). Owned by the peer's
/// I/O thread, which lends it while it waits (wait()): another thread holding the peer's lock may
/// then send on it.

#include "deferq/curve.hpp"
#include "deferq/heartbeat.hpp"
#include "deferq/protocol.hpp"

#include <zmq.hpp>

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace deferq {

class broker_link {
public:
    using clock_type = std::chrono::steady_clock;

    /// `endpoints`: the broker's endpoint, or a comma-separated list of them (the brokers of a
    /// standby pair, `tcp://a:5555,tcp://b:5555`; checked by check_endpoint() beforehand: throws
    /// config_error for a bad one). `protocol`: the peer's protocol id (DFQC01 or DFQW01).
    broker_link(zmq::context_t& context, std::string endpoints, std::string_view protocol,
                std::optional<curve::key_pair> curve_keys, std::string curve_server_key);

    /// A new socket to the current broker endpoint (endpoint()) with `routing_id`. The old one is
    /// kept until the new one is connected, so that a failure (zmq::error_t: out of file
    /// descriptors) leaves the link as it was. What was batched for the old socket is dropped.
    /// A reconnect the broker asked for (DISCONNECT) calls it again: same endpoint.
    void connect(const std::string& routing_id);
    /// The endpoint connect() connects to: the first of the list, until keep_alive() moves on.
    const std::string& endpoint() const { return _endpoints[_current]; }
    /// How many endpoints the list has (1: a single broker).
    std::size_t endpoint_count() const { return _endpoints.size(); }
    zmq::socket_t& socket() { return *_socket; }
    /// A socket was made (connect() succeeded once) and close() did not end it.
    bool has_socket() const { return _socket != nullptr; }

    /// Starts the message send() sends: [empty] [protocol] [cmd]; the caller appends the body.
    std::vector<zmq::message_t>& begin(protocol::command cmd);
    /// The message being built (for encoders that start it themselves).
    std::vector<zmq::message_t>& message() { return _out; }
    /// Sends the message being built, after what is batched: messages keep their order. Never
    /// fails: the DEALER queues until connected.
    void send();
    void send_command(protocol::command cmd);
    /// The BATCH of this turn, with room for one more record (a full one is sent first).
    protocol::batch_writer& record();
    /// Sends what is batched, as one BATCH.
    void flush();

    /// A message waits on the socket (its ZMQ_EVENTS).
    bool readable();
    /// Waits up to `timeout` for a message on the socket or for one of `fds` to be readable, with
    /// `lock` (the peer's lock, held) let go meanwhile, so that another thread may use the socket
    /// then. The socket is waited on through its ZMQ_FD, a plain descriptor that only signals a
    /// change: a message already there ends the wait at once, and whoever else uses the socket must
    /// look at readable() afterwards and wake the I/O thread when it is true. Returns which of
    /// `fds` (at most 4; a negative one is skipped) are readable, bit i for fds[i]. With
    /// `socket` false the socket is not waited on (another thread watches it; a message already
    /// there still ends the wait at once).
    unsigned wait(std::unique_lock<std::mutex>& lock, std::span<const int> fds,
                  std::chrono::milliseconds timeout, bool socket = true);

    broker_monitor& monitor() { return _monitor; }
    const broker_monitor& monitor() const { return _monitor; }
    /// A HEARTBEAT when one is due. True when the broker has been silent past its expiry: the
    /// peer reconnects (each its own way, calling connect()). With a list of endpoints the link
    /// has then moved on to the next one (round robin, logged), so that the reconnect goes to the
    /// other broker of the pair. The silent broker's instance id is kept: the next broker's first
    /// HEARTBEAT looks like a restart (broker_monitor::announced() is true).
    [[nodiscard]] bool keep_alive(clock_type::time_point now);
    /// Closes the socket, waiting up to `linger` for what it still has to send.
    void close(std::chrono::milliseconds linger);

private:
    zmq::context_t& _context;
    std::vector<std::string> _endpoints; ///< never empty
    std::size_t _current = 0;            ///< the one connect() uses
    std::string_view _protocol;
    std::optional<curve::key_pair> _curve_keys;
    std::string _curve_server_key;
    std::unique_ptr<zmq::socket_t> _socket;
    std::vector<zmq::message_t> _out;
    std::vector<zmq::message_t> _batch_out; ///< the BATCH being sent
    protocol::batch_writer _batch;          ///< this turn's records
    broker_monitor _monitor;
};

} // namespace deferq
