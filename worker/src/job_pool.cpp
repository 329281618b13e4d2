#include "job_pool.hpp"

#include "deferq/log.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <stdexcept>

#include <spdlog/spdlog.h>

namespace deferq::worker_detail {

job_pool::job_pool() : _wake_fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (_wake_fd < 0) throw std::runtime_error("eventfd failed");
}

job_pool::~job_pool() {
    stop();
    ::close(_wake_fd);
}

void job_pool::start(unsigned threads, run_fn run, watch_fn watch) {
    _run = std::move(run);
    _watch = std::move(watch);
    _stopping = false;
    for (unsigned i = 0; i < threads; ++i)
        _threads.emplace_back([this] { thread_main(); });
}

void job_pool::stop() {
    {
        std::lock_guard lock(_mutex);
        _stopping = true;
    }
    _ready.notify_all();
    wake_watcher();
    for (auto& thread : _threads)
        thread.join();
    _threads.clear();
}

void job_pool::add(std::vector<job_ptr>& jobs) {
    if (jobs.empty()) return;
    auto count = jobs.size();
    bool wake = false;
    {
        std::lock_guard lock(_mutex);
        for (auto& job : jobs)
            _jobs.push_back(std::move(job));
        _refused = false;
        wake = wake_watcher_locked();
    }
    jobs.clear();
    if (count == 1)
        _ready.notify_one();
    else
        _ready.notify_all();
    if (wake) wake_watcher();
}

void job_pool::post(std::function<void()> task) {
    bool wake = false;
    {
        std::lock_guard lock(_mutex);
        _tasks.push_back(std::move(task));
        _refused = false;
        wake = wake_watcher_locked();
    }
    _ready.notify_one();
    if (wake) wake_watcher();
}

void job_pool::nudge() {
    {
        std::lock_guard lock(_mutex);
        _refused = false;
    }
    _ready.notify_one();
    wake_watcher();
}

void job_pool::wake_watcher() {
    std::uint64_t one = 1;
    [[maybe_unused]] auto written = ::write(_wake_fd, &one, sizeof one);
}

std::vector<job_pool::job_ptr> job_pool::take_beyond(std::size_t keep) {
    std::vector<job_ptr> taken;
    std::lock_guard lock(_mutex);
    while (_jobs.size() > keep) {
        taken.push_back(std::move(_jobs.back()));
        _jobs.pop_back();
    }
    return taken;
}

void job_pool::thread_main() {
    while (true) {
        job_ptr job;
        std::function<void()> task;
        bool more = false;
        {
            std::unique_lock lock(_mutex);
            while (!_stopping && _tasks.empty() && _jobs.empty()) {
                if (!_watch || _watching || _refused) {
                    ++_idle;
                    _ready.wait(lock);
                    --_idle;
                    continue;
                }
                _watching = true;
                lock.unlock();
                auto seen = _watch(_wake_fd);
                lock.lock();
                _watching = false;
                // A woken watch spends its wake-up. One that came as another watch ended stays
                // and wakes the next watch once, which then spends it: no read per job.
                if (seen.how == watched::end::woken) {
                    std::uint64_t count;
                    [[maybe_unused]] auto got = ::read(_wake_fd, &count, sizeof count);
                }
                if (seen.how == watched::end::refused) _refused = true;
                if (seen.jobs.empty()) continue;
                job = std::move(seen.jobs.front());
                for (std::size_t i = 1; i < seen.jobs.size(); ++i)
                    _jobs.push_back(std::move(seen.jobs[i]));
                _ready.notify_all(); // an idle thread watches now, others take the queued jobs
                break;
            }
            if (_stopping) return;
            if (job) {
                more = !_jobs.empty();
                lock.unlock();
                _run(job, more);
                continue;
            }
            if (!_tasks.empty()) {
                task = std::move(_tasks.front());
                _tasks.pop_front();
            } else {
                job = std::move(_jobs.front());
                _jobs.pop_front();
                more = !_jobs.empty();
            }
        }
        if (!task) {
            _run(job, more);
            continue;
        }
        try {
            task();
        } catch (const std::exception& e) { // a continuation's own error: the Deferred has it
            log().error("a continuation on the worker's pool threw: {}", e.what());
        }
    }
}

} // namespace deferq::worker_detail
