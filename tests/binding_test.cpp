// Binding C++ callables to msgpack arguments (worker/include/deferq/binding.hpp).

#include "deferq/binding.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using deferq::bad_arguments_error;
using deferq::bind_handler;
using deferq::JobContext;
namespace codec = deferq::codec;

namespace {

/// A job context as the worker makes one: job 7 of "fn", first attempt, no deadline.
struct job_fixture {
    std::atomic<bool> cancelled{false};
    JobContext context{7, "fn", 1, std::nullopt, cancelled, nullptr};
};

/// Runs `handler` on an argument frame, as the worker does with a REQUEST's payload.
zmq::message_t run(const deferq::bound_handler& handler, const zmq::message_t& arguments,
                   const JobContext& context) {
    auto handle = codec::unpack(arguments);
    return std::get<zmq::message_t>(handler(handle.get(), context));
}

/// The message of the bad_arguments_error that `action` throws; fails the test when it throws
/// nothing.
template <typename Action> std::string bad_arguments_message(Action&& action) {
    try {
        action();
    } catch (const bad_arguments_error& e) {
        return e.what();
    }
    FAIL("no bad_arguments_error was thrown");
    return {};
}

double add(double a, double b) {
    return a + b;
}

} // namespace

TEST_CASE("a (double, double) -> double handler returns the encoded result", "[binding]") {
    job_fixture job;
    auto handler = bind_handler("add", [](double a, double b) { return a + b; });
    auto result = run(handler, codec::encode_args(1.5, 2.25), job.context);
    CHECK(codec::decode_value<double>(result) == 3.75);
}

TEST_CASE("a plain function binds like a lambda", "[binding]") {
    job_fixture job;
    auto handler = bind_handler("add", &add);
    CHECK(codec::decode_value<double>(run(handler, codec::encode_args(2.0, 3.0), job.context)) ==
          5.0);
}

TEST_CASE("integer arguments are accepted for double parameters", "[binding]") {
    job_fixture job;
    auto handler = bind_handler("add", [](double a, double b) { return a + b; });
    CHECK(codec::decode_value<double>(run(handler, codec::encode_args(1, -4), job.context)) ==
          -3.0);
}

TEST_CASE("a wrong argument count is a bad_arguments_error naming the function and its signature",
          "[binding]") {
    job_fixture job;
    auto handler = bind_handler("add", [](double a, double b) { return a + b; });
    std::vector<zmq::message_t> wrong_counts;
    wrong_counts.push_back(codec::encode_args());
    wrong_counts.push_back(codec::encode_args(1.0));
    wrong_counts.push_back(codec::encode_args(1.0, 2.0, 3.0));
    for (const auto& arguments : wrong_counts) {
        auto message = bad_arguments_message([&] { run(handler, arguments, job.context); });
        CHECK_THAT(message, Catch::Matchers::Contains("add") &&
                                Catch::Matchers::Contains("(double, double)") &&
                                Catch::Matchers::Contains("takes 2"));
    }
}

TEST_CASE("a wrong argument type is a bad_arguments_error naming the argument number",
          "[binding]") {
    job_fixture job;
    auto handler = bind_handler("add", [](double a, double b) { return a + b; });

    auto second = bad_arguments_message(
        [&] { run(handler, codec::encode_args(1.0, std::string("two")), job.context); });
    CHECK_THAT(second, Catch::Matchers::Contains("add(double, double)") &&
                           Catch::Matchers::Contains("argument 2") &&
                           Catch::Matchers::Contains("string"));

    auto first =
        bad_arguments_message([&] { run(handler, codec::encode_args(true, 2.0), job.context); });
    CHECK_THAT(first, Catch::Matchers::Contains("argument 1") && Catch::Matchers::Contains("bool"));
}

