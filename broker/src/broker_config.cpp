#include "broker_config.hpp"

#include "deferq/curve.hpp"
#include "deferq/endpoint.hpp"

#include <CLI/CLI.hpp>

#include <cctype>
#include <fstream>

namespace deferq {
namespace {

std::string read_token(const std::string& path) {
    std::ifstream in(path);
    std::string token;
    if (!in || !std::getline(in, token))
        throw config_error("--gateway-token-file: cannot read a token from " + path);
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back())))
        token.pop_back();
    return token;
}

/// --peer-bind and --peer go together; --backup needs them; each is one endpoint.
void check_standby(const standby_options& standby) {
    if (standby.peer_bind.empty() && standby.peer.empty())
        throw config_error("--backup needs --peer-bind and --peer (where this broker listens for "
                           "its partner, and where it reaches the partner's --peer-bind)");
    if (standby.peer.empty())
        throw config_error("--peer-bind needs --peer (where this broker reaches its partner's "
                           "--peer-bind)");
    if (standby.peer_bind.empty())
        throw config_error("--peer needs --peer-bind (where this broker listens for its partner)");
    if (auto problem = endpoint_problem(standby.peer_bind, endpoint_use::bind))
        throw config_error("--peer-bind: " + *problem);
    if (standby.peer.find(',') != std::string::npos)
        throw config_error("--peer: '" + standby.peer +
                           "' is a list; give the one endpoint of the partner's --peer-bind");
    if (auto problem = endpoint_problem(standby.peer, endpoint_use::connect))
        throw config_error("--peer: " + *problem);
    if (standby.peer == standby.peer_bind)
        throw config_error("--peer: '" + standby.peer +
                           "' is this broker's own --peer-bind; give the partner's");
}

} // namespace

std::variant<broker_config, exit_now> parse_broker_config(int argc, const char* const* argv) {
    broker_config config;
    auto& options = config.broker;
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
    app.add_option("--tenant-budget", options.tenant_budget,
                   "Bytes of arguments one tenant (a CURVE key, else a client) may have queued "
                   "before overloaded")
        ->envname("DEFERQ_TENANT_BUDGET")
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 50));
    app.add_option("--broker-budget", options.broker_budget,
                   "Bytes of arguments all tenants together may have queued before overloaded")
        ->envname("DEFERQ_BROKER_BUDGET")
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 50));
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
    std::int64_t grace_ms = options.unknown_function_grace.count();
    app.add_option("--unknown-function-grace", grace_ms,
                   "How long a call to a function no worker offers waits for one before "
                   "no_such_function, ms")
        ->envname("DEFERQ_UNKNOWN_FUNCTION_GRACE")
        ->check(CLI::Range(std::int64_t{0}, std::int64_t{86'400'000}));
    std::int64_t memory_ms = options.function_memory.count();
    app.add_option("--function-memory", memory_ms,
                   "How long a function is remembered after its last worker left (its calls "
                   "wait for their timeout meanwhile), ms")
        ->envname("DEFERQ_FUNCTION_MEMORY")
        ->check(CLI::Range(std::int64_t{0}, std::int64_t{86'400'000 * 7LL}));
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
    app.add_option("--log-level", config.log_level, "trace, debug, info, warn, error or off")
        ->envname("DEFERQ_LOG_LEVEL");
    app.add_option("--log-format", config.log_format, "text or json")->envname("DEFERQ_LOG_FORMAT");
    app.add_option("--http", config.http_endpoint,
                   "Serve /metrics, /healthz, /status.json and the status page on HOST:PORT "
                   "(off unless set; port 0: any)")
        ->envname("DEFERQ_HTTP");
    std::string gateway_token_file;
    std::int64_t gateway_timeout_ms = config.gateway_timeout.count();
    app.add_flag("--gateway", config.gateway,
                 "Serve every function as JSON-RPC (POST /rpc) and XML-RPC (POST /RPC2) on the "
                 "--http endpoint (docs/interop.md)")
        ->envname("DEFERQ_GATEWAY");
    app.add_option("--gateway-token", config.gateway_token,
                   "Callers of the gateway must give this token (Bearer, or basic auth password)")
        ->envname("DEFERQ_GATEWAY_TOKEN");
    app.add_option("--gateway-token-file", gateway_token_file,
                   "Read the gateway token from this file (first line)")
        ->envname("DEFERQ_GATEWAY_TOKEN_FILE");
    app.add_option("--gateway-timeout", gateway_timeout_ms, "Timeout of each gateway call, ms")
        ->envname("DEFERQ_GATEWAY_TIMEOUT")
        ->check(CLI::Range(std::int64_t{1}, std::int64_t{4'294'967'295}));
    std::string peer_bind, peer;
    bool backup = false;
    app.add_option("--peer-bind", peer_bind,
                   "Standby pair: where this broker listens for its partner (with --peer)")
        ->envname("DEFERQ_PEER_BIND");
    app.add_option("--peer", peer,
                   "Standby pair: where this broker reaches its partner's --peer-bind")
        ->envname("DEFERQ_PEER");
    app.add_flag(
           "--backup", backup,
           "Standby pair: this broker is the backup (default: the primary); needs --peer-bind "
           "and --peer")
        ->envname("DEFERQ_BACKUP");
    app.add_option("--ready-file", config.ready_file,
                   "Write the bound endpoints to this file once listening")
        ->envname("DEFERQ_READY_FILE");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return exit_now{app.exit(e)};
    }
    options.heartbeat_interval = std::chrono::milliseconds{heartbeat_ms};
    options.mdp_timeout = std::chrono::milliseconds{mdp_timeout_ms};
    options.offender_ban = std::chrono::milliseconds{offender_ban_ms};
    options.unknown_function_grace = std::chrono::milliseconds{grace_ms};
    options.function_memory = std::chrono::milliseconds{memory_ms};
    config.gateway_timeout = std::chrono::milliseconds{gateway_timeout_ms};

    for (auto [option, endpoint] : {std::pair{"--clients", &options.client_endpoint},
                                    std::pair{"--workers", &options.worker_endpoint}})
        if (auto problem = endpoint_problem(*endpoint, endpoint_use::bind))
            throw config_error(std::string(option) + ": " + *problem);
    if (!peer_bind.empty() || !peer.empty() || backup)
        options.standby = standby_options{peer_bind, peer, backup};
    if (!curve_key_file.empty()) {
        options.curve_keys = curve::read_key_file(curve_key_file);
        if (options.curve_keys->secret_key.empty())
            throw config_error("--curve-secret-key: " + curve_key_file +
                               " has no secret key (give the .key file, not the .pub)");
        if (client_keys_file.empty() || worker_keys_file.empty())
            throw config_error(
                "with --curve-secret-key, give --client-keys and --worker-keys allow-lists");
        options.client_keys = curve::read_allow_list(client_keys_file);
        options.worker_keys = curve::read_allow_list(worker_keys_file);
    } else if (!client_keys_file.empty() || !worker_keys_file.empty()) {
        throw config_error("--client-keys and --worker-keys need --curve-secret-key");
    }
    if (options.standby) check_standby(*options.standby);
    if (!gateway_token_file.empty()) config.gateway_token = read_token(gateway_token_file);
    if (config.gateway && config.http_endpoint.empty())
        throw config_error("--gateway needs --http (the gateway is served there)");
    // With CURVE, only listed keys may call; the gateway must not open a door around that.
    if (config.gateway && options.curve_keys && config.gateway_token.empty())
        throw config_error("with CURVE on, the gateway needs --gateway-token (or "
                           "--gateway-token-file): it would let anyone call");
    return config;
}

} // namespace deferq
