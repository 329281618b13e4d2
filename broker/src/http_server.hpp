#pragma once
/// A small HTTP/1.1 server for the broker (cpp-httplib underneath): other parts register routes on
/// it — the status endpoints (status_routes.hpp), later the JSON-RPC and XML-RPC gateway — and
/// main() starts it once. It runs on its own threads: handlers must never touch the broker's
/// sockets; they read what the broker publishes (Broker::snapshot()) or send it messages.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace deferq {

struct http_request {
    std::string method; ///< "GET", "POST", …
    std::string path;   ///< without the query
    std::string body;
    std::multimap<std::string, std::string> headers; ///< names as sent
    std::multimap<std::string, std::string> query;   ///< decoded query parameters
    std::string remote_address;

    /// The first header of that name (case-insensitive); empty when absent.
    std::string header(std::string_view name) const;
    /// The first query parameter of that name; empty when absent.
    std::string parameter(std::string_view name) const;
};

struct http_response {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers; ///< extra headers
};

/// Handles one request. Runs on one of the server's threads, possibly concurrently with itself:
/// it must be thread-safe. An exception becomes a 500 response (and a log line).
using http_handler = std::function<void(const http_request&, http_response&)>;

struct http_options {
    std::string host = "127.0.0.1";
    int port = 8080; ///< 0: the kernel chooses (read it back with port())
    /// Worker threads. A keep-alive connection holds one while it stays open (a status page
    /// polling every second keeps one), so there are more than the CPUs; idle ones cost nothing.
    int threads = 32;
    std::size_t max_body_bytes = 16 * 1024 * 1024;
};

/// Parses "HOST:PORT" ("127.0.0.1:8080", "0.0.0.0:8080", "[::1]:8080", "localhost:0", ":8080"
/// for every address). Throws std::invalid_argument.
http_options parse_http_endpoint(std::string_view endpoint);

/// Non-copyable. Register routes, then start(); stop() (or the destructor) ends it.
class http_server {
public:
    explicit http_server(http_options options);
    ~http_server();
    http_server(const http_server&) = delete;
    http_server& operator=(const http_server&) = delete;

    /// Adds a route for an exact path ("/metrics"). Before start() only; not thread-safe.
    void get(std::string path, http_handler handler);
    void post(std::string path, http_handler handler);

    /// Binds (throws std::runtime_error when it cannot) and serves on its own threads.
    void start();
    /// Stops accepting, finishes the requests in progress, joins its threads. Idempotent.
    void stop();

    /// The bound port (after start()).
    int port() const;
    /// "HOST:PORT" as bound (after start()).
    std::string endpoint() const;

private:
    struct impl;
    std::unique_ptr<impl> _impl;
};

} // namespace deferq
