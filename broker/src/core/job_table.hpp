#pragma once
/// The broker's jobs and the functions they belong to: every job by id, each function's queue, and
/// the moves of a job's life — queued, taken from its queue, held by a worker, released, forgotten.
/// It decides nothing (the dispatcher chooses, broker_core applies the rules); it keeps the job
/// records, the queues and the queued/running gauges consistent. Owned by the broker loop.

#include "records.hpp"

#include "deferq/broker_counters.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace deferq::broker_detail {

class job_table {
public:
    explicit job_table(broker_counters& counters);

    // ---- functions

    /// The function of that name; null when nobody offers it or waits for it.
    function_record* find_function(std::string_view name);
    const function_record* find_function(std::string_view name) const;
    /// The function of that name, added when new.
    function_record& function(std::string_view name);
    const string_map<std::unique_ptr<function_record>>& functions() const { return _functions; }

    // ---- jobs

    /// A new job (not queued yet) with a fresh id; ids are never reused, not even across restarts.
    /// It is served from `tenant`'s share (the caller holds a use of the tenant for it).
    job& add(client_record& client, std::uint64_t correlation_id, function_record& function,
             zmq::message_t payload, std::uint8_t priority, std::uint8_t max_attempts,
             tenant_record& tenant);
    /// A job a worker reports holding from an earlier connection (HELD, docs/protocol.md §3c),
    /// under the id it has there; not queued, no caller yet. The id must be free.
    job& adopt(std::uint64_t id, std::uint64_t correlation_id, function_record& function,
               std::uint8_t max_attempts);
    job* find(std::uint64_t id);
    const job* find(std::uint64_t id) const;
    /// Forgets a job. It must be neither queued (see unqueue) nor held (see release).
    void erase(job& j);
    std::size_t size() const { return _jobs.size(); }
    /// Argument bytes of every queued job.
    std::uint64_t queued_bytes() const { return _queued_bytes; }

    // ---- queues

    /// Queues a job behind the others of its priority (back: a new call) or before them (front:
    /// one taken back from a worker, or declined).
    void enqueue(job& j, queue_end end, time_point now);
    /// The first live job of the function's queue (highest priority, oldest), left in place.
    job* front(function_record& function);
    /// Takes the job front() returned out of its queue; the caller dispatches or fails it.
    void pop_front(function_record& function);
    /// A queued job leaves its queue without being dispatched (cancelled, timed out): erase it
    /// next.
    void unqueue(job& j);
    /// When the oldest job queued for `function` was queued; `now` when none is.
    time_point oldest_queued(function_record& function, time_point now);

    // ---- holding

    /// A job taken from its queue goes to `worker`: running, one more attempt.
    void hold(job& j, worker_record& worker, time_point now);
    /// The job if `worker` holds it, else null (answers for other workers' jobs are refused).
    job* find_held(worker_record& worker, std::uint64_t id);
    /// `worker` no longer holds the job (answered, declined, taken back).
    void release(worker_record& worker, std::uint64_t id);

    // ---- families: the calls a job's handler made (docs/protocol.md §3b)
    void add_child(std::uint64_t parent, std::uint64_t child) {
        _children[parent].insert(child);
        _parent_of[child] = parent;
    }
    /// The job that made `child`'s call; 0 for a client's call. (Kept beside the job records, not
    /// in them: most jobs have no parent, and a queued job's size is what W4 measures.)
    std::uint64_t parent_of(std::uint64_t child) const;
    /// `child` ended: it leaves its parent's children.
    void remove_child(std::uint64_t child);
    /// The job's children still known, taken out of the index.
    std::vector<std::uint64_t> take_children(std::uint64_t parent);

    // ---- upkeep (once per tick)

    /// Forgets functions nobody offers, waits for, or offered within `memory`.
    void tidy(time_point now, std::chrono::milliseconds memory);
    /// Takes out of `function`'s queue the jobs for which `expired(job)` is true and calls
    /// `taken(job)` for each (O(queued): for functions no worker offers).
    void take_expired(function_record& function, const std::function<bool(const job&)>& expired,
                      const std::function<void(job&)>& taken);

private:
    /// The job left its queue: the counts follow.
    void dequeued(job& j);

    broker_counters& _counters;
    std::unordered_map<std::uint64_t, job> _jobs;
    /// Parent job → its live children; only jobs that made calls have an entry.
    std::unordered_map<std::uint64_t, std::unordered_set<std::uint64_t>> _children;
    std::unordered_map<std::uint64_t, std::uint64_t> _parent_of; ///< child → parent
    string_map<std::unique_ptr<function_record>> _functions;
    std::uint64_t _next_id;
    std::uint64_t _queued_bytes = 0;
};

} // namespace deferq::broker_detail
