// deferq: the command-line client. `deferq call FUNCTION ARGS…`, `deferq map`, `deferq status`,
// `deferq demo`, `deferq keygen`.

#include "cli_json.hpp"
#include "cli_map.hpp"
#include "cli_status.hpp"

#include "msgpack_json.hpp"
#include "result_text.hpp"

#include "deferq/client.hpp"
#include "deferq/log.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <mutex>

namespace {

using deferq::cli::json;
using deferq::cli::parse_word;
using deferq::cli::to_arguments;

int report(const deferq::Failure& failure) {
    std::cerr << "deferq: " << failure.what() << "\n";
    return 1;
}

int run_call(deferq::Client& client, std::chrono::milliseconds timeout, const std::string& function,
             const std::vector<std::string>& words, bool as_json, bool show_worker) {
    json arguments = json::array();
    for (const auto& word : words) {
        try {
            arguments.push_back(as_json ? deferq::cli::parse_json(word) : parse_word(word));
        } catch (const json::parse_error& e) {
            std::cerr << "deferq: argument '" << word << "' is not JSON: " << e.what() << "\n";
            return 2;
        } catch (const deferq::msgpack_json::mapping_error& e) {
            std::cerr << "deferq: argument " << arguments.size() + 1 << ": " << e.what() << "\n";
            return 2;
        }
    }
    try {
        auto reply = client
                         .call_encoded<deferq::Reply<deferq::msgpack_value>>(
                             {.timeout = timeout}, function, to_arguments(arguments))
                         .get();
        std::cout << deferq::cli::result_text(reply.value.bytes);
        if (show_worker) std::cout << "\t(worker " << reply.worker << ")";
        std::cout << "\n";
        return 0;
    } catch (const deferq::Failure& failure) {
        return report(failure);
    }
}

/// The reference scenario: three calculate jobs sent at once, results added as they arrive.
int run_demo(deferq::Client& client, std::chrono::milliseconds timeout) {
    const std::vector<std::pair<int, int>> jobs{{42, 47}, {52, 58}, {62, 69}};
    std::mutex output;
    std::vector<deferq::Deferred<double>> results;
    for (auto [a, b] : jobs) {
        auto d = client.call_with<deferq::Reply<double>>({.timeout = timeout}, "calculate", a, b);
        d.add_callback([&output, a, b](deferq::Reply<double>& reply) {
            std::lock_guard lock(output);
            std::cout << "calculate(" << a << ", " << b << ") = " << reply.value << "  [worker "
                      << reply.worker << "]" << std::endl;
        });
        results.push_back(d.then([](deferq::Reply<double>& reply) { return reply.value; }));
    }
    try {
        auto values = deferq::gather_results(std::move(results)).get();
        double total = 0;
        for (double value : values)
            total += value;
        std::cout << "total: " << total << std::endl;
        return 0;
    } catch (const deferq::Failure& failure) {
        return report(failure);
    }
}

} // namespace