TEST_CASE("trailing optional parameters may be omitted", "[binding]") {
    job_fixture job;
    auto handler = bind_handler("greet", [](std::string name, std::optional<std::string> greeting,
                                            std::optional<int> times) {
        std::string out;
        for (int i = 0; i < times.value_or(1); ++i)
            out += greeting.value_or("hello") + " " + name + ";";
        return out;
    });
    auto call = [&](const zmq::message_t& arguments) {
        return codec::decode_value<std::string>(run(handler, arguments, job.context));
    };
    CHECK(call(codec::encode_args(std::string("ann"))) == "hello ann;");
    CHECK(call(codec::encode_args(std::string("ann"), std::string("hi"))) == "hi ann;");
    CHECK(call(codec::encode_args(std::string("ann"), std::string("hi"), 2)) == "hi ann;hi ann;");
    CHECK(call(codec::encode_args(std::string("ann"), std::optional<std::string>{}, 2)) ==
          "hello ann;hello ann;");

    auto none = bad_arguments_message([&] { run(handler, codec::encode_args(), job.context); });
    CHECK_THAT(none,
               Catch::Matchers::Contains("greet(string, optional<string>, optional<int32>)") &&
                   Catch::Matchers::Contains("1 to 3"));
    auto four = bad_arguments_message([&] {
        run(handler, codec::encode_args(std::string("a"), std::string("b"), 1, 2), job.context);
    });
    CHECK_THAT(four, Catch::Matchers::Contains("got 4"));
}

TEST_CASE("a handler taking const JobContext& last receives the job's context", "[binding]") {
    job_fixture job;
    auto handler = bind_handler("ctx", [](std::int64_t x, const JobContext& context) {
        return std::vector<std::int64_t>{x, static_cast<std::int64_t>(context.job_id()),
                                         static_cast<std::int64_t>(context.attempt()),
                                         static_cast<std::int64_t>(context.function().size())};
    });
    auto result = codec::decode_value<std::vector<std::int64_t>>(
        run(handler, codec::encode_args(5), job.context));
    CHECK(result == std::vector<std::int64_t>{5, 7, 1, 2});

    JobContext retry(99, "other", 3, std::nullopt, job.cancelled, nullptr);
    result =
        codec::decode_value<std::vector<std::int64_t>>(run(handler, codec::encode_args(6), retry));
    CHECK(result == std::vector<std::int64_t>{6, 99, 3, 5});
}

TEST_CASE("the JobContext parameter is not counted among the msgpack arguments", "[binding]") {
    job_fixture job;
    auto handler = bind_handler("ctx", [](std::int64_t x, const JobContext&) { return x; });
    auto message =
        bad_arguments_message([&] { run(handler, codec::encode_args(1, 2), job.context); });
    CHECK_THAT(message,
               Catch::Matchers::Contains("ctx(int64)") && Catch::Matchers::Contains("takes 1"));
    CHECK_THAT(message, !Catch::Matchers::Contains("JobContext"));
}

TEST_CASE("trailing optionals before the JobContext may still be omitted", "[binding]") {
    job_fixture job;
    auto handler = bind_handler(
        "scale", [](double x, std::optional<double> factor, const JobContext& context) {
            return x * factor.value_or(static_cast<double>(context.job_id()));
        });
    CHECK(codec::decode_value<double>(run(handler, codec::encode_args(2.0), job.context)) == 14.0);
    CHECK(codec::decode_value<double>(run(handler, codec::encode_args(2.0, 0.5), job.context)) ==
          1.0);
}

TEST_CASE("a handler sees its job cancelled through the context", "[binding]") {
    job_fixture job;
    auto handler =
        bind_handler("poll", [](const JobContext& context) { return context.cancelled(); });
    CHECK_FALSE(codec::decode_value<bool>(run(handler, codec::encode_args(), job.context)));
    job.cancelled = true;
    CHECK(codec::decode_value<bool>(run(handler, codec::encode_args(), job.context)));
}

TEST_CASE("a void handler runs and encodes nil", "[binding]") {
    job_fixture job;
    int seen = 0;
    auto handler = bind_handler("store", [&seen](int value) { seen = value; });
    auto result = run(handler, codec::encode_args(41), job.context);
    CHECK(seen == 41);
    REQUIRE(result.size() == 1);
    CHECK(*static_cast<const unsigned char*>(result.data()) == 0xc0);
}

