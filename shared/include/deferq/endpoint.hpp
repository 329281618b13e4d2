#pragma once
/// ZeroMQ endpoints as users type them (`--broker tcp://HOST:5555`, `--clients tcp://*:5555`):
/// checked before any socket sees them, so that a typo is a clear configuration error naming the
/// endpoint and what is wrong with it, never libzmq's bare "Invalid argument" or an abort.
///
/// Accepted (docs/operations.md "Endpoints"):
///   tcp://HOST:PORT     HOST a name, an IPv4 address or an IPv6 address (in brackets or not);
///                       PORT 1 to 65535. To bind, HOST may also be `*` or an interface name and
///                       PORT `*` or 0 (the kernel picks one). libzmq's `tcp://SOURCE;HOST:PORT`
///                       form (a source address to connect from) is accepted too.
///   ipc://PATH          a socket file (at most 107 bytes; `@NAME` for the abstract namespace);
///                       `ipc://*` to bind a fresh one.
///   inproc://NAME       within one process (the gateway's own client uses one).

#include "deferq/config_error.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace deferq {

/// Whether an endpoint is connected to (clients, workers) or bound (the broker): binding also
/// allows the wildcards `*` (any interface, any port) and port 0.
enum class endpoint_use { connect, bind };

/// What is wrong with `endpoint` for `use`, as a sentence that quotes it; empty when nothing is.
/// To connect, a comma-separated list (`tcp://a:5555,tcp://b:5555`: the brokers of a standby pair,
/// which clients and workers take) is checked item by item; to bind, a list is not one endpoint
/// and the sentence says so. Pure, thread-safe.
[[nodiscard]] std::optional<std::string> endpoint_problem(std::string_view endpoint,
                                                          endpoint_use use);

/// Throws config_error (deferq/config_error.hpp) with endpoint_problem()'s sentence when there is
/// one (so a list passes for endpoint_use::connect when each of its items does).
void check_endpoint(std::string_view endpoint, endpoint_use use);

/// A comma-separated list of endpoints (`tcp://a:5555,tcp://b:5555`; spaces around the commas are
/// ignored), each checked. Throws config_error for an empty list, an empty item or a bad endpoint.
/// A single endpoint is a list of one.
[[nodiscard]] std::vector<std::string> split_endpoints(std::string_view list, endpoint_use use);

} // namespace deferq
