#pragma once
/// Gives memory back to the system after a burst. The allocator keeps what a burst of calls (or a
/// slow reader's replies in ZeroMQ's pipes) made it take, so a broker that once held a million
/// jobs would stay that large for good; this asks it to return the free part (glibc's malloc_trim)
/// once the burst is over: when the live jobs fell to a quarter of their peak, or clients left.
/// At most once a second (a reason within that second is kept for its end). Owned by the broker
/// loop.

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace deferq::broker_detail {

class memory_return {
public:
    using time_point = std::chrono::steady_clock::time_point;

    /// Called every tick with what the broker holds now. Returns true when it trimmed.
    bool tick(std::size_t live_jobs, std::uint64_t live_clients, time_point now);

    /// How many times it gave memory back (for tests and logs).
    std::uint64_t trims() const { return _trims; }

private:
    std::size_t _peak_jobs = 0;
    std::uint64_t _last_clients = 0;
    time_point _last_trim{};
    bool _due = false; ///< a reason came: trim once the interval since the last trim has passed
    std::uint64_t _trims = 0;
};

/// Below this many jobs at their peak, a burst is not worth a trim.
inline constexpr std::size_t trim_min_peak_jobs = 1024;
inline constexpr std::chrono::seconds trim_min_interval{1};

} // namespace deferq::broker_detail
