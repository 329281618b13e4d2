#pragma once
/// A deferq broker in this process on inproc endpoints, stepped by hand (Broker::run_once), with
/// raw DEALER peers that send and receive bytes. For protocol-conformance tests and the broker fuzz
/// target (tests/fuzz): one thread, no waiting for time to pass, no other process.

#include "raw_peer.hpp"

#include "deferq/broker.hpp"
#include "deferq/protocol.hpp"

#include <zmq.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace deferq::test {

class inproc_broker {
public:
    /// Binds a broker on fresh inproc endpoints of `context` (the endpoints in `options` are
    /// replaced).
    inproc_broker(zmq::context_t& context, broker_options options = {})
        : _context(context), _broker(context, with_endpoints(std::move(options))) {
        _broker.bind();
    }

    Broker& broker() { return _broker; }
    const broker_counters& counters() const { return _broker.counters(); }

    /// A raw DEALER connected to the client endpoint with this routing id.
    zmq::socket_t client(std::string_view routing_id) {
        return peer(_broker.client_endpoint(), routing_id);
    }
    /// A raw DEALER connected to the worker endpoint with this routing id.
    zmq::socket_t worker(std::string_view routing_id) {
        return peer(_broker.worker_endpoint(), routing_id);
    }

    /// Lets the broker handle everything sent to it so far (one loop turn, without waiting).
    void step() { _broker.run_once(std::chrono::milliseconds{0}); }

private:
    static broker_options with_endpoints(broker_options options) {
        static std::atomic<std::uint64_t> instances{0};
        auto n = std::to_string(++instances);
        options.client_endpoint = "inproc://deferq-clients-" + n;
        options.worker_endpoint = "inproc://deferq-workers-" + n;
        return options;
    }

    zmq::socket_t peer(const std::string& endpoint, std::string_view routing_id) {
        return raw_dealer(_context, endpoint, routing_id);
    }

    zmq::context_t& _context;
    Broker _broker;
};

} // namespace deferq::test
