#pragma once
// deferq-chaos's execution counter (tests/chaos.cpp). Some calls are `counted(key, ms)` of the
// counted_jobs plugin (tests/plugins/counted_jobs.cpp), each with a key of its own. Every worker
// is given its own DEFERQ_EXEC_LOG (exec-<worker>.log in the log folder), so each line of those
// logs says which worker ran which key.
//
// The rule (docs/protocol.md §3c): a job runs again only when the worker that held it died. Chaos
// kills workers (kill -9) and freezes them (SIGSTOP: the broker may expire a frozen worker and
// requeue its jobs, or a frozen worker may come back to a new broker after its adoption window);
// those faults may legitimately make a key run twice. So a key that ran more than once is
// *explained* when one of the workers that ran it was killed, or frozen, between the call's start
// and its end (for a call that failed or never ended: the end of the run); any other is
// *executed twice*, and fails the run, whatever the brokers went through (kill -9, SIGTERM,
// failover: jobs are adopted, not run again). SIGTERM of a worker (drain) lets it finish its jobs
// and explains nothing.

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace deferq::chaos {

/// When chaos took each worker out of service without letting it finish. Main thread only.
class worker_faults {
public:
    using time_point = std::chrono::steady_clock::time_point;

    void killed(const std::string& worker, time_point at);
    void frozen(const std::string& worker, time_point from);
    void thawed(const std::string& worker, time_point at);
    /// True if `worker` was killed or frozen at some moment of [from, to].
    bool hit(const std::string& worker, time_point from, time_point to) const;

private:
    std::map<std::string, std::vector<std::pair<time_point, time_point>>> _faults;
};

/// One counted call, as the caller saw it.
struct counted_call {
    std::string key;
    std::chrono::steady_clock::time_point started, ended; ///< ended: max() if it never did
    bool answered = false;                                ///< ended with its value
};

struct execution_tally {
    std::size_t calls = 0, runs = 0, keys_run = 0, more_than_once = 0, explained = 0,
                executed_twice = 0, answered_never_ran = 0;
    std::vector<std::string> examples; ///< the first few keys that break the rule

    /// "counted calls 2400, runs 2395 of 2390 keys, run more than once 3 (explained by a worker
    ///  fault 3), answered but never run 0"
    std::string summary() const;
};

/// The log of worker `name`'s executions.
std::string exec_log_path(const std::string& log_dir, const std::string& worker);

/// Reads exec-<worker>.log of every worker started, and judges each counted call by the rule.
execution_tally tally_executions(const std::string& log_dir,
                                 const std::vector<std::string>& workers,
                                 const std::vector<counted_call>& calls,
                                 const worker_faults& faults);

} // namespace deferq::chaos
