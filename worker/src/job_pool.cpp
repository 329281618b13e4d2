#include "job_pool.hpp"

#include "deferq/log.hpp"

#include <spdlog/spdlog.h>

namespace deferq::worker_detail {

void job_pool::start(unsigned threads, std::function<void(const job_ptr&)> run) {
    _run = std::move(run);
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
    for (auto& thread : _threads)
        thread.join();
    _threads.clear();
}

void job_pool::add(std::vector<job_ptr>& jobs) {
    if (jobs.empty()) return;
    auto count = jobs.size();
    {
        std::lock_guard lock(_mutex);
        for (auto& job : jobs)
            _jobs.push_back(std::move(job));
    }
    jobs.clear();
    if (count == 1)
        _ready.notify_one();
    else
        _ready.notify_all();
}

void job_pool::post(std::function<void()> task) {
    {
        std::lock_guard lock(_mutex);
        _tasks.push_back(std::move(task));
    }
    _ready.notify_one();
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
        {
            std::unique_lock lock(_mutex);
            _ready.wait(lock, [this] { return _stopping || !_tasks.empty() || !_jobs.empty(); });
            if (_stopping) return;
            if (!_tasks.empty()) {
                task = std::move(_tasks.front());
                _tasks.pop_front();
            } else {
                job = std::move(_jobs.front());
                _jobs.pop_front();
            }
        }
        if (!task) {
            _run(job);
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
