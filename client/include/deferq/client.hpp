#pragma once
/// deferq::Client: calls remote functions through a broker; each call returns a Deferred at once.
///
///     deferq::Client client{{.broker = "tcp://127.0.0.1:5555"}};
///     auto d = client.call<double>("calculate", 42, 47);
///     d.add_callback([](double r) { std::cout << r << "\n"; });
///     double r = client.call<double>("calculate", 1, 2).get();

#include "deferq/call.hpp"
#include "deferq/codec.hpp"
#include "deferq/combinators.hpp"
#include "deferq/curve.hpp"
#include "deferq/deferred.hpp"
#include "deferq/endpoint.hpp"
#include "deferq/failure.hpp"
#include "deferq/protocol.hpp"
#include "deferq/task.hpp"

#include <zmq.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace deferq {

struct client_options {
    /// The broker's client endpoint.
    std::string broker = "tcp://127.0.0.1:5555";
    /// Timeout for calls made with call() (0: none).
    std::chrono::milliseconds default_timeout{0};
    /// CURVE (docs/security.md): this client's key pair and the broker's public key (Z85).
    std::optional<curve::key_pair> curve_keys{};
    std::string curve_server_key{};
};

namespace detail {

class client_core;

} // namespace detail

/// A connection to a broker with one I/O thread that owns the socket. Non-copyable.
/// Thread contract: call(), call_with() and every Deferred method are safe from any thread;
/// callbacks run on the I/O thread, one at a time.
class Client {
public:
    /// Starts the I/O thread and connects (ZeroMQ connects in the background: no broker needs to
    /// be up yet). Throws config_error, naming the endpoint, when `options.broker` is not an
    /// endpoint one can connect to (docs/operations.md "Endpoints").
    explicit Client(client_options options);
    Client(zmq::context_t& context, client_options options);
    /// Fails the calls still pending with `connection_lost`, tells the broker, stops the I/O
    /// thread.
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    /// Calls `function(args…)` on some worker; the Deferred fires with the result decoded as R (or
    /// Failure bad_result when it does not decode so), or with a Failure.
    template <typename R, typename... Args>
    Deferred<R> call(std::string_view function, const Args&... args) {
        return call_with<R>(call_options{.timeout = default_timeout()}, function, args...);
    }

    template <typename R, typename... Args>
    Deferred<R> call_with(const call_options& options, std::string_view function,
                          const Args&... args) {
        return call_encoded<R>(options, function, codec::encode_args(args...));
    }

    /// As call_with, with the arguments already packed as a msgpack array.
    template <typename R>
    Deferred<R> call_encoded(const call_options& options, std::string_view function,
                             zmq::message_t arguments) {
        auto shared = std::make_shared<detail::state<R>>(runner());
        std::string name(function);
        auto resolve = detail::make_resolver<R>(shared, name);
        auto progress = [weak = std::weak_ptr<detail::state<R>>(shared)](double fraction,
                                                                         std::string_view note) {
            if (auto alive = weak.lock()) alive->notify_progress(fraction, note);
        };
        auto id = submit(options, std::move(name), std::move(arguments), std::move(resolve),
                         std::move(progress));
        shared->set_canceller([this_core = core(), id] { cancel_call(this_core, id); });
        return Deferred<R>(shared);
    }

    /// Calls still waiting for a result.
    std::size_t pending() const;
    /// Deadlines the client holds: one per pending call with a timeout, gone when the call ends.
    /// Any thread (for tests and diagnostics).
    std::size_t armed_deadlines() const;
    /// The routing id this client uses (stable across reconnects), hex.
    std::string id() const;

private:
    std::chrono::milliseconds default_timeout() const;
    std::shared_ptr<detail::executor> runner() const;
    std::weak_ptr<detail::client_core> core() const;
    std::uint64_t submit(const call_options& options, std::string function,
                         zmq::message_t arguments, detail::resolver resolve,
                         detail::progress_sink progress);
    static void cancel_call(const std::weak_ptr<detail::client_core>& core,
                            std::uint64_t correlation_id);

    std::shared_ptr<detail::client_core> _core;
};

} // namespace deferq
