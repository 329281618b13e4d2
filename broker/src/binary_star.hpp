#pragma once
/// The standby broker's state machine (Binary Star, zguide chapter 4; docs/protocol.md §8): which
/// of the two brokers of a pair serves. No socket and no clock: the shell tells it what it heard
/// from its partner, that a client or worker came, and what time it is; it answers whether this
/// broker serves, and each change of state with its reason (for the log). Owned by the broker loop.

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace deferq::broker_detail {

/// A broker's state in a pair. `primary` and `backup` are the starting states (not serving yet);
/// `active` serves; `passive` drops what its clients and workers send, unanswered.
enum class ha_state : std::uint8_t { primary = 1, backup = 2, active = 3, passive = 4 };

/// "primary", "backup", "active", "passive".
std::string_view to_string(ha_state state);
/// The state named by one byte on the peer link; nothing for any other value.
std::optional<ha_state> ha_state_from(std::uint8_t value);

/// Thrown out of the broker loop when both brokers of a pair are active and this one (the backup)
/// steps down: the program exits, and restarted it comes back passive.
struct standby_step_down : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// What a change of state asks of the shell.
struct ha_change {
    ha_state from, to;
    std::string reason; ///< for the log: "partner silent for 2.1 s and a client came"
};

class binary_star {
public:
    using clock_type = std::chrono::steady_clock;
    using time_point = clock_type::time_point;

    /// `backup`: this broker was started with --backup. `state_interval`: how often each broker
    /// tells its partner its state (the heartbeat interval); the partner is lost after twice that.
    binary_star(bool backup, std::chrono::milliseconds state_interval, time_point now);

    ha_state state() const { return _state; }
    bool is_backup() const { return _backup; }
    /// True while this broker serves its clients and workers.
    bool serving() const { return _state == ha_state::active; }
    std::chrono::milliseconds peer_expiry() const { return _expiry; }
    /// Whether the partner was ever heard, and when last.
    bool partner_heard() const { return _partner_heard; }

    /// The partner said its state. A change, when this broker changes state.
    [[nodiscard]] std::optional<ha_change> on_partner_state(ha_state partner, time_point now);

    /// A client or worker sent this broker a message. A change when it makes a passive broker
    /// active (its partner is lost: the peer came because the partner is gone). While
    /// serving() is false afterwards, the shell drops the message unanswered.
    [[nodiscard]] std::optional<ha_change> on_peer_came(std::string_view what, time_point now);

    /// Time passes: a starting primary that heard nothing for the expiry serves alone.
    [[nodiscard]] std::optional<ha_change> on_tick(time_point now);

    /// True when both brokers are active and this one must step down (the backup does; the
    /// primary stays): set by on_partner_state, for the shell to act on.
    bool must_step_down() const { return _step_down; }

private:
    std::optional<ha_change> change(ha_state to, std::string reason);
    bool partner_lost(time_point now) const;
    std::string silent_for(time_point now) const;

    bool _backup;
    std::chrono::milliseconds _expiry;
    ha_state _state;
    time_point _started;
    time_point _last_heard{};
    bool _partner_heard = false;
    bool _step_down = false;
};

} // namespace deferq::broker_detail
