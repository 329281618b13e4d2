#pragma once
/// What a call is, for both sides that make calls: a Client, and a job's handler calling the
/// cluster through its JobContext (docs/protocol.md §3b): the per-call options, the result
/// wrappers, and how an answer's bytes fire a call's Deferred.

#include "deferq/codec.hpp"
#include "deferq/deferred.hpp"
#include "deferq/failure.hpp"
#include "deferq/protocol.hpp"

#include <algorithm>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace deferq {

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

/// The options as they travel in a REQUEST or a CALL (docs/protocol.md §2).
inline protocol::request_options to_request_options(const call_options& options) {
    protocol::request_options out;
    out.timeout_ms = static_cast<std::uint32_t>(
        std::clamp<std::int64_t>(options.timeout.count(), 0, UINT32_MAX));
    out.priority = options.priority;
    out.max_attempts =
        options.retries < 0 ? 0 : static_cast<std::uint8_t>(std::min(options.retries + 1, 255));
    return out;
}

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

/// What the broker answered for one call, handed to the call's resolver.
struct raw_reply {
    std::string_view payload; ///< msgpack bytes, valid during the resolver call
    std::string_view worker;
    std::uint32_t attempt;
    /// The frame that is `payload`, when the reply came as a message of its own (null when it came
    /// in a BATCH): a result may keep its bytes there (deferq::Bytes).
    const zmq::message_t* frame = nullptr;
};
using resolver = std::function<void(const raw_reply*, const Failure*)>;
using progress_sink = std::function<void(double, std::string_view)>;

template <typename R> struct result_decoder {
    static R decode(const raw_reply& reply) {
        return codec::decode_value<R>(reply.payload.data(), reply.payload.size());
    }
};
/// A `bin` or `str` result stays in the reply's frame when it came in one of its own.
template <> struct result_decoder<Bytes> {
    static Bytes decode(const raw_reply& reply) {
        auto handle = codec::unpack_in_place(reply.payload.data(), reply.payload.size());
        auto bytes = codec::bin_or_str(handle.get());
        // Without a frame of its own, a copy; not bytes, convert's decode_failure says what came.
        if (!reply.frame || !bytes) return codec::convert<Bytes>(handle.get());
        return Bytes(*reply.frame, bytes->data(), bytes->size());
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

/// Fires the Deferred of a call to `name` whose result is decoded as R: with the value, with the
/// broker's Failure (`failure` not null), or with bad_result when the payload does not decode as
/// R. Runs where the answer is handled (a Client's I/O thread; a worker's pool thread).
template <typename R>
void resolve_answer(state<R>& shared, const std::string& name, const raw_reply* reply,
                    const Failure* failure) {
    using result_type = typename state<R>::result_type;
    if (failure) {
        shared.resolve(result_type(std::in_place_index<1>, *failure));
        return;
    }
    std::optional<R> value;
    try {
        value.emplace(result_decoder<R>::decode(*reply));
    } catch (const std::exception& e) {
        shared.resolve(result_type(std::in_place_index<1>,
                                   Failure(error_code::bad_result, name + ": result " + e.what(),
                                           "", std::string(reply->worker), reply->attempt)));
        return;
    }
    shared.resolve(result_type(std::in_place_index<0>, std::move(*value)));
}

/// resolve_answer() as a resolver.
template <typename R> resolver make_resolver(std::shared_ptr<state<R>> shared, std::string name) {
    return [shared = std::move(shared), name = std::move(name)](const raw_reply* reply,
                                                                const Failure* failure) {
        resolve_answer(*shared, name, reply, failure);
    };
}

} // namespace detail
} // namespace deferq
