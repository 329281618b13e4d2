// msgpack helpers (shared/include/deferq/codec.hpp): argument arrays, results, conversions, type
// names.

#include "deferq/codec.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace codec = deferq::codec;

namespace {

/// Packs `value` as a one-element argument array, unpacks it and converts the element back.
template <typename T> T through_arguments(const T& value) {
    auto frame = codec::encode_args(value);
    auto handle = codec::unpack(frame);
    const auto& arguments = handle.get();
    REQUIRE(arguments.type == msgpack::type::ARRAY);
    REQUIRE(arguments.via.array.size == 1);
    return codec::convert<T>(arguments.via.array.ptr[0]);
}

/// Packs `value` as a result and decodes it back.
template <typename T> T through_result(const T& value) {
    return codec::decode_value<T>(codec::encode_value(value));
}

template <typename T> void require_round_trip(const T& value) {
    CHECK(through_arguments(value) == value);
    CHECK(through_result(value) == value);
}

/// The message of the decode_failure that `action` throws; fails the test when it throws nothing.
template <typename Action> std::string decode_failure_message(Action&& action) {
    try {
        action();
    } catch (const codec::decode_failure& e) {
        return e.what();
    }
    FAIL("no decode_failure was thrown");
    return {};
}

zmq::message_t frame_of(std::initializer_list<unsigned char> bytes) {
    std::vector<unsigned char> data(bytes);
    return zmq::message_t(data.data(), data.size());
}

} // namespace

TEST_CASE("int64 values round-trip, extremes included", "[codec]") {
    for (std::int64_t value :
         {std::int64_t{0}, std::int64_t{-1}, std::int64_t{127}, std::int64_t{-33},
          std::int64_t{1} << 40, std::numeric_limits<std::int64_t>::min(),
          std::numeric_limits<std::int64_t>::max()}) {
        INFO("value " << value);
        require_round_trip(value);
    }
}

TEST_CASE("double values round-trip exactly", "[codec]") {
    for (double value : {0.0, -2.5, 1.0 / 3.0, 1e308, std::numeric_limits<double>::denorm_min()}) {
        INFO("value " << value);
        require_round_trip(value);
    }
}

TEST_CASE("bool values round-trip", "[codec]") {
    require_round_trip(true);
    require_round_trip(false);
}

TEST_CASE("strings round-trip, empty and binary ones included", "[codec]") {
    require_round_trip(std::string());
    require_round_trip(std::string("hello"));
    require_round_trip(std::string("a\0b\xff", 4));
    require_round_trip(std::string(70000, 'x'));
}

TEST_CASE("vector<int> round-trips", "[codec]") {
    require_round_trip(std::vector<int>{});
    require_round_trip(std::vector<int>{1, -2, 3, std::numeric_limits<int>::max(),
                                        std::numeric_limits<int>::min()});
}

TEST_CASE("map<string, int> round-trips", "[codec]") {
    require_round_trip(std::map<std::string, int>{});
    require_round_trip(std::map<std::string, int>{{"one", 1}, {"minus two", -2}, {"", 0}});
}

TEST_CASE("optional<int> round-trips present and as nil", "[codec]") {
    require_round_trip(std::optional<int>{5});
    require_round_trip(std::optional<int>{});
    // nil on the wire: the same byte as encode_nil().
    auto frame = codec::encode_value(std::optional<int>{});
    CHECK(std::string(static_cast<const char*>(frame.data()), frame.size()) ==
          std::string("\xc0", 1));
}

TEST_CASE("encode_args packs every argument, in order, as one array", "[codec]") {
    auto frame = codec::encode_args(std::int64_t{-7}, 2.5, true, std::string("s"));
    auto handle = codec::unpack(frame);
    const auto& arguments = handle.get();
    REQUIRE(arguments.type == msgpack::type::ARRAY);
    REQUIRE(arguments.via.array.size == 4);
    CHECK(codec::convert<std::int64_t>(arguments.via.array.ptr[0]) == -7);
    CHECK(codec::convert<double>(arguments.via.array.ptr[1]) == 2.5);
    CHECK(codec::convert<bool>(arguments.via.array.ptr[2]));
    CHECK(codec::convert<std::string>(arguments.via.array.ptr[3]) == "s");
}