TEST_CASE("a handler without parameters takes an empty argument array only", "[binding]") {
    job_fixture job;
    auto handler = bind_handler("count", [calls = 0]() mutable { return ++calls; });
    CHECK(codec::decode_value<int>(run(handler, codec::encode_args(), job.context)) == 1);
    CHECK(codec::decode_value<int>(run(handler, codec::encode_args(), job.context)) == 2);
    auto message = bad_arguments_message([&] { run(handler, codec::encode_args(1), job.context); });
    CHECK_THAT(message,
               Catch::Matchers::Contains("count()") && Catch::Matchers::Contains("takes 0"));
}

TEST_CASE("arguments that are not an array are a bad_arguments_error", "[binding]") {
    job_fixture job;
    auto handler = bind_handler("add", [](double a, double b) { return a + b; });
    auto scalar =
        bad_arguments_message([&] { run(handler, codec::encode_value(1.0), job.context); });
    CHECK_THAT(scalar, Catch::Matchers::Contains("add(double, double)") &&
                           Catch::Matchers::Contains("array"));
    auto map = bad_arguments_message([&] {
        run(handler, codec::encode_value(std::map<std::string, double>{{"a", 1.0}}), job.context);
    });
    CHECK_THAT(map, Catch::Matchers::Contains("map"));
    CHECK_THROWS_AS(run(handler, codec::encode_nil(), job.context), bad_arguments_error);
}

TEST_CASE("a handler taking msgpack::object gets the argument undecoded", "[binding]") {
    job_fixture job;
    auto handler = bind_handler("echo", [](msgpack::object value) { return value; });
    auto result = run(handler, codec::encode_args(std::vector<std::string>{"a", "b"}), job.context);
    CHECK(codec::decode_value<std::vector<std::string>>(result) ==
          std::vector<std::string>{"a", "b"});
}

TEST_CASE("a big msgpack::object argument returned as the result is not copied", "[binding]") {
    std::atomic<bool> cancelled{false};
    auto frame = codec::encode_args(std::string(codec::min_shared_result, 'x'));
    JobContext context{7, "echo", 1, std::nullopt, cancelled, nullptr, nullptr, &frame};
    auto handler = bind_handler("echo", [](msgpack::object value) { return value; });
    auto handle = codec::unpack_in_place(frame);
    auto result = std::get<zmq::message_t>(handler(handle.get(), context));
    CHECK(result.data() == static_cast<const char*>(frame.data()) + 1); // the frame's bytes
    CHECK(codec::decode_value<std::string>(result) == std::string(codec::min_shared_result, 'x'));

    // Without the frame (outside a worker) it is packed, as before.
    job_fixture job;
    auto packed = std::get<zmq::message_t>(handler(handle.get(), job.context));
    CHECK(packed.data() != result.data());
    CHECK(packed.to_string() == result.to_string());
}

