#include "memory_return.hpp"

#include <malloc.h>

namespace deferq::broker_detail {

bool memory_return::tick(std::size_t live_jobs, std::uint64_t live_clients, time_point now) {
    if (live_jobs > _peak_jobs) _peak_jobs = live_jobs;
    bool burst_over = _peak_jobs >= trim_min_peak_jobs && live_jobs <= _peak_jobs / 4;
    bool clients_left = live_clients < _last_clients;
    _last_clients = live_clients;
    if (!burst_over && !clients_left) return false;
    if (now - _last_trim < trim_min_interval) return false;
    _last_trim = now;
    _peak_jobs = live_jobs;
    ::malloc_trim(0);
    ++_trims;
    return true;
}

} // namespace deferq::broker_detail
