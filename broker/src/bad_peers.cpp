#include "bad_peers.hpp"

#include "core/log_text.hpp"

#include "deferq/log.hpp"

#include <spdlog/spdlog.h>

namespace deferq::broker_detail {

std::string_view to_string(side endpoint) noexcept {
    return endpoint == side::client ? "client" : "worker";
}

bool bad_peers::offence(side from, std::string_view routing_id, std::string_view what,
                        std::string_view reason, time_point now) {
    auto* peer = track(from, routing_id, now);
    if (!peer) {
        // Untracked (no routing id, or the table is full): one log line per interval in all.
        if (now - _last_untracked_log >= _options.heartbeat_interval) {
            _last_untracked_log = now;
            log().warn("dropped {} from {} peer {}: {} ({} malformed so far)", what,
                       to_string(from), printable(routing_id), escaped(reason),
                       _counters.malformed_messages.load());
        }
        return false;
    }
    if (now - peer->window_start >= _options.heartbeat_interval) {
        peer->window_start = now;
        peer->offences = 0;
        peer->logged = false;
    }
    ++peer->offences;
    ++peer->unlogged;
    if (!peer->logged) {
        peer->logged = true;
        log().warn("dropped {} from {} peer {}: {} ({} bad from this peer since the last "
                   "report, {} malformed in all)",
                   what, to_string(from), printable(routing_id), escaped(reason), peer->unlogged,
                   _counters.malformed_messages.load());
        peer->unlogged = 0;
    }
    if (_options.max_malformed == 0 || peer->offences <= _options.max_malformed) return false;
    bump(_counters.peers_disconnected);
    peer->banned_until = now + _options.offender_ban;
    log().warn("disconnected {} peer {}: {} bad messages within {} ms; ignoring it for {} ms "
               "({} peer(s) disconnected so far)",
               to_string(from), printable(routing_id), peer->offences,
               _options.heartbeat_interval.count(), _options.offender_ban.count(),
               _counters.peers_disconnected.load());
    return true;
}

bool bad_peers::ignored(side from, std::string_view routing_id, time_point now) {
    auto& peers = table(from);
    if (peers.empty()) return false;
    auto it = peers.find(routing_id);
    if (it == peers.end() || it->second.banned_until == time_point{}) return false;
    if (now >= it->second.banned_until) return false;
    bump(_counters.ignored_messages);
    return true;
}

void bad_peers::prune(time_point now) {
    prune(_clients, now);
    prune(_workers, now);
}

bad_peers::record* bad_peers::track(side from, std::string_view routing_id, time_point now) {
    if (routing_id.empty()) return nullptr;
    auto& peers = table(from);
    if (auto it = peers.find(routing_id); it != peers.end()) return &it->second;
    if (peers.size() >= _options.max_tracked_peers) prune(peers, now);
    if (peers.size() >= _options.max_tracked_peers) return nullptr;
    auto& peer = peers[std::string(routing_id)];
    peer.window_start = now;
    return &peer;
}

void bad_peers::prune(string_map<record>& peers, time_point now) {
    std::erase_if(peers, [&](const auto& entry) {
        return now - entry.second.window_start >= _options.heartbeat_interval &&
               entry.second.banned_until <= now;
    });
}

} // namespace deferq::broker_detail
