#pragma once
/// The deferq-broker program's settings: every option from the command line or its DEFERQ_*
/// environment variable (`--some-option` ⇔ `DEFERQ_SOME_OPTION`), checked, with the files they name
/// (CURVE keys, allow-lists, the gateway token) read. main() only wires the parts together.

#include "deferq/broker.hpp"
#include "deferq/config_error.hpp"

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>

namespace deferq {

/// With --http, how often the loop publishes the status the HTTP threads read (the status page,
/// /metrics): fresh enough for a page that polls every second and a scraper every 15 s.
inline constexpr std::chrono::milliseconds http_snapshot_interval{250};

struct broker_config {
    broker_options broker;
    std::string log_level = "info";
    std::string log_format = "text";
    std::string ready_file;    ///< written once listening; empty: none
    std::string http_endpoint; ///< HOST:PORT; empty: no HTTP
    bool gateway = false;      ///< JSON-RPC and XML-RPC on the HTTP endpoint
    std::string gateway_token; ///< required of gateway callers when set
    std::chrono::milliseconds gateway_timeout{60'000};
};

/// How the program must end without running: --help printed (0), or a bad command line (its
/// message printed, non-zero).
struct exit_now {
    int code;
};

/// Reads the command line and the environment. Throws config_error when a setting cannot work
/// (names the option), or when a file it names cannot be read.
std::variant<broker_config, exit_now> parse_broker_config(int argc, const char* const* argv);

} // namespace deferq
