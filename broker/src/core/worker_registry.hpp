#pragma once
/// The workers the broker knows, by routing id: registration (READY links a worker to the
/// functions it offers), lookup, and removal. The rules for what happens to a removed worker's jobs
/// are broker_core's. Owned by the broker loop.

#include "job_table.hpp"
#include "records.hpp"

#include "deferq/broker_counters.hpp"

#include <memory>
#include <span>
#include <string_view>

namespace deferq::broker_detail {

/// What a worker announces when it registers.
struct worker_announcement {
    std::string_view name; ///< empty: named after its routing id
    std::uint32_t slots;
    std::uint32_t prefetch;
    std::span<const std::string_view> functions;
    std::string host; ///< its address as ZeroMQ saw it; empty when unknown
};

class worker_registry {
public:
    worker_registry(job_table& jobs, broker_counters& counters)
        : _jobs(jobs), _counters(counters) {}

    worker_record* find(std::string_view routing_id);

    /// Registers a worker (the routing id must be new) and links it to its functions.
    worker_record& add(std::string_view routing_id, const peer_dialect& dialect,
                       const worker_announcement& announcement, time_point now);

    /// Unlinks the worker from its functions and forgets it. The jobs it held are the caller's
    /// to requeue or fail first. A function left with no worker remembers when (`now`).
    void remove(worker_record& worker, time_point now);

    std::size_t size() const { return _workers.size(); }
    /// Every worker, for ticks and status. Removing while iterating: iterate over a copy.
    const string_map<std::unique_ptr<worker_record>>& all() const { return _workers; }

private:
    job_table& _jobs;
    broker_counters& _counters;
    string_map<std::unique_ptr<worker_record>> _workers;
};

} // namespace deferq::broker_detail
