#include "deferq/broker.hpp"

#include "job_queue.hpp"
#include "mdp.hpp"

#include "deferq/broker_status.hpp"
#include "deferq/codec.hpp"
#include "deferq/random_id.hpp"

#include "deferq/log.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>
#include <queue>
#include <unordered_map>

namespace deferq {
namespace {

using clock_type = std::chrono::steady_clock;
using namespace protocol;

struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const noexcept {
        return std::hash<std::string_view>{}(text);
    }
};
template <typename V>
using string_map = std::unordered_map<std::string, V, string_hash, std::equal_to<>>;

struct worker_record;
struct client_record;

struct function_record {
    std::string name;
    broker_detail::job_queue queue;
    std::size_t queued = 0; ///< live jobs in the queue
    std::vector<worker_record*> workers;
    // Outcomes and latencies (mmi.status, /metrics): fixed-size, nothing allocated per job.
    std::uint64_t done = 0;
    failure_counts failed_by_code{};
    latency_histogram queue_wait;
    latency_histogram service_time;
};

enum class job_state : std::uint8_t { queued, running, abandoned };

struct job {
    std::uint64_t id;
    client_record* client; ///< null once the caller no longer waits (cancelled, timed out, gone)
    std::uint64_t correlation_id;
    function_record* function;
    zmq::message_t payload;
    clock_type::time_point deadline;
    bool has_deadline;
    std::uint8_t priority;
    std::uint8_t max_attempts;
    std::uint32_t attempts = 0;
    job_state state = job_state::queued;
    worker_record* worker = nullptr;
    clock_type::time_point queued_since{}; ///< last put in its queue (for the queue wait)
    clock_type::time_point dispatched_at{};
};

struct worker_record {
    std::string routing_id;
    std::string name;
    std::uint32_t slots;
    std::uint32_t prefetch;
    std::vector<function_record*> functions;
    std::vector<std::uint64_t> held; ///< job ids dispatched and not answered
    clock_type::time_point last_seen;
    clock_type::time_point last_sent;
    std::uint64_t last_dispatch = 0; ///< dispatch sequence, for least-recently-used choice
    bool draining = false;
    bool unreachable = false; ///< a send failed: removed at the next tick
    bool mdp = false;         ///< a 7/MDP worker (docs/interop.md): 1 slot, no prefetch
    std::uint64_t jobs_done = 0;
    protocol::batch_writer outbox;          ///< what this turn of the loop sends it (§3a)
    std::vector<std::uint64_t> outbox_jobs; ///< the jobs in `outbox`, taken back if it fails
    std::uint64_t failures = 0;             ///< jobs it answered with ERROR
    std::string host;                       ///< the peer's address, when ZeroMQ knows it
    clock_type::time_point joined{};

    bool has_credit() const {
        return !draining && !unreachable && held.size() < std::size_t{slots} + prefetch;
    }
    std::int64_t free_slots() const {
        return std::int64_t{slots} - static_cast<std::int64_t>(held.size());
    }
};

struct client_record {
    std::string routing_id;
    clock_type::time_point last_seen;
    clock_type::time_point last_sent;
    std::unordered_map<std::uint64_t, std::uint64_t> pending; ///< correlation id → job id
    protocol::batch_writer outbox;          ///< what this turn of the loop sends it (§3a)
    std::unique_ptr<mdp::client_calls> mdp; ///< set for a 7/MDP client (docs/interop.md)
};

struct deadline_entry {
    clock_type::time_point deadline;
    std::uint64_t job_id;
    bool operator>(const deadline_entry& other) const { return deadline > other.deadline; }
};

std::string printable(std::string_view routing_id) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : routing_id.substr(0, 8)) {
        out += hex[c >> 4];
        out += hex[c & 15];
    }
    return out;
}

/// Untrusted text for a log line: printable ASCII as is, anything else as \xNN (so that a peer
/// cannot forge log lines), at most 200 bytes.
std::string escaped(std::string_view text) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : text.substr(0, 200)) {
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out += static_cast<char>(c);
        } else {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    if (text.size() > 200) out += "...";
    return out;
}

/// What the broker remembers of a peer that sent bad messages (docs/protocol.md §4, Validation).
struct offender_record {
    clock_type::time_point window_start;   ///< the current interval began
    std::uint32_t offences = 0;            ///< bad messages in the current interval
    std::uint64_t unlogged = 0;            ///< bad messages since the last log line
    bool logged = false;                   ///< a line was logged in the current interval
    clock_type::time_point banned_until{}; ///< disconnected: its messages are ignored until then
};

void bump(std::atomic<std::uint64_t>& counter, std::uint64_t by = 1) {
    counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}
void set_gauge(std::atomic<std::uint64_t>& gauge, std::uint64_t value) {
    gauge.store(value, std::memory_order_relaxed);
}

} // namespace

class broker_impl {
public:
    broker_impl(zmq::context_t& context, broker_options options)
        : _options(std::move(options)), _clients_socket(context, zmq::socket_type::router),
          _workers_socket(context, zmq::socket_type::router), _instance(random_u64()) {
        for (auto* socket : {&_clients_socket, &_workers_socket}) {
            socket->set(zmq::sockopt::router_mandatory, 1);
            socket->set(zmq::sockopt::maxmsgsize, _options.max_message_size);
            socket->set(zmq::sockopt::sndhwm, 0); // bounded by credits and pending-call limits
            socket->set(zmq::sockopt::linger, 200);
        }
        _clients_socket.set(zmq::sockopt::router_handover, 1);
        if (_options.curve_keys) {
            // The ZAP handler (RFC 27) runs in this broker's loop; the domain tells the endpoints
            // apart.
            _zap_socket.emplace(context, zmq::socket_type::rep);
            _zap_socket->bind("inproc://zeromq.zap.01");
            _clients_socket.set(zmq::sockopt::zap_domain, "clients");
            _workers_socket.set(zmq::sockopt::zap_domain, "workers");
            curve::make_server(_clients_socket, *_options.curve_keys);
            curve::make_server(_workers_socket, *_options.curve_keys);
        }
    }

    void bind() {
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
        _client_endpoint = _clients_socket.get(zmq::sockopt::last_endpoint);
        // In-process callers (the HTTP gateway) connect here: same socket, no network.
        _in_process_client_endpoint = fmt::format("inproc://deferq-clients-{:016x}", _instance);
        _clients_socket.bind(_in_process_client_endpoint);
        _worker_endpoint = _workers_socket.get(zmq::sockopt::last_endpoint);
        for (const auto& endpoint : {_client_endpoint, _worker_endpoint}) {
            bool loopback = endpoint.starts_with("tcp://127.") ||
                            endpoint.starts_with("tcp://[::1]") ||
                            endpoint.starts_with("tcp://localhost") ||
                            endpoint.starts_with("ipc://") || endpoint.starts_with("inproc://");
            if (!loopback && !_options.curve_keys)
                log().warn("{} is reachable from other machines without CURVE: anyone who can "
                           "connect may call "
                           "functions or register as a worker (see docs/security.md)",
                           endpoint);
        }
        if (_options.curve_keys)
            log().info("CURVE on: {} client key(s), {} worker key(s) allowed",
                       _options.client_keys.size(), _options.worker_keys.size());
        log().info("broker {:016x} listening: clients {} workers {}", _instance, _client_endpoint,
                   _worker_endpoint);
    }

    void run(std::stop_token stop) {
        while (!stop.stop_requested())
            run_once(std::chrono::milliseconds{100});
        shut_down();
    }

    void run_once(std::chrono::milliseconds max_wait) {
        zmq::pollitem_t items[] = {
            {_clients_socket.handle(), 0, ZMQ_POLLIN, 0},
            {_workers_socket.handle(), 0, ZMQ_POLLIN, 0},
            {_zap_socket ? _zap_socket->handle() : nullptr, 0, ZMQ_POLLIN, 0}};
        auto now = clock_type::now();
        auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(_next_tick - now);
        wait = std::clamp(wait, std::chrono::milliseconds{0}, max_wait);
        if (!_deadlines.empty()) {
            auto until = std::chrono::duration_cast<std::chrono::milliseconds>(
                _deadlines.top().deadline - now);
            wait = std::clamp(until + std::chrono::milliseconds{1}, std::chrono::milliseconds{0},
                              wait);
        }
        protocol::poll(items, _zap_socket ? 3 : 2, wait);
        // Only sockets poll found readable: a receive that finds nothing costs libzmq a syscall.
        // A bounded batch from each, so neither side starves the other.
        if (_zap_socket && (items[2].revents & ZMQ_POLLIN))
            for (int i = 0; i < 64 && receive_frames(*_zap_socket, _frames); ++i)
                guarded(&broker_impl::on_zap_request);
        if (items[0].revents & ZMQ_POLLIN)
            for (int i = 0; i < 256 && receive_frames(_clients_socket, _frames); ++i)
                guarded(&broker_impl::on_client_message);
        if (items[1].revents & ZMQ_POLLIN)
            for (int i = 0; i < 256 && receive_frames(_workers_socket, _frames); ++i)
                guarded(&broker_impl::on_worker_message);
        now = clock_type::now();
        expire_deadlines(now);
        if (now >= _next_tick) {
            tick(now);
            _next_tick = now + _options.heartbeat_interval / 4;
        }
        observe(now);
        flush_all();
    }

