#include "job_table.hpp"

#include "deferq/random_id.hpp"

#include <algorithm>

namespace deferq::broker_detail {
namespace {

constexpr std::uint64_t gauge_down = static_cast<std::uint64_t>(-1);

} // namespace

job_table::job_table(broker_counters& counters)
    : _counters(counters), _next_id((random_u64() >> 20) | 1) {}

function_record* job_table::find_function(std::string_view name) {
    auto it = _functions.find(name);
    return it == _functions.end() ? nullptr : it->second.get();
}

const function_record* job_table::find_function(std::string_view name) const {
    auto it = _functions.find(name);
    return it == _functions.end() ? nullptr : it->second.get();
}

function_record& job_table::function(std::string_view name) {
    auto it = _functions.find(name);
    if (it == _functions.end()) {
        auto record = std::make_unique<function_record>();
        record->name = std::string(name);
        it = _functions.emplace(record->name, std::move(record)).first;
    }
    return *it->second;
}

job& job_table::add(client_record& client, std::uint64_t correlation_id, function_record& function,
                    zmq::message_t payload, std::uint8_t priority, std::uint8_t max_attempts,
                    tenant_record& tenant) {
    auto id = _next_id++;
    auto& j = _jobs[id];
    j.id = id;
    j.client = &client;
    j.correlation_id = correlation_id;
    j.function = &function;
    j.payload = std::move(payload);
    j.priority = priority;
    j.max_attempts = max_attempts;
    j.tenant = &tenant;
    return j;
}

job& job_table::adopt(std::uint64_t id, std::uint64_t correlation_id, function_record& function,
                      std::uint8_t max_attempts) {
    auto& j = _jobs[id];
    j.id = id;
    j.correlation_id = correlation_id;
    j.function = &function;
    j.max_attempts = max_attempts;
    j.unclaimed = true;
    return j;
}

job* job_table::find(std::uint64_t id) {
    auto it = _jobs.find(id);
    return it == _jobs.end() ? nullptr : &it->second;
}

const job* job_table::find(std::uint64_t id) const {
    auto it = _jobs.find(id);
    return it == _jobs.end() ? nullptr : &it->second;
}

void job_table::erase(job& j) {
    _jobs.erase(j.id);
}

std::uint64_t job_table::parent_of(std::uint64_t child) const {
    if (_parent_of.empty()) return 0; // on every job's end: most jobs make no calls
    auto found = _parent_of.find(child);
    return found == _parent_of.end() ? 0 : found->second;
}

void job_table::remove_child(std::uint64_t child) {
    auto parent = parent_of(child);
    if (parent == 0) return;
    _parent_of.erase(child);
    auto found = _children.find(parent);
    if (found == _children.end()) return;
    found->second.erase(child);
    if (found->second.empty()) _children.erase(found);
}

std::vector<std::uint64_t> job_table::take_children(std::uint64_t parent) {
    if (_children.empty()) return {}; // on every job's end: most jobs make no calls
    auto found = _children.find(parent);
    if (found == _children.end()) return {};
    std::vector<std::uint64_t> children(found->second.begin(), found->second.end());
    _children.erase(found);
    return children;
}

void job_table::enqueue(job& j, queue_end end, time_point now) {
    j.since = now;
    j.state = job_state::queued;
    j.worker = nullptr;
    j.waiting = false;
    j.function->queue.push(j, end);
    ++j.function->queued;
    ++j.tenant->queued_jobs;
    j.tenant->queued_bytes += j.payload.size();
    _queued_bytes += j.payload.size();
    bump(_counters.queued_jobs);
}

job* job_table::front(function_record& function) {
    return function.queue.front();
}

void job_table::pop_front(function_record& function) {
    auto* j = function.queue.front();
    if (!j) return;
    function.queue.pop_front();
    dequeued(*j);
}

void job_table::unqueue(job& j) {
    j.function->queue.remove(j);
    dequeued(j);
}

void job_table::dequeued(job& j) {
    --j.function->queued;
    --j.tenant->queued_jobs;
    j.tenant->queued_bytes -= j.payload.size();
    _queued_bytes -= j.payload.size();
    bump(_counters.queued_jobs, gauge_down);
}

void job_table::take_expired(function_record& function,
                             const std::function<bool(const job&)>& expired,
                             const std::function<void(job&)>& taken) {
    function.queue.take_if(expired, [&](job& j) {
        dequeued(j);
        taken(j);
    });
}

time_point job_table::oldest_queued(function_record& function, time_point now) {
    auto oldest = now;
    function.queue.for_each_line_front([&](job& j) { oldest = std::min(oldest, j.since); });
    return oldest;
}

void job_table::hold(job& j, worker_record& worker, time_point now) {
    j.since = now;
    ++j.attempts;
    j.state = job_state::running;
    j.worker = &worker;
    worker.held.push_back(j.id);
    bump(_counters.running_jobs);
}

job* job_table::find_held(worker_record& worker, std::uint64_t id) {
    if (std::find(worker.held.begin(), worker.held.end(), id) == worker.held.end()) return nullptr;
    auto* j = find(id);
    return j && j->worker == &worker ? j : nullptr;
}

void job_table::release(worker_record& worker, std::uint64_t id) {
    auto it = std::find(worker.held.begin(), worker.held.end(), id);
    if (it != worker.held.end()) {
        *it = worker.held.back();
        worker.held.pop_back();
    }
    bump(_counters.running_jobs, gauge_down);
}

void job_table::tidy(time_point now, std::chrono::milliseconds memory) {
    for (auto it = _functions.begin(); it != _functions.end();) {
        auto& function = *it->second;
        bool remembered =
            function.last_offered != time_point{} && now - function.last_offered <= memory;
        if (function.workers.empty() && function.queued == 0 && function.parked == 0 &&
            !remembered) {
            it = _functions.erase(it);
            continue;
        }
        ++it;
    }
}

} // namespace deferq::broker_detail
