#pragma once
/// The deadlines of calls whose callers wait with a timeout. A job's deadline is armed when its
/// call arrives and disarmed when the call ends, however it ends: memory follows the live calls,
/// not calls/s × timeout. Owned by the broker loop.

#include "records.hpp"

#include "deferq/deadline_heap.hpp"

#include <optional>

namespace deferq::broker_detail {

class deadlines {
public:
    /// Arms the job's deadline at `when`.
    void arm(job& j, time_point when) { _heap.schedule(j, when); }
    /// Disarms it; nothing when it is not armed.
    void disarm(job& j) { _heap.cancel(j); }
    /// The earliest armed deadline.
    std::optional<time_point> next() const { return _heap.next(); }
    /// Disarms and returns a job whose deadline is at or before `now`; null when none is due.
    job* take_due(time_point now) { return _heap.pop_due(now); }

    std::size_t size() const { return _heap.size(); }
    /// Gives back storage beyond what the armed deadlines need (after a burst).
    void shrink() { _heap.shrink(); }

private:
    deadline_heap<job, &job::deadline> _heap;
};

} // namespace deferq::broker_detail
