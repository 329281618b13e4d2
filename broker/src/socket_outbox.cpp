#include "socket_outbox.hpp"

#include <algorithm>
#include <type_traits>
#include <utility>

namespace deferq::broker_detail {
namespace {

using protocol::max_batched_payload;

std::string_view protocol_of(side to) {
    return to == side::client ? protocol::client_protocol : protocol::worker_protocol;
}

} // namespace

socket_outbox::socket_outbox(zmq::socket_t& clients, zmq::socket_t& workers,
                             broker_counters& counters, heartbeat_message announcement)
    : _clients(clients), _workers(workers), _counters(counters), _announcement(announcement) {}

// ---- to workers -------------------------------------------------------------------------------

void socket_outbox::give_job(worker_record& worker, job& j, std::uint32_t remaining_ms) {
    const auto& dialect = *worker.dialect;
    job_message message{j.id, j.function->name, remaining_ms, j.attempts, j.payload};
    if (dialect.traits().batches && j.payload.size() <= max_batched_payload) {
        dialect.job_record(batch_of(worker), message);
        worker.output.jobs.push_back(j.id);
        return;
    }
    flush(worker); // messages to one worker keep their order
    dialect.job(_frames, worker.routing_id, message);
    if (!send(worker)) {
        // Gone at the socket level: the core takes the job back at the end of the turn (not an
        // attempt); meanwhile the worker is given nothing more.
        worker.output.undelivered.push_back(j.id);
        unreachable(worker);
    }
}

void socket_outbox::cancel(worker_record& worker, std::uint64_t job_id) {
    const auto& dialect = *worker.dialect;
    if (!dialect.traits().cancels) return; // the broker drops the late answer instead
    if (dialect.traits().batches) return dialect.cancel_record(batch_of(worker), job_id);
    flush(worker);
    dialect.cancel(_frames, worker.routing_id, job_id);
    send(worker);
}

void socket_outbox::heartbeat(worker_record& worker) {
    flush(worker);
    worker.dialect->heartbeat(_frames, worker.routing_id, side::worker, _announcement);
    send(worker);
}

void socket_outbox::disconnect(worker_record& worker) {
    flush(worker);
    disconnect(side::worker, worker.routing_id, *worker.dialect);
}

std::vector<std::uint64_t> socket_outbox::discard(worker_record& worker) {
    if (worker.output.dirty) std::erase(_dirty_workers, &worker);
    std::erase(_unreachable, &worker);
    auto unsent = std::move(worker.output.jobs);
    unsent.insert(unsent.end(), worker.output.undelivered.begin(), worker.output.undelivered.end());
    worker.output = {};
    return unsent;
}

// ---- to clients -------------------------------------------------------------------------------

void socket_outbox::reply(client_record& client, std::uint64_t correlation_id,
                          std::string_view function, std::string_view worker, std::uint32_t attempt,
                          std::string_view payload, zmq::message_t* frame) {
    const auto& dialect = *client.dialect;
    reply_message message{correlation_id, function, worker, attempt, payload, frame};
    if (dialect.traits().batches && payload.size() <= max_batched_payload)
        return dialect.reply_record(batch_of(client), message);
    flush(client);
    dialect.reply(_frames, client.routing_id, message);
    send(client);
}

void socket_outbox::error(client_record& client, std::uint64_t correlation_id,
                          std::string_view function, error_code code, std::string_view type,
                          std::string_view message, std::string_view worker,
                          std::uint32_t attempts) {
    bump(_counters.errors);
    const auto& dialect = *client.dialect;
    error_message failure{correlation_id, function, code, type, message, worker, attempts};
    if (dialect.traits().batches) return dialect.error_record(batch_of(client), failure);
    flush(client);
    dialect.error(_frames, client.routing_id, failure);
    send(client);
}

void socket_outbox::progress(client_record& client, std::uint64_t correlation_id,
                             const protocol::progress_update& update) {
    if (!client.dialect->traits().progress) return;
    flush(client);
    client.dialect->progress(_frames, client.routing_id, correlation_id, update);
    send(client);
}

void socket_outbox::heartbeat(client_record& client) {
    flush(client);
    client.dialect->heartbeat(_frames, client.routing_id, side::client, _announcement);
    send(client);
}

void socket_outbox::disconnect(client_record& client) {
    flush(client);
    disconnect(side::client, client.routing_id, *client.dialect);
}

void socket_outbox::discard(client_record& client) {
    if (client.output.dirty) std::erase(_dirty_clients, &client);
    client.output = {};
}

// ---- either side ------------------------------------------------------------------------------

void socket_outbox::disconnect(side to, std::string_view routing_id, const peer_dialect& dialect) {
    if (dialect.disconnect(_frames, routing_id, to)) [[maybe_unused]]
        auto sent = protocol::send_frames(socket(to), _frames);
}

void socket_outbox::flush() {
    while (!_dirty_workers.empty())
        flush(*_dirty_workers.back());
    while (!_dirty_clients.empty())
        flush(*_dirty_clients.back());
}

std::vector<worker_record*> socket_outbox::take_unreachable() {
    return std::exchange(_unreachable, {});
}

template <typename Record> protocol::batch_writer& socket_outbox::batch_of(Record& peer) {
    if (peer.output.batch.full()) flush(peer);
    if (!peer.output.dirty) {
        peer.output.dirty = true;
        if constexpr (std::is_same_v<Record, worker_record>)
            _dirty_workers.push_back(&peer);
        else
            _dirty_clients.push_back(&peer);
    }
    return peer.output.batch;
}

void socket_outbox::flush(worker_record& worker) {
    if (!worker.output.dirty) return;
    worker.output.dirty = false;
    std::erase(_dirty_workers, &worker);
    if (protocol::send_batch(_workers, _frames, worker.routing_id, protocol_of(side::worker),
                             worker.output.batch)) {
        worker.last_sent = _now;
        worker.output.jobs.clear();
        return;
    }
    bump(_counters.undeliverable);
    auto& undelivered = worker.output.undelivered;
    undelivered.insert(undelivered.end(), worker.output.jobs.begin(), worker.output.jobs.end());
    worker.output.jobs.clear();
    unreachable(worker);
}

void socket_outbox::flush(client_record& client) {
    if (!client.output.dirty) return;
    client.output.dirty = false;
    std::erase(_dirty_clients, &client);
    if (!protocol::send_batch(_clients, _frames, client.routing_id, protocol_of(side::client),
                              client.output.batch))
        bump(_counters.undeliverable);
    client.last_sent = _now;
}

bool socket_outbox::send(worker_record& worker) {
    worker.last_sent = _now;
    if (protocol::send_frames(_workers, _frames)) return true;
    bump(_counters.undeliverable);
    return false;
}

void socket_outbox::send(client_record& client) {
    client.last_sent = _now;
    if (!protocol::send_frames(_clients, _frames)) bump(_counters.undeliverable);
}

void socket_outbox::unreachable(worker_record& worker) {
    worker.unreachable = true; // no more jobs for it; the next tick removes it
    if (std::find(_unreachable.begin(), _unreachable.end(), &worker) == _unreachable.end())
        _unreachable.push_back(&worker);
}

} // namespace deferq::broker_detail
