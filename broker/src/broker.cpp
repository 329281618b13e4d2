#include "deferq/broker.hpp"

#include "broker_shell.hpp"
#include "core/log_text.hpp"
#include "peers/mdp.hpp"

#include "deferq/curve.hpp"
#include "deferq/log.hpp"
#include "deferq/random_id.hpp"

#include <spdlog/spdlog.h>

#include <poll.h>

#include <algorithm>
#include <iterator>
#include <utility>

namespace deferq {
namespace broker_detail {
namespace {

/// The longest a turn of run() waits for a message: it sees a stop request at least this often.
constexpr std::chrono::milliseconds loop_turn{100};
/// Messages handled from each socket per turn, so that neither endpoint starves the other.
constexpr int max_messages_per_turn = 256;
constexpr int max_zap_requests_per_turn = 64;
/// How long closing a socket may wait to send what is queued (DISCONNECT at shutdown).
constexpr int socket_linger_ms = 200;
/// The tick (heartbeats, expiry) runs this many times per heartbeat interval.
constexpr int ticks_per_interval = 4;
/// Messages ZeroMQ queues for one client before the broker holds them itself (and counts their
/// bytes against the budgets): a client that reads keeps this queue near empty.
constexpr int client_send_hwm = 64;
/// States from the partner handled per turn (it says one per heartbeat interval).
constexpr int max_partner_states_per_turn = 16;
/// How soon the loop tries again to send what it holds for slow clients.
constexpr std::chrono::milliseconds held_retry{10};

bool is_loopback(const std::string& endpoint) {
    return endpoint.starts_with("tcp://127.") || endpoint.starts_with("tcp://[::1]") ||
           endpoint.starts_with("tcp://localhost") || endpoint.starts_with("ipc://") ||
           endpoint.starts_with("inproc://");
}

heartbeat_message announcement(const broker_options& options, std::uint64_t instance) {
    return {instance, static_cast<std::uint32_t>(options.heartbeat_interval.count()),
            options.liveness, static_cast<std::uint64_t>(options.max_message_size)};
}

/// A ZeroMQ socket's descriptor (ZMQ_FD): readable when something came for the socket; -1 for
/// none (poll() passes over it).
int descriptor(void* socket) {
    int fd = -1;
    std::size_t size = sizeof fd;
    return socket && zmq_getsockopt(socket, ZMQ_FD, &fd, &size) == 0 ? fd : -1;
}

/// A message waits on the socket (ZMQ_EVENTS, which takes in what came for it).
bool has_message(void* socket) {
    std::uint32_t events = 0;
    std::size_t size = sizeof events;
    return socket && zmq_getsockopt(socket, ZMQ_EVENTS, &events, &size) == 0 &&
           (events & ZMQ_POLLIN) != 0;
}

} // namespace

broker_shell::broker_shell(zmq::context_t& context, broker_options options)
    : _options(std::move(options)), _clients_socket(context, zmq::socket_type::router),
      _workers_socket(context, zmq::socket_type::router),
      _client_connections(context, _clients_socket, "client endpoint", counters),
      _worker_connections(context, _workers_socket, "worker endpoint", counters),
      _instance(random_u64()),
      _standby(_options.standby
                   ? std::optional<binary_star>(std::in_place, _options.standby->backup,
                                                _options.heartbeat_interval, clock_type::now())
                   : std::nullopt),
      _out(_clients_socket, _workers_socket, counters, announcement(_options, _instance)),
      _core(_options, counters, _out, clock_type::now()),
      _status(_core, counters, _instance, clock_type::now(), _options.snapshot_interval),
      _mmi(_core, _status, _out, counters), _bad_peers(_options, counters),
      _next_tick(clock_type::now()) {
    for (auto* socket : {&_clients_socket, &_workers_socket}) {
        socket->set(zmq::sockopt::router_mandatory, 1);
        socket->set(zmq::sockopt::maxmsgsize, _options.max_message_size);
        socket->set(zmq::sockopt::linger, socket_linger_ms);
    }
    // To workers: bounded by credits. To clients: past a few messages the broker holds what a
    // slow reader has not taken, where the budgets count it (docs/protocol.md §5).
    _workers_socket.set(zmq::sockopt::sndhwm, 0);
    _clients_socket.set(zmq::sockopt::sndhwm, client_send_hwm);
    _clients_socket.set(zmq::sockopt::router_handover, 1);
    if (_options.curve_keys) {
        // The ZAP handler runs in this broker's loop; the domain tells the endpoints apart.
        _zap.emplace(context, _options, counters);
        _clients_socket.set(zmq::sockopt::zap_domain, std::string(zap_client_domain));
        _workers_socket.set(zmq::sockopt::zap_domain, std::string(zap_worker_domain));
        curve::make_server(_clients_socket, *_options.curve_keys);
        curve::make_server(_workers_socket, *_options.curve_keys);
    }
    if (_options.standby)
        _peer_link.emplace(*_options.standby, _options.curve_keys, _instance,
                           _options.heartbeat_interval);
    _status.set_standby(_standby ? (_standby->is_backup() ? "backup" : "primary") : "alone",
                        _standby ? to_string(_standby->state()) : "active");
}

void broker_shell::bind() {
    // A signal may interrupt a bind (EINTR) before anything was bound: bind again.
    auto bind_to = [](zmq::socket_t& socket, const std::string& endpoint) {
        while (true) {
            try {
                return socket.bind(endpoint);
            } catch (const zmq::error_t& e) {
                if (e.num() != EINTR) throw;
            }
        }
    };
    bind_to(_clients_socket, _options.client_endpoint);
    bind_to(_workers_socket, _options.worker_endpoint);
    client_endpoint = _clients_socket.get(zmq::sockopt::last_endpoint);
    // In-process callers (the HTTP gateway) connect here: same socket, no network.
    in_process_client_endpoint = fmt::format("inproc://deferq-clients-{:016x}", _instance);
    _clients_socket.bind(in_process_client_endpoint);
    worker_endpoint = _workers_socket.get(zmq::sockopt::last_endpoint);
    for (const auto& endpoint : {client_endpoint, worker_endpoint})
        if (!is_loopback(endpoint) && !_options.curve_keys)
            log().warn("{} is reachable from other machines without CURVE: anyone who can "
                       "connect may call functions or register as a worker (see "
                       "docs/security.md)",
                       endpoint);
    if (_options.curve_keys)
        log().info("CURVE on: {} client key(s), {} worker key(s) allowed",
                   _options.client_keys.size(), _options.worker_keys.size());
    log().info("broker {:016x} listening: clients {} workers {}", _instance, client_endpoint,
               worker_endpoint);
    if (_peer_link) {
        _peer_link->start();
        log().info("standby: {} broker; partner link on {}, partner at {}{}; not serving until "
                   "active",
                   _standby->is_backup() ? "backup" : "primary", _peer_link->bound_endpoint(),
                   _options.standby->peer, _options.curve_keys ? " (CURVE)" : "");
    }
}

void broker_shell::run(std::stop_token stop) {
    while (!stop.stop_requested())
        run_once(loop_turn);
    shut_down();
}

void broker_shell::run_once(std::chrono::milliseconds max_wait) {
    auto now = clock_type::now();
    auto wait = max_wait;
    if (serving()) { // a standby broker has no tick, deadline or held message to wake up for
        wait = std::chrono::duration_cast<std::chrono::milliseconds>(_next_tick - now);
        wait = std::clamp(wait, std::chrono::milliseconds{0}, max_wait);
        if (_out.holding()) wait = std::min(wait, held_retry);
        if (auto deadline = _core.next_deadline()) {
            auto until = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - now);
            wait = std::clamp(until + std::chrono::milliseconds{1}, std::chrono::milliseconds{0},
                              wait);
        }
    }
    if (_peer_link) // the next state to say
        wait = std::clamp(
            std::chrono::duration_cast<std::chrono::milliseconds>(_peer_link->next_due() - now),
            std::chrono::milliseconds{0}, wait);
    // The loop waits on the sockets' descriptors (ZMQ_FD) with one poll(): zmq_poll() asks every
    // socket for its events before and after the wait, two syscalls each for an idle socket, at
    // every turn. A ZMQ_FD only signals a change, so a socket this loop also sends on (the two
    // endpoints, ZAP) or reads in bounded batches (the partner's states) may hold a message whose
    // signal is gone: those are asked (ZMQ_EVENTS) first, and then the loop does not wait. The
    // monitors' sockets are only read, until empty each time: their descriptors are enough (and
    // they are read at every tick as well, for when the loop had no turn to wait).
    void* asked[] = {_clients_socket.handle(), _workers_socket.handle(),
                     _zap ? _zap->handle() : nullptr, _peer_link ? _peer_link->handle() : nullptr};
    bool ready[std::size(asked)] = {};
    bool waiting = false;
    for (std::size_t i = 0; i < std::size(asked); ++i)
        waiting |= ready[i] = has_message(asked[i]);
    pollfd fds[] = {{descriptor(asked[0]), POLLIN, 0},
                    {descriptor(asked[1]), POLLIN, 0},
                    {descriptor(asked[2]), POLLIN, 0},
                    {descriptor(asked[3]), POLLIN, 0},
                    {descriptor(_client_connections.handle()), POLLIN, 0},
                    {descriptor(_worker_connections.handle()), POLLIN, 0}};
    if (!waiting && ::poll(fds, std::size(fds), static_cast<int>(wait.count())) > 0)
        for (std::size_t i = 0; i < std::size(asked); ++i)
            ready[i] |= (fds[i].revents & POLLIN) != 0; // a change: perhaps a message
    now = clock_type::now();
    _out.set_now(now);
    bool tick_due = now >= _next_tick;
    if (_standby) standby_turn(ready[3], now);
    if (ready[2]) _zap->serve(max_zap_requests_per_turn);
    if ((fds[4].revents & POLLIN) || tick_due)
        _client_connections.drain(now, _options.heartbeat_interval);
    if ((fds[5].revents & POLLIN) || tick_due)
        _worker_connections.drain(now, _options.heartbeat_interval);
    // A receive that finds nothing costs libzmq a syscall: only sockets found ready are read.
    if (ready[0])
        for (int i = 0;
             i < max_messages_per_turn && protocol::receive_frames(_clients_socket, _frames); ++i)
            if (serving() || standby_admits(side::client, now))
                guarded(&broker_shell::on_client_message, now);
    if (ready[1])
        for (int i = 0;
             i < max_messages_per_turn && protocol::receive_frames(_workers_socket, _frames); ++i)
            if (serving() || standby_admits(side::worker, now))
                guarded(&broker_shell::on_worker_message, now);
    if (!serving()) { // a standby broker: nothing to decide, nothing to send
        _status.observe(now);
        return;
    }
    now = clock_type::now();
    _out.set_now(now);
    _core.expire_deadlines(now);
    if (now >= _next_tick) {
        _core.tick(now);
        _bad_peers.prune(now);
        _memory.tick(_core.jobs().size(), _core.clients().size(), now);
        _next_tick = now + _options.heartbeat_interval / ticks_per_interval;
    }
    _status.observe(now);
    flush_all(now);
}

// ---- the standby pair --------------------------------------------------------------------------

void broker_shell::standby_turn(bool partner_spoke, time_point now) {
    bool changed = false;
    // Bounded, as every socket of the loop; the partner says one state per interval.
    for (int i = 0; partner_spoke && i < max_partner_states_per_turn; ++i) {
        auto partner = _peer_link->receive(now);
        if (!partner) break;
        if (partner->state == (_standby->is_backup() ? ha_state::backup : ha_state::primary) &&
            !std::exchange(_told_same_role, true))
            log().error("standby: the partner ({:016x}) is a {} too: give exactly one of the "
                        "pair --backup",
                        partner->instance, to_string(partner->state));
        if (auto change = _standby->on_partner_state(partner->state, now)) {
            standby_changed(*change, now);
            changed = true;
        }
    }
    if (auto change = _standby->on_tick(now)) {
        standby_changed(*change, now);
        changed = true;
    }
    _peer_link->say(_standby->state(), now, changed);
}

bool broker_shell::standby_admits(side endpoint, time_point now) {
    if (auto change = _standby->on_peer_came(to_string(endpoint), now)) {
        standby_changed(*change, now);
        _peer_link->say(_standby->state(), now, true);
        if (serving()) return true;
    }
    bump(counters.standby_dropped); // unanswered: the peer hears silence and moves on
    return false;
}

void broker_shell::standby_changed(const ha_change& change, time_point now) {
    log().info("standby: {} {} → {}: {}", _standby->is_backup() ? "backup" : "primary",
               to_string(change.from), to_string(change.to), change.reason);
    _status.set_standby(_standby->is_backup() ? "backup" : "primary", to_string(change.to));
    if (_standby->must_step_down()) {
        // Both brokers served (the link between them was cut): what this one holds cannot be
        // trusted. It exits without a word to its peers, which move to the primary; restarted,
        // it comes back as a passive backup (docs/protocol.md §8).
        throw standby_step_down("standby: both brokers of the pair are active; the backup steps "
                                "down and exits (restart it: it comes back passive)");
    }
    if (change.to == ha_state::active) {
        _core.begin_serving(now); // workers re-register and report their jobs; clients resend
        _next_tick = now;
    }
}

void broker_shell::guarded(void (broker_shell::*handler)(time_point), time_point now) {
    try {
        (this->*handler)(now);
    } catch (const zmq::error_t& e) {
        if (e.num() == ETERM) throw;
        log().error("socket error while handling a message: {}", e.what());
    } catch (const std::exception& e) {
        log().error("error while handling a message: {}", e.what());
    }
}

void broker_shell::flush_all(time_point now) {
    _out.send_held();
    while (true) {
        _out.flush();
        auto unreachable = _out.take_unreachable();
        auto held_changes = _out.take_held_changes();
        if (unreachable.empty() && held_changes.empty()) return;
        for (auto* worker : unreachable) {
            auto jobs = std::move(worker->output.undelivered);
            worker->output.undelivered.clear();
            _core.take_back(*worker, jobs, now);
        }
        // Each client is listed once, and reviewing one forgets no other.
        for (auto* client : held_changes)
            _core.review_replies(*client, now);
    }
}

void broker_shell::shut_down() {
    flush_all(clock_type::now());
    log().info("broker stopping: telling {} worker(s) and {} client(s)", _core.workers().size(),
               _core.clients().size());
    for (auto& [id, worker] : _core.workers().all())
        _out.disconnect(side::worker, id, *worker->dialect);
    for (auto& [id, client] : _core.clients().all())
        _out.disconnect(side::client, id, *client->dialect);
}

// ---- receiving ------------------------------------------------------------------------------

std::optional<broker_shell::opened_message> broker_shell::open_message(side endpoint,
                                                                       time_point now) {
    if (_frames.size() < 2) {
        malformed(endpoint, {}, "no routing id", now);
        return std::nullopt;
    }
    std::string_view routing_id = protocol::view(_frames[0]);
    if (_bad_peers.ignored(endpoint, routing_id, now)) return std::nullopt;
    std::span<const zmq::message_t> body(_frames.data() + 1, _frames.size() - 1);
    bool to_clients = endpoint == side::client;
    if (mdp::speaks(body, to_clients ? mdp::client_protocol : mdp::worker_protocol))
        return opened_message{routing_id, body, &mdp_dialect(), {}};
    auto head = protocol::decode_header(body);
    if (auto* error = std::get_if<protocol::decode_error>(&head)) {
        malformed(endpoint, routing_id, error->reason, now);
        return std::nullopt;
    }
    auto [protocol_id, cmd] = std::get<protocol::header>(head);
    if (protocol_id == (to_clients ? protocol::worker_protocol : protocol::client_protocol)) {
        // A worker at the client endpoint, or a client at the worker endpoint: an easy slip of
        // configuration. Say so, in the protocol the peer speaks, so that it can stop and tell.
        answer_wrong_endpoint(endpoint, routing_id);
        malformed(endpoint, routing_id,
                  to_clients ? "a worker at the client endpoint"
                             : "a client at the worker endpoint",
                  now);
        return std::nullopt;
    }
    if (protocol_id != (to_clients ? protocol::client_protocol : protocol::worker_protocol)) {
        malformed(endpoint, routing_id, "unknown protocol id '" + std::string(protocol_id) + "'",
                  now);
        return std::nullopt;
    }
    return opened_message{routing_id, body, &deferq_dialect(), cmd};
}

void broker_shell::answer_wrong_endpoint(side endpoint, std::string_view routing_id) {
    bool to_clients = endpoint == side::client;
    auto message = fmt::format("this is the broker's {} endpoint ({}); {}s connect to its {} "
                               "endpoint ({})",
                               to_string(endpoint), to_clients ? client_endpoint : worker_endpoint,
                               to_clients ? "worker" : "client", to_clients ? "worker" : "client",
                               to_clients ? worker_endpoint : client_endpoint);
    std::vector<zmq::message_t> out;
    // In the peer's own protocol: ERROR about call (or job) 0, which is never a call's.
    protocol::begin_message(out, routing_id,
                            to_clients ? protocol::worker_protocol : protocol::client_protocol,
                            protocol::command::error);
    out.push_back(protocol::u64_frame(0));
    out.push_back(protocol::u8_frame(static_cast<std::uint8_t>(error_code::protocol_error)));
    out.push_back(protocol::string_frame(""));
    out.push_back(protocol::string_frame(message));
    if (!to_clients) { // a client's ERROR also names the worker and the attempts
        out.push_back(protocol::string_frame(""));
        out.push_back(protocol::u32_frame(0));
    }
    auto& socket = to_clients ? _clients_socket : _workers_socket;
    [[maybe_unused]] bool sent = protocol::send_frames(socket, out);
}

std::string broker_shell::tenant_key() {
    if (!_options.curve_keys || _frames.empty()) return {};
    try {
        const char* key = _frames[0].gets("User-Id");
        return key && *key ? "key:" + std::string(key) : std::string();
    } catch (const zmq::error_t&) {
        return {};
    }
}

// ---- bad messages -----------------------------------------------------------------------------

void broker_shell::malformed(side from, std::string_view routing_id, std::string_view reason,
                             time_point now) {
    bump(counters.malformed_messages);
    offence(from, routing_id, "malformed message", reason, now);
}

void broker_shell::late_reply(const worker_record& worker, std::string_view what,
                              std::uint64_t job_id, time_point now) {
    bump(counters.late_replies);
    offence(side::worker, worker.routing_id, "late reply",
            std::string(what) + " for job " + std::to_string(job_id) + " it does not hold", now);
}

/// The broker SHALL disconnect a peer that keeps sending bad messages: a worker is removed (its
/// jobs requeued), a client forgotten (its calls dropped); the peer is told DISCONNECT and its
/// messages are ignored for offender_ban.
void broker_shell::offence(side from, std::string_view routing_id, std::string_view what,
                           std::string_view reason, time_point now) {
    if (!_bad_peers.offence(from, routing_id, what, reason, now)) return;
    std::string id(routing_id); // the record that holds `routing_id` may go
    const peer_dialect* dialect = &deferq_dialect();
    if (from == side::worker) {
        if (auto* worker = _core.find_worker(id)) {
            dialect = worker->dialect;
            _core.remove_worker(*worker, "disconnected for bad messages", parting::lost, now);
        }
    } else if (auto* client = _core.find_client(id)) {
        dialect = client->dialect;
        _core.forget_client(*client, "disconnected for bad messages", parting::lost);
    }
    _out.disconnect(from, id, *dialect);
}

} // namespace broker_detail

// ---- the public face --------------------------------------------------------------------------

class broker_impl : public broker_detail::broker_shell {
    using broker_shell::broker_shell;
};

Broker::Broker(zmq::context_t& context, broker_options options)
    : _impl(std::make_unique<broker_impl>(context, std::move(options))) {}
Broker::~Broker() = default;
void Broker::bind() {
    _impl->bind();
}
std::string Broker::client_endpoint() const {
    return _impl->client_endpoint;
}
std::string Broker::in_process_client_endpoint() const {
    return _impl->in_process_client_endpoint;
}
std::string Broker::worker_endpoint() const {
    return _impl->worker_endpoint;
}
void Broker::run(std::stop_token stop) {
    _impl->run(std::move(stop));
}
void Broker::run_once(std::chrono::milliseconds timeout) {
    _impl->run_once(timeout);
}
const broker_counters& Broker::counters() const {
    return _impl->counters;
}
std::uint64_t Broker::instance_id() const {
    return _impl->instance();
}
std::shared_ptr<const broker_status> Broker::snapshot() const {
    return _impl->status().snapshot();
}
std::chrono::steady_clock::time_point Broker::last_loop_activity() const {
    return _impl->status().last_loop_activity();
}

} // namespace deferq