TEST_CASE("encode_args with no arguments packs an empty array", "[codec]") {
    auto frame = codec::encode_args();
    auto handle = codec::unpack(frame);
    REQUIRE(handle.get().type == msgpack::type::ARRAY);
    CHECK(handle.get().via.array.size == 0);
}

TEST_CASE("encode_nil packs the single msgpack nil byte", "[codec]") {
    auto frame = codec::encode_nil();
    REQUIRE(frame.size() == 1);
    CHECK(*static_cast<const unsigned char*>(frame.data()) == 0xc0);
    CHECK(codec::unpack(frame).get().type == msgpack::type::NIL);
    CHECK_FALSE(codec::decode_value<std::optional<int>>(frame).has_value());
}

TEST_CASE("convert<double> accepts an integer", "[codec]") {
    CHECK(codec::decode_value<double>(codec::encode_value(3)) == 3.0);
    CHECK(codec::decode_value<double>(codec::encode_value(-7)) == -7.0);
    CHECK(codec::decode_value<double>(codec::encode_value(std::uint64_t{1} << 53)) ==
          9007199254740992.0);
}

TEST_CASE("convert<int> of a string throws decode_failure naming int32 and string", "[codec]") {
    auto frame = codec::encode_value(std::string("forty-two"));
    auto message = decode_failure_message([&] { codec::decode_value<int>(frame); });
    CHECK_THAT(message, Catch::Matchers::Contains("int32") && Catch::Matchers::Contains("string"));
}

TEST_CASE("convert<int> rejects an integer that does not fit in int32", "[codec]") {
    auto frame = codec::encode_value(std::int64_t{1} << 40);
    auto message = decode_failure_message([&] { codec::decode_value<int>(frame); });
    CHECK_THAT(message, Catch::Matchers::Contains("int32") && Catch::Matchers::Contains("integer"));
}

TEST_CASE("convert of a container names the expected and the found kind", "[codec]") {
    auto frame = codec::encode_value(std::map<std::string, int>{{"a", 1}});
    auto message = decode_failure_message([&] { codec::decode_value<std::vector<int>>(frame); });
    CHECK_THAT(message,
               Catch::Matchers::Contains("vector<int32>") && Catch::Matchers::Contains("map"));

    auto mixed = codec::encode_value(std::vector<std::string>{"x"});
    auto element = decode_failure_message([&] { codec::decode_value<std::vector<int>>(mixed); });
    CHECK_THAT(element, Catch::Matchers::Contains("vector<int32>"));
}

TEST_CASE("convert<bool> rejects an integer", "[codec]") {
    auto frame = codec::encode_value(1);
    auto message = decode_failure_message([&] { codec::decode_value<bool>(frame); });
    CHECK_THAT(message, Catch::Matchers::Contains("bool") && Catch::Matchers::Contains("integer"));
}

TEST_CASE("unpack rejects malformed msgpack with decode_failure", "[codec]") {
    SECTION("an empty frame") {
        CHECK_THROWS_AS(codec::unpack(frame_of({})), codec::decode_failure);
    }
    SECTION("the never-used byte 0xc1") {
        CHECK_THROWS_AS(codec::unpack(frame_of({0xc1})), codec::decode_failure);
    }
    SECTION("an array missing an element") {
        CHECK_THROWS_AS(codec::unpack(frame_of({0x92, 0x01})), codec::decode_failure);
    }
    SECTION("a string shorter than its header says") {
        CHECK_THROWS_AS(codec::unpack(frame_of({0xd9, 0x0a, 'a', 'b'})), codec::decode_failure);
    }
    SECTION("a truncated float64") {
        CHECK_THROWS_AS(codec::unpack(frame_of({0xcb, 0x3f, 0xf0})), codec::decode_failure);
    }
    SECTION("an array header claiming 16 million elements in a 5-byte frame") {
        CHECK_THROWS_AS(codec::unpack(frame_of({0xdd, 0x00, 0xff, 0xff, 0xff})),
                        codec::decode_failure);
    }
}

