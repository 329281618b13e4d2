#pragma once
/// The broker's guard against peers that send bad messages (docs/protocol.md §4, Validation): it
/// counts each peer's bad messages per heartbeat interval, logs a peer at most once per interval,
/// says when a peer has sent too many and must be disconnected, and ignores a disconnected peer's
/// messages until its ban is over. Its memory is bounded (max_tracked_peers per endpoint). Owned by
/// the broker loop.

#include "core/records.hpp"

#include "deferq/broker.hpp"

#include <string_view>

namespace deferq::broker_detail {

class bad_peers {
public:
    bad_peers(const broker_options& options, broker_counters& counters)
        : _options(options), _counters(counters) {}

    /// Counts one bad message (`what`: its kind, `reason`: why, from the peer's own bytes: it is
    /// escaped). True when the peer must be disconnected now: more than max_malformed bad
    /// messages within one interval; its messages are ignored from now until its ban is over.
    [[nodiscard]] bool offence(side from, std::string_view routing_id, std::string_view what,
                               std::string_view reason, time_point now);

    /// True (and counted) when the message comes from a peer disconnected for bad messages whose
    /// ban is not over: such a message is dropped unread.
    [[nodiscard]] bool ignored(side from, std::string_view routing_id, time_point now);

    /// Forgets peers whose interval ended and whose ban (if any) is over.
    void prune(time_point now);

private:
    struct record {
        time_point window_start;    ///< the current interval began
        std::uint32_t offences = 0; ///< bad messages in the current interval
        std::uint64_t unlogged = 0; ///< bad messages since the last log line
        bool logged = false;        ///< a line was logged in the current interval
        time_point banned_until{};  ///< disconnected: its messages are ignored until then
    };

    string_map<record>& table(side from) { return from == side::worker ? _workers : _clients; }
    /// The peer's record, made on first use; null when it cannot be tracked (no routing id, or
    /// max_tracked_peers reached even after pruning).
    record* track(side from, std::string_view routing_id, time_point now);
    void prune(string_map<record>& peers, time_point now);

    const broker_options& _options;
    broker_counters& _counters;
    string_map<record> _clients, _workers;
    time_point _last_untracked_log{};
};

/// "client" or "worker", for log lines.
std::string_view to_string(side endpoint) noexcept;

} // namespace deferq::broker_detail
