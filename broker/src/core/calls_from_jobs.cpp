// Calls from inside jobs (docs/protocol.md §3b): a handler that waits on a Deferred gives back its
// slot (WAIT), and the calls it makes (CALL) are jobs of their own — children of the job that made
// them, served from its tenant, ending no later than it, and cancelled when it ends.

#include "broker_core.hpp"

#include "log_text.hpp"

#include "../peers/peer_dialect.hpp"

#include "deferq/log.hpp"

#include <spdlog/spdlog.h>

#include <string>

namespace deferq::broker_detail {

void broker_core::on_call(worker_record& worker, std::uint64_t parent_job_id,
                          const call_request& request, zmq::message_t payload, time_point now) {
    bump(_counters.requests);
    auto& caller = caller_of(worker);
    const auto* parent = _jobs.find_held(worker, parent_job_id);
    if (!parent || parent->state != job_state::running || !parent->tenant)
        return send_error(caller, request.correlation_id, request.function, error_code::cancelled,
                          "job " + std::to_string(parent_job_id) +
                              ", which makes this call, is not running on this worker (it "
                              "ended, or was cancelled)");
    accept_call(caller, *parent->tenant, request, std::move(payload), now, parent);
}

void broker_core::on_call_cancel(worker_record& worker, std::uint64_t call_id) {
    if (worker.caller) on_cancel(*worker.caller, call_id);
}

bool broker_core::on_wait(worker_record& worker, std::uint64_t job_id, time_point now) {
    auto* j = _jobs.find_held(worker, job_id);
    if (!j) return false;
    if (j->waiting) return true;
    j->waiting = true;
    ++worker.waiting;
    dispatch_to(worker, now);
    return true;
}

client_record& broker_core::caller_of(worker_record& worker) {
    if (!worker.caller) {
        worker.caller = std::make_unique<client_record>();
        auto& caller = *worker.caller;
        caller.routing_id = worker.routing_id;
        caller.dialect = &calling_worker_dialect();
        caller.endpoint = side::worker;
    }
    return *worker.caller;
}

void broker_core::end_children(const job& parent) {
    for (auto child_id : _jobs.take_children(parent.id)) {
        auto* child = _jobs.find(child_id);
        if (!child) continue;
        if (auto* caller = child->client) {
            note_failure(*child->function, error_code::cancelled);
            send_error(*caller, child->correlation_id, child->function->name, error_code::cancelled,
                       "job " + std::to_string(parent.id) + ", which made this call, ended");
            client_registry::end_pending(*caller, child->correlation_id);
        }
        abandon(*child, error_code::cancelled); // and its own children
    }
}

void broker_core::drop_caller(worker_record& worker) {
    if (!worker.caller) return;
    auto& caller = *worker.caller;
    if (!caller.pending.empty())
        log().info("worker {} goes: cancelling {} call(s) its jobs made", escaped(worker.name),
                   caller.pending.size());
    auto pending = std::move(caller.pending);
    caller.pending.clear();
    for (auto [call_id, job_id] : pending)
        if (auto* j = _jobs.find(job_id)) abandon(*j, error_code::cancelled);
    _out.discard(caller);
    worker.caller.reset();
}

void broker_core::stop_waiting(worker_record& worker, job& j) {
    if (!j.waiting) return;
    j.waiting = false;
    --worker.waiting;
}

} // namespace deferq::broker_detail