TEST_CASE("unpack rejects trailing bytes after the value with decode_failure", "[codec]") {
    auto message = decode_failure_message([] { codec::unpack(frame_of({0x01, 0x02})); });
    CHECK_THAT(message, Catch::Matchers::Contains("trailing"));
    CHECK_THROWS_AS(codec::unpack(frame_of({0xc0, 0x00})), codec::decode_failure);
    CHECK_THROWS_AS(codec::decode_value<int>(frame_of({0x05, 0xc0})), codec::decode_failure);
    CHECK(codec::decode_value<int>(frame_of({0x05})) == 5);
}

TEST_CASE("type_name spells types as signatures show them", "[codec]") {
    CHECK(codec::type_name<std::vector<std::int64_t>>::get() == "vector<int64>");
    CHECK(codec::type_name<std::map<std::string, int>>::get() == "map<string, int32>");
    CHECK(codec::type_name<std::optional<double>>::get() == "optional<double>");
    CHECK(codec::type_name<bool>::get() == "bool");
    CHECK(codec::type_name<std::string>::get() == "string");
    CHECK(codec::type_name<std::uint64_t>::get() == "uint64");
    CHECK(codec::type_name<msgpack::object>::get() == "any");
    CHECK(codec::type_name<std::vector<std::optional<std::string>>>::get() ==
          "vector<optional<string>>");
}

TEST_CASE("msgpack_kind names what was found", "[codec]") {
    auto kind_of = [](const zmq::message_t& frame) {
        return codec::msgpack_kind(codec::unpack(frame).get());
    };
    CHECK(kind_of(codec::encode_nil()) == "nil");
    CHECK(kind_of(codec::encode_value(-3)) == "integer");
    CHECK(kind_of(codec::encode_value(0.5)) == "float");
    CHECK(kind_of(codec::encode_value(std::string("s"))) == "string");
    CHECK(kind_of(codec::encode_args(1, 2)) == "array of 2");
    CHECK(kind_of(codec::encode_value(std::map<std::string, int>{})) == "map");
}

// Big arguments (issue 18, W6): `bin` and `str` decode in one copy, read in place, encode into a
// buffer of their size.

namespace {

template <typename Bytes> Bytes pattern(std::size_t size) {
    Bytes out(size, typename Bytes::value_type{});
    for (std::size_t i = 0; i < size; ++i)
        out[i] = static_cast<typename Bytes::value_type>((i * 7 + 3) & 0xff);
    return out;
}

/// Sizes around the msgpack length boundaries (str: fixstr 31, str8 255, str16 65535; bin: bin8
/// 255, bin16 65535) and one big one.
const std::vector<std::size_t> boundary_sizes = {0,     1,     31,    32,      255,    256,
                                                 65535, 65536, 65537, 1 << 20, 3 << 20};

template <typename Bytes> std::string msgpack_own_encoding(const Bytes& value) {
    msgpack::sbuffer buffer;
    msgpack::pack(buffer, value);
    return std::string(buffer.data(), buffer.size());
}

std::string bytes_of(const zmq::message_t& frame) {
    return std::string(static_cast<const char*>(frame.data()), frame.size());
}

} // namespace

TEMPLATE_TEST_CASE("byte sequences round-trip as bin or str at every length boundary", "[codec]",
                   std::vector<char>, std::vector<unsigned char>, std::vector<std::byte>,
                   std::string) {
    for (auto size : boundary_sizes) {
        INFO("size " << size);
        auto value = pattern<TestType>(size);
        CHECK(through_arguments(value) == value);
        CHECK(through_result(value) == value);
    }
}