    /// The status the loop published last (null before the first); any thread.
    std::shared_ptr<const broker_status> snapshot() const {
        std::lock_guard lock(_snapshot_mutex);
        return _snapshot;
    }

    /// When the loop last went round (steady clock); any thread.
    clock_type::time_point last_loop_activity() const {
        return clock_type::time_point(clock_type::duration(_loop_activity.load()));
    }

    broker_counters counters;
    std::string _client_endpoint, _worker_endpoint, _in_process_client_endpoint;
    std::uint64_t instance() const { return _instance; }

private:
    // ---- the loop's one catch (STYLE.md: the broker's loop catches, logs and carries on)
    // ---------

    void guarded(void (broker_impl::*handler)()) {
        try {
            (this->*handler)();
        } catch (const zmq::error_t& e) {
            if (e.num() == ETERM) throw;
            log().error("socket error while handling a message: {}", e.what());
        } catch (const std::exception& e) {
            log().error("error while handling a message: {}", e.what());
        }
    }

    void malformed(std::string_view endpoint, std::string_view routing_id,
                   std::string_view reason) {
        bump(counters.malformed_messages);
        offence(endpoint, routing_id, "malformed message", reason);
    }

    // ---- bad peers (docs/protocol.md §4, Validation)
    // ------------------------------------------------

    /// A worker's REPLY, ERROR, PROGRESS or DECLINE for a job it does not hold: dropped, counted
    /// (late_replies) and held against the worker.
    void late_reply(const worker_record& worker, std::string_view what, std::uint64_t job_id) {
        bump(counters.late_replies);
        offence("worker", worker.routing_id, "late reply",
                std::string(what) + " for job " + std::to_string(job_id) + " it does not hold");
    }

    /// Counts one bad message against its peer. Logs at most once per peer per interval; a peer
    /// with more than max_malformed bad messages within one interval is disconnected.
    void offence(std::string_view endpoint, std::string_view routing_id, std::string_view what,
                 std::string_view reason) {
        auto now = clock_type::now();
        auto* record = track(endpoint, routing_id, now);
        if (!record) {
            // Untracked (no routing id, or the table is full): one log line per interval in all.
            if (now - _last_untracked_log >= _options.heartbeat_interval) {
                _last_untracked_log = now;
                log().warn("dropped {} from {} peer {}: {} ({} malformed so far)", what, endpoint,
                           printable(routing_id), escaped(reason),
                           counters.malformed_messages.load());
            }
            return;
        }
        if (now - record->window_start >= _options.heartbeat_interval) {
            record->window_start = now;
            record->offences = 0;
            record->logged = false;
        }
        ++record->offences;
        ++record->unlogged;
        if (!record->logged) {
            record->logged = true;
            log().warn("dropped {} from {} peer {}: {} ({} bad from this peer since the last "
                       "report, {} malformed in all)",
                       what, endpoint, printable(routing_id), escaped(reason), record->unlogged,
                       counters.malformed_messages.load());
            record->unlogged = 0;
        }
        if (_options.max_malformed != 0 && record->offences > _options.max_malformed)
            disconnect_offender(endpoint, std::string(routing_id), *record, now);
    }

    /// The record of a peer that sent bad messages, made on first use; null when the peer cannot be
    /// tracked (no routing id, or max_tracked_peers reached even after pruning).
    offender_record* track(std::string_view endpoint, std::string_view routing_id,
                           clock_type::time_point now) {
        if (routing_id.empty()) return nullptr;
        auto& table = offenders_of(endpoint);
        if (auto it = table.find(routing_id); it != table.end()) return &it->second;
        if (table.size() >= _options.max_tracked_peers) prune_offenders(table, now);
        if (table.size() >= _options.max_tracked_peers) return nullptr;
        auto& record = table[std::string(routing_id)];
        record.window_start = now;
        return &record;
    }

    string_map<offender_record>& offenders_of(std::string_view endpoint) {
        return endpoint == "worker" ? _worker_offenders : _client_offenders;
    }

    /// Forgets records whose interval ended and whose ban (if any) is over.
    void prune_offenders(string_map<offender_record>& table, clock_type::time_point now) {
        std::erase_if(table, [&](const auto& entry) {
            return now - entry.second.window_start >= _options.heartbeat_interval &&
                   entry.second.banned_until <= now;
        });
    }

    /// The broker SHALL disconnect a peer that keeps sending bad messages: a worker is removed (its
    /// jobs requeued), a client forgotten (its calls dropped); the peer is told DISCONNECT and its
    /// messages are ignored for offender_ban.
    void disconnect_offender(std::string_view endpoint, const std::string& routing_id,
                             offender_record& record, clock_type::time_point now) {
        bump(counters.peers_disconnected);
        record.banned_until = now + _options.offender_ban;
        log().warn("disconnected {} peer {}: {} bad messages within {} ms; ignoring it for {} ms "
                   "({} peer(s) disconnected so far)",
                   endpoint, printable(routing_id), record.offences,
                   _options.heartbeat_interval.count(), _options.offender_ban.count(),
                   counters.peers_disconnected.load());
        if (endpoint == "worker") {
            if (auto it = _workers.find(routing_id); it != _workers.end())
                remove_worker(it, "disconnected for bad messages");
            send_disconnect(_workers_socket, routing_id, worker_protocol);
        } else {
            if (auto it = _clients.find(routing_id); it != _clients.end())
                forget_client(it, "disconnected for bad messages");
            send_disconnect(_clients_socket, routing_id, client_protocol);
        }
    }

    /// True (and counted) when the message comes from a peer disconnected for bad messages whose
    /// ban is not over: such a message is dropped unread.
    bool ignored(std::string_view endpoint, std::string_view routing_id) {
        auto& table = offenders_of(endpoint);
        if (table.empty()) return false;
        auto it = table.find(routing_id);
        if (it == table.end() || it->second.banned_until == clock_type::time_point{}) return false;
        if (clock_type::now() >= it->second.banned_until) return false;
        bump(counters.ignored_messages);
        return true;
    }

    /// A configured limit refused something: logged at most once per heartbeat interval.
    void limit_hit(const std::string& what) {
        auto now = clock_type::now();
        if (now - _last_limit_log < _options.heartbeat_interval) return;
        _last_limit_log = now;
        log().warn("limit hit: {} ({} overloaded so far)", what, counters.overloaded.load());
    }

    // ---- authentication (ZAP, RFC 27)
    // --------------------------------------------------------------

    /// Admits a CURVE peer when its public key is in the allow-list of the endpoint it connects to.
    void on_zap_request() {
        // version, request id, domain, address, identity, mechanism, credentials…
        std::string status = "400", text = "malformed ZAP request";
        std::string request_id = _frames.size() > 1 ? std::string(view(_frames[1])) : "";
        if (_frames.size() >= 7 && view(_frames[0]) == "1.0") {
            auto domain = view(_frames[2]);
            auto address = view(_frames[3]);
            auto mechanism = view(_frames[5]);
            auto key = curve::z85_from_binary(_frames[6].data(), _frames[6].size());
            const auto& allowed = domain == "workers" ? _options.worker_keys : _options.client_keys;
            if (mechanism == "CURVE" && !key.empty() &&
                (domain == "clients" || domain == "workers") && allowed.contains(key)) {
                status = "200";
                text = "OK";
            } else {
                text = "key not allowed";
                bump(counters.unauthorized);
                log().warn("refused {} {} from {} with key {} ({} refused so far)",
                           std::string(mechanism), domain == "workers" ? "worker" : "client",
                           std::string(address), key.empty() ? std::string("(none)") : key,
                           counters.unauthorized.load());
            }
        }
        _out.clear();
        _out.push_back(string_frame("1.0"));
        _out.push_back(string_frame(request_id));
        _out.push_back(string_frame(status));
        _out.push_back(string_frame(text));
        _out.push_back(string_frame(status == "200" ? "deferq" : ""));
        _out.emplace_back();
        send_frames(*_zap_socket, _out, zmq::send_flags::none);
    }

    // ---- client endpoint
    // --------------------------------------------------------------------------

