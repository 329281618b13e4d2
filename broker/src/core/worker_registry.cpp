#include "worker_registry.hpp"

#include "log_text.hpp"

#include <algorithm>

namespace deferq::broker_detail {

worker_record* worker_registry::find(std::string_view routing_id) {
    auto it = _workers.find(routing_id);
    return it == _workers.end() ? nullptr : it->second.get();
}

worker_record& worker_registry::add(std::string_view routing_id, const peer_dialect& dialect,
                                    const worker_announcement& announcement, time_point now) {
    auto record = std::make_unique<worker_record>();
    record->routing_id = std::string(routing_id);
    record->dialect = &dialect;
    record->name =
        announcement.name.empty() ? printable(routing_id) : std::string(announcement.name);
    record->slots = announcement.slots;
    record->prefetch = announcement.prefetch;
    record->host = announcement.host;
    record->last_seen = now;
    record->joined = now;
    for (auto name : announcement.functions) {
        auto* function = &_jobs.function(name);
        if (std::find(record->functions.begin(), record->functions.end(), function) !=
            record->functions.end())
            continue; // the same name twice
        record->functions.push_back(function);
        function->workers.push_back(record.get());
    }
    auto& worker = *record;
    _workers.emplace(worker.routing_id, std::move(record));
    bump(_counters.workers_joined);
    set_gauge(_counters.live_workers, _workers.size());
    return worker;
}

void worker_registry::remove(worker_record& worker, time_point now) {
    for (auto* function : worker.functions) {
        std::erase(function->workers, &worker);
        if (function->workers.empty()) function->last_offered = now;
    }
    bump(_counters.workers_lost);
    _workers.erase(worker.routing_id);
    set_gauge(_counters.live_workers, _workers.size());
}

} // namespace deferq::broker_detail