TEMPLATE_TEST_CASE("a byte sequence decodes from a str and from a bin alike", "[codec]",
                   std::vector<char>, std::vector<unsigned char>, std::vector<std::byte>,
                   std::string) {
    auto text = pattern<std::string>(300);
    auto binary = pattern<std::vector<char>>(300);
    auto expected = pattern<TestType>(300);
    CHECK(codec::decode_value<TestType>(codec::encode_value(text)) == expected);
    CHECK(codec::decode_value<TestType>(codec::encode_value(binary)) == expected);
    CHECK_THROWS_AS(codec::decode_value<TestType>(codec::encode_value(42)), codec::decode_failure);
}

TEST_CASE("a decoded byte vector stays right after its source buffer is gone", "[codec]") {
    for (std::size_t size : {std::size_t{100}, std::size_t{70000}, std::size_t{5} << 20}) {
        auto expected = pattern<std::vector<char>>(size);
        std::vector<char> decoded;
        std::string decoded_text;
        {
            auto frame = codec::encode_value(expected);
            std::vector<char> source(static_cast<const char*>(frame.data()),
                                     static_cast<const char*>(frame.data()) + frame.size());
            decoded = codec::decode_value<std::vector<char>>(source.data(), source.size());
            decoded_text = codec::decode_value<std::string>(source.data(), source.size());
            std::fill(source.begin(), source.end(), '\0'); // then freed
        }
        CHECK(decoded == expected);
        CHECK(decoded_text == std::string(expected.begin(), expected.end()));
    }
}

TEST_CASE("unpack_in_place points bin and str into the frame; unpack copies them", "[codec]") {
    auto frame = codec::encode_args(pattern<std::vector<char>>(1000), pattern<std::string>(40));
    const char* begin = static_cast<const char*>(frame.data());
    const char* end = begin + frame.size();
    auto inside = [&](const char* p) { return p >= begin && p < end; };

    auto in_place = codec::unpack_in_place(frame);
    const auto& arguments = in_place.get().via.array;
    REQUIRE(arguments.ptr[0].type == msgpack::type::BIN);
    CHECK(inside(arguments.ptr[0].via.bin.ptr));
    CHECK(inside(arguments.ptr[1].via.str.ptr));
    CHECK(codec::convert<std::vector<char>>(arguments.ptr[0]) == pattern<std::vector<char>>(1000));

    auto copied = codec::unpack(frame);
    CHECK_FALSE(inside(copied.get().via.array.ptr[0].via.bin.ptr));
    CHECK_FALSE(inside(copied.get().via.array.ptr[1].via.str.ptr));
}

TEST_CASE("share_encoded answers a big bin or str argument with the frame's own bytes", "[codec]") {
    auto big = codec::min_shared_result + 3;
    for (const auto& frame : {codec::encode_args(pattern<std::vector<char>>(big)),
                              codec::encode_args(pattern<std::string>(big))}) {
        auto in_place = codec::unpack_in_place(frame);
        const auto& value = in_place.get().via.array.ptr[0];
        auto shared = codec::share_encoded(value, frame);
        REQUIRE(shared);
        // The array's header (1 byte) comes before the value's encoding: the rest is the value.
        CHECK(shared->data() == static_cast<const char*>(frame.data()) + 1);
        CHECK(bytes_of(*shared) == bytes_of(codec::encode_value(value)));
    }
    // The new message keeps the bytes alive after the frame is gone.
    auto frame = codec::encode_args(pattern<std::string>(big));
    auto in_place = codec::unpack_in_place(frame);
    auto shared = codec::share_encoded(in_place.get().via.array.ptr[0], frame);
    REQUIRE(shared);
    frame = zmq::message_t();
    CHECK(codec::decode_value<std::string>(*shared) == pattern<std::string>(big));
}

