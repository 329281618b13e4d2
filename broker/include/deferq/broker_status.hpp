#pragma once
/// What the broker knows about its cluster at one instant: workers, functions (queues, in flight,
/// outcomes, latency histograms), clients, counters and rates. Built by the broker loop (for
/// `mmi.status`, and published as a snapshot for other threads: Broker::snapshot()); plain values,
/// cheap to copy, safe to read from any thread once built.

#include "deferq/broker_counters.hpp"
#include "deferq/error_code.hpp"
#include "deferq/histogram.hpp"

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace deferq {

struct worker_status {
    std::string id;   ///< routing id, hex (first 8 bytes): tells apart workers of the same name
    std::string name; ///< as the worker announced it (need not be unique)
    std::string host; ///< the peer's address as ZeroMQ saw it; empty when unknown
    std::uint32_t slots = 0;
    std::uint32_t prefetch = 0;
    std::uint64_t held = 0; ///< jobs dispatched to it and not answered (running + prefetched)
    std::uint64_t busy = 0; ///< slots in use: min(held, slots)
    std::uint64_t jobs_done = 0;
    std::uint64_t failures = 0; ///< jobs it answered with ERROR
    std::int64_t last_seen_ms = 0;
    std::int64_t connected_ms = 0;
    bool draining = false;
    std::vector<std::string> functions;
};

/// Slots for counting failures by error code, indexed by the wire value.
using failure_counts = std::array<std::uint64_t, max_wire_error_code + 1>;

struct function_status {
    std::string name;
    std::uint64_t queued = 0;
    std::uint64_t in_flight = 0; ///< dispatched to a worker, not answered yet
    std::uint64_t workers = 0;
    std::int64_t oldest_queued_ms = 0; ///< age of the oldest queued job; 0 when none
    std::uint64_t done = 0;            ///< calls answered with a result
    std::uint64_t failed = 0;          ///< calls that failed (sum of failed_by_code)
    failure_counts failed_by_code{};
    latency_histogram queue_wait;   ///< arrival (or requeue) to dispatch
    latency_histogram service_time; ///< dispatch to the worker's answer
};

struct client_status {
    std::string id; ///< routing id, hex
    std::uint64_t pending = 0;
    std::int64_t last_seen_ms = 0;
};

/// A caller the broker shares its workers between (docs/protocol.md §4, Fair share).
struct tenant_status {
    std::string id; ///< "key <z85 CURVE key>" or "client <routing id hex>"
    std::uint64_t queued = 0;
    std::uint64_t queued_bytes = 0; ///< argument bytes of its queued jobs (its budget's use)
    std::uint64_t running = 0;
    std::uint64_t reply_bytes = 0; ///< answers its clients have not read yet, held by the broker
    bool paused = false;           ///< its jobs wait until its clients read
};

/// The byte budgets (docs/operations.md, Sharing) and their use.
struct budget_status {
    std::uint64_t tenant_budget = 0;
    std::uint64_t broker_budget = 0;
    std::uint64_t queued_bytes = 0; ///< all tenants' queued argument bytes
    std::uint64_t held_bytes = 0;   ///< answers held for clients that read slowly
};

/// Calls per second over the last `window_seconds` (fewer right after start).
struct rate_status {
    double window_seconds = 0;
    double requests_per_second = 0;
    double replies_per_second = 0;
    double errors_per_second = 0;
};

struct broker_status {
    std::uint64_t instance = 0;
    std::int64_t uptime_ms = 0;
    /// In a standby pair (docs/protocol.md §8): "primary" or "backup", and the state ("primary" or
    /// "backup" while starting, "active", "passive"). A broker alone: "alone", "active".
    std::string standby_role = "alone";
    std::string standby_state = "active";
    /// The broker_counters, in the order of counter_table (docs/protocol.md §7).
    counter_values counters{};
    rate_status rates;
    std::vector<worker_status> workers;
    std::vector<function_status> functions;
    /// At most `max_listed_clients` clients, most pending calls first; the counter live_clients
    /// has the total.
    std::vector<client_status> clients;
    static constexpr std::size_t max_listed_clients = 100;
    /// At most `max_listed_tenants` tenants, most queued bytes first.
    std::vector<tenant_status> tenants;
    static constexpr std::size_t max_listed_tenants = 100;
    budget_status budgets;

    /// The counter of that name; 0 when there is none.
    std::uint64_t counter(std::string_view name) const {
        auto index = counter_index(name);
        return index < counter_count ? counters[index] : 0;
    }
};

/// The status as `mmi.status` answers it: a msgpack map (docs/protocol.md §7).
std::string pack_status(const broker_status& status);

/// The status in the Prometheus text exposition format, version 0.0.4 (docs/operations.md lists
/// the metrics).
std::string to_prometheus(const broker_status& status);

} // namespace deferq
