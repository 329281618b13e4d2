// The one msgpack ↔ JSON conversion (shared/src/msgpack_json.hpp, docs/interop.md "JSON and
// msgpack") that the CLI, the gateway and the status JSON share.

#include "msgpack_json.hpp"
#include "msgpack_of.hpp"

#include "result_text.hpp"

#include "deferq/codec.hpp"
#include "deferq/failure.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <map>

namespace msgpack_json = deferq::msgpack_json;
using nlohmann::json;

using deferq::test::msgpack_of;

namespace {

/// The message of the mapping_error that converting `bytes` throws; empty when none.
std::string refusal(const std::string& bytes,
                    msgpack_json::bad_utf8 strings = msgpack_json::bad_utf8::refuse) {
    try {
        (void)msgpack_json::to_json(bytes, strings);
        return {};
    } catch (const msgpack_json::mapping_error& e) {
        return e.what();
    }
}

constexpr double infinity = std::numeric_limits<double>::infinity();

} // namespace

TEST_CASE("JSON values round-trip through msgpack", "[json]") {
    for (const auto& value : {json(nullptr), json(true), json(-5), json(18446744073709551615ULL),
                              json(std::numeric_limits<std::int64_t>::min()), json(2.5),
                              json("ü ☃"), json::array({1, "two", json::array({3.5, nullptr})}),
                              json{{"a", 1}, {"b", json{{"c", json::array()}}}}, json::object()}) {
        INFO(value.dump());
        CHECK(msgpack_json::to_json(msgpack_json::to_msgpack(value)) == value);
    }
}

TEST_CASE("integers stay integers and floats stay floats from msgpack to JSON", "[json]") {
    CHECK(msgpack_json::to_json(msgpack_of(std::numeric_limits<std::uint64_t>::max())).dump() ==
          "18446744073709551615");
    CHECK(msgpack_json::to_json(msgpack_of(-42)).dump() == "-42");
    CHECK(msgpack_json::to_json(msgpack_of(1e308)).dump() == "1e+308");
    CHECK(msgpack_json::to_json(msgpack_of(2.5f)).dump() == "2.5");
    // A float packs as float64: not as float32 (which nlohmann's own writer picks for 2.5), not as
    // an integer when integral (which msgpack-c's packer does for 2.0).
    CHECK(msgpack_json::to_msgpack(json(2.5)) == std::string("\xcb\x40\x04\0\0\0\0\0\0", 9));
    CHECK(msgpack_json::to_msgpack(json(2.0)) == std::string("\xcb\x40\0\0\0\0\0\0\0", 9));
    CHECK(msgpack_json::to_msgpack(json(2)) == "\x02");
}

TEST_CASE("non-finite doubles are refused, naming the value and its place", "[json]") {
    // The issue's case: add(1e308, 1e308) answers inf; `deferq call` printed null with exit 0.
    CHECK(refusal(msgpack_of(infinity)) == "inf at $: JSON has no infinity or NaN");
    CHECK(refusal(msgpack_of(-infinity)) == "-inf at $: JSON has no infinity or NaN");
    CHECK(refusal(msgpack_of(std::vector<double>{1.0, std::nan("")})) ==
          "nan at $[1]: JSON has no infinity or NaN");
    CHECK(refusal(msgpack_of(std::map<std::string, std::vector<float>>{
              {"speeds", {1.0f, std::numeric_limits<float>::infinity()}}})) ==
          "inf at $.speeds[1]: JSON has no infinity or NaN");
    CHECK(refusal(msgpack_of(std::map<std::string, double>{{"odd key", -infinity}})) ==
          "-inf at $[\"odd key\"]: JSON has no infinity or NaN");
}

TEST_CASE("binary, extensions, non-string and repeated keys, bad UTF-8 and deep nesting are "
          "refused",
          "[json]") {
    CHECK(refusal(msgpack_of(std::vector<char>{'a', 'b', 'c'})) ==
          "binary data (3 bytes) at $: JSON has no binary type");
    CHECK(refusal(std::string("\xd5\x05\x01\x02", 4)) ==
          "a msgpack extension (type 5, 2 bytes) at $: JSON has no such type");
    CHECK(refusal(msgpack_of(std::map<int, int>{{1, 2}})) ==
          "a map key that is not a string (integer) at $: JSON object keys are strings");
    // {"a": 1, "a": 2}: a JSON object would keep one of them.
    CHECK(refusal(std::string("\x82\xa1"
                              "a\x01\xa1"
                              "a\x02",
                              7)) == "the key \"a\" twice at $: a JSON object has each key once");
    CHECK(refusal(msgpack_of(std::vector<std::string>{"ok", "\xff\xfe"})) ==
          "a string that is not valid UTF-8 at $[1]: JSON strings are UTF-8");
    std::string deep(msgpack_json::max_depth + 1, '\x91');
    deep += '\x01';
    CHECK(refusal(deep) == "nested deeper than 64 levels");
    std::string at_limit(msgpack_json::max_depth, '\x91');
    at_limit += '\x01';
    CHECK(refusal(at_limit).empty());
    json too_deep = 1;
    for (int i = 0; i < msgpack_json::max_depth + 1; ++i)
        too_deep = json::array({too_deep});
    CHECK_THROWS_AS(msgpack_json::to_msgpack(too_deep), msgpack_json::mapping_error);
}

