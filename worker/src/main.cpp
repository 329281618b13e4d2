// deferq-worker: a worker process offering the built-in functions.

#include "builtins.hpp"
#include "plugin_loader.hpp"

#include "deferq/log.hpp"
#include "deferq/memory.hpp"
#include "deferq/worker.hpp"

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <fmt/ranges.h>

int main(int argc, char** argv) {
    deferq::keep_big_buffers(); // big arguments reuse warm pages (docs/operations.md, "Sizing")
    deferq::worker_options options;
    std::int64_t calculate_delay_ms = 1000, drain_timeout_ms = options.drain_timeout.count();
    std::int64_t prefetch = -1;
    std::string log_level = "info", log_format = "text";
    std::vector<std::string> plugins;
    bool no_builtins = false;

    CLI::App app{
        "deferq-worker: runs jobs for a deferq broker (built-in functions: calculate, add, echo, "
        "bytes, sleep_ms, time_left_ms, fib, count_primes, monte_carlo_pi)"};
    app.option_defaults()->always_capture_default();
    app.add_option("--broker", options.broker, "Broker's worker endpoint")
        ->envname("DEFERQ_BROKER")
        ->check([](const std::string& value) {
            return deferq::endpoint_problem(value, deferq::endpoint_use::connect).value_or("");
        });
    app.add_option("--concurrency", options.concurrency,
                   "Jobs run at once (0: one per hardware thread)")
        ->envname("DEFERQ_CONCURRENCY")
        ->check(CLI::Range(0, 1024));
    app.add_option("--name", options.name, "Worker name (default: host:pid)")
        ->envname("DEFERQ_NAME");
    app.add_option("--calculate-delay", calculate_delay_ms, "How long calculate(a, b) takes, ms")
        ->envname("DEFERQ_CALCULATE_DELAY")
        ->check(CLI::Range(std::int64_t{0}, std::int64_t{86'400'000}));
    app.add_option("--prefetch", prefetch,
                   "Jobs held beyond free slots (-1: adapt to job duration)")
        ->envname("DEFERQ_PREFETCH")
        ->check(CLI::Range(-1, 1024));
    app.add_option("--drain-timeout", drain_timeout_ms,
                   "On SIGTERM, how long running jobs may finish, ms")
        ->envname("DEFERQ_DRAIN_TIMEOUT");
    app.add_option("--plugin", plugins,
                   "Shared library whose functions to offer too (repeatable; docs/plugins.md)")
        ->envname("DEFERQ_PLUGIN")
        ->delimiter(':');
    app.add_flag("--no-builtins", no_builtins,
                 "Offer only the plugins' functions, not the built-in ones")
        ->envname("DEFERQ_NO_BUILTINS");
    std::string curve_key_file, curve_server_key;
    app.add_option("--curve-key", curve_key_file,
                   "This worker's CURVE key file (from 'deferq keygen')")
        ->envname("DEFERQ_CURVE_KEY");
    app.add_option("--curve-server-key", curve_server_key,
                   "The broker's public key: Z85 text or a key file")
        ->envname("DEFERQ_CURVE_SERVER_KEY");
    app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
        ->envname("DEFERQ_LOG_LEVEL");
    app.add_option("--log-format", log_format, "text or json")->envname("DEFERQ_LOG_FORMAT");
    CLI11_PARSE(app, argc, argv);
    options.drain_timeout = std::chrono::milliseconds{drain_timeout_ms};
    if (prefetch >= 0) options.prefetch = static_cast<std::uint32_t>(prefetch);

    try {
        deferq::setup_logging(log_level, log_format);
        if (!curve_key_file.empty() || !curve_server_key.empty()) {
            if (curve_key_file.empty() || curve_server_key.empty())
                throw std::runtime_error("CURVE needs both --curve-key and --curve-server-key");
            options.curve_keys = deferq::curve::read_key_file(curve_key_file);
            if (options.curve_keys->secret_key.empty())
                throw std::runtime_error(curve_key_file + " has no secret key");
            options.curve_server_key = deferq::curve::server_key_from(curve_server_key);
        }
        deferq::Worker worker(options);
        if (!no_builtins)
            deferq::define_builtins(
                worker, {.calculate_delay = std::chrono::milliseconds{calculate_delay_ms}});
        for (const auto& plugin : plugins) {
            auto added = deferq::load_plugin(worker, plugin);
            if (added.empty())
                deferq::log().warn("plugin {} loaded: it added no function", plugin);
            else
                deferq::log().info("plugin {} loaded: {}", plugin, fmt::join(added, ", "));
        }
        worker.run();
        return 0;
    } catch (const std::exception& e) {
        deferq::log().critical("deferq-worker: {}", e.what());
        return 1;
    }
}
