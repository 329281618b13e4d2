#pragma once
/// A function's queue of jobs, shared fairly between callers (docs/protocol.md §5, Fair share).
///
/// Priority is strict: a job of a higher priority always leaves first. Within one priority, each
/// tenant (a caller: its CURVE key, else its connection) has a line of its own, in arrival order,
/// and the lines take turns: the queue serves one job of the tenant at the head of the round,
/// then that tenant goes to the back. A tenant that had nothing queued joins the round ahead of
/// those that have been served already (behind other newcomers): its first job waits for no
/// backlog at all (as fq_codel serves new flows first). So one caller's backlog never delays
/// another's calls by more than a job per other caller; and no job waits while a slot could
/// take it.
///
/// Jobs are linked into their line intrusively (job::link): push, take and remove are O(1), a
/// cancelled job leaves at once, and a queued job costs no memory here beyond its record. A line
/// opens when a tenant queues its first job at a priority and closes when it empties; a few closed
/// lines and empty levels are kept for reuse, so that a queue a worker empties at every call does
/// not allocate at every call.
/// Owned by the broker loop.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <unordered_map>
#include <vector>

namespace deferq::broker_detail {

struct job;
struct tenant_record;

/// Where a job joins its line: behind the others (a new call) or before them (a job taken back
/// from a worker, or declined: it was first already).
enum class queue_end : std::uint8_t { back, front };

/// A job's place in its line.
struct queue_link {
    job* prev = nullptr;
    job* next = nullptr;
};

class job_queue {
public:
    job_queue() = default;
    job_queue(const job_queue&) = delete;
    job_queue& operator=(const job_queue&) = delete;

    /// Queues `j` (by its priority and tenant). It must not be queued already.
    void push(job& j, queue_end end);
    /// The job to serve next, left in place; null when the queue is empty. The lines of paused
    /// tenants (their clients have too much to read) are passed over and keep their place.
    job* front() const;
    /// Takes front() out and moves its tenant to the back of the round.
    void pop_front();
    /// Takes a queued job out wherever it is (cancelled, expired).
    void remove(job& j);

    std::size_t size() const { return _size; }
    bool empty() const { return _size == 0; }

    /// Calls `visit(job&)` with the first job of every line (the oldest candidates).
    void for_each_line_front(const std::function<void(job&)>& visit) const;
    /// Takes out every job for which `take(job)` is true and calls `taken(job)` for each, line by
    /// line in order (for jobs that can no longer be served: O(queued), for rare use).
    void take_if(const std::function<bool(const job&)>& take,
                 const std::function<void(job&)>& taken);

    /// Tenants with a line at some priority (for tests and status).
    std::size_t lines() const;

private:
    struct line {
        tenant_record* tenant;
        job* head = nullptr;
        job* tail = nullptr;
    };
    using round = std::list<line>;
    struct level {
        std::uint8_t priority;
        round turns;                  ///< the lines in serving order: newcomers first
        round::iterator first_served; ///< the first line that has been served (end: none)
        std::unordered_map<const tenant_record*, round::iterator> by_tenant;
    };

    level& level_of(std::uint8_t priority);
    level* find_level(std::uint8_t priority);
    /// Unlinks `j` from its line; drops the line (and the level) when it empties.
    void unlink(job& j, level& at, round::iterator which);

    using tenant_lines = std::unordered_map<const tenant_record*, round::iterator>;

    /// A line for `tenant` inserted before `where`, reusing a spare node when there is one.
    round::iterator new_line(level& at, round::iterator where, tenant_record* tenant);
    /// Keeps the emptied line `which` (and its entry in by_tenant) as spares, a few at most.
    void drop_line(level& at, round::iterator which);

    std::list<level> _levels; ///< few, by priority, highest first (nodes never move)
    std::size_t _size = 0;
    // A queue that a worker empties as fast as it fills opens and closes a line at every call:
    // their nodes are kept for the next one instead of going back to the allocator each time.
    round _spare_lines;
    std::vector<tenant_lines::node_type> _spare_entries;
};

} // namespace deferq::broker_detail
