#include "deferq/endpoint.hpp"

#include <algorithm>
#include <charconv>

namespace deferq {
namespace {

/// sizeof(sockaddr_un::sun_path) - 1 on Linux: libzmq refuses longer ipc paths.
constexpr std::size_t max_ipc_path = 107;

bool is_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

std::string quoted(std::string_view text) {
    return "'" + std::string(text) + "'";
}

/// A host name, an IPv4 address or an interface name: letters, digits, '-', '_' and '.', starting
/// with a letter or a digit (as libzmq checks).
bool is_host_name(std::string_view host) {
    return !host.empty() && host.size() <= 253 && is_alnum(host.front()) &&
           std::all_of(host.begin(), host.end(),
                       [](char c) { return is_alnum(c) || c == '-' || c == '_' || c == '.'; });
}

/// An IPv6 address, possibly with a %zone: hex digits, ':' and '.' (an IPv4 tail).
bool is_ipv6(std::string_view host) {
    auto zone = host.find('%');
    auto address = host.substr(0, zone);
    if (zone != std::string_view::npos && !is_host_name(host.substr(zone + 1))) return false;
    return address.find(':') != std::string_view::npos &&
           std::all_of(address.begin(), address.end(),
                       [](char c) { return is_hex(c) || c == ':' || c == '.'; });
}

/// What is wrong with HOST:PORT of a tcp:// endpoint (`whole` is quoted in the sentence).
std::optional<std::string> tcp_address_problem(std::string_view address, std::string_view whole,
                                               bool wildcards) {
    auto colon = address.rfind(':');
    if (colon == std::string_view::npos || (address.front() == '[' && address.back() == ']'))
        return "endpoint " + quoted(whole) + " has no port: write tcp://HOST:PORT";
    auto host = address.substr(0, colon);
    auto port = address.substr(colon + 1);
    if (host.empty()) return "endpoint " + quoted(whole) + " has no host: write tcp://HOST:PORT";
    bool bracketed = host.front() == '[';
    if (bracketed) {
        if (host.back() != ']' || !is_ipv6(host.substr(1, host.size() - 2)))
            return "endpoint " + quoted(whole) + ": " + quoted(host) +
                   " is not an IPv6 address in brackets";
    } else if (host == "*") {
        if (!wildcards)
            return "endpoint " + quoted(whole) +
                   ": '*' (any interface) is for binding; to connect, name the broker's host";
    } else if (!is_host_name(host) && !is_ipv6(host)) {
        return "endpoint " + quoted(whole) + ": " + quoted(host) +
               " is not a host name or an IP address";
    }
    if (port.empty()) return "endpoint " + quoted(whole) + " has no port: write tcp://HOST:PORT";
    if (port == "*") {
        if (wildcards) return std::nullopt;
        return "endpoint " + quoted(whole) +
               ": port '*' (any port) is for binding; to connect, give the broker's port";
    }
    unsigned value = 0;
    auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (error == std::errc::result_out_of_range ||
        (error == std::errc{} && end == port.data() + port.size() && value > 65535))
        return "endpoint " + quoted(whole) + ": port " + std::string(port) +
               " is out of range (1 to 65535)";
    if (error != std::errc{} || end != port.data() + port.size())
        return "endpoint " + quoted(whole) + ": port " + quoted(port) + " is not a number";
    if (value == 0 && !wildcards)
        return "endpoint " + quoted(whole) + ": port 0 is for binding; to connect, give 1 to 65535";
    return std::nullopt;
}

std::string_view trimmed(std::string_view text) {
    auto first = text.find_first_not_of(" \t");
    if (first == std::string_view::npos) return {};
    auto last = text.find_last_not_of(" \t");
    return text.substr(first, last - first + 1);
}

} // namespace

std::optional<std::string> endpoint_problem(std::string_view endpoint, endpoint_use use) {
    bool binding = use == endpoint_use::bind;
    if (endpoint.empty()) return std::string("the endpoint is empty: write tcp://HOST:PORT");
    if (auto commas = std::count(endpoint.begin(), endpoint.end(), ','); commas > 0) {
        if (binding)
            return quoted(endpoint) + " is a list of " + std::to_string(commas + 1) +
                   " endpoints, where one is expected";
        // Clients and workers take a list: the brokers of a standby pair (docs/operations.md).
        for (std::size_t at = 0;;) {
            auto comma = endpoint.find(',', at);
            auto item =
                trimmed(endpoint.substr(at, comma == std::string_view::npos ? comma : comma - at));
            if (item.empty())
                return "the list of endpoints " + quoted(endpoint) + " has an empty item";
            if (auto problem = endpoint_problem(item, use)) return problem;
            if (comma == std::string_view::npos) return std::nullopt;
            at = comma + 1;
        }
    }
    if (std::any_of(endpoint.begin(), endpoint.end(), [](char c) {
            return static_cast<unsigned char>(c) <= ' ' || static_cast<unsigned char>(c) == 0x7f;
        }))
        return "endpoint " + quoted(endpoint) + " contains a space or a control character";
    auto separator = endpoint.find("://");
    if (separator == std::string_view::npos) {
        // HOST:PORT alone is the common slip: suggest the endpoint that was meant.
        bool host_and_port = !tcp_address_problem(endpoint, endpoint, binding);
        return "endpoint " + quoted(endpoint) + " has no transport: write " +
               (host_and_port ? "tcp://" + std::string(endpoint) : std::string("tcp://HOST:PORT")) +
               " (or ipc://PATH, inproc://NAME)";
    }
    auto transport = endpoint.substr(0, separator);
    auto address = endpoint.substr(separator + 3);
    if (transport == "tcp") {
        if (address.empty())
            return "endpoint " + quoted(endpoint) + " has no address: write tcp://HOST:PORT";
        // libzmq's tcp://SOURCE;HOST:PORT connects from a given source address (any port).
        if (auto semicolon = address.find(';'); semicolon != std::string_view::npos && !binding) {
            if (auto problem = tcp_address_problem(address.substr(0, semicolon), endpoint, true))
                return problem;
            address = address.substr(semicolon + 1);
            if (address.empty())
                return "endpoint " + quoted(endpoint) + " has no address after the source";
        }
        return tcp_address_problem(address, endpoint, binding);
    }
    if (transport == "ipc") {
        if (address.empty()) return "endpoint " + quoted(endpoint) + " has no path: ipc://PATH";
        if (address == "*" && !binding)
            return "endpoint " + quoted(endpoint) +
                   ": 'ipc://*' is for binding; to connect, give the socket's path";
        if (address.size() > max_ipc_path)
            return "endpoint " + quoted(endpoint) + ": the path is longer than " +
                   std::to_string(max_ipc_path) + " bytes";
        return std::nullopt;
    }
    if (transport == "inproc") {
        if (address.empty()) return "endpoint " + quoted(endpoint) + " has no name: inproc://NAME";
        return std::nullopt;
    }
    return "endpoint " + quoted(endpoint) + ": transport " + quoted(transport) +
           " is not supported: use tcp://, ipc:// or inproc://";
}

void check_endpoint(std::string_view endpoint, endpoint_use use) {
    if (auto problem = endpoint_problem(endpoint, use)) throw config_error(*problem);
}

std::vector<std::string> split_endpoints(std::string_view list, endpoint_use use) {
    std::vector<std::string> endpoints;
    if (trimmed(list).empty()) throw config_error("the list of endpoints is empty");
    std::size_t at = 0;
    while (true) {
        auto comma = list.find(',', at);
        auto item = trimmed(list.substr(at, comma == std::string_view::npos ? comma : comma - at));
        if (item.empty())
            throw config_error("the list of endpoints " + quoted(list) + " has an empty item");
        check_endpoint(item, use);
        endpoints.emplace_back(item);
        if (comma == std::string_view::npos) break;
        at = comma + 1;
    }
    return endpoints;
}

} // namespace deferq
