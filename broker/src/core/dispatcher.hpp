#pragma once
/// The choice of worker: which queued job goes to which worker. A worker may hold as many jobs as
/// its slots plus its prefetch (its credit); among the workers with credit the one with the most
/// free slots wins, then the one least recently given a job, so that long jobs spread evenly over
/// the pool while short ones stream (docs/protocol.md §5). Jobs leave a queue by priority, then
/// age. Decides only: broker_core sends what it chose. Owned by the broker loop.

#include "job_table.hpp"
#include "records.hpp"

#include <cstdint>
#include <optional>

namespace deferq::broker_detail {

class dispatcher {
public:
    explicit dispatcher(job_table& jobs) : _jobs(jobs) {}

    /// A job taken from its queue and the worker that is to run it.
    struct assignment {
        worker_record* worker;
        struct job* job;
    };

    /// The worker to give a job of `function` now: has credit, most free slots, then least
    /// recently used; null when none has credit.
    static worker_record* choose_worker(const function_record& function);

    /// The next queued job of `function` and its worker, taken from the queue; nothing when no
    /// job is queued or no worker has credit.
    std::optional<assignment> next_for(function_record& function);

    /// While `worker` has credit: the best queued job among its functions (priority, then age)
    /// and the worker to run it — another one when it has more free slots (spreads long jobs).
    /// Nothing when `worker` has no credit or nothing it offers is queued.
    std::optional<assignment> next_for(worker_record& worker);

    /// Call when a worker was given a job (for the least-recently-used choice).
    void note_dispatch(worker_record& worker) { worker.last_dispatch = ++_sequence; }

private:
    job_table& _jobs;
    std::uint64_t _sequence = 0;
};

} // namespace deferq::broker_detail