TEST_CASE("std::string_view and std::span<const std::byte> parameters view the argument's bytes",
          "[binding]") {
    std::atomic<bool> cancelled{false};
    auto big = codec::min_shared_result;
    auto frame = codec::encode_args(std::vector<std::byte>(big, std::byte{7}), std::string("text"));
    JobContext context{7, "f", 1, std::nullopt, cancelled, nullptr, nullptr, &frame};
    const char* begin = static_cast<const char*>(frame.data());
    auto inside = [&](const void* p) {
        auto* c = static_cast<const char*>(p);
        return c >= begin && c < begin + frame.size();
    };
    auto handle = codec::unpack_in_place(frame);
    const void* seen_bytes = nullptr;
    const void* seen_text = nullptr;
    auto look = bind_handler("look", [&](std::span<const std::byte> bytes, std::string_view text) {
        seen_bytes = bytes.data();
        seen_text = text.data();
        return bytes.size() + text.size();
    });
    auto size = std::get<zmq::message_t>(look(handle.get(), context));
    CHECK(codec::decode_value<std::size_t>(size) == big + 4);
    CHECK(inside(seen_bytes));
    CHECK(inside(seen_text));

    // Returned whole, the view goes back as the frame's bytes; a part of one is packed.
    auto back = bind_handler(
        "back", [](std::span<const std::byte> bytes, std::string_view) { return bytes; });
    auto whole = std::get<zmq::message_t>(back(handle.get(), context));
    CHECK(inside(whole.data()));
    CHECK(codec::decode_value<std::vector<std::byte>>(whole) ==
          std::vector<std::byte>(big, std::byte{7}));
    auto part = bind_handler(
        "part", [](std::span<const std::byte> bytes, std::string_view) { return bytes.first(10); });
    auto packed = std::get<zmq::message_t>(part(handle.get(), context));
    CHECK_FALSE(inside(packed.data()));
    CHECK(codec::decode_value<std::vector<std::byte>>(packed) ==
          std::vector<std::byte>(10, std::byte{7}));
    // A string_view of a bin is text: packed as a str, not the bin's bytes.
    auto as_text =
        bind_handler("as_text", [](std::string_view bytes, std::string_view) { return bytes; });
    auto text = std::get<zmq::message_t>(as_text(handle.get(), context));
    CHECK_FALSE(inside(text.data()));
    CHECK(codec::unpack(text).get().type == msgpack::type::STR);

    job_fixture job;
    CHECK_THAT(bad_arguments_message([&] { run(look, codec::encode_args(1, 2), job.context); }),
               Catch::Matchers::Contains("look(span<const byte>, string_view): argument 1"));
}

TEST_CASE("exceptions thrown by the user's handler propagate unchanged", "[binding]") {
    job_fixture job;
    auto out_of_range = bind_handler("f", [](int) -> int { throw std::out_of_range("boom"); });
    CHECK_THROWS_AS(run(out_of_range, codec::encode_args(1), job.context), std::out_of_range);
    CHECK_THROWS_WITH(run(out_of_range, codec::encode_args(1), job.context), "boom");

    // A decode_failure from the handler's own decoding is not mistaken for bad arguments.
    auto own_decoding =
        bind_handler("g", [](msgpack::object value) { return codec::convert<int>(value); });
    CHECK_THROWS_AS(run(own_decoding, codec::encode_args(std::string("x")), job.context),
                    codec::decode_failure);

    struct custom {
        int code;
    };
    auto anything = bind_handler("h", []() -> int { throw custom{17}; });
    try {
        run(anything, codec::encode_args(), job.context);
        FAIL("nothing was thrown");
    } catch (const custom& e) {
        CHECK(e.code == 17);
    }
}

TEST_CASE("a handler that returns a Deferred or is a Task gives its result when it fires",
          "[binding]") {
    job_fixture job;
    deferq::Deferred<double> later;
    auto handler = bind_handler("later", [&](double) { return later; });
    auto args = codec::encode_args(1.0);
    auto handle = codec::unpack(args);
    auto bound = handler(handle.get(), job.context);
    auto* pending = std::get_if<deferq::Deferred<std::string>>(&bound);
    REQUIRE(pending != nullptr);
    CHECK_FALSE(pending->called());
    later.callback(2.5);
    auto bytes = pending->get();
    CHECK(codec::decode_value<double>(bytes.data(), bytes.size()) == 2.5);

    auto task =
        bind_handler("task", [](std::int64_t x) -> deferq::Task<std::int64_t> { co_return x * 2; });
    auto task_args = codec::encode_args(std::int64_t{21});
    auto task_handle = codec::unpack(task_args);
    auto task_bound = task(task_handle.get(), job.context);
    auto task_bytes = std::get<deferq::Deferred<std::string>>(task_bound).get();
    CHECK(codec::decode_value<std::int64_t>(task_bytes.data(), task_bytes.size()) == 42);
}
