#pragma once
/// Binds a C++ callable to msgpack arguments: decodes the argument array into the callable's
/// parameter types, calls it, and encodes its result. Used by Worker::define.

#include "deferq/codec.hpp"
#include "deferq/deferred.hpp"
#include "deferq/job_context.hpp"
#include "deferq/task.hpp"

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

namespace deferq {

/// Thrown by a bound handler when the arguments do not fit its signature: reported as
/// bad_arguments.
class bad_arguments_error : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

/// What a bound handler gives: its encoded result at once, or a Deferred of it (the handler
/// returned a Deferred or is a Task: the job waits for it, holding no slot).
using bound_result = std::variant<zmq::message_t, Deferred<std::string>>;

/// A handler after binding: decoded arguments in, encoded result out. Throws bad_arguments_error or
/// whatever the user's callable throws.
using bound_handler =
    std::function<bound_result(const msgpack::object& arguments, const JobContext& context)>;

namespace binding_detail {

template <typename T> struct callable_traits : callable_traits<decltype(&T::operator())> {};
template <typename R, typename... A> struct callable_traits<R (*)(A...)> {
    using result = R;
    using arguments = std::tuple<A...>;
};
template <typename R, typename... A>
struct callable_traits<R(A...)> : callable_traits<R (*)(A...)> {};
template <typename C, typename R, typename... A>
struct callable_traits<R (C::*)(A...)> : callable_traits<R (*)(A...)> {};
template <typename C, typename R, typename... A>
struct callable_traits<R (C::*)(A...) const> : callable_traits<R (*)(A...)> {};
template <typename C, typename R, typename... A>
struct callable_traits<R (C::*)(A...) noexcept> : callable_traits<R (*)(A...)> {};
template <typename C, typename R, typename... A>
struct callable_traits<R (C::*)(A...) const noexcept> : callable_traits<R (*)(A...)> {};

template <typename T> using plain = std::remove_cvref_t<T>;

template <typename T> struct is_deferred : std::false_type {};
template <typename T> struct is_deferred<Deferred<T>> : std::true_type {};
template <typename T> struct is_task : std::false_type {};
template <typename T> struct is_task<Task<T>> : std::true_type {};

/// A value as the bytes of its msgpack encoding (a result that came later).
template <typename T> std::string encoded_bytes(const T& value) {
    if constexpr (std::is_same_v<T, std::monostate>) {
        auto frame = codec::encode_nil();
        return std::string(static_cast<const char*>(frame.data()), frame.size());
    } else {
        auto frame = codec::encode_value(value);
        return std::string(static_cast<const char*>(frame.data()), frame.size());
    }
}

/// A Deferred result, encoded when it fires.
template <typename T> Deferred<std::string> encode_later(Deferred<T> later) {
    return later.then([](T value) { return encoded_bytes(value); });
}

/// A result that may be an argument's bytes (a msgpack::object or a view of one): sent as the
/// arguments frame's own bytes when it is one whole (codec::share_encoded), else packed.
template <typename T>
zmq::message_t encode_maybe_shared(const T& value, const JobContext& context) {
    if (const auto* frame = context.arguments_frame()) {
        std::optional<zmq::message_t> shared;
        if constexpr (std::is_same_v<T, msgpack::object>)
            shared = codec::share_encoded(value, *frame);
        else // a string_view is a str, a span of bytes a bin: as packing them would say
            shared = codec::share_encoded(!std::is_same_v<T, std::string_view>, value.data(),
                                          value.size(), *frame);
        if (shared) return std::move(*shared);
    }
    return codec::encode_value(value);
}

template <typename T> struct is_optional : std::false_type {};
template <typename T> struct is_optional<std::optional<T>> : std::true_type {};

template <typename Tuple> struct takes_context : std::false_type {};
template <typename... A>
requires(sizeof...(A) > 0) struct takes_context<std::tuple<A...>>
    : std::is_same<plain<std::tuple_element_t<sizeof...(A) - 1, std::tuple<A...>>>, JobContext> {
};

/// Parameters decoded from msgpack: all of them, minus a trailing JobContext.
template <typename Tuple, std::size_t... I>
auto head(std::index_sequence<I...>) -> std::tuple<plain<std::tuple_element_t<I, Tuple>>...>;
template <typename Tuple>
using decoded_parameters = decltype(head<Tuple>(
    std::make_index_sequence<std::tuple_size_v<Tuple> - (takes_context<Tuple>::value ? 1 : 0)>{}));

template <typename Tuple> struct signature;
template <typename... A> struct signature<std::tuple<A...>> {
    static std::string text() {
        std::string out = "(";
        bool first = true;
        ((out += (first ? "" : ", ") + codec::type_name<A>::get(), first = false), ...);
        return out + ")";
    }
    /// Trailing optionals may be left out by the caller.
    static constexpr std::size_t required() {
        constexpr bool optional[] = {is_optional<A>::value..., false};
        std::size_t count = sizeof...(A);
        while (count > 0 && optional[count - 1])
            --count;
        return count;
    }
};

template <typename Tuple, std::size_t... I>
Tuple decode_arguments(const std::string& name, const msgpack::object& arguments,
                       std::index_sequence<I...>) {
    using sig = signature<Tuple>;
    if (arguments.type != msgpack::type::ARRAY)
        throw bad_arguments_error(name + sig::text() + ": arguments must be an array, got " +
                                  codec::msgpack_kind(arguments));
    auto count = arguments.via.array.size;
    if (count < sig::required() || count > sizeof...(I)) {
        auto expected = sig::required() == sizeof...(I) ? std::to_string(sizeof...(I))
                                                        : std::to_string(sig::required()) + " to " +
                                                              std::to_string(sizeof...(I));
        throw bad_arguments_error(name + sig::text() + " takes " + expected + " argument(s), got " +
                                  std::to_string(count));
    }
    [[maybe_unused]] auto one = [&]<std::size_t N>(std::integral_constant<std::size_t, N>) {
        using T = std::tuple_element_t<N, Tuple>;
        if (N >= count) return T{}; // a trailing optional left out
        try {
            return codec::convert<T>(arguments.via.array.ptr[N]);
        } catch (const codec::decode_failure& e) {
            throw bad_arguments_error(name + sig::text() + ": argument " + std::to_string(N + 1) +
                                      ": " + e.what());
        }
    };
    return Tuple{one(std::integral_constant<std::size_t, I>{})...};
}

} // namespace binding_detail

/// Wraps `callable` as a bound_handler. Its parameters must be msgpack-decodable value types
/// (integers, floating point, bool, strings, vectors, maps, optionals, msgpack::object), or views
/// of a `bin`/`str` argument (std::string_view, std::span<const std::byte>: no copy; valid until
/// the job answers, so also in a Deferred or Task it returns), optionally followed by
/// `const JobContext&`. Its result must be msgpack-encodable, or void, or a Deferred<T> or Task<T>
/// of such a T (the job's result when it fires). A msgpack::object or view result that is a big
/// argument whole goes back as the argument's own bytes, not a copy (codec::share_encoded).
template <typename F> bound_handler bind_handler(std::string name, F&& callable) {
    using traits = binding_detail::callable_traits<binding_detail::plain<F>>;
    using all = typename traits::arguments;
    using params = binding_detail::decoded_parameters<all>;
    constexpr bool with_context = binding_detail::takes_context<all>::value;
    return [name = std::move(name), fn = std::forward<F>(callable)](
               const msgpack::object& arguments, const JobContext& context) mutable {
        auto values = binding_detail::decode_arguments<params>(
            name, arguments, std::make_index_sequence<std::tuple_size_v<params>>{});
        auto invoke = [&]() -> decltype(auto) {
            if constexpr (with_context)
                return std::apply(
                    [&](auto&... v) -> decltype(auto) { return fn(std::move(v)..., context); },
                    values);
            else
                return std::apply([&](auto&... v) -> decltype(auto) { return fn(std::move(v)...); },
                                  values);
        };
        using result = binding_detail::plain<typename traits::result>;
        if constexpr (std::is_void_v<result>) {
            invoke();
            return bound_result(codec::encode_nil());
        } else if constexpr (binding_detail::is_deferred<result>::value) {
            return bound_result(binding_detail::encode_later(invoke()));
        } else if constexpr (binding_detail::is_task<result>::value) {
            return bound_result(binding_detail::encode_later(invoke().deferred()));
        } else if constexpr (std::is_same_v<result, msgpack::object> ||
                             codec::is_byte_view<result>) {
            return bound_result(binding_detail::encode_maybe_shared(invoke(), context));
        } else {
            return bound_result(codec::encode_value(invoke()));
        }
    };
}

} // namespace deferq
