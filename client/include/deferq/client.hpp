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
#include "deferq/deadline_heap.hpp"
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

/// A call the client holds until it ends: what its request says, and how its answer fires the
/// caller's Deferred (typed_call). One allocation per call, with the Deferred's state, shared by
/// the caller's thread and the I/O thread.
struct pending_call {
    virtual ~pending_call() = default;
    /// Fires the call's Deferred with the answer: `reply` or `failure`, the other is null.
    virtual void resolve(const raw_reply* reply, const Failure* failure) = 0;
    virtual void progress(double fraction, std::string_view note) = 0;

    std::uint64_t id = 0;
    std::string function;
    protocol::request_options options;
    zmq::message_t arguments;     ///< kept to resend after a reconnect
    deadline_hook deadline;       ///< armed while the call waits with a timeout (I/O thread)
    std::uint32_t timeout_ms = 0; ///< as the caller asked (options.timeout_ms shrinks on resends)
};

/// A call's Deferred state and the client's record of the call, in one allocation: the Deferred
/// holds it as its state, the I/O thread as a pending_call.
template <typename R> struct typed_call final : state<R>, pending_call {
    explicit typed_call(std::shared_ptr<executor> runner) : state<R>(std::move(runner)) {}
    void resolve(const raw_reply* reply, const Failure* failure) override {
        // The call has ended: its arguments go now, not with the Deferred (this same object,
        // which the caller may keep long after).
        arguments = zmq::message_t();
        resolve_answer(static_cast<state<R>&>(*this), function, reply, failure);
    }
    void progress(double fraction, std::string_view note) override {
        this->notify_progress(fraction, note);
    }
    std::weak_ptr<client_core> core; ///< whom cancel() tells
};

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
        auto call = std::make_shared<detail::typed_call<R>>(runner());
        call->function.assign(function);
        call->options = to_request_options(options);
        call->timeout_ms = call->options.timeout_ms;
        call->arguments = std::move(arguments);
        call->core = core();
        std::shared_ptr<detail::state<R>> shared = call;
        auto* made = call.get();
        submit(std::move(call));
        // The canceller lives in the call itself (small enough for std::function to keep inline).
        shared->set_canceller([made] { cancel_call(made->core, made->id); });
        return Deferred<R>(std::move(shared));
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
    std::uint64_t submit(std::shared_ptr<detail::pending_call> call);
    static void cancel_call(const std::weak_ptr<detail::client_core>& core,
                            std::uint64_t correlation_id);

    std::shared_ptr<detail::client_core> _core;
};

} // namespace deferq
