#include "deferq/heartbeat.hpp"

#include "deferq/random_id.hpp"

#include <algorithm>

namespace deferq {

void broker_monitor::connected(clock_type::time_point now) {
    _last_seen = now;
}

void broker_monitor::heard(clock_type::time_point now) {
    _last_seen = now;
    _last_heard = now;
    _backoff = clock_type::duration::zero();
    _backoff_base = std::chrono::milliseconds::zero();
}

bool broker_monitor::announced(const protocol::broker_heartbeat& heartbeat) {
    // Clamped: the product interval × liveness, in nanoseconds, must not overflow (found by the
    // client fuzz target: an announced interval of 2^32 - 1 ms times a large liveness did).
    _interval = std::clamp(std::chrono::milliseconds{heartbeat.interval_ms},
                           protocol::min_heartbeat_interval, protocol::max_heartbeat_interval);
    _liveness = std::clamp(heartbeat.liveness, std::uint32_t{1}, protocol::max_liveness);
    if (heartbeat.max_message_size != 0) _max_message_size = heartbeat.max_message_size;
    _features = heartbeat.features;
    bool restarted = _instance && *_instance != heartbeat.instance;
    _instance = heartbeat.instance;
    return restarted;
}

void broker_monitor::loop_tick(clock_type::time_point now) {
    if (_last_tick != clock_type::time_point{} && now - _last_tick > _interval * _liveness / 2)
        _last_seen = now;
    _last_tick = now;
}

bool broker_monitor::expired(clock_type::time_point now) {
    if (now - _last_seen <= std::max<clock_type::duration>(_interval * _liveness, _backoff))
        return false;
    using namespace std::chrono;
    // The base doubles (1 s, 2 s, 4 s … 32 s); the jitter is applied to each value used, never fed
    // back into the next base, so it neither compounds nor restarts the sequence.
    _backoff_base = _backoff_base == milliseconds::zero()
                        ? milliseconds{1000}
                        : std::min<milliseconds>(_backoff_base * 2, milliseconds{32'000});
    auto base = _backoff_base.count();
    auto jitter =
        static_cast<std::int64_t>(random_u64() % static_cast<std::uint64_t>(base / 2 + 1)) -
        base / 4;
    _backoff = milliseconds{base + jitter};
    return true;
}

std::chrono::milliseconds broker_monitor::silence(clock_type::time_point now) const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(now - _last_seen);
}

} // namespace deferq