    void on_client_message() {
        if (_frames.size() < 2) return malformed("client", {}, "no routing id");
        std::string_view routing_id = view(_frames[0]);
        if (ignored("client", routing_id)) return;
        std::span<const zmq::message_t> body(_frames.data() + 1, _frames.size() - 1);
        if (mdp::speaks(body, mdp::client_protocol)) return on_mdp_client_message(routing_id, body);
        auto head = decode_header(body);
        if (auto* error = std::get_if<decode_error>(&head))
            return malformed("client", routing_id, error->reason);
        auto [protocol_id, cmd] = std::get<header>(head);
        if (protocol_id != client_protocol)
            return malformed("client", routing_id,
                             "unknown protocol id '" + std::string(protocol_id) + "'");

        auto now = clock_type::now();
        switch (cmd) {
        case command::request: {
            auto request = decode_client_request(body, _options.limits);
            if (auto* error = std::get_if<decode_error>(&request))
                return malformed("client", routing_id, error->reason);
            auto& client = touch_client(routing_id, now);
            const auto& decoded_request = std::get<client_request>(request);
            // +1: the routing id frame. The job keeps the frame itself: no copy.
            on_request(client, decoded_request,
                       std::move(_frames[decoded_request.payload_index + 1]), now);
            return;
        }
        case command::batch: {
            if (body.size() != 4) return malformed("client", routing_id, "BATCH must be 1 frame");
            if (auto error = _batch_in.parse(view(body[3])))
                return malformed("client", routing_id, "BATCH: " + *error);
            auto& client = touch_client(routing_id, now);
            for (std::size_t i = 0; i < _batch_in.size(); ++i)
                on_client_record(client, _batch_in.record(i), now);
            return;
        }
        case command::cancel: {
            auto cancel = decode_correlation_only(body);
            if (auto* error = std::get_if<decode_error>(&cancel))
                return malformed("client", routing_id, error->reason);
            on_cancel(touch_client(routing_id, now),
                      std::get<correlation_only>(cancel).correlation_id);
            return;
        }
        case command::heartbeat: {
            auto empty = decode_empty(body);
            if (auto* error = std::get_if<decode_error>(&empty))
                return malformed("client", routing_id, error->reason);
            touch_client(routing_id, now);
            return;
        }
        case command::disconnect: {
            auto empty = decode_empty(body);
            if (auto* error = std::get_if<decode_error>(&empty))
                return malformed("client", routing_id, error->reason);
            if (auto it = _clients.find(routing_id); it != _clients.end())
                forget_client(it, "disconnected");
            return;
        }
        default:
            return malformed("client", routing_id,
                             "command " + std::to_string(static_cast<int>(cmd)) +
                                 " not valid from a client");
        }
    }

    /// One record of a client's BATCH: a REQUEST or a CANCEL (docs/protocol.md §3a).
    void on_client_record(client_record& client, const batch_record& record,
                          clock_type::time_point now) {
        if (record.cmd == command::request) {
            auto request = decode_client_request(record.frames, _options.limits);
            if (auto* error = std::get_if<decode_error>(&request))
                return malformed("client", client.routing_id, "BATCH REQUEST: " + error->reason);
            const auto& decoded_request = std::get<client_request>(request);
            const auto& payload = decoded_request.payload;
            return on_request(client, decoded_request,
                              zmq::message_t(payload.data(), payload.size()), now);
        }
        if (record.cmd == command::cancel) {
            auto cancel = decode_correlation_only(record.frames);
            if (auto* error = std::get_if<decode_error>(&cancel))
                return malformed("client", client.routing_id, "BATCH CANCEL: " + error->reason);
            return on_cancel(client, std::get<correlation_only>(cancel).correlation_id);
        }
        malformed("client", client.routing_id,
                  "BATCH record " + std::string(to_string(record.cmd)) +
                      " not valid from a client");
    }

    client_record& touch_client(std::string_view routing_id, clock_type::time_point now) {
        auto it = _clients.find(routing_id);
        if (it == _clients.end()) {
            auto record = std::make_unique<client_record>();
            record->routing_id = std::string(routing_id);
            it = _clients.emplace(record->routing_id, std::move(record)).first;
            set_gauge(counters.live_clients, _clients.size());
            send_heartbeat_to_client(*it->second, now); // announces interval and instance
        }
        it->second->last_seen = now;
        return *it->second;
    }

    void on_request(client_record& client, const client_request& request, zmq::message_t payload,
                    clock_type::time_point now) {
        bump(counters.requests);
        if (request.function.starts_with("mmi."))
            return on_service_request(client, request, payload, now);
        // The broker SHALL NOT hold two jobs for the same (client routing id, correlation id).
        if (client.pending.contains(request.correlation_id)) {
            bump(counters.duplicate_requests);
            return;
        }
        if (client.pending.size() >= _options.max_pending_per_client) {
            bump(counters.overloaded);
            limit_hit("client " + printable(client.routing_id) + " has " +
                      std::to_string(client.pending.size()) + " calls pending: refusing more");
            return send_client_error(client, request.correlation_id, error_code::overloaded, "",
                                     "client has " + std::to_string(client.pending.size()) +
                                         " calls pending (limit " +
                                         std::to_string(_options.max_pending_per_client) + ")",
                                     "", 0);
        }
        auto function_it = _functions.find(request.function);
        if (function_it == _functions.end() || function_it->second->workers.empty()) {
            if (_options.strict) {
                return send_client_error(
                    client, request.correlation_id, error_code::no_such_function, "",
                    "no worker offers '" + std::string(request.function) + "'", "", 0);
            }
        }
        if (function_it == _functions.end()) {
            auto record = std::make_unique<function_record>();
            record->name = std::string(request.function);
            function_it = _functions.emplace(record->name, std::move(record)).first;
        }
        auto& function = *function_it->second;
        if (function.queued >= _options.max_queue_length) {
            bump(counters.overloaded);
            note_failure(function, error_code::overloaded);
            limit_hit("queue of '" + escaped(function.name) + "' is full (" +
                      std::to_string(_options.max_queue_length) + " jobs): refusing calls");
            return send_client_error(client, request.correlation_id, error_code::overloaded, "",
                                     "queue of '" + function.name + "' is full (" +
                                         std::to_string(_options.max_queue_length) + " jobs)",
                                     "", 0);
        }
        auto id = _next_job_id++;
        auto& j = _jobs[id];
        j.id = id;
        j.client = &client;
        j.correlation_id = request.correlation_id;
        j.function = &function;
        j.payload = std::move(payload);
        j.has_deadline = request.options.timeout_ms != 0;
        j.deadline = now + std::chrono::milliseconds{request.options.timeout_ms};
        j.priority = request.options.priority;
        j.max_attempts =
            request.options.max_attempts
                ? request.options.max_attempts
                : static_cast<std::uint8_t>(std::min<std::uint32_t>(_options.max_attempts, 255));
        if (j.has_deadline) _deadlines.push({j.deadline, id});
        client.pending.emplace(request.correlation_id, id);
        enqueue_back(j);
        dispatch(function);
    }

    void on_cancel(client_record& client, std::uint64_t correlation_id) {
        auto it = client.pending.find(correlation_id);
        if (it == client.pending.end()) return; // already answered: nothing to do
        bump(counters.cancels);
        auto job_id = it->second;
        client.pending.erase(it);
        auto job_it = _jobs.find(job_id);
        if (job_it == _jobs.end()) return;
        note_failure(*job_it->second.function, error_code::cancelled);
        abandon(job_it, error_code::cancelled);
    }

    /// The caller no longer waits for this job: a queued job is dropped, a running one is cancelled
    /// on its worker (the record stays until the worker answers, so its slot is accounted for).
    void abandon(std::unordered_map<std::uint64_t, job>::iterator it, error_code why) {
        auto& j = it->second;
        j.client = nullptr;
        if (j.state == job_state::queued) {
            --j.function->queued;
            bump(counters.queued_jobs, static_cast<std::uint64_t>(-1));
            _jobs.erase(it);
        } else if (j.state == job_state::running) {
            j.state = job_state::abandoned;
            send_worker_cancel(*j.worker, j.id);
            log().debug("job {} on worker {} cancelled ({})", j.id, escaped(j.worker->name),
                        to_string(why));
        }
    }

    void forget_client(string_map<std::unique_ptr<client_record>>::iterator it,
                       std::string_view why) {
        auto& client = *it->second;
        if (!client.pending.empty() || why != "disconnected")
            log().info("client {} {}: dropping its {} pending call(s)",
                       printable(client.routing_id), why, client.pending.size());
        for (auto [correlation_id, job_id] : client.pending) {
            auto job_it = _jobs.find(job_id);
            if (job_it != _jobs.end()) abandon(job_it, error_code::cancelled);
        }
        discard_outbox(client);
        _clients.erase(it);
        set_gauge(counters.live_clients, _clients.size());
    }

    // ---- worker endpoint
    // --------------------------------------------------------------------------

