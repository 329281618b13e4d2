#pragma once
/// The worker's pool of threads: they run jobs in arrival order, and ahead of new jobs the
/// continuations of jobs that wait (their calls' answers fire their Deferreds there, never on the
/// I/O thread: docs/protocol.md §3b). Private to the worker.

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

    ~job_pool() { stop(); }

    /// Starts `threads` threads; each runs `run(job)` for the jobs it takes.
    void start(unsigned threads, std::function<void(const job_ptr&)> run);
    /// Stops the threads once each finished what it runs (jobs not started stay).
    void stop();

    /// Jobs for the pool, in order, under one lock (`jobs` is emptied).
    void add(std::vector<job_ptr>& jobs);
    /// Runs `task` on a pool thread, ahead of jobs not started.
    void post(std::function<void()> task);
    /// Takes the jobs not started beyond the first `keep`, newest first.
    std::vector<job_ptr> take_beyond(std::size_t keep);

private:
    void thread_main();

    std::function<void(const job_ptr&)> _run;
    std::vector<std::thread> _threads;
    std::mutex _mutex;
    std::condition_variable _ready;
    std::deque<job_ptr> _jobs;
    std::deque<std::function<void()>> _tasks;
    bool _stopping = false;
};

} // namespace deferq::worker_detail
