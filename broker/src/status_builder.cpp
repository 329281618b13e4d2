#include "status_builder.hpp"

#include "core/log_text.hpp"

#include <algorithm>
#include <tuple>
#include <unordered_map>

namespace deferq::broker_detail {
namespace {

constexpr std::chrono::seconds rate_sample_interval{1};

} // namespace

status_builder::status_builder(broker_core& core, const broker_counters& counters,
                               std::uint64_t instance, time_point started,
                               std::chrono::milliseconds snapshot_interval)
    : _core(core), _counters(counters), _instance(instance), _started(started),
      _snapshot_interval(snapshot_interval) {}

broker_status status_builder::build(time_point now) {
    auto ms_since = [&](time_point then) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(now - then).count();
    };
    broker_status status;
    status.instance = _instance;
    status.uptime_ms = ms_since(_started);
    status.standby_role = _standby_role;
    status.standby_state = _standby_state;
    status.counters = read_counters(_counters);
    status.rates = rates(now);

    auto& jobs = _core.jobs();
    std::unordered_map<const function_record*, std::uint64_t> in_flight;
    std::unordered_map<const tenant_record*, std::uint64_t> running;
    for (auto& [id, worker] : _core.workers().all()) {
        auto& out = status.workers.emplace_back();
        out.id = printable(worker->routing_id);
        out.name = worker->name;
        out.host = worker->host;
        out.slots = worker->slots;
        out.prefetch = worker->prefetch;
        out.held = worker->held.size();
        out.busy = std::min<std::uint64_t>(worker->busy(), worker->slots);
        out.jobs_done = worker->jobs_done;
        out.failures = worker->failures;
        out.draining = worker->draining;
        out.last_seen_ms = ms_since(worker->last_seen);
        out.connected_ms = ms_since(worker->joined);
        for (auto* function : worker->functions)
            out.functions.push_back(function->name);
        for (auto job_id : worker->held)
            if (auto* j = jobs.find(job_id)) {
                ++in_flight[j->function];
                ++running[j->tenant];
            }
    }
    std::sort(status.workers.begin(), status.workers.end(), [](const auto& a, const auto& b) {
        return std::tie(a.name, a.id) < std::tie(b.name, b.id);
    });
    for (auto& [name, function] : jobs.functions()) {
        auto& out = status.functions.emplace_back();
        out.name = name;
        out.queued = function->queued;
        out.in_flight = in_flight[function.get()];
        out.workers = function->workers.size();
        if (function->queued > 0)
            out.oldest_queued_ms = ms_since(jobs.oldest_queued(*function, now));
        out.done = function->done;
        out.failed_by_code = function->failed_by_code;
        for (auto count : function->failed_by_code)
            out.failed += count;
        out.queue_wait = function->queue_wait;
        out.service_time = function->service_time;
    }
    std::sort(status.functions.begin(), status.functions.end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
    for (auto& [id, client] : _core.clients().all())
        status.clients.push_back(
            {printable(id), client->pending.size(), ms_since(client->last_seen)});
    std::sort(status.clients.begin(), status.clients.end(), [](const auto& a, const auto& b) {
        return std::tie(b.pending, a.id) < std::tie(a.pending, b.id);
    });
    if (status.clients.size() > broker_status::max_listed_clients)
        status.clients.resize(broker_status::max_listed_clients);
    for (auto& [key, tenant] : _core.tenants().all())
        status.tenants.push_back({tenant_name(key), tenant->queued_jobs, tenant->queued_bytes,
                                  running[tenant.get()], tenant->reply_bytes, tenant->paused});
    std::sort(status.tenants.begin(), status.tenants.end(), [](const auto& a, const auto& b) {
        return std::tie(b.queued_bytes, b.running, a.id) <
               std::tie(a.queued_bytes, a.running, b.id);
    });
    if (status.tenants.size() > broker_status::max_listed_tenants)
        status.tenants.resize(broker_status::max_listed_tenants);
    status.budgets = {_core.options().tenant_budget, _core.options().broker_budget,
                      jobs.queued_bytes(), _core.held_bytes()};
    return status;
}

void status_builder::observe(time_point now) {
    _loop_activity.store(now.time_since_epoch().count(), std::memory_order_relaxed);
    if (now >= _next_sample_at) {
        _samples[_next_sample % _samples.size()] = {
            now, _counters.requests.load(std::memory_order_relaxed),
            _counters.replies.load(std::memory_order_relaxed),
            _counters.errors.load(std::memory_order_relaxed)};
        ++_next_sample;
        _next_sample_at = now + rate_sample_interval;
    }
    if (_snapshot_interval.count() > 0 && now >= _next_snapshot_at) {
        auto fresh = std::make_shared<const broker_status>(build(now));
        std::lock_guard lock(_snapshot_mutex);
        _snapshot = std::move(fresh);
        _next_snapshot_at = now + _snapshot_interval;
    }
}

std::shared_ptr<const broker_status> status_builder::snapshot() const {
    std::lock_guard lock(_snapshot_mutex);
    return _snapshot;
}

time_point status_builder::last_loop_activity() const {
    return time_point(clock_type::duration(_loop_activity.load(std::memory_order_relaxed)));
}

rate_status status_builder::rates(time_point now) const {
    if (_next_sample == 0) return {};
    auto oldest_index = _next_sample > _samples.size() ? _next_sample % _samples.size() : 0;
    const auto& oldest = _samples[oldest_index];
    double seconds = std::chrono::duration<double>(now - oldest.at).count();
    if (seconds < 0.001) return {};
    auto per_second = [&](const std::atomic<std::uint64_t>& counter, std::uint64_t then) {
        return static_cast<double>(counter.load(std::memory_order_relaxed) - then) / seconds;
    };
    return {seconds, per_second(_counters.requests, oldest.requests),
            per_second(_counters.replies, oldest.replies),
            per_second(_counters.errors, oldest.errors)};
}

} // namespace deferq::broker_detail
