#include "memory_return.hpp"

#include <malloc.h>

namespace deferq::broker_detail {

bool memory_return::tick(std::size_t live_jobs, std::uint64_t live_clients, time_point now) {
    if (live_jobs > _peak_jobs) _peak_jobs = live_jobs;
    bool burst_over = _peak_jobs >= trim_min_peak_jobs && live_jobs <= _peak_jobs / 4;
    bool clients_left = live_clients < _last_clients;
    _last_clients = live_clients;
    // A reason that comes within the interval after a trim waits for its end, not for another
    // reason: a client that leaves a moment after a burst's trim leaves its memory to return too.
    _due = _due || burst_over || clients_left;
    if (!_due || now - _last_trim < trim_min_interval) return false;
    _due = false;
    _last_trim = now;
    _peak_jobs = live_jobs;
    ::malloc_trim(0);
    ++_trims;
    return true;
}

} // namespace deferq::broker_detail