    void on_worker_message() {
        if (_frames.size() < 2) return malformed("worker", {}, "no routing id");
        std::string_view routing_id = view(_frames[0]);
        if (ignored("worker", routing_id)) return;
        std::span<const zmq::message_t> body(_frames.data() + 1, _frames.size() - 1);
        if (mdp::speaks(body, mdp::worker_protocol)) return on_mdp_worker_message(routing_id, body);
        auto head = decode_header(body);
        if (auto* error = std::get_if<decode_error>(&head))
            return malformed("worker", routing_id, error->reason);
        auto [protocol_id, cmd] = std::get<header>(head);
        if (protocol_id != worker_protocol)
            return malformed("worker", routing_id,
                             "unknown protocol id '" + std::string(protocol_id) + "'");

        auto now = clock_type::now();
        auto it = _workers.find(routing_id);
        if (cmd == ready) {
            auto ready_message = decode_worker_ready(body, _options.limits);
            if (auto* error = std::get_if<decode_error>(&ready_message))
                return malformed("worker", routing_id, error->reason);
            if (it != _workers.end()) return malformed("worker", routing_id, "duplicate READY");
            return on_ready(routing_id, std::get<worker_ready>(ready_message), now);
        }
        if (it == _workers.end()) {
            // Not registered (expired, or this broker restarted): tell it to start again.
            if (cmd == command::reply || cmd == command::error) bump(counters.late_replies);
            if (cmd == command::batch && body.size() == 4 && !_batch_in.parse(view(body[3])))
                for (std::size_t i = 0; i < _batch_in.size(); ++i)
                    if (auto record = _batch_in.record(i).cmd;
                        record == command::reply || record == command::error)
                        bump(counters.late_replies);
            if (cmd != command::disconnect)
                send_disconnect(_workers_socket, routing_id, worker_protocol);
            return;
        }
        auto& worker = *it->second;
        if (worker.mdp) return malformed("worker", routing_id, "DFQW01 message from an MDP worker");
        worker.last_seen = now;
        switch (cmd) {
        case command::reply: {
            auto reply = decode_worker_reply(body);
            if (auto* error = std::get_if<decode_error>(&reply))
                return malformed("worker", routing_id, error->reason);
            const auto& result = std::get<worker_reply>(reply);
            return on_worker_reply(worker, result, &_frames[result.payload_index + 1]);
        }
        case command::error: {
            auto error_message = decode_worker_error(body);
            if (auto* error = std::get_if<decode_error>(&error_message))
                return malformed("worker", routing_id, error->reason);
            return on_worker_error(worker, std::get<worker_error>(error_message));
        }
        case command::batch: {
            if (body.size() != 4) return malformed("worker", routing_id, "BATCH must be 1 frame");
            if (auto error = _batch_in.parse(view(body[3])))
                return malformed("worker", routing_id, "BATCH: " + *error);
            for (std::size_t i = 0; i < _batch_in.size(); ++i)
                on_worker_record(worker, _batch_in.record(i));
            return;
        }
        case command::progress: {
            auto progress = decode_progress(body);
            if (auto* error = std::get_if<decode_error>(&progress))
                return malformed("worker", routing_id, error->reason);
            const auto& update = std::get<progress_update>(progress);
            auto job_it = find_held(worker, update.id);
            if (job_it == _jobs.end()) return late_reply(worker, "PROGRESS", update.id);
            if (job_it->second.client)
                send_client_progress(*job_it->second.client, job_it->second.correlation_id, update);
            return;
        }
        case command::credit: {
            auto credit = decode_worker_credit(body);
            if (auto* error = std::get_if<decode_error>(&credit))
                return malformed("worker", routing_id, error->reason);
            auto prefetch = std::get<worker_credit>(credit).prefetch;
            if (prefetch > _options.limits.max_worker_slots)
                return malformed("worker", routing_id, "prefetch too large");
            worker.prefetch = prefetch;
            return dispatch_to(worker);
        }
        case command::decline: {
            auto decline = decode_job_only(body);
            if (auto* error = std::get_if<decode_error>(&decline))
                return malformed("worker", routing_id, error->reason);
            auto job_id = std::get<job_only>(decline).job_id;
            auto job_it = find_held(worker, job_id);
            if (job_it == _jobs.end()) return late_reply(worker, "DECLINE", job_id);
            release(worker, job_id);
            auto& j = job_it->second;
            if (j.state == job_state::abandoned) {
                _jobs.erase(job_it);
            } else {
                --j.attempts; // a declined job was never started
                enqueue_front(j);
                dispatch(*j.function);
            }
            return;
        }
        case command::drain: {
            auto empty = decode_empty(body);
            if (auto* error = std::get_if<decode_error>(&empty))
                return malformed("worker", routing_id, error->reason);
            worker.draining = true;
            log().info("worker {} ({}) draining with {} job(s)", escaped(worker.name),
                       printable(routing_id), worker.held.size());
            return;
        }
        case command::heartbeat: {
            auto empty = decode_empty(body);
            if (auto* error = std::get_if<decode_error>(&empty))
                return malformed("worker", routing_id, error->reason);
            return;
        }
        case command::disconnect: {
            auto empty = decode_empty(body);
            if (auto* error = std::get_if<decode_error>(&empty))
                return malformed("worker", routing_id, error->reason);
            return remove_worker(it, "disconnected");
        }
        default:
            return malformed("worker", routing_id,
                             "command " + std::to_string(static_cast<int>(cmd)) +
                                 " not valid from a worker");
        }
    }

    /// One record of a worker's BATCH: a REPLY or an ERROR (docs/protocol.md §3a).
    void on_worker_record(worker_record& worker, const batch_record& record) {
        if (record.cmd == command::reply) {
            auto reply = decode_worker_reply(record.frames);
            if (auto* error = std::get_if<decode_error>(&reply))
                return malformed("worker", worker.routing_id, "BATCH REPLY: " + error->reason);
            return on_worker_reply(worker, std::get<worker_reply>(reply), nullptr);
        }
        if (record.cmd == command::error) {
            auto error_message = decode_worker_error(record.frames);
            if (auto* error = std::get_if<decode_error>(&error_message))
                return malformed("worker", worker.routing_id, "BATCH ERROR: " + error->reason);
            return on_worker_error(worker, std::get<worker_error>(error_message));
        }
        malformed("worker", worker.routing_id,
                  "BATCH record " + std::string(to_string(record.cmd)) +
                      " not valid from a worker");
    }

    /// `frame`: the payload's own frame when the REPLY came alone (forwarded without a copy), null
    /// when it came in a BATCH (`result.payload` views it).
    void on_worker_reply(worker_record& worker, const worker_reply& result, zmq::message_t* frame) {
        on_worker_result(worker, result.job_id, [&](job& j) {
            send_client_reply(*j.client, j.correlation_id, worker.name, j.attempts, result.payload,
                              frame);
            bump(counters.replies);
            ++j.function->done;
        });
    }

    void on_worker_error(worker_record& worker, const worker_error& failure) {
        on_worker_result(worker, failure.job_id, [&](job& j) {
            send_client_error(*j.client, j.correlation_id, failure.code, failure.type,
                              failure.message, worker.name, j.attempts);
            note_failure(*j.function, failure.code);
            ++worker.failures;
        });
    }

    void on_ready(std::string_view routing_id, const worker_ready& ready_message,
                  clock_type::time_point now, bool mdp = false) {
        auto record = std::make_unique<worker_record>();
        record->routing_id = std::string(routing_id);
        record->mdp = mdp;
        record->name =
            ready_message.name.empty() ? printable(routing_id) : std::string(ready_message.name);
        record->slots = ready_message.slots;
        record->prefetch = ready_message.prefetch;
        record->last_seen = now;
        record->joined = now;
        record->host = peer_address(_frames.back());
        for (auto name : ready_message.functions) {
            auto function_it = _functions.find(name);
            if (function_it == _functions.end()) {
                auto function = std::make_unique<function_record>();
                function->name = std::string(name);
                function_it = _functions.emplace(function->name, std::move(function)).first;
            }
            auto* function = function_it->second.get();
            if (std::find(record->functions.begin(), record->functions.end(), function) !=
                record->functions.end())
                continue; // the same name twice
            record->functions.push_back(function);
            function->workers.push_back(record.get());
        }
        auto& worker = *record;
        _workers.emplace(worker.routing_id, std::move(record));
        bump(counters.workers_joined);
        set_gauge(counters.live_workers, _workers.size());
        log().info("worker {} joined: {} slot(s), prefetch {}, {} function(s), from {}",
                   escaped(worker.name), worker.slots, worker.prefetch, worker.functions.size(),
                   worker.host.empty() ? "(unknown address)" : escaped(worker.host));
        send_heartbeat_to_worker(worker, now);
        dispatch_to(worker);
    }

    /// The address of the peer that sent `frame` ("Peer-Address" metadata; empty when unknown).
    static std::string peer_address(zmq::message_t& frame) {
        try {
            const char* address = frame.gets("Peer-Address");
            return address ? std::string(address) : std::string();
        } catch (const zmq::error_t&) {
            return {};
        }
    }

    std::unordered_map<std::uint64_t, job>::iterator find_held(worker_record& worker,
                                                               std::uint64_t job_id) {
        if (std::find(worker.held.begin(), worker.held.end(), job_id) == worker.held.end())
            return _jobs.end();
        auto it = _jobs.find(job_id);
        return it != _jobs.end() && it->second.worker == &worker ? it : _jobs.end();
    }

    void release(worker_record& worker, std::uint64_t job_id) {
        auto it = std::find(worker.held.begin(), worker.held.end(), job_id);
        if (it != worker.held.end()) {
            *it = worker.held.back();
            worker.held.pop_back();
        }
        bump(counters.running_jobs, static_cast<std::uint64_t>(-1));
    }

    /// A worker answered a job. A REPLY or ERROR for a job the worker does not hold is dropped and
    /// counted: a worker cannot complete another worker's job, nor one taken back from it.
    template <typename Deliver>
    void on_worker_result(worker_record& worker, std::uint64_t job_id, Deliver&& deliver) {
        auto it = find_held(worker, job_id);
        if (it == _jobs.end()) return late_reply(worker, "REPLY or ERROR", job_id);
        release(worker, job_id);
        auto& j = it->second;
        ++worker.jobs_done;
        j.function->service_time.observe(clock_type::now() - j.dispatched_at);
        if (j.state == job_state::running && j.client) {
            deliver(j);
            j.client->pending.erase(j.correlation_id);
        }
        auto* function = j.function;
        _jobs.erase(it);
        dispatch_to(worker);
        if (worker.has_credit()) return;
        dispatch(*function);
    }

