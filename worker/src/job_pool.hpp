#pragma once
/// The worker's pool of threads: they run jobs in arrival order, and ahead of new jobs the
/// continuations of jobs that wait (their calls' answers fire their Deferreds there, never on the
/// I/O thread: docs/protocol.md §3b). An idle thread may watch the broker's socket instead of
/// waiting (docs/architecture.md, "Threads"): then a job it reads runs on it, with no hand-off.
/// Private to the worker.

#include "job_run.hpp"

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace deferq::worker_detail {

class job_pool {
public:
    using job_ptr = std::shared_ptr<job_record>;

    /// How a watch ended: jobs came (the first runs on the watching thread, the others queue),
    /// the pool woke the watcher (work for it, or stop), or watching was refused (the worker
    /// drains or has no connection): the thread waits for work, not watching, until nudged.
    struct watched {
        enum class end { jobs, woken, refused } how;
        std::vector<job_ptr> jobs;
    };
    /// Watches until jobs come or `wake_fd` is readable (the pool wakes the watcher through it).
    using watch_fn = std::function<watched(int wake_fd)>;

    job_pool();
    ~job_pool();

    /// Runs a job; `more`: other jobs were queued behind it when it was taken.
    using run_fn = std::function<void(const job_ptr& job, bool more)>;

    /// Starts `threads` threads; each runs `run(job, more)` for the jobs it takes, and at most one
    /// idle thread at a time calls `watch` (when given) instead of waiting.
    void start(unsigned threads, run_fn run, watch_fn watch = {});
    /// Stops the threads once each finished what it runs (jobs not started stay).
    void stop();
    /// Wakes the watcher, or an idle thread that was refused: the conditions for watching changed.
    void nudge();

    /// Jobs for the pool, in order, under one lock (`jobs` is emptied).
    void add(std::vector<job_ptr>& jobs);
    /// Runs `task` on a pool thread, ahead of jobs not started.
    void post(std::function<void()> task);
    /// Takes the jobs not started beyond the first `keep`, newest first.
    std::vector<job_ptr> take_beyond(std::size_t keep);

private:
    void thread_main();
    /// With the lock held: whether the watcher must stop watching to take work (more is queued
    /// than the idle threads, all woken, take).
    bool wake_watcher_locked() const { return _watching && _jobs.size() + _tasks.size() > _idle; }
    void wake_watcher();

    run_fn _run;
    watch_fn _watch;
    int _wake_fd;
    bool _watching = false; ///< a thread is in _watch
    bool _refused = false;  ///< the last watch was refused: none until nudged or given work
    unsigned _idle = 0;     ///< threads waiting on _ready
    std::vector<std::thread> _threads;
    std::mutex _mutex;
    std::condition_variable _ready;
    std::deque<job_ptr> _jobs;
    std::deque<std::function<void()>> _tasks;
    bool _stopping = false;
};

} // namespace deferq::worker_detail