int main(int argc, char** argv) {
    std::string broker = "tcp://127.0.0.1:5555", log_level = "warn", log_format = "text";
    std::int64_t timeout_ms = 0;

    CLI::App app{"deferq: call functions on a deferq cluster"};
    app.option_defaults()->always_capture_default();
    app.require_subcommand(1);
    app.add_option("--broker", broker, "Broker's client endpoint")
        ->envname("DEFERQ_BROKER")
        ->check([](const std::string& value) {
            return deferq::endpoint_problem(value, deferq::endpoint_use::connect).value_or("");
        });
    app.add_option("--timeout", timeout_ms, "Per-call timeout in ms (0: none)")
        ->envname("DEFERQ_TIMEOUT")
        ->check(CLI::Range(std::int64_t{0}, std::int64_t{4'000'000'000}));
    app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
        ->envname("DEFERQ_LOG_LEVEL");
    app.add_option("--log-format", log_format, "text or json")->envname("DEFERQ_LOG_FORMAT");

    std::string curve_key_file, curve_server_key;
    app.add_option("--curve-key", curve_key_file,
                   "This client's CURVE key file (from 'deferq keygen')")
        ->envname("DEFERQ_CURVE_KEY");
    app.add_option("--curve-server-key", curve_server_key,
                   "The broker's public key: Z85 text or a key file")
        ->envname("DEFERQ_CURVE_SERVER_KEY");

    auto* call = app.add_subcommand("call", "Call FUNCTION with ARGS and print its result as JSON");
    std::string function;
    std::vector<std::string> words;
    bool as_json = false, show_worker = false;
    call->add_option("function", function, "Function name")->required();
    call->add_option("args", words, "Arguments: numbers, true/false/null, else strings");
    call->add_flag("--json", as_json, "Parse each argument as JSON (arrays, objects, strings)");
    call->add_flag("--show-worker", show_worker, "Also print which worker ran it");

    auto* demo = app.add_subcommand(
        "demo", "The reference scenario: calculate (42,47) (52,58) (62,69) at once; total");

    auto* status =
        app.add_subcommand("status", "Show the broker's workers, functions, queues and counters");
    deferq::cli::status_options status_options;
    status->add_flag("--json", status_options.as_json, "Print JSON (for scripts)");
    status
        ->add_option("--watch", status_options.watch_seconds,
                     "Refresh every SECONDS (default 2) until Ctrl-C; clears the screen on a "
                     "terminal, one JSON document per line with --json")
        ->expected(0, 1)
        ->default_str("2")
        ->check(CLI::Range(0.0, 86400.0));

    auto* map = app.add_subcommand(
        "map", "Call FUNCTION once per input, N at a time; results as JSON lines in input order");
    deferq::cli::map_options map_options;
    map->add_option("function", map_options.function, "Function name")->required();
    map->add_option("args", map_options.words,
                    "With --range: fixed arguments; the number takes the place of a {} word, "
                    "else it comes first");
    auto* map_input = map->add_option("--input", map_options.input,
                                      "One JSON array of arguments per line ('-': stdin)");
    map->add_option("--range", map_options.range, "A:B[:STEP]: call FUNCTION(i) for A <= i < B")
        ->excludes(map_input);
    map->add_flag("--json", map_options.words_as_json, "Parse each fixed argument as JSON");
    map->add_option("--output", map_options.output, "Write the results here ('-': stdout)");
    map->add_option("--in-flight", map_options.in_flight, "Calls in flight at most")
        ->check(CLI::Range(1, 1'000'000));
    map->add_flag("--quiet", map_options.quiet, "No progress on stderr (the summary stays)");

    auto* keygen = app.add_subcommand(
        "keygen", "Write a CURVE key pair: NAME.key (secret, mode 0600) and NAME.pub");
    std::string key_name;
    keygen->add_option("name", key_name, "Base name of the two files")->required();

    CLI11_PARSE(app, argc, argv);
    try {
        deferq::setup_logging(log_level, log_format);
        if (*keygen) {
            auto keys = deferq::curve::generate();
            deferq::curve::write_key_files(key_name, keys);
            std::cout << "wrote " << key_name << ".key and " << key_name
                      << ".pub\npublic = " << keys.public_key << "\n";
            return 0;
        }
        deferq::client_options client_options{.broker = broker};
        if (!curve_key_file.empty() || !curve_server_key.empty()) {
            if (curve_key_file.empty() || curve_server_key.empty())
                throw std::runtime_error("CURVE needs both --curve-key and --curve-server-key");
            client_options.curve_keys = deferq::curve::read_key_file(curve_key_file);
            client_options.curve_server_key = deferq::curve::server_key_from(curve_server_key);
        }
        deferq::Client client(client_options);
        auto timeout = std::chrono::milliseconds{timeout_ms};
        if (*call) return run_call(client, timeout, function, words, as_json, show_worker);
        if (*demo) return run_demo(client, timeout);
        if (*status) {
            status_options.timeout = timeout;
            return deferq::cli::run_status(client, status_options);
        }
        if (*map) {
            map_options.timeout = timeout;
            return deferq::cli::run_map(client, map_options);
        }
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "deferq: " << e.what() << "\n";
        return 1;
    }
}