TEST_CASE("the status replaces bad UTF-8 in names instead of refusing them", "[json]") {
    auto status = msgpack_of(std::map<std::string, std::string>{{"name", "w\xff"}});
    CHECK_FALSE(refusal(status).empty());
    CHECK(msgpack_json::to_json(status, msgpack_json::bad_utf8::replace)["name"] ==
          "w\xef\xbf\xbd");
}

TEST_CASE("bytes that are not msgpack are a decode_failure, not a mapping_error", "[json]") {
    CHECK_THROWS_AS(msgpack_json::to_json(std::string("\xc1")), deferq::codec::decode_failure);
    CHECK_THROWS_AS(msgpack_json::to_json(std::string(200'000, '\x91')),
                    deferq::codec::decode_failure);
}

TEST_CASE("the CLI shows a result with no JSON form as a bad_result naming it", "[json][cli]") {
    try {
        (void)deferq::cli::result_text(msgpack_of(infinity));
        FAIL("expected a failure");
    } catch (const deferq::Failure& failure) {
        CHECK(failure.code() == deferq::error_code::bad_result);
        CHECK(failure.message() ==
              "the result has no JSON form: inf at $: JSON has no infinity or NaN");
    }
}

TEST_CASE("numbers typed as text keep their type: integers stay integers", "[json][cli]") {
    using msgpack_json::parse_number;
    CHECK(parse_number("42")->is_number_integer());
    CHECK(parse_number("-9223372036854775808") == json(std::numeric_limits<std::int64_t>::min()));
    // The issue's case: this used to become the float 1.8446744073709552e19.
    auto largest = parse_number("18446744073709551615");
    REQUIRE(largest);
    CHECK(largest->is_number_unsigned());
    CHECK(largest->get<std::uint64_t>() == std::numeric_limits<std::uint64_t>::max());
    CHECK(parse_number("2.5")->is_number_float());
    CHECK(parse_number("1e3")->is_number_float());
    CHECK(parse_number("1e3")->get<double>() == 1000.0);
    CHECK(parse_number("2.0")->is_number_float()); // written as a float: stays one
    CHECK(parse_number("1e-400") == json(0.0));    // rounds to zero, as JSON readers do
    for (auto word : {"inf", "nan", "-inf", "0x10", "+5", "1.2.3", "1e", "-", "", "abc", "12a"}) {
        INFO(word);
        CHECK_FALSE(parse_number(word));
    }
    CHECK_THROWS_WITH(parse_number("18446744073709551616"),
                      "the integer 18446744073709551616 is out of range: integers are "
                      "-9223372036854775808 (int64) to 18446744073709551615 (uint64); write it "
                      "with a fraction (18446744073709551616.0) for a float");
    CHECK_THROWS_AS(parse_number("-9223372036854775809"), msgpack_json::mapping_error);
    CHECK_THROWS_WITH(parse_number("1e999"), "the number 1e999 is beyond the range of a double");
}

TEST_CASE("JSON text keeps integers exact and refuses numbers that would be rounded", "[json]") {
    auto parsed = msgpack_json::parse(R"([18446744073709551615, -1, 2.5, 3, {"a": [1e2]}])");
    CHECK(parsed[0].is_number_unsigned());
    CHECK(parsed[1].is_number_integer());
    CHECK(parsed[2].is_number_float());
    CHECK(parsed[3].is_number_integer());
    CHECK(parsed[4]["a"][0].is_number_float());
    CHECK(msgpack_json::to_json(msgpack_json::to_msgpack(parsed)) == parsed);
    // nlohmann's own parser makes a double of the first and infinity of the second.
    CHECK_THROWS_WITH(msgpack_json::parse("[1, 18446744073709551616]"),
                      Catch::StartsWith("the integer 18446744073709551616 is out of range"));
    CHECK_THROWS_WITH(msgpack_json::parse(R"({"x": -1e999})"),
                      "the number -1e999 is beyond the range of a double");
    CHECK_THROWS_WITH(
        msgpack_json::parse("[" + std::string(100, '9') + "]"),
        Catch::Contains("the integer 9999999999999999999999999999999999999999... is"));
    CHECK_THROWS_AS(msgpack_json::parse("[1,"), json::parse_error);
    CHECK_THROWS_AS(msgpack_json::parse("[1] x"), json::parse_error);
}

TEST_CASE("an integer that does not fit the parameter's type is named with its value", "[codec]") {
    auto too_big = msgpack_of(std::numeric_limits<std::uint64_t>::max());
    CHECK_THROWS_WITH(deferq::codec::decode_value<std::int64_t>(too_big.data(), too_big.size()),
                      "expected int64, got integer 18446744073709551615");
    auto text = msgpack_of(std::string("x"));
    CHECK_THROWS_WITH(deferq::codec::decode_value<std::int64_t>(text.data(), text.size()),
                      "expected int64, got string");
}
