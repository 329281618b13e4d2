#pragma once
/// What the broker reports about itself: builds a broker_status from the core's tables (for
/// `mmi.status`), keeps the samples that rates are computed from, and publishes a status snapshot
/// that other threads (the HTTP endpoints) read without ever waiting for the loop
/// (docs/architecture.md, Observability). Owned by the broker loop; snapshot() and
/// last_loop_activity() are safe from any thread.

#include "core/broker_core.hpp"

#include "deferq/broker_counters.hpp"
#include "deferq/broker_status.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace deferq::broker_detail {

class status_builder {
public:
    status_builder(broker_core& core, const broker_counters& counters, std::uint64_t instance,
                   time_point started, std::chrono::milliseconds snapshot_interval);

    /// Everything mmi.status reports, at `now`. Costs O(workers + functions + held jobs +
    /// clients): fine for a status request or a snapshot every few hundred ms, not per message.
    broker_status build(time_point now);

    /// Once per loop turn: marks the loop alive, samples the counters for rates (every second) and
    /// publishes a snapshot (every snapshot interval, when set).
    void observe(time_point now);

    /// This broker's role and state in a standby pair ("alone", "active" when it is not in one),
    /// reported from the next build on.
    void set_standby(std::string_view role, std::string_view state) {
        _standby_role = role;
        _standby_state = state;
    }

    /// The status published last (null before the first or when snapshots are off). Any thread.
    std::shared_ptr<const broker_status> snapshot() const;
    /// When the loop last went round. Any thread.
    time_point last_loop_activity() const;

private:
    /// Requests, replies and errors per second since the oldest sample (at most ~10 s ago).
    rate_status rates(time_point now) const;

    struct rate_sample {
        time_point at;
        std::uint64_t requests, replies, errors;
    };
    static constexpr std::size_t rate_samples = 11; ///< one a second: a 10 s window

    broker_core& _core;
    const broker_counters& _counters;
    std::uint64_t _instance;
    time_point _started;
    std::string _standby_role = "alone", _standby_state = "active";
    std::chrono::milliseconds _snapshot_interval;
    std::array<rate_sample, rate_samples> _samples{};
    std::size_t _next_sample = 0;
    time_point _next_sample_at{};
    time_point _next_snapshot_at{};
    mutable std::mutex _snapshot_mutex;
    std::shared_ptr<const broker_status> _snapshot; ///< written by the loop only
    std::atomic<clock_type::rep> _loop_activity{0};
};

} // namespace deferq::broker_detail
