#include "dispatcher.hpp"

namespace deferq::broker_detail {

worker_record* dispatcher::choose_worker(const function_record& function) {
    worker_record* best = nullptr;
    for (auto* worker : function.workers) {
        if (!worker->has_credit()) continue;
        if (!best || worker->free_slots() > best->free_slots() ||
            (worker->free_slots() == best->free_slots() &&
             worker->last_dispatch < best->last_dispatch))
            best = worker;
    }
    return best;
}

std::optional<dispatcher::assignment> dispatcher::next_for(function_record& function) {
    if (function.queued == 0) return std::nullopt;
    auto* worker = choose_worker(function);
    if (!worker) return std::nullopt;
    auto* j = _jobs.front(function);
    if (!j) return std::nullopt;
    _jobs.pop_front(function);
    return assignment{worker, j};
}

std::optional<dispatcher::assignment> dispatcher::next_for(worker_record& worker) {
    if (!worker.has_credit()) return std::nullopt;
    function_record* best = nullptr;
    job* best_job = nullptr;
    for (auto* function : worker.functions) {
        auto* j = _jobs.front(*function);
        if (!j) continue;
        auto priority = j->priority;
        if (!best || priority > best_job->priority ||
            (priority == best_job->priority && j->id < best_job->id)) {
            best = function;
            best_job = j;
        }
    }
    if (!best) return std::nullopt;
    auto* preferred = choose_worker(*best);
    _jobs.pop_front(*best);
    return assignment{preferred ? preferred : &worker, best_job};
}

} // namespace deferq::broker_detail
