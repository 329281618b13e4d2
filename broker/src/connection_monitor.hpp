#pragma once
/// Watches one of the broker's ROUTER sockets for connections ZeroMQ could not accept — above all
/// "too many open files", when the broker has more peers than its open-file limit allows — and
/// says so: counted (connections_refused) and logged at most once per interval with the count and
/// the limit. Without it such peers just get nothing (docs/operations.md, Sizing). Owned by the
/// broker loop, which polls its socket next to the others.

#include "deferq/broker_counters.hpp"

#include <zmq.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace deferq::broker_detail {

class connection_monitor {
public:
    /// `name`: what the watched socket is, for log lines ("client endpoint").
    connection_monitor(zmq::context_t& context, zmq::socket_t& watched, std::string name,
                       broker_counters& counters);
    connection_monitor(const connection_monitor&) = delete;
    connection_monitor& operator=(const connection_monitor&) = delete;

    /// For zmq::poll.
    void* handle() { return _events.handle(); }
    /// Reads the events waiting; logs refused connections at most once per `log_interval`.
    void drain(std::chrono::steady_clock::time_point now, std::chrono::milliseconds log_interval);

private:
    zmq::socket_t _events;
    std::string _name;
    broker_counters& _counters;
    std::vector<zmq::message_t> _frames;
    std::uint64_t _unlogged = 0;
    int _last_errno = 0;
    std::chrono::steady_clock::time_point _last_log{};
};

} // namespace deferq::broker_detail
