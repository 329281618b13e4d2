#pragma once
/// The broker's shell: the sockets, the loop, and the decoding of every message into a call of the
/// core. It owns what touches the network and the clock; the decisions are broker_core's. Its
/// methods live in three files: broker.cpp (sockets, the loop, sending), client_endpoint.cpp and
/// worker_endpoint.cpp (what each endpoint accepts, in both dialects). Private to the broker.

#include "bad_peers.hpp"
#include "binary_star.hpp"
#include "connection_monitor.hpp"
#include "core/broker_core.hpp"
#include "memory_return.hpp"
#include "mmi_service.hpp"
#include "peer_link.hpp"
#include "socket_outbox.hpp"
#include "status_builder.hpp"
#include "zap_handler.hpp"

#include "deferq/broker.hpp"
#include "deferq/broker_counters.hpp"
#include "deferq/protocol.hpp"

#include <zmq.hpp>

#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <vector>

namespace deferq::broker_detail {

class broker_shell {
public:
    broker_shell(zmq::context_t& context, broker_options options);

    void bind();
    void run(std::stop_token stop);
    void run_once(std::chrono::milliseconds max_wait);

    broker_counters counters;
    std::string client_endpoint, worker_endpoint, in_process_client_endpoint;
    std::uint64_t instance() const { return _instance; }
    status_builder& status() { return _status; }

private:
    // ---- the loop (broker.cpp)
    /// The loop's one catch: a handler that throws is logged and the loop carries on.
    void guarded(void (broker_shell::*handler)(time_point), time_point now);
    /// The end of a turn: every batch goes out; jobs that could not be delivered go back to the
    /// core, which may give them to other workers (and fill other batches).
    void flush_all(time_point now);
    /// Tells every client and worker DISCONNECT.
    void shut_down();

    // ---- the standby pair (broker.cpp; docs/protocol.md §8)
    /// True while this broker serves: always, unless it is one of a pair and not active.
    bool serving() const { return !_standby || _standby->serving(); }
    /// What the partner said, the time that passed: the state machine's changes, acted on.
    void standby_turn(bool partner_spoke, time_point now);
    /// A client or worker message arrived on `endpoint` (in `_frames`) while this broker does not
    /// serve: it may make it active (then true: handle the message); else it is dropped unanswered
    /// and counted (standby_dropped).
    bool standby_admits(side endpoint, time_point now);
    /// Logs a change; becoming active opens the core's registration window (begin_serving).
    void standby_changed(const ha_change& change, time_point now);

    // ---- receiving (broker.cpp)
    /// A message received, opened: who sent it, in which dialect, and (deferq's) its command.
    struct opened_message {
        std::string_view routing_id;
        std::span<const zmq::message_t> body; ///< the frames after the routing id
        const peer_dialect* dialect;
        protocol::command cmd; ///< deferq's dialect only
    };
    /// Opens the message in `_frames` that arrived on `endpoint`: nothing when it comes from a
    /// banned peer (ignored) or has no valid envelope (counted as malformed).
    std::optional<opened_message> open_message(side endpoint, time_point now);
    /// Tells a peer that spoke the other endpoint's protocol where it should connect: an ERROR
    /// about call (or job) 0 in its own protocol (docs/protocol.md §4, Wrong endpoint).
    void answer_wrong_endpoint(side endpoint, std::string_view routing_id);

    // ---- bad messages (broker.cpp)
    /// Counts a malformed message (malformed_messages) against its peer, which may be
    /// disconnected.
    void malformed(side from, std::string_view routing_id, std::string_view reason, time_point now);
    /// A worker's answer about a job it does not hold: counted (late_replies) and held against it.
    void late_reply(const worker_record& worker, std::string_view what, std::uint64_t job_id,
                    time_point now);
    void offence(side from, std::string_view routing_id, std::string_view what,
                 std::string_view reason, time_point now);

    // ---- the client endpoint (client_endpoint.cpp)
    void on_client_message(time_point now);
    /// The client of that routing id, seen now; null (and a malformed message) when it is known
    /// to speak another dialect.
    client_record* client_speaking(const peer_dialect& dialect, std::string_view routing_id,
                                   time_point now);
    /// The tenant of the message in `_frames`: "key:<its CURVE public key>" when CURVE is on (the
    /// ZAP handler gives each connection its key as User-Id), else empty (the connection's own).
    std::string tenant_key();
    void on_client_record(client_record& client, const protocol::batch_record& record,
                          time_point now);
    void on_request(client_record& client, const protocol::client_request& request,
                    zmq::message_t payload, time_point now);
    void on_mdp_client_message(std::string_view routing_id, std::span<const zmq::message_t> body,
                               time_point now);

    // ---- the worker endpoint (worker_endpoint.cpp)
    void on_worker_message(time_point now);
    void on_worker_command(worker_record& worker, protocol::command cmd,
                           std::span<const zmq::message_t> body, time_point now);
    void on_unregistered_worker(std::string_view routing_id, protocol::command cmd,
                                std::span<const zmq::message_t> body);
    void on_worker_record(worker_record& worker, const protocol::batch_record& record,
                          time_point now);
    void on_mdp_worker_message(std::string_view routing_id, std::span<const zmq::message_t> body,
                               time_point now);
    /// Removes a 7/MDP worker that broke the protocol, telling it DISCONNECT.
    void drop_mdp_worker(worker_record& worker, std::string_view why, time_point now);

    broker_options _options;
    zmq::socket_t _clients_socket;
    zmq::socket_t _workers_socket;
    std::optional<zap_handler> _zap;
    connection_monitor _client_connections;
    connection_monitor _worker_connections;
    std::uint64_t _instance;
    std::optional<binary_star> _standby; ///< set in a standby pair
    std::optional<peer_link> _peer_link; ///< set in a standby pair
    bool _told_same_role = false;        ///< both primaries (or backups) logged once
    socket_outbox _out;
    broker_core _core;
    status_builder _status;
    mmi_service _mmi;
    bad_peers _bad_peers;
    memory_return _memory;
    std::vector<zmq::message_t> _frames;        ///< the message being handled
    protocol::batch_reader _batch_in;           ///< the BATCH being handled
    std::uint64_t _next_mdp_correlation_id = 1; ///< 7/MDP calls have none: the broker numbers them
    time_point _next_tick;
};

} // namespace deferq::broker_detail
