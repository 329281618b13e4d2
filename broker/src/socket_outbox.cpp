#include "socket_outbox.hpp"

#include <algorithm>
#include <chrono>
#include <type_traits>
#include <utility>

namespace deferq::broker_detail {
namespace {

using protocol::max_batched_payload;
using protocol::send_outcome;

/// How long a DISCONNECT that found no room is tried again (a stalled client that wakes up
/// within it still learns that its calls were dropped), and how many are kept at most.
constexpr std::chrono::minutes parting_retry{10};
constexpr std::size_t max_partings = 10'000;

std::uint64_t size_of(const frame_list& frames) {
    std::uint64_t bytes = 0;
    for (const auto& frame : frames)
        bytes += frame.size();
    return bytes;
}

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
    job_message message{j.id,
                        j.function->name,
                        remaining_ms,
                        j.attempts,
                        j.payload,
                        j.client ? std::string_view(j.client->routing_id) : std::string_view{},
                        j.correlation_id};
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
    if (!client.held.messages.empty()) return; // a slow reader is sent what matters: results
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
    // The broker forgets the client: what it holds is moot (the client resends its calls when
    // it reads the DISCONNECT), and DISCONNECT goes first. A DISCONNECT that finds no room is
    // tried again: a stalled client must learn it when it wakes (docs/protocol.md §2).
    drop_held(client);
    if (!client.dialect->disconnect(_frames, client.routing_id, side::client)) return;
    if (protocol::try_send_frames(_clients, _frames) != send_outcome::would_block) return;
    if (_partings.size() == max_partings) {
        bump(_counters.undeliverable);
        _partings.pop_front();
    }
    _partings.push_back({std::move(_frames), _now + parting_retry});
    _frames.clear();
}

void socket_outbox::discard(client_record& client) {
    if (client.output.dirty) std::erase(_dirty_clients, &client);
    client.output = {};
    drop_held(client);
    if (client.held.listed) std::erase(_held_changes, &client);
    client.held.listed = false;
}

void socket_outbox::hold(client_record& client) {
    auto bytes = size_of(_frames);
    auto& held = client.held;
    if (held.messages.empty()) _holding.push_back(&client);
    held.messages.push_back(std::move(_frames));
    _frames.clear();
    bump(_counters.replies_held);
    held_changed(client, static_cast<std::int64_t>(bytes));
}

void socket_outbox::drop_held(client_record& client) {
    auto& held = client.held;
    if (held.messages.empty()) return;
    _counters.replies_dropped += held.messages.size();
    held.messages.clear();
    std::erase(_holding, &client);
    held_changed(client, -static_cast<std::int64_t>(held.bytes));
}

void socket_outbox::held_changed(client_record& client, std::int64_t bytes) {
    // The one place the three counts move: the client's, its tenant's, the broker's.
    client.held.bytes += static_cast<std::uint64_t>(bytes);
    if (client.tenant) client.tenant->reply_bytes += static_cast<std::uint64_t>(bytes);
    _held_bytes += static_cast<std::uint64_t>(bytes);
    if (std::exchange(client.held.listed, true)) return;
    _held_changes.push_back(&client);
}

void socket_outbox::send_held() {
    for (std::size_t i = 0; i < _holding.size();) {
        auto& client = *_holding[i];
        auto& held = client.held;
        auto outcome = send_outcome::sent;
        while (!held.messages.empty()) {
            auto& message = held.messages.front();
            auto bytes = size_of(message);
            outcome = protocol::try_send_frames(socket(client.endpoint), message);
            if (outcome != send_outcome::sent) break;
            held.messages.pop_front();
            client.last_sent = _now;
            held_changed(client, -static_cast<std::int64_t>(bytes));
        }
        if (outcome == send_outcome::gone) {
            bump(_counters.undeliverable);
            drop_held(client); // takes it off _holding
            continue;
        }
        if (held.messages.empty()) {
            _holding[i] = _holding.back();
            _holding.pop_back();
            continue;
        }
        ++i;
    }
    std::erase_if(_partings, [&](parting& part) {
        if (_now >= part.until) return true;
        return protocol::try_send_frames(_clients, part.frames) != send_outcome::would_block;
    });
}

std::vector<client_record*> socket_outbox::take_held_changes() {
    for (auto* client : _held_changes)
        client->held.listed = false;
    return std::exchange(_held_changes, {});
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
    protocol::begin_message(_frames, client.routing_id, protocol_of(client.endpoint),
                            protocol::command::batch);
    _frames.push_back(client.output.batch.take());
    send(client);
}

bool socket_outbox::send(worker_record& worker) {
    worker.last_sent = _now;
    if (protocol::send_frames(_workers, _frames)) return true;
    bump(_counters.undeliverable);
    return false;
}

void socket_outbox::send(client_record& client) {
    client.last_sent = _now;
    // Behind what is held already, so that messages to one client keep their order.
    if (!client.held.messages.empty()) return hold(client);
    switch (protocol::try_send_frames(socket(client.endpoint), _frames)) {
    case send_outcome::sent:
        return;
    case send_outcome::would_block:
        return hold(client);
    case send_outcome::gone:
        bump(_counters.undeliverable);
        return;
    }
}

void socket_outbox::unreachable(worker_record& worker) {
    worker.unreachable = true; // no more jobs for it; the next tick removes it
    if (std::find(_unreachable.begin(), _unreachable.end(), &worker) == _unreachable.end())
        _unreachable.push_back(&worker);
}

} // namespace deferq::broker_detail
