// What the broker's worker endpoint accepts (docs/protocol.md §3; 7/MDP workers: docs/interop.md):
// each message is validated, then handed to the core.

#include "broker_shell.hpp"
#include "core/log_text.hpp"
#include "peers/mdp.hpp"

#include "deferq/log.hpp"

#include <spdlog/spdlog.h>

namespace deferq::broker_detail {

using namespace protocol;

namespace {

/// The address of the peer that sent `frame` ("Peer-Address" metadata; empty when unknown).
std::string peer_address(zmq::message_t& frame) {
    try {
        const char* address = frame.gets("Peer-Address");
        return address ? std::string(address) : std::string();
    } catch (const zmq::error_t&) {
        return {};
    }
}

} // namespace

void broker_shell::on_worker_message(time_point now) {
    auto message = open_message(side::worker, now);
    if (!message) return;
    auto [routing_id, body, dialect, cmd] = *message;
    if (dialect == &mdp_dialect()) return on_mdp_worker_message(routing_id, body, now);

    auto* worker = _core.find_worker(routing_id);
    if (cmd == ready) {
        auto decoded = decode_worker_ready(body, _options.limits);
        if (auto* error = std::get_if<decode_error>(&decoded))
            return malformed(side::worker, routing_id, error->reason, now);
        if (worker) return malformed(side::worker, routing_id, "duplicate READY", now);
        const auto& announced = std::get<worker_ready>(decoded);
        _core.on_ready(routing_id, deferq_dialect(),
                       {announced.name, announced.slots, announced.prefetch, announced.functions,
                        peer_address(_frames.back())},
                       now);
        return;
    }
    if (!worker) return on_unregistered_worker(routing_id, cmd, body);
    if (worker->dialect != &deferq_dialect())
        return malformed(side::worker, routing_id, "DFQW01 message from an MDP worker", now);
    worker->last_seen = now;
    on_worker_command(*worker, cmd, body, now);
}

/// Not registered (expired, or this broker restarted): DISCONNECT tells it to start again.
void broker_shell::on_unregistered_worker(std::string_view routing_id, command cmd,
                                          std::span<const zmq::message_t> body) {
    if (cmd == command::reply || cmd == command::error) bump(counters.late_replies);
    if (cmd == command::batch && body.size() == 4 && !_batch_in.parse(view(body[3])))
        for (std::size_t i = 0; i < _batch_in.size(); ++i)
            if (auto record = _batch_in.record(i).cmd;
                record == command::reply || record == command::error)
                bump(counters.late_replies);
    if (cmd != command::disconnect) _out.disconnect(side::worker, routing_id, deferq_dialect());
}

void broker_shell::on_worker_command(worker_record& worker, command cmd,
                                     std::span<const zmq::message_t> body, time_point now) {
    const auto& routing_id = worker.routing_id;
    switch (cmd) {
    case command::reply: {
        auto reply = decode_worker_reply(body);
        if (auto* error = std::get_if<decode_error>(&reply))
            return malformed(side::worker, routing_id, error->reason, now);
        const auto& result = std::get<worker_reply>(reply);
        // +1: the routing id frame; the payload's own frame is forwarded without a copy.
        if (!_core.on_reply(worker, result.job_id, result.payload,
                            &_frames[result.payload_index + 1], now))
            late_reply(worker, "REPLY or ERROR", result.job_id, now);
        return;
    }
    case command::error: {
        auto decoded = decode_worker_error(body);
        if (auto* error = std::get_if<decode_error>(&decoded))
            return malformed(side::worker, routing_id, error->reason, now);
        const auto& failure = std::get<worker_error>(decoded);
        if (!_core.on_error(worker, failure, now))
            late_reply(worker, "REPLY or ERROR", failure.job_id, now);
        return;
    }
    case command::batch: {
        if (body.size() != 4)
            return malformed(side::worker, routing_id, "BATCH must be 1 frame", now);
        if (auto error = _batch_in.parse(view(body[3])))
            return malformed(side::worker, routing_id, "BATCH: " + *error, now);
        // A record may get the worker disconnected: stop at once if it is gone.
        std::string id = routing_id;
        for (std::size_t i = 0; i < _batch_in.size(); ++i) {
            auto* still = _core.find_worker(id);
            if (!still) return;
            on_worker_record(*still, _batch_in.record(i), now);
        }
        return;
    }
    case command::progress: {
        auto progress = decode_progress(body);
        if (auto* error = std::get_if<decode_error>(&progress))
            return malformed(side::worker, routing_id, error->reason, now);
        const auto& update = std::get<progress_update>(progress);
        if (!_core.on_progress(worker, update)) late_reply(worker, "PROGRESS", update.id, now);
        return;
    }
    case command::credit: {
        auto credit = decode_worker_credit(body);
        if (auto* error = std::get_if<decode_error>(&credit))
            return malformed(side::worker, routing_id, error->reason, now);
        auto prefetch = std::get<worker_credit>(credit).prefetch;
        if (prefetch > _options.limits.max_worker_slots)
            return malformed(side::worker, routing_id, "prefetch too large", now);
        return _core.on_credit(worker, prefetch, now);
    }
    case command::decline: {
        auto decline = decode_job_only(body);
        if (auto* error = std::get_if<decode_error>(&decline))
            return malformed(side::worker, routing_id, error->reason, now);
        auto job_id = std::get<job_only>(decline).job_id;
        if (!_core.on_decline(worker, job_id, now)) late_reply(worker, "DECLINE", job_id, now);
        return;
    }
    case command::call: {
        auto call = decode_worker_call(body);
        if (auto* error = std::get_if<decode_error>(&call))
            return malformed(side::worker, routing_id, error->reason, now);
        const auto& decoded = std::get<worker_call>(call);
        const auto& request = decoded.request;
        // +1: the routing id frame. The job keeps the frame itself: no copy.
        return _core.on_call(worker, decoded.parent_job_id,
                             {request.correlation_id, request.function, request.options},
                             std::move(_frames[request.payload_index + 1]), now);
    }
    case command::cancel: { // a call one of its jobs made
        auto cancel = decode_correlation_only(body);
        if (auto* error = std::get_if<decode_error>(&cancel))
            return malformed(side::worker, routing_id, error->reason, now);
        return _core.on_call_cancel(worker, std::get<correlation_only>(cancel).correlation_id);
    }
    case command::wait: {
        auto wait = decode_job_only(body);
        if (auto* error = std::get_if<decode_error>(&wait))
            return malformed(side::worker, routing_id, error->reason, now);
        auto job_id = std::get<job_only>(wait).job_id;
        if (!_core.on_wait(worker, job_id, now)) late_reply(worker, "WAIT", job_id, now);
        return;
    }
    case command::held: { // a job it holds from an earlier connection (§3c)
        auto held = decode_held_job(body, _options.limits);
        if (auto* error = std::get_if<decode_error>(&held))
            return malformed(side::worker, routing_id, error->reason, now);
        return _core.on_held(worker, std::get<held_job>(held), now);
    }
    case command::drain:
    case command::heartbeat:
    case command::disconnect: {
        auto empty = decode_empty(body);
        if (auto* error = std::get_if<decode_error>(&empty))
            return malformed(side::worker, routing_id, error->reason, now);
        if (cmd == command::drain) _core.on_drain(worker);
        if (cmd == command::disconnect)
            _core.remove_worker(worker, "disconnected", parting::goodbye, now);
        return;
    }
    default:
        return malformed(
            side::worker, routing_id,
            "command " + std::to_string(static_cast<int>(cmd)) + " not valid from a worker", now);
    }
}

/// One record of a worker's BATCH: a REPLY or an ERROR (docs/protocol.md §3a).
void broker_shell::on_worker_record(worker_record& worker, const batch_record& record,
                                    time_point now) {
    if (record.cmd == command::reply) {
        auto reply = decode_worker_reply(record.frames);
        if (auto* error = std::get_if<decode_error>(&reply))
            return malformed(side::worker, worker.routing_id, "BATCH REPLY: " + error->reason, now);
        const auto& result = std::get<worker_reply>(reply);
        if (!_core.on_reply(worker, result.job_id, result.payload, nullptr, now))
            late_reply(worker, "REPLY or ERROR", result.job_id, now);
        return;
    }
    if (record.cmd == command::error) {
        auto decoded = decode_worker_error(record.frames);
        if (auto* error = std::get_if<decode_error>(&decoded))
            return malformed(side::worker, worker.routing_id, "BATCH ERROR: " + error->reason, now);
        const auto& failure = std::get<worker_error>(decoded);
        if (!_core.on_error(worker, failure, now))
            late_reply(worker, "REPLY or ERROR", failure.job_id, now);
        return;
    }
    malformed(side::worker, worker.routing_id,
              "BATCH record " + std::string(to_string(record.cmd)) + " not valid from a worker",
              now);
}

/// An MDP/Worker command. A worker record of 1 slot and no prefetch serves its one service like any
/// worker's; REQUEST's client address frame is the job id, which the REPLY brings back.
void broker_shell::on_mdp_worker_message(std::string_view routing_id,
                                         std::span<const zmq::message_t> body, time_point now) {
    auto* worker = _core.find_worker(routing_id);
    if (worker && worker->dialect != &mdp_dialect())
        return malformed(side::worker, routing_id, "MDPW01 message from a deferq worker", now);
    auto decoded = mdp::decode_worker_message(body, _options.limits);
    if (auto* error = std::get_if<decode_error>(&decoded)) {
        std::string id(routing_id); // the malformed message may remove the worker
        malformed(side::worker, routing_id, "MDP: " + error->reason, now);
        // 7/MDP: the broker SHOULD treat a peer that sends invalid messages as invalid. Removing
        // it requeues its job, which would otherwise wait for a REPLY that never comes.
        if (auto* still = _core.find_worker(id))
            drop_mdp_worker(*still, "sent a malformed message", now);
        return;
    }
    const auto& message = std::get<mdp::worker_message>(decoded);
    if (message.cmd == mdp::worker_command::ready) {
        if (worker) {
            // 7/MDP: the broker MUST answer a valid but unexpected command with DISCONNECT.
            std::string id(routing_id);
            malformed(side::worker, routing_id, "MDP: second READY", now);
            if (auto* still = _core.find_worker(id))
                drop_mdp_worker(*still, "sent a second READY", now);
            return;
        }
        if (message.service.starts_with("mmi.")) {
            // 8/MMI: the broker MUST disconnect workers that register in the mmi. namespace.
            malformed(side::worker, routing_id, "MDP: READY for a service in mmi.", now);
            return _out.disconnect(side::worker, routing_id, mdp_dialect());
        }
        std::string_view functions[] = {message.service};
        _core.on_ready(
            routing_id, mdp_dialect(),
            {"mdp-" + printable(routing_id), 1, 0, functions, peer_address(_frames.back())}, now);
        return;
    }
    if (!worker) {
        // Expired, or this broker restarted: DISCONNECT makes it reconnect and send READY.
        if (message.cmd == mdp::worker_command::reply) bump(counters.late_replies);
        if (message.cmd != mdp::worker_command::disconnect)
            _out.disconnect(side::worker, routing_id, mdp_dialect());
        return;
    }
    worker->last_seen = now;
    switch (message.cmd) {
    case mdp::worker_command::reply: {
        // The first body frame is the result; an empty body is an empty result; further frames
        // are dropped (a deferq reply has one payload frame).
        zmq::message_t result;
        if (message.body_frames > 0) result = std::move(_frames[message.body_index + 1]);
        if (message.body_frames > 1)
            log().debug("MDP worker {} replied with {} body frames: kept the first",
                        escaped(worker->name), message.body_frames);
        if (!_core.on_reply(*worker, message.job_id, view(result), &result, now))
            late_reply(*worker, "REPLY or ERROR", message.job_id, now);
        return;
    }
    case mdp::worker_command::disconnect:
        return _core.remove_worker(*worker, "disconnected", parting::goodbye, now);
    default: // HEARTBEAT: seen; READY and REQUEST are handled above
        return;
    }
}

void broker_shell::drop_mdp_worker(worker_record& worker, std::string_view why, time_point now) {
    std::string id = worker.routing_id;
    _core.remove_worker(worker, why, parting::lost, now);
    _out.disconnect(side::worker, id, mdp_dialect());
}

} // namespace deferq::broker_detail
