// deferq-broker: parses options (command line or DEFERQ_* environment) and runs the broker.

#include "gateway.hpp"
#include "http_server.hpp"
#include "status_routes.hpp"

#include "deferq/broker.hpp"
#include "deferq/log.hpp"
#include "deferq/signals.hpp"

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <optional>
#include <thread>

int main(int argc, char** argv) {
    deferq::broker_options options;
    std::string log_level = "info", log_format = "text", ready_file;
    std::int64_t heartbeat_ms = options.heartbeat_interval.count();
    std::int64_t mdp_timeout_ms = options.mdp_timeout.count();

    CLI::App app{"deferq-broker: queues calls from clients and hands them to workers"};
    app.option_defaults()->always_capture_default();
    app.add_option("--clients", options.client_endpoint, "Endpoint for clients")
        ->envname("DEFERQ_CLIENTS");
    app.add_option("--workers", options.worker_endpoint, "Endpoint for workers")
        ->envname("DEFERQ_WORKERS");
    app.add_option("--heartbeat-interval", heartbeat_ms,
                   "Heartbeat interval in ms (announced to peers)")
        ->envname("DEFERQ_HEARTBEAT_INTERVAL")
        ->check(CLI::Range(10, 3'600'000));
    app.add_option("--liveness", options.liveness, "Missed heartbeats before a peer is dead")
        ->envname("DEFERQ_LIVENESS")
        ->check(CLI::Range(1, 1000));
    app.add_option("--max-attempts", options.max_attempts,
                   "Dispatches of a job whose worker dies before worker_lost")
        ->envname("DEFERQ_MAX_ATTEMPTS")
        ->check(CLI::Range(1, 255));
    app.add_option("--max-queue-length", options.max_queue_length,
                   "Queued jobs per function before overloaded")
        ->envname("DEFERQ_MAX_QUEUE_LENGTH");
    app.add_option("--max-pending-per-client", options.max_pending_per_client,
                   "Pending calls per client before overloaded")
        ->envname("DEFERQ_MAX_PENDING_PER_CLIENT");
    app.add_option("--max-message-size", options.max_message_size,
                   "Largest message accepted, bytes")
        ->envname("DEFERQ_MAX_MESSAGE_SIZE");
    app.add_option("--max-function-name", options.limits.max_function_name,
                   "Longest function name, bytes")
        ->envname("DEFERQ_MAX_FUNCTION_NAME");
    app.add_option("--max-worker-functions", options.limits.max_worker_functions,
                   "Most functions one worker may offer")
        ->envname("DEFERQ_MAX_WORKER_FUNCTIONS");
    app.add_option("--max-worker-slots", options.limits.max_worker_slots,
                   "Most slots one worker may announce")
        ->envname("DEFERQ_MAX_WORKER_SLOTS");
    app.add_option("--max-malformed", options.max_malformed,
                   "Bad messages one peer may send within a heartbeat interval before it is "
                   "disconnected (0: never)")
        ->envname("DEFERQ_MAX_MALFORMED");
    app.add_option("--max-tracked-peers", options.max_tracked_peers,
                   "Peers per endpoint whose bad messages are counted for --max-malformed")
        ->envname("DEFERQ_MAX_TRACKED_PEERS")
        ->check(CLI::Range(std::size_t{1}, std::size_t{10'000'000}));
    std::int64_t offender_ban_ms = options.offender_ban.count();
    app.add_option("--offender-ban", offender_ban_ms,
                   "How long a disconnected peer's messages are ignored, ms")
        ->envname("DEFERQ_OFFENDER_BAN")
        ->check(CLI::Range(std::int64_t{0}, std::int64_t{86'400'000}));
    app.add_flag("--strict", options.strict,
                 "Fail calls to functions no worker offers at once (no_such_function)")
        ->envname("DEFERQ_STRICT");
    app.add_option("--mdp-timeout", mdp_timeout_ms,
                   "Deadline of calls from 7/MDP clients, ms (0: none; docs/interop.md)")
        ->envname("DEFERQ_MDP_TIMEOUT")
        ->check(CLI::Range(std::int64_t{0}, std::int64_t{4'294'967'295}));
    std::string curve_key_file, client_keys_file, worker_keys_file;
    app.add_option("--curve-secret-key", curve_key_file,
                   "Broker's CURVE key file (from 'deferq keygen'): turns CURVE on")
        ->envname("DEFERQ_CURVE_SECRET_KEY");
    app.add_option("--client-keys", client_keys_file,
                   "Allow-list of client public keys (with CURVE)")
        ->envname("DEFERQ_CLIENT_KEYS");
    app.add_option("--worker-keys", worker_keys_file,
                   "Allow-list of worker public keys (with CURVE)")
        ->envname("DEFERQ_WORKER_KEYS");
    app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
        ->envname("DEFERQ_LOG_LEVEL");
    app.add_option("--log-format", log_format, "text or json")->envname("DEFERQ_LOG_FORMAT");
    std::string http_endpoint;
    app.add_option("--http", http_endpoint,
                   "Serve /metrics, /healthz, /status.json and the status page on HOST:PORT "
                   "(off unless set; port 0: any)")
        ->envname("DEFERQ_HTTP");
    bool gateway_on = false;
    std::string gateway_token, gateway_token_file;
    std::int64_t gateway_timeout_ms = 60'000;
    app.add_flag("--gateway", gateway_on,
                 "Serve every function as JSON-RPC (POST /rpc) and XML-RPC (POST /RPC2) on the "
                 "--http endpoint (docs/interop.md)")
        ->envname("DEFERQ_GATEWAY");
    app.add_option("--gateway-token", gateway_token,
                   "Callers of the gateway must give this token (Bearer, or basic auth password)")
        ->envname("DEFERQ_GATEWAY_TOKEN");
    app.add_option("--gateway-token-file", gateway_token_file,
                   "Read the gateway token from this file (first line)")
        ->envname("DEFERQ_GATEWAY_TOKEN_FILE");
    app.add_option("--gateway-timeout", gateway_timeout_ms, "Timeout of each gateway call, ms")
        ->envname("DEFERQ_GATEWAY_TIMEOUT")
        ->check(CLI::Range(std::int64_t{1}, std::int64_t{4'294'967'295}));
    app.add_option("--ready-file", ready_file,
                   "Write the bound endpoints to this file once listening")
        ->envname("DEFERQ_READY_FILE");
    CLI11_PARSE(app, argc, argv);
    options.heartbeat_interval = std::chrono::milliseconds{heartbeat_ms};
    options.mdp_timeout = std::chrono::milliseconds{mdp_timeout_ms};
    options.offender_ban = std::chrono::milliseconds{offender_ban_ms};

    try {
        deferq::setup_logging(log_level, log_format);
        if (!curve_key_file.empty()) {
            options.curve_keys = deferq::curve::read_key_file(curve_key_file);
            if (options.curve_keys->secret_key.empty())
                throw std::runtime_error(curve_key_file +
                                         " has no secret key (give the .key file, not the .pub)");
            if (client_keys_file.empty() || worker_keys_file.empty())
                throw std::runtime_error(
                    "with --curve-secret-key, give --client-keys and --worker-keys allow-lists");
            options.client_keys = deferq::curve::read_allow_list(client_keys_file);
            options.worker_keys = deferq::curve::read_allow_list(worker_keys_file);
        } else if (!client_keys_file.empty() || !worker_keys_file.empty()) {
            throw std::runtime_error("--client-keys and --worker-keys need --curve-secret-key");
        }
        if (!gateway_token_file.empty()) {
            std::ifstream in(gateway_token_file);
            if (!in || !std::getline(in, gateway_token))
                throw std::runtime_error("cannot read a token from " + gateway_token_file);
            while (!gateway_token.empty() &&
                   std::isspace(static_cast<unsigned char>(gateway_token.back())))
                gateway_token.pop_back();
        }
        if (gateway_on && http_endpoint.empty())
            throw std::runtime_error("--gateway needs --http (the gateway is served there)");
        // With CURVE, only listed keys may call; the gateway must not open a door around that.
        if (gateway_on && options.curve_keys && gateway_token.empty())
            throw std::runtime_error("with CURVE on, the gateway needs --gateway-token (or "
                                     "--gateway-token-file): it would let anyone call");
        std::optional<deferq::http_options> http_options;
        if (!http_endpoint.empty()) {
            http_options = deferq::parse_http_endpoint(http_endpoint);
            // The HTTP threads read the status the loop publishes this often.
            options.snapshot_interval = std::chrono::milliseconds{250};
        }
        deferq::termination_signals signals;
        zmq::context_t context;
        deferq::Broker broker(context, options);
        broker.bind();
        // The gateway's client goes before the context; the server before the gateway.
        std::optional<deferq::gateway> gateway;
        if (gateway_on)
            gateway.emplace(context, broker.in_process_client_endpoint(),
                            deferq::gateway_options{
                                .token = gateway_token,
                                .call_timeout = std::chrono::milliseconds{gateway_timeout_ms}});
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
        if (!ready_file.empty()) {
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