    void remove_worker(string_map<std::unique_ptr<worker_record>>::iterator it,
                       std::string_view why) {
        auto& worker = *it->second;
        bump(counters.workers_lost);
        // A worker that says goodbye is news; one that vanished is a warning.
        log().log(why == "disconnected" ? spdlog::level::info : spdlog::level::warn,
                  "worker {} {} holding {} job(s)", escaped(worker.name), why, worker.held.size());
        for (auto* function : worker.functions)
            std::erase(function->workers, &worker);
        for (auto job_id : worker.outbox_jobs) // given this turn, never sent: not an attempt
            if (auto job_it = _jobs.find(job_id); job_it != _jobs.end()) --job_it->second.attempts;
        std::vector<function_record*> touched;
        for (auto job_id : worker.held) {
            auto job_it = _jobs.find(job_id);
            bump(counters.running_jobs, static_cast<std::uint64_t>(-1));
            if (job_it == _jobs.end()) continue;
            auto& j = job_it->second;
            if (j.state == job_state::abandoned || !j.client) {
                _jobs.erase(job_it);
                continue;
            }
            if (j.attempts >= j.max_attempts) {
                note_failure(*j.function, error_code::worker_lost);
                send_client_error(*j.client, j.correlation_id, error_code::worker_lost, "",
                                  "'" + j.function->name + "' lost its worker " +
                                      std::to_string(j.attempts) + " time(s)",
                                  worker.name, j.attempts);
                j.client->pending.erase(j.correlation_id);
                _jobs.erase(job_it);
                continue;
            }
            bump(counters.requeued);
            enqueue_front(j);
            touched.push_back(j.function);
        }
        if (!worker.held.empty())
            log().info("requeued {} job(s) of worker {}", touched.size(), escaped(worker.name));
        discard_outbox(worker);
        _workers.erase(it);
        set_gauge(counters.live_workers, _workers.size());
        std::sort(touched.begin(), touched.end());
        touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
        for (auto* function : touched)
            dispatch(*function);
    }

    // ---- 7/MDP peers (docs/interop.md)
    // -------------------------------------------------------------

    /// An MDP/Client REQUEST becomes a call like a deferq client's, with a correlation id the
    /// broker picks (MDP has none) and the broker's MDP deadline. `mmi.*` follows 8/MMI.
    void on_mdp_client_message(std::string_view routing_id, std::span<const zmq::message_t> body) {
        auto decoded = mdp::decode_client_request(body, _options.limits);
        if (auto* error = std::get_if<decode_error>(&decoded))
            return malformed("client", routing_id, "MDP: " + error->reason);
        const auto& request = std::get<mdp::client_request>(decoded);
        auto now = clock_type::now();
        auto& client = touch_mdp_client(routing_id, now);
        if (request.service.starts_with("mmi."))
            return on_mdp_service_request(client, request, now);
        auto correlation_id = client.mdp->next_correlation_id++;
        client.mdp->services.emplace(correlation_id, request.service);
        if (request.body_frames != 1) {
            bump(counters.requests);
            return send_client_error(client, correlation_id, error_code::bad_arguments, "",
                                     "a call carries exactly one body frame (the msgpack argument "
                                     "array), got " +
                                         std::to_string(request.body_frames),
                                     "", 0);
        }
        auto timeout_ms = std::clamp<std::int64_t>(_options.mdp_timeout.count(), 0, UINT32_MAX);
        auto& payload = _frames[request.body_index + 1]; // +1: the routing id frame
        on_request(client,
                   client_request{correlation_id,
                                  request.service,
                                  {.timeout_ms = static_cast<std::uint32_t>(timeout_ms)},
                                  request.body_index,
                                  {}},
                   std::move(payload), now);
    }

    client_record& touch_mdp_client(std::string_view routing_id, clock_type::time_point now) {
        auto it = _mdp_clients.find(routing_id);
        if (it == _mdp_clients.end()) {
            auto record = std::make_unique<client_record>();
            record->routing_id = std::string(routing_id);
            record->mdp = std::make_unique<mdp::client_calls>();
            it = _mdp_clients.emplace(record->routing_id, std::move(record)).first;
        }
        it->second->last_seen = now;
        return *it->second;
    }

    /// 8/MMI for MDP clients: `mmi.service` takes the service name as its body and answers "200" or
    /// "404"; `mmi.status` answers the msgpack map of docs/protocol.md §7; any other `mmi.` name
    /// answers "501".
    void on_mdp_service_request(client_record& client, const mdp::client_request& request,
                                clock_type::time_point now) {
        bump(counters.requests);
        mdp::begin_client_reply(_out, client.routing_id, request.service);
        if (request.service == "mmi.service") {
            auto it = _functions.find(view(_frames[request.body_index + 1])); // +1: routing id
            _out.push_back(string_frame(
                it != _functions.end() && !it->second->workers.empty() ? "200" : "404"));
        } else if (request.service == "mmi.status") {
            auto packed = pack_status(build_status(now));
            _out.push_back(zmq::message_t(packed.data(), packed.size()));
        } else {
            _out.push_back(string_frame("501"));
        }
        send_to_client(client);
    }

    /// The service of an MDP client's call, for its REPLY; forgets it (each call ends once).
    std::string take_mdp_service(client_record& client, std::uint64_t correlation_id) {
        auto node = client.mdp->services.extract(correlation_id);
        return node ? std::move(node.mapped()) : std::string{};
    }

    void send_mdp_client_reply(client_record& client, std::uint64_t correlation_id,
                               zmq::message_t&& payload) {
        mdp::begin_client_reply(_out, client.routing_id, take_mdp_service(client, correlation_id));
        _out.push_back(std::move(payload));
        send_to_client(client);
    }

    /// 7/MDP has no error frames: a failed call's REPLY carries four body frames, ["error"] [code
    /// name] [message] [exception type], where a result always has exactly one.
    void send_mdp_client_error(client_record& client, std::uint64_t correlation_id, error_code code,
                               std::string_view type, std::string_view message) {
        mdp::begin_client_reply(_out, client.routing_id, take_mdp_service(client, correlation_id));
        mdp::append_error_body(_out, code, message, type);
        send_to_client(client);
    }

    /// Forgets MDP clients that wait for nothing and were silent for interval × liveness. An MDP
    /// client sends no heartbeats, so one that waits for a reply is kept however long the job takes
    /// (its calls have the MDP deadline).
    void expire_mdp_clients(clock_type::time_point now) {
        auto expiry = _options.heartbeat_interval * _options.liveness;
        std::erase_if(_mdp_clients, [&](const auto& entry) {
            return entry.second->pending.empty() && now - entry.second->last_seen > expiry;
        });
    }

    /// An MDP/Worker command. A worker record of 1 slot and no prefetch serves its one service like
    /// any worker's; REQUEST's client address frame is the job id, which the REPLY brings back.
    void on_mdp_worker_message(std::string_view routing_id, std::span<const zmq::message_t> body) {
        auto it = _workers.find(routing_id);
        bool registered = it != _workers.end();
        if (registered && !it->second->mdp)
            return malformed("worker", routing_id, "MDPW01 message from a deferq worker");
        auto decoded = mdp::decode_worker_message(body, _options.limits);
        if (auto* error = std::get_if<decode_error>(&decoded)) {
            malformed("worker", routing_id, "MDP: " + error->reason);
            // 7/MDP: the broker SHOULD treat a peer that sends invalid messages as invalid.
            // Removing it requeues its job, which would otherwise wait for a REPLY that never
            // comes.
            if (registered) drop_mdp_worker(it, "sent a malformed message");
            return;
        }
        const auto& message = std::get<mdp::worker_message>(decoded);
        auto now = clock_type::now();
        if (message.cmd == mdp::worker_command::ready) {
            if (registered) {
                // 7/MDP: the broker MUST answer a valid but unexpected command with DISCONNECT.
                malformed("worker", routing_id, "MDP: second READY");
                return drop_mdp_worker(it, "sent a second READY");
            }
            if (message.service.starts_with("mmi.")) {
                // 8/MMI: the broker MUST disconnect workers that register in the mmi. namespace.
                malformed("worker", routing_id, "MDP: READY for a service in mmi.");
                return send_mdp_disconnect(routing_id);
            }
            std::string name = "mdp-" + printable(routing_id);
            return on_ready(routing_id, worker_ready{name, 1, 0, {message.service}}, now, true);
        }
        if (!registered) {
            // Expired, or this broker restarted: DISCONNECT makes it reconnect and send READY.
            if (message.cmd == mdp::worker_command::reply) bump(counters.late_replies);
            if (message.cmd != mdp::worker_command::disconnect) send_mdp_disconnect(routing_id);
            return;
        }
        auto& worker = *it->second;
        worker.last_seen = now;
        switch (message.cmd) {
        case mdp::worker_command::reply:
            return on_worker_result(worker, message.job_id, [&](job& j) {
                // The first body frame is the result; an empty body is an empty result; further
                // frames are dropped (a deferq reply has one payload frame).
                zmq::message_t result;
                if (message.body_frames > 0) result = std::move(_frames[message.body_index + 1]);
                if (message.body_frames > 1)
                    log().debug("MDP worker {} replied with {} body frames: kept the first",
                                escaped(worker.name), message.body_frames);
                send_client_reply(*j.client, j.correlation_id, worker.name, j.attempts,
                                  view(result), &result);
                bump(counters.replies);
                ++j.function->done;
            });
        case mdp::worker_command::disconnect:
            return remove_worker(it, "disconnected");
        default: // HEARTBEAT: seen; READY and REQUEST are handled above
            return;
        }
    }

