#pragma once
/// deferq::Client: calls remote functions through a broker; each call returns a Deferred at once.
///
///     deferq::Client client{{.broker = "tcp://127.0.0.1:5555"}};
///     auto d = client.call<double>("calculate", 42, 47);
///     d.add_callback([](double r) { std::cout << r << "\n"; });
///     double r = client.call<double>("calculate", 1, 2).get();

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

/// Per-call options for call_with().
struct call_options {
    /// The call fails with `timeout` if no result arrived by then (0: no limit). The deadline
    /// travels with the job: the broker drops it if it is still queued then, the worker's
    /// JobContext knows it.
    std::chrono::milliseconds timeout{0};
    /// How many more workers may try the job when one dies running it (total attempts = retries +
    /// 1; -1: the broker's default).
    int retries = -1;
    /// Higher runs first among queued jobs of the same function.
    std::uint8_t priority = 0;
};

/// A result together with who produced it: call<Reply<double>>("calculate", 1, 2).
template <typename T> struct Reply {
    T value;
    std::string worker;
    std::uint32_t attempt = 0;
};

/// A result left as msgpack bytes, for callers that do not know its type (the CLI).
struct msgpack_value {
    std::string bytes;
    msgpack::object_handle unpack() const { return codec::unpack(bytes.data(), bytes.size()); }
};

namespace detail {

/// What the broker answered for one call, handed to the call's resolver on the I/O thread.
struct raw_reply {
    std::string_view payload; ///< msgpack bytes, valid during the resolver call
    std::string_view worker;
    std::uint32_t attempt;
};
using resolver = std::function<void(const raw_reply*, const Failure*)>;
using progress_sink = std::function<void(double, std::string_view)>;

template <typename R> struct result_decoder {
    static R decode(const raw_reply& reply) {
        return codec::decode_value<R>(reply.payload.data(), reply.payload.size());
    }
};
template <> struct result_decoder<msgpack_value> {
    static msgpack_value decode(const raw_reply& reply) { return {std::string(reply.payload)}; }
};
template <typename T> struct result_decoder<Reply<T>> {
    static Reply<T> decode(const raw_reply& reply) {
        return {result_decoder<T>::decode(reply), std::string(reply.worker), reply.attempt};
    }
};

/// The resolver of a call whose result is decoded as R: fires `shared` with the value, with the
/// broker's Failure, or with bad_result when the payload does not decode as R. Runs on the I/O
/// thread.
template <typename R> resolver make_resolver(std::shared_ptr<state<R>> shared, std::string name) {
    return [shared = std::move(shared), name = std::move(name)](const raw_reply* reply,
                                                                const Failure* failure) {
        using result_type = typename state<R>::result_type;
        if (failure) {
            shared->resolve(result_type(std::in_place_index<1>, *failure));
            return;
        }
        std::optional<R> value;
        try {
            value.emplace(result_decoder<R>::decode(*reply));
        } catch (const std::exception& e) {
            shared->resolve(
                result_type(std::in_place_index<1>,
                            Failure(error_code::bad_result, name + ": result " + e.what(), "",
                                    std::string(reply->worker), reply->attempt)));
            return;
        }
        shared->resolve(result_type(std::in_place_index<0>, std::move(*value)));
    };
}

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
