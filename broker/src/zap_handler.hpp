#pragma once
/// The broker's ZAP handler (RFC 27, ZeroMQ's authentication protocol): with CURVE on, libzmq asks
/// it about every new connection, and it admits a peer only when its public key is in the
/// allow-list of the endpoint it connects to (docs/security.md). It runs in the broker loop, which
/// polls its socket next to the others.

#include "deferq/broker.hpp"
#include "deferq/broker_counters.hpp"

#include <zmq.hpp>

#include <span>
#include <vector>

namespace deferq::broker_detail {

/// The ZAP domains the broker's endpoints announce.
inline constexpr std::string_view zap_client_domain = "clients";
inline constexpr std::string_view zap_worker_domain = "workers";

class zap_handler {
public:
    /// Binds the context's ZAP endpoint (one handler per context).
    zap_handler(zmq::context_t& context, const broker_options& options, broker_counters& counters);

    /// For zmq::poll.
    void* handle() { return _socket.handle(); }
    /// Answers up to `max` waiting requests.
    void serve(int max);

    /// The reply to one request, as frames (pure: for tests).
    static std::vector<zmq::message_t> answer(std::span<const zmq::message_t> request,
                                              const broker_options& options,
                                              broker_counters& counters);

private:
    zmq::socket_t _socket;
    const broker_options& _options;
    broker_counters& _counters;
    std::vector<zmq::message_t> _request;
};

} // namespace deferq::broker_detail