    void drop_mdp_worker(string_map<std::unique_ptr<worker_record>>::iterator it,
                         std::string_view why) {
        send_mdp_disconnect(it->second->routing_id);
        remove_worker(it, why);
    }

    void send_mdp_disconnect(std::string_view routing_id) {
        mdp::begin_worker_command(_out, routing_id, mdp::worker_command::disconnect);
        send_frames(_workers_socket, _out);
    }

    // ---- the broker's own services (mmi.*) ------------------------------------------------------

    /// Answers `mmi.*` requests itself: `mmi.status` (a msgpack map, docs/protocol.md §7) and
    /// `mmi.service` (is a function offered: "200" or "404", as 8/MMI).
    /// `payload`: the request's arguments (`request.payload` may view a frame moved into it).
    void on_service_request(client_record& client, const client_request& request,
                            const zmq::message_t& payload, clock_type::time_point now) {
        msgpack::sbuffer buffer;
        msgpack::packer<msgpack::sbuffer> out(buffer);
        if (request.function == "mmi.status") {
            auto packed = pack_status(build_status(now));
            buffer.write(packed.data(), packed.size());
        } else if (request.function == "mmi.service") {
            std::string asked;
            msgpack::object_handle arguments;
            try {
                arguments = codec::unpack(payload);
            } catch (const codec::decode_failure& e) {
                // The one payload the broker reads: undecodable msgpack is a malformed message.
                // The caller still gets its answer; the client may be forgotten just after.
                send_client_error(client, request.correlation_id, error_code::bad_arguments, "",
                                  std::string("mmi.service(string): ") + e.what(), "", 0);
                return malformed("client", client.routing_id,
                                 std::string("mmi.service arguments: ") + e.what());
            }
            try {
                auto list = codec::convert<std::vector<std::string>>(arguments.get());
                if (list.size() != 1) throw codec::decode_failure("expected one function name");
                asked = list[0];
            } catch (const codec::decode_failure& e) {
                return send_client_error(client, request.correlation_id, error_code::bad_arguments,
                                         "", std::string("mmi.service(string): ") + e.what(), "",
                                         0);
            }
            auto it = _functions.find(asked);
            out.pack(it != _functions.end() && !it->second->workers.empty() ? "200" : "404");
        } else {
            return send_client_error(
                client, request.correlation_id, error_code::no_such_function, "",
                "the broker has no service '" + std::string(request.function) + "'", "", 0);
        }
        auto reply = codec::to_message(std::move(buffer));
        send_client_reply(client, request.correlation_id, "broker", 0, view(reply), &reply);
    }

    // ---- introspection (mmi.status, the published snapshot) ----------------------------------

    /// Everything mmi.status reports, at `now`. Costs O(workers + functions + held jobs + clients):
    /// fine for a status request or a snapshot every few hundred ms, not for every message.
    broker_status build_status(clock_type::time_point now) {
        auto ms_since = [&](clock_type::time_point then) {
            return std::chrono::duration_cast<std::chrono::milliseconds>(now - then).count();
        };
        broker_status status;
        status.instance = _instance;
        status.uptime_ms = ms_since(_started);
        std::pair<const char*, const std::atomic<std::uint64_t>*> fields[] = {
            {"requests", &counters.requests},
            {"replies", &counters.replies},
            {"errors", &counters.errors},
            {"duplicate_requests", &counters.duplicate_requests},
            {"cancels", &counters.cancels},
            {"timeouts", &counters.timeouts},
            {"overloaded", &counters.overloaded},
            {"requeued", &counters.requeued},
            {"workers_lost", &counters.workers_lost},
            {"workers_joined", &counters.workers_joined},
            {"clients_expired", &counters.clients_expired},
            {"late_replies", &counters.late_replies},
            {"malformed_messages", &counters.malformed_messages},
            {"undeliverable", &counters.undeliverable},
            {"unauthorized", &counters.unauthorized},
            {"peers_disconnected", &counters.peers_disconnected},
            {"ignored_messages", &counters.ignored_messages},
            {"queued_jobs", &counters.queued_jobs},
            {"running_jobs", &counters.running_jobs},
            {"live_workers", &counters.live_workers},
            {"live_clients", &counters.live_clients}};
        for (auto& [name, value] : fields)
            status.counters.emplace_back(name, value->load(std::memory_order_relaxed));
        status.rates = rates(now);

        std::unordered_map<const function_record*, std::uint64_t> in_flight;
        for (auto& [id, worker] : _workers) {
            auto& out = status.workers.emplace_back();
            out.id = printable(worker->routing_id);
            out.name = worker->name;
            out.host = worker->host;
            out.slots = worker->slots;
            out.prefetch = worker->prefetch;
            out.held = worker->held.size();
            out.busy = std::min<std::uint64_t>(worker->held.size(), worker->slots);
            out.jobs_done = worker->jobs_done;
            out.failures = worker->failures;
            out.draining = worker->draining;
            out.last_seen_ms = ms_since(worker->last_seen);
            out.connected_ms = ms_since(worker->joined);
            for (auto* function : worker->functions)
                out.functions.push_back(function->name);
            for (auto job_id : worker->held)
                if (auto it = _jobs.find(job_id); it != _jobs.end())
                    ++in_flight[it->second.function];
        }
        std::sort(status.workers.begin(), status.workers.end(), [](const auto& a, const auto& b) {
            return std::tie(a.name, a.id) < std::tie(b.name, b.id);
        });
        for (auto& [name, function] : _functions) {
            auto& out = status.functions.emplace_back();
            out.name = name;
            out.queued = function->queued;
            out.in_flight = in_flight[function.get()];
            out.workers = function->workers.size();
            if (function->queued > 0) {
                auto oldest = now;
                function->queue.for_each_level_front(
                    [this](std::uint64_t id) { return is_queued(id); },
                    [&](std::uint64_t id) {
                        oldest = std::min(oldest, _jobs.find(id)->second.queued_since);
                    });
                out.oldest_queued_ms = ms_since(oldest);
            }
            out.done = function->done;
            out.failed_by_code = function->failed_by_code;
            for (auto count : function->failed_by_code)
                out.failed += count;
            out.queue_wait = function->queue_wait;
            out.service_time = function->service_time;
        }
        std::sort(status.functions.begin(), status.functions.end(),
                  [](const auto& a, const auto& b) { return a.name < b.name; });
        for (auto& [id, client] : _clients)
            status.clients.push_back(
                {printable(id), client->pending.size(), ms_since(client->last_seen)});
        std::sort(status.clients.begin(), status.clients.end(), [](const auto& a, const auto& b) {
            return std::tie(b.pending, a.id) < std::tie(a.pending, b.id);
        });
        if (status.clients.size() > broker_status::max_listed_clients)
            status.clients.resize(broker_status::max_listed_clients);
        return status;
    }

    /// Counts a call of `function` that failed with `code` (for mmi.status and /metrics).
    static void note_failure(function_record& function, error_code code) {
        auto index = static_cast<std::size_t>(code);
        if (index < function.failed_by_code.size()) ++function.failed_by_code[index];
    }

    /// Once per loop turn: marks the loop alive, samples the counters for rates (every second) and
    /// publishes a snapshot for other threads (every snapshot_interval, when set).
    void observe(clock_type::time_point now) {
        _loop_activity.store(now.time_since_epoch().count(), std::memory_order_relaxed);
        if (now >= _next_rate_sample) {
            _rate_samples[_rate_next % _rate_samples.size()] = {
                now, counters.requests.load(std::memory_order_relaxed),
                counters.replies.load(std::memory_order_relaxed),
                counters.errors.load(std::memory_order_relaxed)};
            ++_rate_next;
            _next_rate_sample = now + std::chrono::seconds{1};
        }
        if (_options.snapshot_interval.count() > 0 && now >= _next_snapshot) {
            auto fresh = std::make_shared<const broker_status>(build_status(now));
            std::lock_guard lock(_snapshot_mutex);
            _snapshot = std::move(fresh);
            _next_snapshot = now + _options.snapshot_interval;
        }
    }

    /// Requests, replies and errors per second since the oldest sample (at most ~10 s ago).
    rate_status rates(clock_type::time_point now) const {
        if (_rate_next == 0) return {};
        auto oldest_index =
            _rate_next > _rate_samples.size() ? _rate_next % _rate_samples.size() : 0;
        const auto& oldest = _rate_samples[oldest_index];
        double seconds = std::chrono::duration<double>(now - oldest.at).count();
        if (seconds < 0.001) return {};
        auto per_second = [&](const std::atomic<std::uint64_t>& counter, std::uint64_t then) {
            return static_cast<double>(counter.load(std::memory_order_relaxed) - then) / seconds;
        };
        return {seconds, per_second(counters.requests, oldest.requests),
                per_second(counters.replies, oldest.replies),
                per_second(counters.errors, oldest.errors)};
    }

