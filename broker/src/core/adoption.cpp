// Jobs that outlive a broker (docs/protocol.md §3c): a worker that registers with a new broker
// instance reports the jobs it holds (HELD); the broker adopts them, and a client's resent call
// attaches to its adopted job instead of running again. Resent calls that come before the
// reports wait (parked) for the adoption window after the broker starts serving.

#include "broker_core.hpp"

#include "log_text.hpp"

#include "deferq/log.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

namespace deferq::broker_detail {

std::string broker_core::claim_key(std::string_view caller, std::uint64_t correlation_id) {
    std::string key(caller);
    key.append(reinterpret_cast<const char*>(&correlation_id), sizeof correlation_id);
    return key;
}

void broker_core::on_held(worker_record& worker, const protocol::held_job& report, time_point now) {
    auto refuse = [&](std::string_view why) {
        bump(_counters.adoptions_refused);
        log().info("worker {} holds job {} of '{}' from an earlier connection: {}; cancelling it",
                   escaped(worker.name), report.job_id, escaped(report.function), why);
        _out.cancel(worker, report.job_id);
    };
    auto* function = _jobs.find_function(report.function);
    if (!function || std::find(worker.functions.begin(), worker.functions.end(), function) ==
                         worker.functions.end())
        return refuse("it does not offer that function now");
    auto attempts = static_cast<std::uint16_t>(std::min<std::uint32_t>(report.attempt, 0xffff));
    if (auto* known = _jobs.find(report.job_id)) {
        // This broker knows it: the worker registered again (its old registration may not have
        // expired yet), or the job was requeued from it.
        if (known->worker == &worker) return;
        bool same = known->correlation_id == report.correlation_id &&
                    (known->client ? known->client->routing_id == report.caller
                                   : _claim_keys.contains(known->id));
        if (!same) return refuse("its id belongs to another job here");
        if (known->state == job_state::queued) {
            _jobs.unqueue(*known);
        } else if (known->state == job_state::parked) {
            leave_parked(*known);
        } else if (known->state == job_state::running || known->state == job_state::abandoned) {
            if (known->worker != nullptr) {
                stop_waiting(*known->worker, *known);
                _jobs.release(*known->worker, known->id);
            }
        }
        auto state =
            known->state == job_state::abandoned ? job_state::abandoned : job_state::running;
        _jobs.hold(*known, worker, now);
        known->state = state;
        known->attempts = std::max(known->attempts, attempts);
        bump(_counters.jobs_adopted);
        dispatch_to(worker, now);
        return;
    }
    job* taken_over = nullptr; // the caller's call, queued or parked here
    auto* client = _clients.find(report.caller);
    if (client) {
        if (auto pending = client_registry::pending_job(*client, report.correlation_id)) {
            auto* call = _jobs.find(*pending);
            if (call && call->state != job_state::queued && call->state != job_state::parked)
                return refuse("its caller's call runs on another worker already");
            taken_over = call;
        }
    }
    auto& j =
        _jobs.adopt(report.job_id, report.correlation_id, *function,
                    static_cast<std::uint8_t>(std::min<std::uint32_t>(_options.max_attempts, 255)));
    _jobs.hold(j, worker, now);
    j.attempts = attempts;
    bump(_counters.jobs_adopted);
    if (taken_over) {
        std::optional<time_point> deadline;
        if (taken_over->deadline.linked()) deadline = taken_over->deadline.when;
        if (taken_over->state == job_state::queued) _jobs.unqueue(*taken_over);
        leave_parked(*taken_over);
        attach(j, *client, std::move(taken_over->payload), taken_over->priority,
               taken_over->max_attempts, deadline);
        forget(*taken_over);
        return;
    }
    auto key = claim_key(report.caller, report.correlation_id);
    _claim_keys[j.id] = key;
    _unclaimed[key] = {j.id, now + 2 * adoption_window(), std::nullopt, function->name};
}

bool broker_core::claim(client_record& client, const call_request& request, zmq::message_t& payload,
                        time_point now) {
    if (_unclaimed.empty()) return false;
    auto found = _unclaimed.find(claim_key(client.routing_id, request.correlation_id));
    if (found == _unclaimed.end()) return false;
    auto entry = std::move(found->second);
    _unclaimed.erase(found);
    if (entry.answer) {
        auto& answer = *entry.answer;
        auto& function = _jobs.function(entry.function);
        if (answer.failed) {
            note_failure(function, answer.code);
            send_error(client, request.correlation_id, entry.function, answer.code, answer.message,
                       answer.worker, answer.attempts, answer.type);
        } else {
            _out.reply(client, request.correlation_id, entry.function, answer.worker,
                       answer.attempts, protocol::view(answer.payload), &answer.payload);
            bump(_counters.replies);
            ++function.done;
        }
        return true;
    }
    _claim_keys.erase(entry.job_id);
    auto* j = _jobs.find(entry.job_id);
    if (!j || !j->unclaimed) return false; // it ended meanwhile without an answer: run it again
    std::optional<time_point> deadline;
    if (request.options.timeout_ms != 0)
        deadline = now + std::chrono::milliseconds{request.options.timeout_ms};
    attach(*j, client, std::move(payload), request.options.priority,
           request.options.max_attempts ? request.options.max_attempts : j->max_attempts, deadline);
    return true;
}

void broker_core::attach(job& j, client_record& client, zmq::message_t payload,
                         std::uint8_t priority, std::uint8_t max_attempts,
                         std::optional<time_point> deadline) {
    _claim_keys.erase(j.id);
    j.unclaimed = false;
    j.client = &client;
    j.tenant = client.tenant;
    tenant_registry::hold(*j.tenant);
    j.payload = std::move(payload); // for a requeue, should its worker die now
    j.priority = priority;
    j.max_attempts = max_attempts;
    if (deadline) {
        j.has_deadline = true;
        _deadlines.arm(j, *deadline);
    }
    client.pending[j.correlation_id] = j.id; // it may replace the call it takes over
}

bool broker_core::keep_unclaimed_answer(worker_record& worker, job& j, kept_answer answer,
                                        time_point now) {
    if (!j.unclaimed) return false;
    auto key = _claim_keys.find(j.id);
    if (key != _claim_keys.end()) {
        if (auto entry = _unclaimed.find(key->second); entry != _unclaimed.end()) {
            answer.worker = worker.name;
            answer.attempts = j.attempts;
            entry->second.answer = std::move(answer);
            entry->second.job_id = 0;
        }
    }
    stop_waiting(worker, j);
    _jobs.release(worker, j.id);
    ++worker.jobs_done;
    j.function->service_time.observe(now - j.since);
    forget(j);
    dispatch_to(worker, now);
    return true;
}

bool broker_core::park(job& j, const call_request& request, time_point now) {
    if (!request.options.resent || now >= _started + adoption_window()) return false;
    j.state = job_state::parked;
    ++j.function->parked; // keeps the function's record while nobody offers it
    _parked.push_back(j.id);
    bump(_counters.resent_parked);
    return true;
}

void broker_core::end_adoption(time_point now) {
    if (!_parked.empty() && now >= _started + adoption_window()) {
        std::vector<function_record*> touched;
        for (auto id : std::exchange(_parked, {})) {
            auto* j = _jobs.find(id);
            if (!j || j->state != job_state::parked) continue;
            leave_parked(*j);
            _jobs.enqueue(*j, queue_end::back, now);
            touched.push_back(j->function);
        }
        std::sort(touched.begin(), touched.end());
        touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
        for (auto* function : touched)
            dispatch(*function, now);
    }
    if (_unclaimed.empty()) return;
    std::vector<std::uint64_t> expired;
    for (auto it = _unclaimed.begin(); it != _unclaimed.end();) {
        if (now < it->second.until) {
            ++it;
            continue;
        }
        if (it->second.job_id != 0) expired.push_back(it->second.job_id);
        it = _unclaimed.erase(it);
    }
    for (auto id : expired) {
        _claim_keys.erase(id);
        auto* j = _jobs.find(id);
        if (!j || !j->unclaimed || j->state != job_state::running) continue;
        j->unclaimed = false;
        abandon(*j, error_code::cancelled); // nobody asked for it again: the worker stops it
    }
}

void broker_core::leave_parked(job& j) {
    if (j.state != job_state::parked) return;
    --j.function->parked;
    j.state = job_state::queued; // nominally: in no queue until enqueued or forgotten
}

void broker_core::forget_unclaimed(const job& j) {
    auto key = _claim_keys.find(j.id);
    if (key == _claim_keys.end()) return;
    if (auto entry = _unclaimed.find(key->second);
        entry != _unclaimed.end() && !entry->second.answer)
        _unclaimed.erase(entry);
    _claim_keys.erase(key);
}

} // namespace deferq::broker_detail
