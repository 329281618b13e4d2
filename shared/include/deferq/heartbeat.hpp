#pragma once
/// The peer side of the heartbeat rules (docs/protocol.md §4), shared by workers and clients: when
/// to send a HEARTBEAT, when the broker counts as dead, how long to back off, and whether it
/// restarted. Owned and used by one I/O thread.

#include "deferq/protocol.hpp"

#include <chrono>
#include <cstdint>
#include <optional>

namespace deferq {

class broker_monitor {
public:
    using clock_type = std::chrono::steady_clock;

    /// Starts a connection: the broker gets a full expiry period from now.
    void connected(clock_type::time_point now);
    /// Any message from the broker: it is alive; the backoff resets.
    void heard(clock_type::time_point now);
    /// A HEARTBEAT from the broker: adopts the interval and liveness it announces (clamped to
    /// protocol::min/max_heartbeat_interval and 1 to max_liveness). True when its instance id
    /// differs from the one seen before (the broker restarted).
    bool announced(const protocol::broker_heartbeat& heartbeat);
    /// The broker said DISCONNECT: forget its instance.
    void forget_instance() { _instance.reset(); }
    /// Something was sent to the broker.
    void sent(clock_type::time_point now) { _last_sent = now; }

    /// True when nothing was sent for one interval: send a HEARTBEAT.
    bool heartbeat_due(clock_type::time_point now) const { return now - _last_sent >= _interval; }
    /// Called once per loop iteration. When the caller's own loop was stalled (the process was
    /// stopped or starved) for longer than half the expiry period, the broker's silence says
    /// nothing about the broker: it gets a fresh expiry period, so results go out before any
    /// reconnect.
    void loop_tick(clock_type::time_point now);

    /// True when the broker has been silent for interval × liveness (or the current backoff, if
    /// longer); the caller reconnects. Each true answer doubles the backoff (1 s to 32 s, ±25 %).
    bool expired(clock_type::time_point now);
    std::chrono::milliseconds silence(clock_type::time_point now) const;

    std::chrono::milliseconds interval() const { return _interval; }
    /// When a message from the broker last came ({} before the first).
    clock_type::time_point last_heard() const { return _last_heard; }
    /// What the broker announced it does (protocol::broker_features; 0 until it did).
    std::uint32_t features() const { return _features; }
    /// The largest message the broker accepts, as it announced it (the default until it did).
    std::uint64_t max_message_size() const { return _max_message_size; }

private:
    std::optional<std::uint64_t> _instance;
    std::chrono::milliseconds _interval = protocol::default_heartbeat_interval;
    std::uint32_t _liveness = protocol::default_liveness;
    std::uint64_t _max_message_size = protocol::default_max_message_size;
    clock_type::time_point _last_seen{};
    clock_type::time_point _last_heard{};
    std::uint32_t _features = 0;
    clock_type::time_point _last_sent{};
    clock_type::duration _backoff{};            ///< what the current connection is given
    std::chrono::milliseconds _backoff_base{0}; ///< its base before jitter: 0, then 1 s … 32 s
    clock_type::time_point _last_tick{};
};

} // namespace deferq