    // ---- dispatch
    // ---------------------------------------------------------------------------------

    void enqueue_back(job& j) {
        j.queued_since = clock_type::now();
        j.state = job_state::queued;
        j.worker = nullptr;
        j.function->queue.push_back(j.priority, j.id);
        ++j.function->queued;
        bump(counters.queued_jobs);
    }

    void enqueue_front(job& j) {
        j.queued_since = clock_type::now();
        j.state = job_state::queued;
        j.worker = nullptr;
        j.function->queue.push_front(j.priority, j.id);
        ++j.function->queued;
        bump(counters.queued_jobs);
    }

    bool is_queued(std::uint64_t job_id) const {
        auto it = _jobs.find(job_id);
        return it != _jobs.end() && it->second.state == job_state::queued;
    }

    /// The worker to give a job of this function: has credit, most free slots, then least recently
    /// used.
    worker_record* choose_worker(function_record& function) {
        worker_record* best = nullptr;
        for (auto* worker : function.workers) {
            if (!worker->has_credit()) continue;
            if (!best || worker->free_slots() > best->free_slots() ||
                (worker->free_slots() == best->free_slots() &&
                 worker->last_dispatch < best->last_dispatch))
                best = worker;
        }
        return best;
    }

    /// Gives queued jobs of one function to its workers while any has credit.
    void dispatch(function_record& function) {
        while (function.queued > 0) {
            auto* worker = choose_worker(function);
            if (!worker) return;
            auto job_id = function.queue.front([this](std::uint64_t id) { return is_queued(id); });
            if (!job_id) return;
            function.queue.pop_front();
            send_job(*worker, _jobs.find(*job_id)->second);
        }
    }

    /// Gives a worker with credit the best queued jobs among its functions (priority, then age).
    void dispatch_to(worker_record& worker) {
        while (worker.has_credit()) {
            function_record* best = nullptr;
            std::uint64_t best_id = 0;
            std::uint8_t best_priority = 0;
            for (auto* function : worker.functions) {
                if (function->queued == 0) continue;
                auto id = function->queue.front(
                    [this](std::uint64_t job_id) { return is_queued(job_id); });
                if (!id) continue;
                auto priority = function->queue.front_priority();
                if (!best || priority > best_priority ||
                    (priority == best_priority && *id < best_id)) {
                    best = function;
                    best_id = *id;
                    best_priority = priority;
                }
            }
            if (!best) return;
            // Another worker with more free slots should take it: spreads long jobs evenly.
            auto* preferred = choose_worker(*best);
            best->queue.pop_front();
            send_job(preferred ? *preferred : worker, _jobs.find(best_id)->second);
        }
    }

    void send_job(worker_record& worker, job& j) {
        --j.function->queued;
        bump(counters.queued_jobs, static_cast<std::uint64_t>(-1));
        auto now = clock_type::now();
        if (j.has_deadline && j.deadline <= now) {
            // The broker SHALL NOT dispatch a job whose deadline passed.
            fail_job(j, error_code::timeout, "deadline passed while queued");
            return;
        }
        j.function->queue_wait.observe(now - j.queued_since);
        j.dispatched_at = now;
        ++j.attempts;
        j.state = job_state::running;
        j.worker = &worker;
        worker.held.push_back(j.id);
        worker.last_dispatch = ++_dispatch_sequence;
        bump(counters.running_jobs);
        std::uint32_t remaining_ms = 0;
        if (j.has_deadline)
            remaining_ms = static_cast<std::uint32_t>(std::max<std::int64_t>(
                1,
                std::chrono::duration_cast<std::chrono::milliseconds>(j.deadline - now).count()));
        if (!worker.mdp && j.payload.size() <= max_batched_payload) {
            auto& out = worker_outbox(worker);
            out.begin(command::request, 5);
            out.u64(j.id);
            out.bytes(j.function->name);
            out.u32(remaining_ms);
            out.u32(j.attempts);
            out.bytes(view(j.payload));
            worker.outbox_jobs.push_back(j.id);
            return;
        }
        flush_worker(worker); // messages to one worker keep their order
        if (worker.mdp) {
            mdp::begin_worker_request(_out, worker.routing_id, j.id); // no deadline, no attempt
        } else {
            begin_message(_out, worker.routing_id, worker_protocol, command::request);
            _out.push_back(u64_frame(j.id));
            _out.push_back(string_frame(j.function->name));
            _out.push_back(u32_frame(remaining_ms));
            _out.push_back(u32_frame(j.attempts));
        }
        zmq::message_t payload;
        payload.copy(j.payload); // shares the buffer; the broker keeps it for a requeue
        _out.push_back(std::move(payload));
        if (!send_frames(_workers_socket, _out)) {
            // The worker is gone at the socket level: take the job back (not an attempt) and stop
            // using the worker; the next tick removes it. Never removed here: callers hold
            // references.
            bump(counters.undeliverable);
            worker.unreachable = true;
            release(worker, j.id);
            --j.attempts;
            enqueue_front(j);
            return;
        }
        worker.last_sent = now;
    }

    /// Fails a job that is not running (queued or just popped) and forgets it.
    void fail_job(job& j, error_code code, std::string_view message) {
        if (code == error_code::timeout) bump(counters.timeouts);
        note_failure(*j.function, code);
        if (j.client) {
            send_client_error(*j.client, j.correlation_id, code, "", std::string(message), "",
                              j.attempts);
            j.client->pending.erase(j.correlation_id);
        }
        _jobs.erase(j.id);
    }

    // ---- time
    // ------------------------------------------------------------------------------------

    void expire_deadlines(clock_type::time_point now) {
        while (!_deadlines.empty() && _deadlines.top().deadline <= now) {
            auto [deadline, job_id] = _deadlines.top();
            _deadlines.pop();
            auto it = _jobs.find(job_id);
            if (it == _jobs.end() || !it->second.client) continue;
            auto& j = it->second;
            bump(counters.timeouts);
            note_failure(*j.function, error_code::timeout);
            send_client_error(*j.client, j.correlation_id, error_code::timeout, "",
                              j.state == job_state::queued
                                  ? "deadline passed while queued"
                                  : "deadline passed while running on " + j.worker->name,
                              j.worker ? j.worker->name : "", j.attempts);
            j.client->pending.erase(j.correlation_id);
            abandon(it, error_code::timeout);
        }
    }

    void tick(clock_type::time_point now) {
        auto expiry = _options.heartbeat_interval * _options.liveness;
        for (auto it = _workers.begin(); it != _workers.end();) {
            auto current = it++;
            auto& worker = *current->second;
            if (worker.unreachable || now - worker.last_seen > expiry) {
                remove_worker(current,
                              worker.unreachable ? "unreachable" : "expired (no heartbeat)");
                continue;
            }
            if (now - worker.last_sent >= _options.heartbeat_interval)
                send_heartbeat_to_worker(worker, now);
        }
        for (auto it = _clients.begin(); it != _clients.end();) {
            auto current = it++;
            auto& client = *current->second;
            if (now - client.last_seen > expiry) {
                bump(counters.clients_expired);
                // A client that was only stalled must learn that its calls were dropped: DISCONNECT
                // makes it reconnect and resend them (docs/protocol.md §2). A dead one never reads
                // it.
                flush_client(client);
                send_disconnect(_clients_socket, client.routing_id, client_protocol);
                forget_client(current, "expired (no heartbeat)");
                continue;
            }
            if (now - client.last_sent >= _options.heartbeat_interval)
                send_heartbeat_to_client(client, now);
        }
        expire_mdp_clients(now);
        // Forget functions nobody offers or waits for; compact queues full of stale ids.
        for (auto it = _functions.begin(); it != _functions.end();) {
            auto& function = *it->second;
            if (function.workers.empty() && function.queued == 0) {
                it = _functions.erase(it);
                continue;
            }
            if (function.queue.entries() > 2 * function.queued + 1024)
                function.queue.compact([this](std::uint64_t id) { return is_queued(id); });
            ++it;
        }
        prune_offenders(_client_offenders, now);
        prune_offenders(_worker_offenders, now);
    }

    // ---- sending
    // ----------------------------------------------------------------------------------

    // What one turn of the loop sends a peer goes into its outbox, sent as one BATCH at the end of
    // the turn (docs/protocol.md §3a). A message sent in its single form flushes the peer's outbox
    // first, so that messages to one peer keep their order.

    protocol::batch_writer& worker_outbox(worker_record& worker) {
        if (worker.outbox.full()) flush_worker(worker);
        if (worker.outbox.empty()) _dirty_workers.push_back(&worker);
        return worker.outbox;
    }

    protocol::batch_writer& client_outbox(client_record& client) {
        if (client.outbox.full()) flush_client(client);
        if (client.outbox.empty()) _dirty_clients.push_back(&client);
        return client.outbox;
    }

