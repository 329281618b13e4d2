#include "status_routes.hpp"

#include "msgpack_json.hpp"
#include "status_page.hpp" // generated from status_page.html at build time

#include "deferq/broker_status.hpp"

namespace deferq {
namespace {

void no_snapshot_yet(http_response& response) {
    response.status = 503;
    response.body = "the broker has not published its status yet\n";
    response.headers.emplace_back("Retry-After", "1");
}

} // namespace

void add_status_routes(http_server& server, const Broker& broker,
                       std::chrono::milliseconds stall_limit) {
    server.get("/healthz", [&broker, stall_limit](const http_request&, http_response& response) {
        auto last = broker.last_loop_activity();
        auto silent = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - last);
        response.headers.emplace_back("Cache-Control", "no-store");
        if (last.time_since_epoch().count() == 0) {
            response.status = 503;
            response.body = "starting\n";
        } else if (silent > stall_limit) {
            response.status = 503;
            response.body = "broker loop stalled for " + std::to_string(silent.count()) + " ms\n";
        } else {
            response.body = "ok\n";
        }
    });
    server.get("/metrics", [&broker](const http_request&, http_response& response) {
        auto status = broker.snapshot();
        if (!status) return no_snapshot_yet(response);
        response.content_type = "text/plain; version=0.0.4; charset=utf-8";
        response.body = to_prometheus(*status);
    });
    server.get("/status.json", [&broker](const http_request&, http_response& response) {
        auto status = broker.snapshot();
        if (!status) return no_snapshot_yet(response);
        // The same conversion as deferq status --json; names come from the network: invalid
        // UTF-8 in them is replaced, never a failure.
        auto json = msgpack_json::to_json(pack_status(*status), msgpack_json::bad_utf8::replace);
        response.content_type = "application/json";
        response.headers.emplace_back("Cache-Control", "no-store");
        response.body = json.dump();
    });
    server.get("/", [](const http_request&, http_response& response) {
        response.content_type = "text/html; charset=utf-8";
        response.body = std::string(status_page_html);
    });
}

} // namespace deferq
