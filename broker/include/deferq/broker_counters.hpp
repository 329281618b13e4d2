#pragma once
/// The broker's counters and gauges, declared once: `broker_counters` holds the values (atomics the
/// loop writes and any thread may read), `counter_table` names each one with its kind and help
/// text. `mmi.status`, `/status.json` and `/metrics` all read this one table, so a counter that is
/// added or renamed here appears everywhere under its one name (docs/operations.md lists them).

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace deferq {

/// Counters, readable from any thread while the broker runs. Only the broker loop writes them.
struct broker_counters {
    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> replies{0};
    std::atomic<std::uint64_t> errors{0};
    std::atomic<std::uint64_t> duplicate_requests{0};
    std::atomic<std::uint64_t> cancels{0};
    std::atomic<std::uint64_t> timeouts{0};
    std::atomic<std::uint64_t> overloaded{0};
    std::atomic<std::uint64_t> requeued{0};
    std::atomic<std::uint64_t> workers_lost{0};
    std::atomic<std::uint64_t> workers_joined{0};
    std::atomic<std::uint64_t> clients_expired{0};
    std::atomic<std::uint64_t> late_replies{0};
    std::atomic<std::uint64_t> malformed_messages{0};
    std::atomic<std::uint64_t> undeliverable{0};
    std::atomic<std::uint64_t> unauthorized{0};        ///< connections refused by the allow-lists
    std::atomic<std::uint64_t> peers_disconnected{0};  ///< for too many bad messages
    std::atomic<std::uint64_t> ignored_messages{0};    ///< from a peer while it is disconnected
    std::atomic<std::uint64_t> connections_refused{0}; ///< not accepted (open-file limit)
    std::atomic<std::uint64_t> replies_held{0};        ///< messages held for slow clients
    std::atomic<std::uint64_t> replies_dropped{0};     ///< held messages dropped: their client went
    std::atomic<std::uint64_t> clients_cut_off{0};     ///< forgotten for reading nothing
    std::atomic<std::uint64_t> jobs_adopted{0};        ///< reported by workers (HELD), kept
    std::atomic<std::uint64_t> adoptions_refused{0};   ///< reported, but the call runs elsewhere
    std::atomic<std::uint64_t> resent_parked{0};       ///< resent calls that waited for reports
    std::atomic<std::uint64_t> standby_dropped{0};     ///< unanswered: this broker stands by
    std::atomic<std::uint64_t> queued_jobs{0};         ///< gauge
    std::atomic<std::uint64_t> running_jobs{0};        ///< gauge
    std::atomic<std::uint64_t> live_workers{0};        ///< gauge
    std::atomic<std::uint64_t> live_clients{0};        ///< gauge
};

enum class metric_kind : std::uint8_t { counter, gauge };

/// One row of the counter table: the name every reader uses, what it is, and where its value is.
struct counter_info {
    std::string_view name;
    metric_kind kind;
    std::string_view help;
    std::atomic<std::uint64_t> broker_counters::*value;
};

// clang-format off
inline constexpr counter_info counter_table[] = {
    {"requests", metric_kind::counter, "Requests received from clients, mmi.* included.", &broker_counters::requests},
    {"replies", metric_kind::counter, "Results delivered to clients.", &broker_counters::replies},
    {"errors", metric_kind::counter, "Errors sent to clients, any code.", &broker_counters::errors},
    {"duplicate_requests", metric_kind::counter, "Requests ignored because the broker already held that call.", &broker_counters::duplicate_requests},
    {"cancels", metric_kind::counter, "Calls cancelled by their client.", &broker_counters::cancels},
    {"timeouts", metric_kind::counter, "Calls whose deadline passed.", &broker_counters::timeouts},
    {"overloaded", metric_kind::counter, "Calls refused because a queue or a client's pending limit was full.", &broker_counters::overloaded},
    {"requeued", metric_kind::counter, "Jobs put back in their queue because their worker was lost.", &broker_counters::requeued},
    {"workers_lost", metric_kind::counter, "Workers removed: expired, disconnected or unreachable.", &broker_counters::workers_lost},
    {"workers_joined", metric_kind::counter, "Workers that registered (READY).", &broker_counters::workers_joined},
    {"clients_expired", metric_kind::counter, "Clients forgotten because they went silent.", &broker_counters::clients_expired},
    {"late_replies", metric_kind::counter, "Worker answers for jobs the worker did not hold (dropped).", &broker_counters::late_replies},
    {"malformed_messages", metric_kind::counter, "Malformed messages dropped.", &broker_counters::malformed_messages},
    {"undeliverable", metric_kind::counter, "Messages the broker could not deliver to a peer.", &broker_counters::undeliverable},
    {"unauthorized", metric_kind::counter, "Connections refused by the CURVE allow-lists.", &broker_counters::unauthorized},
    {"peers_disconnected", metric_kind::counter, "Peers disconnected for sending too many bad messages.", &broker_counters::peers_disconnected},
    {"ignored_messages", metric_kind::counter, "Messages from disconnected peers dropped unread during their ban.", &broker_counters::ignored_messages},
    {"connections_refused", metric_kind::counter, "Connection attempts the broker could not accept (above all: its open-file limit reached).", &broker_counters::connections_refused},
    {"replies_held", metric_kind::counter, "Messages to clients held by the broker because the client's connection had no room (it reads slowly).", &broker_counters::replies_held},
    {"replies_dropped", metric_kind::counter, "Held messages dropped because their client went away or was cut off.", &broker_counters::replies_dropped},
    {"clients_cut_off", metric_kind::counter, "Clients forgotten because more than the tenant budget waited for them to read.", &broker_counters::clients_cut_off},
    {"jobs_adopted", metric_kind::counter, "Jobs a worker reported holding from an earlier broker connection (HELD) and that the broker adopted instead of running them again.", &broker_counters::jobs_adopted},
    {"adoptions_refused", metric_kind::counter, "Jobs a worker reported holding whose call runs elsewhere already (the worker is told to cancel them).", &broker_counters::adoptions_refused},
    {"resent_parked", metric_kind::counter, "Resent calls that waited, after the broker started, for the workers' reports of the jobs they hold.", &broker_counters::resent_parked},
    {"standby_dropped", metric_kind::counter, "Messages from clients and workers dropped unanswered while this broker of a standby pair was not active (they move to the other one).", &broker_counters::standby_dropped},
    {"queued_jobs", metric_kind::gauge, "Jobs waiting in queues.", &broker_counters::queued_jobs},
    {"running_jobs", metric_kind::gauge, "Jobs dispatched to workers and not answered yet.", &broker_counters::running_jobs},
    {"live_workers", metric_kind::gauge, "Workers registered now.", &broker_counters::live_workers},
    {"live_clients", metric_kind::gauge, "Clients known now.", &broker_counters::live_clients},
};
// clang-format on

inline constexpr std::size_t counter_count = std::size(counter_table);

/// Values of every counter at one instant, in the order of counter_table.
using counter_values = std::array<std::uint64_t, counter_count>;

/// The position of `name` in counter_table; counter_count when there is no such counter.
constexpr std::size_t counter_index(std::string_view name) noexcept {
    for (std::size_t i = 0; i < counter_count; ++i)
        if (counter_table[i].name == name) return i;
    return counter_count;
}

/// Reads every counter (relaxed: each value is exact, the set is not one atomic snapshot).
inline counter_values read_counters(const broker_counters& counters) noexcept {
    counter_values values{};
    for (std::size_t i = 0; i < counter_count; ++i)
        values[i] = (counters.*(counter_table[i].value)).load(std::memory_order_relaxed);
    return values;
}

/// Adds to a counter, or moves a gauge by `by` (a gauge goes down by adding -1 as unsigned). Only
/// the broker loop writes, so a load and a store suffice.
inline void bump(std::atomic<std::uint64_t>& counter, std::uint64_t by = 1) noexcept {
    counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}
inline void set_gauge(std::atomic<std::uint64_t>& gauge, std::uint64_t value) noexcept {
    gauge.store(value, std::memory_order_relaxed);
}

} // namespace deferq
