#include "http_server.hpp"

#include "deferq/log.hpp"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <regex>
#include <stdexcept>
#include <thread>

#include <sys/socket.h>

namespace deferq {
namespace {

bool equal_ignoring_case(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

/// httplib matches routes as regular expressions: an exact path must be escaped.
std::string exact_path_pattern(const std::string& path) {
    static const std::regex special(R"([.^$|()\[\]{}*+?\\])");
    return std::regex_replace(path, special, R"(\$&)");
}

} // namespace

std::string http_request::header(std::string_view name) const {
    for (const auto& [key, value] : headers)
        if (equal_ignoring_case(key, name)) return value;
    return {};
}

std::string http_request::parameter(std::string_view name) const {
    auto it = query.find(std::string(name));
    return it == query.end() ? std::string() : it->second;
}

http_options parse_http_endpoint(std::string_view endpoint) {
    auto colon = endpoint.rfind(':');
    if (colon == std::string_view::npos)
        throw std::invalid_argument("HTTP endpoint '" + std::string(endpoint) +
                                    "' is not HOST:PORT");
    http_options options;
    std::string host(endpoint.substr(0, colon));
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    options.host = host.empty() ? "0.0.0.0" : host;
    auto port_text = endpoint.substr(colon + 1);
    auto [end, error] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), options.port);
    if (error != std::errc() || end != port_text.data() + port_text.size() || options.port < 0 ||
        options.port > 65535)
        throw std::invalid_argument("HTTP endpoint '" + std::string(endpoint) +
                                    "' has no valid port");
    return options;
}

/// Connections waiting to be accepted (the kernel caps it at net.core.somaxconn).
constexpr int http_listen_backlog = 1024;

struct http_server::impl {
    http_options options;
    httplib::Server server;
    std::thread thread;
    int bound_port = 0;
    bool started = false;
    int listening_socket = -1; ///< recorded when cpp-httplib creates it

    httplib::Server::Handler wrap(http_handler handler) {
        return [handler = std::move(handler)](const httplib::Request& in, httplib::Response& out) {
            http_request request;
            request.method = in.method;
            request.path = in.path;
            request.body = in.body;
            request.remote_address = in.remote_addr;
            for (const auto& [key, value] : in.headers)
                request.headers.emplace(key, value);
            for (const auto& [key, value] : in.params)
                request.query.emplace(key, value);
            http_response response;
            try {
                handler(request, response);
            } catch (const std::exception& e) {
                log().error("http {} {}: {}", in.method, in.path, e.what());
                response = {};
                response.status = 500;
                response.body = "internal error\n";
            }
            out.status = response.status;
            for (const auto& [key, value] : response.headers)
                out.set_header(key, value);
            out.set_content(std::move(response.body), response.content_type);
        };
    }
};

http_server::http_server(http_options options) : _impl(std::make_unique<impl>()) {
    _impl->options = std::move(options);
    auto threads = static_cast<std::size_t>(std::max(1, _impl->options.threads));
    _impl->server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    _impl->server.set_payload_max_length(_impl->options.max_body_bytes);
    _impl->server.set_read_timeout(10, 0);
    _impl->server.set_write_timeout(10, 0);
    _impl->server.set_keep_alive_timeout(2); // frees a thread soon after a client goes quiet
    _impl->server.set_socket_options([impl = _impl.get()](socket_t socket) {
        httplib::default_socket_options(socket);
        impl->listening_socket = socket;
    });
    _impl->server.set_logger(
        [](const httplib::Request& request, const httplib::Response& response) {
            log().debug("http {} {} from {}: {}", request.method, request.path, request.remote_addr,
                        response.status);
        });
}

http_server::~http_server() {
    stop();
}

void http_server::get(std::string path, http_handler handler) {
    _impl->server.Get(exact_path_pattern(path), _impl->wrap(std::move(handler)));
}

void http_server::post(std::string path, http_handler handler) {
    _impl->server.Post(exact_path_pattern(path), _impl->wrap(std::move(handler)));
}

void http_server::start() {
    if (_impl->started) throw std::logic_error("http_server started twice");
    const auto& options = _impl->options;
    if (options.port == 0) {
        _impl->bound_port = _impl->server.bind_to_any_port(options.host);
    } else if (_impl->server.bind_to_port(options.host, options.port)) {
        _impl->bound_port = options.port;
    } else {
        _impl->bound_port = -1;
    }
    if (_impl->bound_port <= 0)
        throw std::runtime_error("cannot listen for HTTP on " + options.host + ":" +
                                 std::to_string(options.port));
    // cpp-httplib as Debian builds it listens with a backlog of 5: a burst of connections (a
    // scraper and a few dozen gateway callers at once) would see some reset. A second listen()
    // on the socket sets the backlog it should have.
    if (_impl->listening_socket >= 0) ::listen(_impl->listening_socket, http_listen_backlog);
    _impl->started = true;
    _impl->thread = std::thread([this] { _impl->server.listen_after_bind(); });
    // stop() is a no-op until the server runs: wait for it, so that a stop() right after start()
    // cannot leave the thread listening forever.
    for (int i = 0; i < 5000 && !_impl->server.is_running(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds{1});
    log().info("http listening on {}", endpoint());
}

void http_server::stop() {
    if (!_impl->started) return;
    _impl->server.stop();
    if (_impl->thread.joinable()) _impl->thread.join();
    _impl->started = false;
}

int http_server::port() const {
    return _impl->bound_port;
}

std::string http_server::endpoint() const {
    const auto& host = _impl->options.host;
    bool ipv6 = host.find(':') != std::string::npos;
    return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(_impl->bound_port);
}

} // namespace deferq
