#pragma once
/// The broker's observability endpoints on an http_server: /metrics (Prometheus text format),
/// /healthz, /status.json and / (the status page). They read the snapshot the broker loop
/// publishes (Broker::snapshot()): never the loop's own data, never its sockets.

#include "http_server.hpp"

#include "deferq/broker.hpp"

#include <chrono>

namespace deferq {

/// Registers GET /, /status.json, /metrics and /healthz. /healthz answers 200 while the broker
/// loop went round within `stall_limit`, else 503. The broker must outlive the server.
void add_status_routes(http_server& server, const Broker& broker,
                       std::chrono::milliseconds stall_limit = std::chrono::seconds{5});

} // namespace deferq