    /// Sends a worker's outbox. If the worker is gone at the socket level, its jobs in the batch
    /// are taken back (not an attempt) and dispatched again by flush_all().
    void flush_worker(worker_record& worker) {
        if (worker.outbox.empty()) return;
        std::erase(_dirty_workers, &worker);
        if (send_batch(_workers_socket, _out, worker.routing_id, worker_protocol, worker.outbox)) {
            worker.last_sent = clock_type::now();
        } else {
            bump(counters.undeliverable);
            worker.unreachable = true; // the next tick removes it
            for (auto job_id : worker.outbox_jobs) {
                auto it = _jobs.find(job_id);
                if (it == _jobs.end() || it->second.worker != &worker) continue;
                auto& j = it->second;
                release(worker, job_id);
                if (j.state == job_state::abandoned) {
                    _jobs.erase(it);
                    continue;
                }
                --j.attempts;
                enqueue_front(j);
                _redispatch.push_back(j.function);
            }
        }
        worker.outbox_jobs.clear();
    }

    void flush_client(client_record& client) {
        if (client.outbox.empty()) return;
        std::erase(_dirty_clients, &client);
        if (!send_batch(_clients_socket, _out, client.routing_id, client_protocol, client.outbox))
            bump(counters.undeliverable);
        client.last_sent = clock_type::now();
    }

    /// The end of a turn: every outbox goes out; jobs taken back from unreachable workers are
    /// dispatched again (which may fill other outboxes).
    void flush_all() {
        while (!_dirty_workers.empty() || !_dirty_clients.empty() || !_redispatch.empty()) {
            while (!_dirty_workers.empty())
                flush_worker(*_dirty_workers.back());
            while (!_dirty_clients.empty())
                flush_client(*_dirty_clients.back());
            auto functions = std::move(_redispatch);
            _redispatch.clear();
            std::sort(functions.begin(), functions.end());
            functions.erase(std::unique(functions.begin(), functions.end()), functions.end());
            for (auto* function : functions)
                dispatch(*function);
        }
    }

    /// A peer record goes away: what it had not been sent is dropped with it.
    void discard_outbox(worker_record& worker) {
        if (!worker.outbox.empty()) std::erase(_dirty_workers, &worker);
        worker.outbox.clear();
        worker.outbox_jobs.clear();
    }
    void discard_outbox(client_record& client) {
        if (!client.outbox.empty()) std::erase(_dirty_clients, &client);
        client.outbox.clear();
    }

    void send_to_client(client_record& client) {
        if (!send_frames(_clients_socket, _out)) bump(counters.undeliverable);
        client.last_sent = clock_type::now();
    }

    /// `frame`: the payload as a frame of its own when there is one (sent without a copy when the
    /// reply goes alone); else the payload bytes are copied.
    void send_client_reply(client_record& client, std::uint64_t correlation_id,
                           std::string_view worker, std::uint32_t attempt, std::string_view payload,
                           zmq::message_t* frame = nullptr) {
        if (client.mdp)
            return send_mdp_client_reply(client, correlation_id,
                                         frame ? std::move(*frame)
                                               : zmq::message_t(payload.data(), payload.size()));
        if (payload.size() <= max_batched_payload) {
            auto& out = client_outbox(client);
            out.begin(command::reply, 4);
            out.u64(correlation_id);
            out.bytes(worker);
            out.u32(attempt);
            out.bytes(payload);
            return;
        }
        flush_client(client);
        begin_message(_out, client.routing_id, client_protocol, command::reply);
        _out.push_back(u64_frame(correlation_id));
        _out.push_back(string_frame(worker));
        _out.push_back(u32_frame(attempt));
        _out.push_back(frame ? std::move(*frame) : zmq::message_t(payload.data(), payload.size()));
        send_to_client(client);
    }

    void send_client_error(client_record& client, std::uint64_t correlation_id, error_code code,
                           std::string_view type, std::string_view message, std::string_view worker,
                           std::uint32_t attempts) {
        bump(counters.errors);
        if (client.mdp) return send_mdp_client_error(client, correlation_id, code, type, message);
        auto& out = client_outbox(client);
        out.begin(command::error, 6);
        out.u64(correlation_id);
        out.u8(static_cast<std::uint8_t>(code));
        out.bytes(type);
        out.bytes(message);
        out.bytes(worker);
        out.u32(attempts);
    }

    void send_client_progress(client_record& client, std::uint64_t correlation_id,
                              const progress_update& update) {
        if (client.mdp) return; // 7/MDP has no progress
        flush_client(client);
        begin_message(_out, client.routing_id, client_protocol, command::progress);
        _out.push_back(u64_frame(correlation_id));
        _out.push_back(f64_frame(update.fraction));
        _out.push_back(string_frame(update.note));
        send_to_client(client);
    }

    void append_heartbeat_body() {
        _out.push_back(u64_frame(_instance));
        _out.push_back(u32_frame(static_cast<std::uint32_t>(_options.heartbeat_interval.count())));
        _out.push_back(u32_frame(_options.liveness));
    }

    void send_heartbeat_to_client(client_record& client, clock_type::time_point now) {
        flush_client(client);
        begin_message(_out, client.routing_id, client_protocol, command::heartbeat);
        append_heartbeat_body();
        send_to_client(client);
        client.last_sent = now;
    }

    void send_heartbeat_to_worker(worker_record& worker, clock_type::time_point now) {
        flush_worker(worker);
        if (worker.mdp) {
            mdp::begin_worker_command(_out, worker.routing_id, mdp::worker_command::heartbeat);
        } else {
            begin_message(_out, worker.routing_id, worker_protocol, command::heartbeat);
            append_heartbeat_body();
        }
        if (!send_frames(_workers_socket, _out)) bump(counters.undeliverable);
        worker.last_sent = now;
    }

    void send_worker_cancel(worker_record& worker, std::uint64_t job_id) {
        if (worker.mdp) return; // 7/MDP has no cancel: the broker drops the late REPLY
        auto& out = worker_outbox(worker);
        out.begin(command::cancel, 1);
        out.u64(job_id);
    }

    void send_disconnect(zmq::socket_t& socket, std::string_view routing_id,
                         std::string_view protocol_id) {
        begin_message(_out, routing_id, protocol_id, command::disconnect);
        send_frames(socket, _out);
    }

    void shut_down() {
        flush_all();
        log().info("broker stopping: telling {} worker(s) and {} client(s)", _workers.size(),
                   _clients.size());
        for (auto& [id, worker] : _workers)
            if (worker->mdp)
                send_mdp_disconnect(id);
            else
                send_disconnect(_workers_socket, id, worker_protocol);
        for (auto& [id, client] : _clients)
            send_disconnect(_clients_socket, id, client_protocol);
    }

    broker_options _options;
    zmq::socket_t _clients_socket;
    zmq::socket_t _workers_socket;
    std::optional<zmq::socket_t> _zap_socket;
    std::uint64_t _instance;
    std::vector<zmq::message_t> _frames;        ///< the message being handled
    std::vector<zmq::message_t> _out;           ///< the message being built
    protocol::batch_reader _batch_in;           ///< the BATCH being handled
    std::vector<worker_record*> _dirty_workers; ///< outboxes to send at the end of the turn
    std::vector<client_record*> _dirty_clients;
    std::vector<function_record*> _redispatch; ///< jobs taken back from unreachable workers
    std::unordered_map<std::uint64_t, job> _jobs;
    string_map<std::unique_ptr<function_record>> _functions;
    string_map<std::unique_ptr<worker_record>> _workers;
    string_map<std::unique_ptr<client_record>> _clients;
    string_map<std::unique_ptr<client_record>> _mdp_clients; ///< 7/MDP clients (docs/interop.md)
    std::priority_queue<deadline_entry, std::vector<deadline_entry>, std::greater<>> _deadlines;
    std::uint64_t _next_job_id = (random_u64() >> 20) | 1; // never reuses ids across restarts
    std::uint64_t _dispatch_sequence = 0;
    string_map<offender_record> _client_offenders, _worker_offenders;
    clock_type::time_point _last_untracked_log{};
    clock_type::time_point _next_tick = clock_type::now();
    clock_type::time_point _started = clock_type::now();
    // Introspection: rate samples (one a second, the last 11), the published snapshot.
    struct rate_sample {
        clock_type::time_point at;
        std::uint64_t requests, replies, errors;
    };
    std::array<rate_sample, 11> _rate_samples{};
    std::size_t _rate_next = 0;
    clock_type::time_point _next_rate_sample{};
    clock_type::time_point _next_snapshot{};
    clock_type::time_point _last_limit_log{};
    mutable std::mutex _snapshot_mutex;
    std::shared_ptr<const broker_status> _snapshot; ///< written by the loop only
    std::atomic<clock_type::rep> _loop_activity{0};
};

Broker::Broker(zmq::context_t& context, broker_options options)
    : _impl(std::make_unique<broker_impl>(context, std::move(options))) {}
Broker::~Broker() = default;
void Broker::bind() {
    _impl->bind();
}
std::string Broker::client_endpoint() const {
    return _impl->_client_endpoint;
}
std::string Broker::in_process_client_endpoint() const {
    return _impl->_in_process_client_endpoint;
}
std::string Broker::worker_endpoint() const {
    return _impl->_worker_endpoint;
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
    return _impl->snapshot();
}
std::chrono::steady_clock::time_point Broker::last_loop_activity() const {
    return _impl->last_loop_activity();
}

} // namespace deferq