TEST_CASE("share_encoded leaves small values, small parts and foreign bytes to packing",
          "[codec]") {
    auto big = codec::min_shared_result;
    auto small = codec::encode_args(pattern<std::string>(1000));
    auto small_handle = codec::unpack_in_place(small);
    CHECK_FALSE(codec::share_encoded(small_handle.get().via.array.ptr[0], small));

    // A big part of a frame more than twice its size would keep the whole frame alive.
    auto two = codec::encode_args(pattern<std::string>(big), pattern<std::string>(2 * big));
    auto two_handle = codec::unpack_in_place(two);
    CHECK_FALSE(codec::share_encoded(two_handle.get().via.array.ptr[0], two));
    CHECK(codec::share_encoded(two_handle.get().via.array.ptr[1], two));

    // Copied out of the frame (unpack), or not a bin or str: packed as usual.
    auto frame = codec::encode_args(pattern<std::vector<char>>(big));
    auto copied = codec::unpack(frame);
    CHECK_FALSE(codec::share_encoded(copied.get().via.array.ptr[0], frame));
    auto in_place = codec::unpack_in_place(frame);
    CHECK_FALSE(codec::share_encoded(in_place.get(), frame)); // the array itself
    auto numbers = codec::encode_value(std::vector<double>(big, 1.0));
    auto numbers_handle = codec::unpack_in_place(numbers);
    CHECK_FALSE(codec::share_encoded(numbers_handle.get(), numbers));
}

TEST_CASE("unpack_in_place keeps unpack's limits and errors", "[codec]") {
    // bin32 claiming 4 GiB in 6 bytes; a bin8 cut short; trailing bytes.
    CHECK_THROWS_AS(codec::unpack_in_place(frame_of({0xc6, 0xff, 0xff, 0xff, 0xff, 0x00})),
                    codec::decode_failure);
    CHECK_THROWS_AS(codec::unpack_in_place(frame_of({0xc4, 0x05, 0x01})), codec::decode_failure);
    CHECK_THROWS_AS(codec::unpack_in_place(frame_of({0xc0, 0xc0})), codec::decode_failure);
}

TEMPLATE_TEST_CASE("a big byte sequence encodes exactly as msgpack packs it, into a buffer of its "
                   "size",
                   "[codec]", std::vector<char>, std::vector<unsigned char>, std::vector<std::byte>,
                   std::string) {
    for (auto size : boundary_sizes) {
        INFO("size " << size);
        auto value = pattern<TestType>(size);
        auto own = msgpack_own_encoding(value);
        CHECK(bytes_of(codec::encode_value(value)) == own);
        // The encoding buffer is sized before packing: it never grows (and so is copied once).
        CHECK(codec::known_size(value) >= own.size());
        CHECK(codec::known_size(value) <= own.size() + 5);

        msgpack::sbuffer as_array;
        msgpack::packer<msgpack::sbuffer> packer(as_array);
        packer.pack_array(1);
        packer.pack(value);
        CHECK(bytes_of(codec::encode_args(value)) == std::string(as_array.data(), as_array.size()));
    }
}

TEST_CASE("a bin or str msgpack::object result encodes as it came, sized before packing",
          "[codec]") {
    for (auto size : boundary_sizes) {
        INFO("size " << size);
        for (const auto& own : {msgpack_own_encoding(pattern<std::vector<char>>(size)),
                                msgpack_own_encoding(pattern<std::string>(size))}) {
            auto handle = codec::unpack_in_place(own.data(), own.size());
            CHECK(codec::known_size(handle.get()) >= own.size());
            CHECK(bytes_of(codec::encode_value(handle.get())) == own);
        }
    }
}

