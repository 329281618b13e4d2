// How `deferq call` prints untyped results (client/src/result_text.hpp): any bytes a worker sends.

#include "result_text.hpp"

#include "deferq/codec.hpp"
#include "deferq/failure.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

namespace {

std::string bytes(const zmq::message_t& message) {
    return std::string(static_cast<const char*>(message.data()), message.size());
}

} // namespace

TEST_CASE("a result that maps to JSON is printed as JSON", "[cli]") {
    using deferq::codec::encode_value;
    CHECK(deferq::cli::result_text(bytes(encode_value(89.5))) == "89.5");
    CHECK(deferq::cli::result_text(bytes(encode_value(std::vector<int>{1, 2}))) == "[1,2]");
    CHECK(deferq::cli::result_text(bytes(encode_value(std::map<std::string, int>{{"a", 1}}))) ==
          "{\"a\":1}");
}

TEST_CASE("a result JSON cannot show is a bad_result failure naming it", "[cli]") {
    // Before: msgpack's own notation, with exit code 0 (and `null` for infinity).
    auto failure_of = [](const std::string& bytes) -> std::string {
        try {
            deferq::cli::result_text(bytes);
            return "no failure";
        } catch (const deferq::Failure& failure) {
            return std::string(to_string(failure.code())) + ": " + failure.message();
        }
    };
    CHECK(failure_of(bytes(deferq::codec::encode_value(std::string("\xff\xfe")))) ==
          "bad_result: the result has no JSON form: a string that is not valid UTF-8 at $: JSON "
          "strings are UTF-8");
    CHECK(failure_of(bytes(deferq::codec::encode_value(std::map<int, int>{{1, 2}}))) ==
          "bad_result: the result has no JSON form: a map key that is not a string (integer) at $: "
          "JSON object keys are strings");
}

TEST_CASE("a result that is not msgpack is a bad_result failure, not a crash", "[cli]") {
    // Found by the client fuzz target: a worker's reply "\xc1" made `deferq call` abort.
    for (std::string bad :
         {std::string("\xc1"), std::string(""), std::string("\x92\x01"), std::string("\x01\x02")}) {
        try {
            deferq::cli::result_text(bad);
            FAIL("expected a failure");
        } catch (const deferq::Failure& failure) {
            CHECK(failure.code() == deferq::error_code::bad_result);
        }
    }
}

TEST_CASE("a deeply nested result is refused, not a stack overflow", "[cli]") {
    // 200,000 nested one-element arrays: within the message size, far beyond the nesting limit.
    std::string nested(200'000, '\x91');
    nested += '\xc0';
    CHECK_THROWS_AS(deferq::cli::result_text(nested), deferq::Failure);
}
