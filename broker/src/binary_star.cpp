#include "binary_star.hpp"

#include <fmt/format.h>

namespace deferq::broker_detail {

std::string_view to_string(ha_state state) {
    switch (state) {
    case ha_state::primary:
        return "primary";
    case ha_state::backup:
        return "backup";
    case ha_state::active:
        return "active";
    case ha_state::passive:
        return "passive";
    }
    return "unknown";
}

std::optional<ha_state> ha_state_from(std::uint8_t value) {
    if (value < static_cast<std::uint8_t>(ha_state::primary) ||
        value > static_cast<std::uint8_t>(ha_state::passive))
        return std::nullopt;
    return static_cast<ha_state>(value);
}

binary_star::binary_star(bool backup, std::chrono::milliseconds state_interval, time_point now)
    : _backup(backup), _expiry(2 * state_interval),
      _state(backup ? ha_state::backup : ha_state::primary), _started(now) {}

std::optional<ha_change> binary_star::change(ha_state to, std::string reason) {
    ha_change changed{_state, to, std::move(reason)};
    _state = to;
    return changed;
}

bool binary_star::partner_lost(time_point now) const {
    return _partner_heard && now - _last_heard >= _expiry;
}

std::string binary_star::silent_for(time_point now) const {
    return fmt::format(
        "{:.1f} s",
        std::chrono::duration<double>(now - (_partner_heard ? _last_heard : _started)).count());
}

std::optional<ha_change> binary_star::on_partner_state(ha_state partner, time_point now) {
    _partner_heard = true;
    _last_heard = now;
    switch (_state) {
    case ha_state::primary:
        // A starting primary follows the partner: it takes the cluster only when the partner
        // does not serve it.
        if (partner == ha_state::backup || partner == ha_state::passive)
            return change(ha_state::active, fmt::format("partner is {}", to_string(partner)));
        if (partner == ha_state::active)
            return change(ha_state::passive,
                          "partner is active: it serves the cluster, this broker stands by");
        return std::nullopt; // two primaries: the shell logs the misconfiguration
    case ha_state::backup:
        if (partner == ha_state::active) return change(ha_state::passive, "partner is active");
        return std::nullopt; // a starting primary hears "backup" and goes active first
    case ha_state::active:
        // A returning partner finds this broker serving and stands by: no second switch. Both
        // active (a partition healed): the backup steps down, the primary stays.
        if (partner == ha_state::active && _backup) {
            _step_down = true;
            return change(ha_state::passive,
                          "partner is active too (the link between the brokers was cut): the "
                          "backup steps down");
        }
        return std::nullopt;
    case ha_state::passive:
        // The active partner restarted (it starts as primary or backup). A restarting backup was
        // serving: its peers are coming here, take over. A restarting primary was serving too
        // (this broker is passive): it hears "passive" and takes the cluster back itself, where
        // its peers still are; this broker stays passive (bstar goes active here, which races
        // with the primary's own rule).
        if (partner == ha_state::backup && !_backup)
            return change(ha_state::active, "partner restarted as backup");
        if (partner == ha_state::passive && !_backup)
            return change(ha_state::active, "partner is passive too: the primary serves");
        return std::nullopt;
    }
    return std::nullopt;
}

std::optional<ha_change> binary_star::on_peer_came(std::string_view what, time_point now) {
    if (_state != ha_state::passive || !partner_lost(now)) return std::nullopt;
    // Split-brain guard: the partner is silent AND a peer came, so the peers lost it too.
    return change(ha_state::active,
                  fmt::format("partner silent for {} and a {} came", silent_for(now), what));
}

std::optional<ha_change> binary_star::on_tick(time_point now) {
    if (_state == ha_state::primary && !_partner_heard && now - _started >= _expiry)
        return change(ha_state::active,
                      fmt::format("no partner heard for {}: serving alone", silent_for(now)));
    return std::nullopt;
}

} // namespace deferq::broker_detail