namespace {

/// The msgpack encoding of `value`, as bytes.
template <typename T> std::string packed(const T& value) {
    msgpack::sbuffer buffer;
    msgpack::pack(buffer, value);
    return std::string(buffer.data(), buffer.size());
}

/// decode_value<T> against msgpack-c's own unpacker and codec::convert: the same value, or the
/// same error.
template <typename T> void decodes_as_msgpack_does(const std::string& bytes) {
    std::string ours, theirs;
    try {
        ours = std::to_string(codec::decode_value<T>(bytes.data(), bytes.size()));
    } catch (const codec::decode_failure& e) {
        ours = std::string("error: ") + e.what();
    }
    try {
        auto handle = msgpack::unpack(bytes.data(), bytes.size());
        theirs = std::to_string(codec::convert<T>(handle.get()));
    } catch (const codec::decode_failure& e) {
        theirs = std::string("error: ") + e.what();
    }
    CHECK(ours == theirs);
}

} // namespace

TEST_CASE("unpack reads a scalar without a zone, as msgpack-c does; anything else with one",
          "[codec]") {
    std::vector<std::string> scalars = {packed(msgpack::type::nil_t()),
                                        packed(true),
                                        packed(false),
                                        packed(1.5f),
                                        packed(-2.25),
                                        packed(0.0)};
    for (std::int64_t v :
         std::initializer_list<std::int64_t>{0,
                                             1,
                                             127,
                                             128,
                                             255,
                                             256,
                                             65535,
                                             65536,
                                             4294967295,
                                             4294967296,
                                             -1,
                                             -32,
                                             -33,
                                             -128,
                                             -129,
                                             -32768,
                                             -32769,
                                             -2147483648,
                                             -2147483649,
                                             std::numeric_limits<std::int64_t>::min(),
                                             std::numeric_limits<std::int64_t>::max()})
        scalars.push_back(packed(v));
    scalars.push_back(packed(std::numeric_limits<std::uint64_t>::max()));
    // Forms msgpack's packer does not choose but others may send: a signed code with a positive
    // value, a wide code with a small one.
    scalars.push_back(std::string("\xd0\x05", 2));
    scalars.push_back(std::string("\xd3\x00\x00\x00\x00\x00\x00\x00\x07", 9));
    scalars.push_back(std::string("\xcf\x00\x00\x00\x00\x00\x00\x00\x07", 9));
    scalars.push_back(std::string("\xd1\xff\xfe", 3));
    for (const auto& bytes : scalars) {
        INFO("bytes of size " << bytes.size() << ", code " << int(std::uint8_t(bytes[0])));
        auto ours = codec::unpack(bytes.data(), bytes.size());
        auto theirs = msgpack::unpack(bytes.data(), bytes.size());
        CHECK(ours.zone() == nullptr);
        CHECK(ours.get() == theirs.get());
        CHECK(ours.get().type == theirs.get().type);
        decodes_as_msgpack_does<int>(bytes);
        decodes_as_msgpack_does<std::uint8_t>(bytes);
        decodes_as_msgpack_does<std::int64_t>(bytes);
        decodes_as_msgpack_does<std::uint64_t>(bytes);
        decodes_as_msgpack_does<double>(bytes);
        decodes_as_msgpack_does<float>(bytes);
        decodes_as_msgpack_does<bool>(bytes);
        // Cut short or with a byte more, it is malformed: unpack's errors apply.
        CHECK_THROWS_AS(codec::unpack(bytes.data(), bytes.size() - 1), codec::decode_failure);
        auto longer = bytes + '\0';
        CHECK_THROWS_AS(codec::unpack(longer.data(), longer.size()), codec::decode_failure);
    }
    for (const auto& other : {packed(std::string("7")), packed(std::vector<int>{1})}) {
        auto handle = codec::unpack(other.data(), other.size());
        CHECK(handle.zone() != nullptr);
        CHECK(handle.get() == msgpack::unpack(other.data(), other.size()).get());
        decodes_as_msgpack_does<int>(other);
    }
    CHECK_THROWS_AS(codec::unpack("\xc1", 1), codec::decode_failure); // never used
}
