// deferq-broker: reads its settings (broker_config) and wires the broker, its HTTP server and the
// gateway together.

#include "broker_config.hpp"
#include "gateway.hpp"
#include "http_server.hpp"
#include "open_file_limit.hpp"
#include "status_routes.hpp"

#include "deferq/broker.hpp"
#include "deferq/log.hpp"
#include "deferq/memory.hpp"
#include "deferq/signals.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <optional>
#include <thread>
#include <variant>

int main(int argc, char** argv) {
    // Not deferq::keep_big_buffers(), which the worker calls: its trim threshold would keep the
    // memory of a burst in the ZeroMQ threads' arenas, which the broker gives back (memory_return;
    // docs/operations.md, "Sizing: memory for big messages").
    std::variant<deferq::broker_config, deferq::exit_now> parsed;
    try {
        parsed = deferq::parse_broker_config(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "deferq-broker: %s\n", e.what());
        return 1;
    }
    if (auto* exit = std::get_if<deferq::exit_now>(&parsed)) return exit->code;
    auto& config = std::get<deferq::broker_config>(parsed);
    auto& options = config.broker;
    const auto& http_endpoint = config.http_endpoint;
    const auto& gateway_token = config.gateway_token;
    bool gateway_on = config.gateway;

    try {
        deferq::setup_logging(config.log_level, config.log_format);
        deferq::raise_open_file_limit(); // every peer costs a file descriptor
        std::optional<deferq::http_options> http_options;
        if (!http_endpoint.empty()) {
            http_options = deferq::parse_http_endpoint(http_endpoint);
            options.snapshot_interval = deferq::http_snapshot_interval;
        }
        deferq::termination_signals signals;
        zmq::context_t context;
        deferq::Broker broker(context, options);
        broker.bind();
        // The gateway's client goes before the context; the server before the gateway.
        std::optional<deferq::gateway> gateway;
        if (gateway_on)
            gateway.emplace(
                context, broker.in_process_client_endpoint(),
                deferq::gateway_options{.token = gateway_token,
                                        .call_timeout = config.gateway_timeout,
                                        // Half the HTTP threads at most: the others answer /healthz
                                        // and /metrics however many slow calls the gateway has.
                                        .max_in_progress = static_cast<std::size_t>(
                                            (http_options ? http_options->threads : 32) / 2)});
        // Destroyed before the broker: its handlers read the broker's snapshot.
        std::optional<deferq::http_server> http;
        if (http_options) {
            http.emplace(*http_options);
            deferq::add_status_routes(*http, broker);
            if (gateway) gateway->add_routes(*http);
            http->start();
            const auto& host = http_options->host;
            bool loopback = host.starts_with("127.") || host == "::1" || host == "localhost";
            if (!loopback)
                deferq::log().warn("http on {} is reachable from other machines and has no "
                                   "authentication: anyone who can connect sees the cluster",
                                   http->endpoint());
            if (gateway)
                deferq::log().log(
                    !loopback && gateway_token.empty() ? spdlog::level::warn : spdlog::level::info,
                    "gateway on: JSON-RPC http://{}/rpc, XML-RPC http://{}/RPC2{}",
                    http->endpoint(), http->endpoint(),
                    gateway_token.empty() ? (loopback ? ""
                                                      : "; NO TOKEN: anyone who can connect may "
                                                        "call every function")
                                          : ", token required");
        }
        if (const auto& ready_file = config.ready_file; !ready_file.empty()) {
            std::string temporary = ready_file + ".tmp";
            std::ofstream out(temporary);
            out << "clients=" << broker.client_endpoint()
                << "\nworkers=" << broker.worker_endpoint() << "\n";
            if (http) out << "http=" << http->endpoint() << "\n";
            out.close();
            std::rename(temporary.c_str(), ready_file.c_str());
        }
        std::atomic<bool> failed{false};
        std::jthread loop([&](std::stop_token stop) {
            try {
                broker.run(stop);
            } catch (const std::exception& e) {
                deferq::log().critical("broker loop failed: {}", e.what());
                failed = true;
            }
        });
        while (!signals.wait(std::chrono::milliseconds{200}) && !failed) {
        }
        if (auto number = signals.received())
            deferq::log().info("received signal {}, stopping", *number);
        // The loop first: peers hear DISCONNECT at once. Stopping HTTP can take up to its
        // keep-alive timeout (2 s) while a client keeps a connection open.
        loop.request_stop();
        loop.join();
        if (http) http->stop();
        return failed ? 1 : 0;
    } catch (const std::exception& e) {
        deferq::log().critical("deferq-broker: {}", e.what());
        return 1;
    }
}
