#include "broker_core.hpp"

#include "log_text.hpp"

#include "../peers/peer_dialect.hpp"

#include "deferq/log.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <string>
#include <vector>

namespace deferq::broker_detail {
namespace {

std::uint8_t default_attempts(const broker_options& options) {
    return static_cast<std::uint8_t>(std::min<std::uint32_t>(options.max_attempts, 255));
}

void unique_sort(std::vector<function_record*>& functions) {
    std::sort(functions.begin(), functions.end());
    functions.erase(std::unique(functions.begin(), functions.end()), functions.end());
}

} // namespace

broker_core::broker_core(const broker_options& options, broker_counters& counters, outbox& out,
                         time_point started)
    : _options(options), _counters(counters), _out(out), _jobs(counters), _dispatcher(_jobs),
      _workers(_jobs, counters), _clients(counters), _started(started) {}

// ---- clients ----------------------------------------------------------------------------------

client_record& broker_core::touch_client(std::string_view routing_id, const peer_dialect& dialect,
                                         time_point now, std::string_view tenant_key) {
    bool added = false;
    auto& client = _clients.touch(routing_id, dialect, now, added);
    if (!added) return client;
    client.tenant = tenant_key.empty() ? &_tenants.hold("client:" + std::string(routing_id))
                                       : &_tenants.hold(tenant_key);
    if (dialect.traits().client_heartbeats) _out.heartbeat(client);
    return client;
}

void broker_core::on_request(client_record& client, const call_request& request,
                             zmq::message_t payload, time_point now) {
    bump(_counters.requests);
    accept_call(client, *client.tenant, request, std::move(payload), now, nullptr);
}

void broker_core::accept_call(client_record& client, tenant_record& tenant,
                              const call_request& request, zmq::message_t payload, time_point now,
                              const job* parent) {
    if (client_registry::pending_job(client, request.correlation_id)) {
        bump(_counters.duplicate_requests);
        return;
    }
    if (claim(client, request, payload, now)) return; // a worker holds it already (§3c)
    if (client.pending.size() >= _options.max_pending_per_client) {
        bump(_counters.overloaded);
        limit_hit("client " + printable(client.routing_id) + " has " +
                      std::to_string(client.pending.size()) + " calls pending: refusing more",
                  now);
        return send_error(client, request.correlation_id, request.function, error_code::overloaded,
                          "client has " + std::to_string(client.pending.size()) +
                              " calls pending (limit " +
                              std::to_string(_options.max_pending_per_client) + ")");
    }
    if (auto problem = protocol::function_name_problem(request.function, _options.limits)) {
        note_failure(_jobs.function(request.function), error_code::no_such_function);
        return send_error(client, request.correlation_id, request.function,
                          error_code::no_such_function, *problem);
    }
    // A strict broker refuses at once, but not while workers may still be re-registering after
    // its start: until then a call waits like any other (and fail_unoffered ends it).
    if (_options.strict && !offered(request.function) && now >= _started + registration_window())
        return send_error(client, request.correlation_id, request.function,
                          error_code::no_such_function,
                          "no worker offers '" + std::string(request.function) + "'");
    if (auto budget = over_budget(tenant, payload.size())) {
        bump(_counters.overloaded);
        limit_hit(*budget, now);
        return send_error(client, request.correlation_id, request.function, error_code::overloaded,
                          *budget);
    }
    auto& function = _jobs.function(request.function);
    if (function.queued >= _options.max_queue_length) {
        bump(_counters.overloaded);
        note_failure(function, error_code::overloaded);
        limit_hit("queue of '" + escaped(function.name) + "' is full (" +
                      std::to_string(_options.max_queue_length) + " jobs): refusing calls",
                  now);
        return send_error(client, request.correlation_id, request.function, error_code::overloaded,
                          "queue of '" + function.name + "' is full (" +
                              std::to_string(_options.max_queue_length) + " jobs)");
    }
    auto& j = _jobs.add(
        client, request.correlation_id, function, std::move(payload), request.options.priority,
        request.options.max_attempts ? request.options.max_attempts : default_attempts(_options),
        tenant);
    tenant_registry::hold(tenant);
    std::optional<time_point> deadline;
    if (request.options.timeout_ms != 0)
        deadline = now + std::chrono::milliseconds{request.options.timeout_ms};
    if (parent) {
        // A child ends no later than its parent.
        if (parent->deadline.linked())
            deadline =
                deadline ? std::min(*deadline, parent->deadline.when) : parent->deadline.when;
        _jobs.add_child(parent->id, j.id);
    }
    if (deadline) {
        j.has_deadline = true;
        _deadlines.arm(j, *deadline);
    }
    client_registry::add_pending(client, request.correlation_id, j.id);
    if (park(j, request, now)) return; // a worker may report it: wait for the reports (§3c)
    _jobs.enqueue(j, queue_end::back, now);
    dispatch(function, now);
}

void broker_core::on_cancel(client_record& client, std::uint64_t correlation_id) {
    auto job_id = client_registry::pending_job(client, correlation_id);
    if (!job_id) return; // already answered: nothing to do
    bump(_counters.cancels);
    client_registry::end_pending(client, correlation_id);
    auto* j = _jobs.find(*job_id);
    if (!j) return;
    note_failure(*j->function, error_code::cancelled);
    abandon(*j, error_code::cancelled);
}

void broker_core::forget_client(client_record& client, std::string_view why, parting how) {
    if (!client.pending.empty() || how != parting::goodbye)
        log().info("client {} {}: dropping its {} pending call(s)", printable(client.routing_id),
                   why, client.pending.size());
    for (auto [correlation_id, job_id] : client.pending)
        if (auto* j = _jobs.find(job_id)) abandon(*j, error_code::cancelled);
    drop_client(client);
}

void broker_core::drop_client(client_record& client) {
    _out.discard(client);
    auto* tenant = client.tenant;
    _clients.remove(client);
    if (tenant) _tenants.release(*tenant);
}

// ---- workers ----------------------------------------------------------------------------------

worker_record& broker_core::on_ready(std::string_view routing_id, const peer_dialect& dialect,
                                     const worker_announcement& announcement, time_point now) {
    auto& worker = _workers.add(routing_id, dialect, announcement, now);
    log().info("worker {} joined: {} slot(s), prefetch {}, {} function(s), from {}",
               escaped(worker.name), worker.slots, worker.prefetch, worker.functions.size(),
               worker.host.empty() ? "(unknown address)" : escaped(worker.host));
    _out.heartbeat(worker);
    dispatch_to(worker, now);
    return worker;
}

template <typename Deliver>
bool broker_core::finish(worker_record& worker, std::uint64_t job_id, time_point now,
                         Deliver&& deliver) {
    auto* j = _jobs.find_held(worker, job_id);
    if (!j) return false;
    stop_waiting(worker, *j);
    _jobs.release(worker, job_id);
    ++worker.jobs_done;
    auto& function = *j->function;
    function.service_time.observe(now - j->since);
    if (j->state == job_state::running && j->client) {
        deliver(*j);
        client_registry::end_pending(*j->client, j->correlation_id);
    }
    forget(*j);
    dispatch_to(worker, now);
    if (!worker.has_credit()) dispatch(function, now);
    return true;
}

bool broker_core::on_reply(worker_record& worker, std::uint64_t job_id, std::string_view payload,
                           zmq::message_t* frame, time_point now) {
    if (auto* j = _jobs.find_held(worker, job_id); j && j->unclaimed) {
        kept_answer answer;
        if (frame)
            answer.payload = std::move(*frame);
        else
            answer.payload = zmq::message_t(payload.data(), payload.size());
        return keep_unclaimed_answer(worker, *j, std::move(answer), now);
    }
    return finish(worker, job_id, now, [&](job& j) {
        _out.reply(*j.client, j.correlation_id, j.function->name, worker.name, j.attempts, payload,
                   frame);
        bump(_counters.replies);
        ++j.function->done;
    });
}

bool broker_core::on_error(worker_record& worker, const protocol::worker_error& failure,
                           time_point now) {
    if (auto* j = _jobs.find_held(worker, failure.job_id); j && j->unclaimed) {
        kept_answer answer;
        answer.failed = true;
        answer.code = failure.code;
        answer.type = std::string(failure.type);
        answer.message = std::string(failure.message);
        return keep_unclaimed_answer(worker, *j, std::move(answer), now);
    }
    return finish(worker, failure.job_id, now, [&](job& j) {
        send_error(*j.client, j.correlation_id, j.function->name, failure.code, failure.message,
                   worker.name, j.attempts, failure.type);
        note_failure(*j.function, failure.code);
        ++worker.failures;
    });
}

bool broker_core::on_progress(worker_record& worker, const protocol::progress_update& update) {
    auto* j = _jobs.find_held(worker, update.id);
    if (!j) return false;
    if (j->client) _out.progress(*j->client, j->correlation_id, update);
    return true;
}

bool broker_core::on_decline(worker_record& worker, std::uint64_t job_id, time_point now) {
    auto* j = _jobs.find_held(worker, job_id);
    if (!j) return false;
    stop_waiting(worker, *j);
    _jobs.release(worker, job_id);
    if (j->state == job_state::abandoned || j->unclaimed) {
        forget(*j);
        return true;
    }
    --j->attempts; // a declined job was never started
    _jobs.enqueue(*j, queue_end::front, now);
    dispatch(*j->function, now);
    return true;
}

void broker_core::on_credit(worker_record& worker, std::uint32_t prefetch, time_point now) {
    worker.prefetch = prefetch;
    dispatch_to(worker, now);
}

void broker_core::on_drain(worker_record& worker) {
    worker.draining = true;
    log().info("worker {} ({}) draining with {} job(s)", escaped(worker.name),
               printable(worker.routing_id), worker.held.size());
}

void broker_core::remove_worker(worker_record& worker, std::string_view why, parting how,
                                time_point now) {
    log().log(how == parting::goodbye ? spdlog::level::info : spdlog::level::warn,
              "worker {} {} holding {} job(s)", escaped(worker.name), why, worker.held.size());
    drop_caller(worker);
    for (auto job_id : _out.discard(worker)) // given, never sent: not an attempt
        if (auto* j = _jobs.find(job_id); j && j->worker == &worker) --j->attempts;
    std::vector<function_record*> touched;
    auto held = std::move(worker.held);
    worker.held.clear();
    for (auto job_id : held) {
        bump(_counters.running_jobs, static_cast<std::uint64_t>(-1));
        auto* j = _jobs.find(job_id);
        if (!j) continue;
        if (j->state == job_state::abandoned || !j->client) {
            forget(*j);
            continue;
        }
        if (j->attempts >= j->max_attempts) {
            note_failure(*j->function, error_code::worker_lost);
            auto* client = j->client;
            send_error(*client, j->correlation_id, j->function->name, error_code::worker_lost,
                       "'" + j->function->name + "' lost its worker " +
                           std::to_string(j->attempts) + " time(s)",
                       worker.name, j->attempts);
            client_registry::end_pending(*client, j->correlation_id);
            forget(*j);
            continue;
        }
        bump(_counters.requeued);
        _jobs.enqueue(*j, queue_end::front, now);
        touched.push_back(j->function);
    }
    if (!held.empty())
        log().info("requeued {} job(s) of worker {}", touched.size(), escaped(worker.name));
    _workers.remove(worker, now);
    unique_sort(touched);
    for (auto* function : touched)
        dispatch(*function, now);
}

void broker_core::review_replies(client_record& client, time_point now) {
    if (client.held.bytes > _options.tenant_budget) {
        // It reads nothing while its answers pile up: holding more would let one stuck client
        // grow the broker without end. Forgotten like an expired client, it is told so (it
        // resends its calls when it reads again).
        bump(_counters.clients_cut_off);
        log().warn("client {} reads no replies: {} wait for it, more than the tenant budget "
                   "({}): forgetting it",
                   printable(client.routing_id), byte_count(client.held.bytes),
                   byte_count(_options.tenant_budget));
        std::string key = client.tenant ? client.tenant->key : std::string();
        _out.disconnect(client);
        forget_client(client, "cut off (reads no replies)", parting::lost);
        if (auto* tenant = _tenants.find(key)) review_tenant(*tenant, now);
        return;
    }
    if (client.tenant) review_tenant(*client.tenant, now);
}

void broker_core::review_tenant(tenant_record& tenant, time_point now) {
    // Hysteresis: paused at half the budget, going again below a quarter.
    if (!tenant.paused && tenant.reply_bytes >= _options.tenant_budget / 2) {
        tenant.paused = true;
        log().info("tenant {} has {} of answers to read: its queued jobs wait until it reads",
                   tenant_name(tenant.key), byte_count(tenant.reply_bytes));
    } else if (tenant.paused && tenant.reply_bytes < _options.tenant_budget / 4) {
        tenant.paused = false;
        log().info("tenant {} reads again: its queued jobs go on", tenant_name(tenant.key));
        for (auto& [name, function] : _jobs.functions())
            if (function->queued != 0) dispatch(*function, now);
    }
}

// ---- time -------------------------------------------------------------------------------------

void broker_core::expire_deadlines(time_point now) {
    while (auto* j = _deadlines.take_due(now)) {
        if (!j->client) continue;
        bump(_counters.timeouts);
        note_failure(*j->function, error_code::timeout);
        auto* client = j->client;
        send_error(*client, j->correlation_id, j->function->name, error_code::timeout,
                   !j->worker // queued, or parked (a resent call waiting for reports)
                       ? "deadline passed while queued"
                       : "deadline passed while running on " + j->worker->name,
                   j->worker ? std::string_view(j->worker->name) : std::string_view{}, j->attempts);
        client_registry::end_pending(*client, j->correlation_id);
        abandon(*j, error_code::timeout);
    }
}

void broker_core::tick(time_point now) {
    auto expiry = _options.heartbeat_interval * _options.liveness;
    std::vector<worker_record*> workers;
    for (auto& [id, worker] : _workers.all())
        workers.push_back(worker.get());
    for (auto* worker : workers) {
        if (worker->unreachable || now - worker->last_seen > expiry) {
            remove_worker(*worker, worker->unreachable ? "unreachable" : "expired (no heartbeat)",
                          parting::lost, now);
            continue;
        }
        if (now - worker->last_sent >= _options.heartbeat_interval) _out.heartbeat(*worker);
    }
    // A paused tenant whose slow client went away may go again (its bytes left with it).
    std::vector<tenant_record*> paused;
    for (auto& [key, tenant] : _tenants.all())
        if (tenant->paused) paused.push_back(tenant.get());
    for (auto* tenant : paused)
        review_tenant(*tenant, now);
    std::vector<client_record*> clients;
    for (auto& [id, client] : _clients.all())
        clients.push_back(client.get());
    for (auto* client : clients) {
        bool silent = now - client->last_seen > expiry;
        if (!client->dialect->traits().client_heartbeats) {
            // A client that sends no heartbeats (7/MDP) is kept while it waits for a reply,
            // however long the job takes (its calls have deadlines), and forgotten when idle.
            if (silent && client->pending.empty()) drop_client(*client);
            continue;
        }
        if (silent) {
            bump(_counters.clients_expired);
            // A client that was only stalled must learn that its calls were dropped: DISCONNECT
            // makes it reconnect and resend them (docs/protocol.md §2). A dead one never reads it.
            _out.disconnect(*client);
            forget_client(*client, "expired (no heartbeat)", parting::lost);
            continue;
        }
        if (now - client->last_sent >= _options.heartbeat_interval) _out.heartbeat(*client);
    }
    end_adoption(now);
    fail_unoffered(now);
    _jobs.tidy(now, _options.function_memory);
    _deadlines.shrink();
}

void broker_core::fail_unoffered(time_point now) {
    std::vector<job*> expired;
    for (auto& [name, function] : _jobs.functions()) {
        if (function->queued == 0 || remembered(*function, now)) continue;
        _jobs.take_expired(
            *function, [&](const job& j) { return now >= gives_up_at(j); },
            [&](job& j) { expired.push_back(&j); });
    }
    for (auto* j : expired) {
        auto waited = std::chrono::duration<double>(now - j->since).count();
        fail_job(*j, error_code::no_such_function,
                 fmt::format("no worker offers '{}' (waited {:.1f} s for one: is the name right, "
                             "and is a worker that offers it running?)",
                             j->function->name, waited));
    }
}

time_point broker_core::gives_up_at(const job& j) const {
    auto window_end = _started + registration_window();
    return _options.strict ? window_end
                           : std::max(j.since + _options.unknown_function_grace, window_end);
}

clock_type::duration broker_core::registration_window() const {
    // A worker that did not hear this broker start (it was killed, not stopped) finds out when
    // the old one has been silent for interval × liveness, then registers: twice that covers it.
    return std::max<clock_type::duration>(_options.unknown_function_grace,
                                          2 * _options.heartbeat_interval * _options.liveness);
}

bool broker_core::remembered(const function_record& function, time_point now) const {
    return !function.workers.empty() || (function.last_offered != time_point{} &&
                                         now - function.last_offered <= _options.function_memory);
}

void broker_core::take_back(worker_record& worker, std::span<const std::uint64_t> job_ids,
                            time_point now) {
    std::vector<function_record*> touched;
    for (auto job_id : job_ids) {
        auto* j = _jobs.find(job_id);
        if (!j || j->worker != &worker) continue;
        _jobs.release(worker, job_id);
        if (j->state == job_state::abandoned) {
            forget(*j);
            continue;
        }
        --j->attempts;
        _jobs.enqueue(*j, queue_end::front, now);
        touched.push_back(j->function);
    }
    unique_sort(touched);
    for (auto* function : touched)
        dispatch(*function, now);
}

std::optional<std::string> broker_core::over_budget(const tenant_record& tenant,
                                                    std::uint64_t bytes) const {
    auto amount = byte_count;
    if (tenant.queued_bytes + tenant.reply_bytes + bytes > _options.tenant_budget)
        return "the tenant budget is spent: this caller has " + amount(tenant.queued_bytes) +
               " of arguments queued and " + amount(tenant.reply_bytes) +
               " of answers not read yet, and may have " + amount(_options.tenant_budget) +
               " (--tenant-budget)";
    auto held = _out.held_bytes();
    if (_jobs.queued_bytes() + held + bytes > _options.broker_budget)
        return "the broker budget is spent: " + amount(_jobs.queued_bytes()) +
               " of arguments are queued and " + amount(held) + " of answers wait to be read, of " +
               amount(_options.broker_budget) + " (--broker-budget)";
    return std::nullopt;
}

bool broker_core::offered(std::string_view function) const {
    auto* record = _jobs.find_function(function);
    return record && !record->workers.empty();
}

// ---- dispatch ---------------------------------------------------------------------------------

void broker_core::dispatch(function_record& function, time_point now) {
    while (auto next = _dispatcher.next_for(function))
        start(*next->worker, *next->job, now);
}

void broker_core::dispatch_to(worker_record& worker, time_point now) {
    while (auto next = _dispatcher.next_for(worker))
        start(*next->worker, *next->job, now);
}

void broker_core::start(worker_record& worker, job& j, time_point now) {
    if (j.has_deadline && j.deadline.when <= now) {
        // The broker SHALL NOT dispatch a job whose deadline passed.
        fail_job(j, error_code::timeout, "deadline passed while queued");
        return;
    }
    j.function->queue_wait.observe(now - j.since);
    _jobs.hold(j, worker, now);
    _dispatcher.note_dispatch(worker);
    std::uint32_t remaining_ms = 0;
    if (j.has_deadline)
        remaining_ms = static_cast<std::uint32_t>(std::max<std::int64_t>(
            1,
            std::chrono::duration_cast<std::chrono::milliseconds>(j.deadline.when - now).count()));
    _out.give_job(worker, j, remaining_ms);
}

// ---- endings ----------------------------------------------------------------------------------

void broker_core::abandon(job& j, error_code why) {
    j.client = nullptr;
    end_children(j);
    _deadlines.disarm(j);
    if (j.state == job_state::queued) {
        _jobs.unqueue(j);
        forget(j);
    } else if (j.state == job_state::parked) {
        leave_parked(j);
        forget(j);
    } else if (j.state == job_state::running) {
        j.state = job_state::abandoned;
        _out.cancel(*j.worker, j.id);
        log().debug("job {} on worker {} cancelled ({})", j.id, escaped(j.worker->name),
                    to_string(why));
    }
}

void broker_core::fail_job(job& j, error_code code, std::string_view message) {
    if (code == error_code::timeout) bump(_counters.timeouts);
    note_failure(*j.function, code);
    if (j.client) {
        send_error(*j.client, j.correlation_id, j.function->name, code, message, {}, j.attempts);
        client_registry::end_pending(*j.client, j.correlation_id);
    }
    forget(j);
}

void broker_core::forget(job& j) {
    if (j.unclaimed) forget_unclaimed(j);
    end_children(j);
    _jobs.remove_child(j.id);
    _deadlines.disarm(j);
    auto* tenant = j.tenant;
    _jobs.erase(j);
    if (tenant) _tenants.release(*tenant);
}

void broker_core::send_error(client_record& client, std::uint64_t correlation_id,
                             std::string_view function, error_code code, std::string_view message,
                             std::string_view worker, std::uint32_t attempts,
                             std::string_view type) {
    _out.error(client, correlation_id, function, code, type, message, worker, attempts);
}

void broker_core::limit_hit(const std::string& what, time_point now) {
    if (now - _last_limit_log < _options.heartbeat_interval) return;
    _last_limit_log = now;
    log().warn("limit hit: {} ({} overloaded so far)", what, _counters.overloaded.load());
}

void broker_core::note_failure(function_record& function, error_code code) {
    auto index = static_cast<std::size_t>(code);
    if (index < function.failed_by_code.size()) ++function.failed_by_code[index];
}

} // namespace deferq::broker_detail
