#pragma once
/// The HTTP gateway (docs/interop.md): every function of the cluster as JSON-RPC 2.0 (`POST /rpc`)
/// and XML-RPC (`POST /RPC2`) on the broker's HTTP server. Each call becomes a job like any other:
/// the gateway is a deferq::Client of its own broker, connected in-process. Off unless enabled.

#include "http_server.hpp"

#include "deferq/client.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace deferq {

struct gateway_options {
    /// When set, a request must carry it: `Authorization: Bearer TOKEN`, or HTTP basic
    /// authentication with TOKEN as the password (any user name: what xmlrpc.client sends for
    /// http://user:TOKEN@host/RPC2). Compared in constant time.
    std::string token{};
    /// The timeout of each call (JSON-RPC and XML-RPC cannot carry one).
    std::chrono::milliseconds call_timeout{60'000};
    /// Most calls in one JSON-RPC batch.
    std::size_t max_batch = 1000;
    /// Most gateway requests served at once. Each holds an HTTP thread while its calls run; the
    /// HTTP server has more threads than this, so /healthz and /metrics always find one. Past it,
    /// a request is answered 503 at once (docs/interop.md, Limits).
    std::size_t max_in_progress = 16;
};

/// Counters, readable from any thread.
struct gateway_counters {
    std::atomic<std::uint64_t> requests{0};     ///< HTTP requests to /rpc and /RPC2
    std::atomic<std::uint64_t> calls{0};        ///< calls made (a batch makes several)
    std::atomic<std::uint64_t> refused{0};      ///< malformed, unmappable or too large
    std::atomic<std::uint64_t> unauthorized{0}; ///< missing or wrong token
    std::atomic<std::uint64_t> busy{0};         ///< answered 503: max_in_progress were running
};

/// Owns the gateway's client. Construct with the broker's context and its in-process client
/// endpoint, then add_routes() before the server starts. Must outlive the server's handlers and
/// go before the context. Non-copyable.
class gateway {
public:
    gateway(zmq::context_t& context, std::string broker_endpoint, gateway_options options);
    ~gateway();
    gateway(const gateway&) = delete;
    gateway& operator=(const gateway&) = delete;

    /// Registers POST /rpc and POST /RPC2.
    void add_routes(http_server& server);

    const gateway_counters& counters() const { return _counters; }

private:
    bool authorized(const http_request& request, http_response& response);
    /// Takes a place among the requests in progress; false (503 answered) when none is free.
    bool admitted(http_response& response);
    /// Serves one gateway request in a place of its own.
    template <typename Serve>
    void serve(const http_request& request, http_response& response, Serve&& serve_it);
    void json_rpc(const http_request& request, http_response& response);
    void xml_rpc(const http_request& request, http_response& response);

    gateway_options _options;
    gateway_counters _counters;
    std::atomic<std::size_t> _in_progress{0};
    std::unique_ptr<Client> _client;
};

} // namespace deferq
