// deferq::Bytes (shared/include/deferq/bytes.hpp): a `bin` or `str` result that stays in the
// reply's own frame, with no copy out.

#include "deferq/call.hpp"

#include <catch2/catch.hpp>

#include <string>

using deferq::Bytes;
using deferq::detail::raw_reply;
using deferq::detail::result_decoder;

namespace {

/// A REPLY's payload frame: `bytes` encoded as one `bin`.
zmq::message_t bin_frame(const std::string& bytes) {
    return deferq::codec::encode_value(std::vector<char>(bytes.begin(), bytes.end()));
}

std::string_view view(const zmq::message_t& frame) {
    return {frame.data<char>(), frame.size()};
}

} // namespace

TEST_CASE("a bytes result in a frame of its own keeps the frame's bytes, with no copy", "[bytes]") {
    std::string content(100'000, 'x');
    content[17] = 'y';
    auto frame = std::make_unique<zmq::message_t>(bin_frame(content));
    raw_reply reply{view(*frame), "w1", 1, frame.get()};
    auto bytes = result_decoder<Bytes>::decode(reply);
    CHECK(bytes.shares_message());
    REQUIRE(bytes.size() == content.size());
    // Where the frame has them, after the bin's 5-byte header.
    CHECK(bytes.data() == frame->data<std::byte>() + 5);
    auto copy = bytes; // copies share them too
    CHECK(copy.data() == bytes.data());
    frame.reset(); // the client's receive buffer goes; the bytes stay
    CHECK(copy.view() == content);
    CHECK(bytes == copy);
}

TEST_CASE("a bytes result from a BATCH record, a str, or small bytes, is right too", "[bytes]") {
    SECTION("no frame of its own: copied") {
        auto frame = bin_frame("batched");
        raw_reply reply{view(frame), "w1", 1};
        auto bytes = result_decoder<Bytes>::decode(reply);
        CHECK_FALSE(bytes.shares_message());
        CHECK(bytes.view() == "batched");
    }
    SECTION("a str, in a small frame (ZeroMQ copies those into the message itself)") {
        auto frame = deferq::codec::encode_value(std::string("hi"));
        raw_reply reply{view(frame), "w1", 1, &frame};
        auto bytes = result_decoder<Bytes>::decode(reply);
        frame = zmq::message_t();
        CHECK(bytes.view() == "hi");
    }
    SECTION("empty") {
        auto frame = bin_frame("");
        raw_reply reply{view(frame), "w1", 1, &frame};
        CHECK(result_decoder<Bytes>::decode(reply).empty());
    }
}

TEST_CASE("a result that is not bytes does not decode as Bytes, and says what it was", "[bytes]") {
    auto frame = deferq::codec::encode_value(42);
    raw_reply reply{view(frame), "w1", 1, &frame};
    try {
        (void)result_decoder<Bytes>::decode(reply);
        FAIL("decoded");
    } catch (const deferq::codec::decode_failure& e) {
        CHECK(std::string(e.what()) == "expected bytes, got integer 42");
    }
}

TEST_CASE("Bytes pack as one bin, as an argument and as a result", "[bytes]") {
    Bytes bytes(std::string_view("abc"));
    CHECK_FALSE(bytes.shares_message());
    auto packed = deferq::codec::encode_args(bytes);
    auto same = deferq::codec::encode_args(std::vector<char>{'a', 'b', 'c'});
    CHECK(view(packed) == view(same));
    auto back = deferq::codec::decode_value<std::vector<Bytes>>(packed);
    REQUIRE(back.size() == 1);
    CHECK(back[0] == bytes);
}
