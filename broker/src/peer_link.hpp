#pragma once
/// The link between the two brokers of a standby pair (docs/protocol.md §8), Binary Star style: a
/// PUB socket bound on --peer-bind that says this broker's state every state interval, and a SUB
/// socket connected to the partner's --peer-bind that hears the partner's. One message, three
/// frames: "DFQP01", u8 state (1 primary, 2 backup, 3 active, 4 passive), u64 instance id.
///
/// With CURVE on, the two brokers share one key pair: the PUB is a CURVE server with it and the SUB
/// a CURVE client that knows its public key, so only a holder of the pair's secret key can speak
/// as the partner. The link has its own ZeroMQ context: the broker's ZAP handler (its allow-lists
/// of clients and workers) does not see it. Owned by the broker loop.

#include "binary_star.hpp"

#include "deferq/broker.hpp"

#include <zmq.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace deferq::broker_detail {

inline constexpr std::string_view peer_protocol = "DFQP01";

/// What the partner said.
struct partner_state {
    ha_state state;
    std::uint64_t instance;
};

class peer_link {
public:
    using time_point = std::chrono::steady_clock::time_point;

    peer_link(const standby_options& options, const std::optional<curve::key_pair>& curve_keys,
              std::uint64_t instance, std::chrono::milliseconds state_interval);
    ~peer_link();
    peer_link(const peer_link&) = delete;
    peer_link& operator=(const peer_link&) = delete;

    /// Binds --peer-bind and connects to --peer (throws zmq::error_t when the bind fails).
    void start();
    /// The endpoint bound (wildcards resolved).
    const std::string& bound_endpoint() const { return _bound; }

    /// For zmq::poll: readable when the partner said something.
    void* handle() { return _sub.handle(); }
    /// One message from the partner, when one is waiting; a malformed one is skipped and logged
    /// (at most once per state interval).
    std::optional<partner_state> receive(time_point now);

    /// Says `state` when a state interval has passed since the last time (or at once when
    /// `changed`).
    void say(ha_state state, time_point now, bool changed = false);
    /// When say() is next due.
    time_point next_due() const { return _next_say; }

private:
    zmq::context_t _context{1};
    zmq::socket_t _pub;
    zmq::socket_t _sub;
    standby_options _options;
    std::uint64_t _instance;
    std::chrono::milliseconds _interval;
    std::string _bound;
    std::vector<zmq::message_t> _frames;
    time_point _next_say{};
    time_point _next_complaint{};
};

} // namespace deferq::broker_detail
