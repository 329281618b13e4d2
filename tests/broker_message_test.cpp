// How the client reads a message from the broker (client/src/broker_message.hpp), without sockets.

#include "broker_message.hpp"

#include "deferq/codec.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

namespace {

using deferq::protocol::command;
namespace protocol = deferq::protocol;

std::string frame(const zmq::message_t& message) {
    return std::string(protocol::view(message));
}

std::vector<zmq::message_t> build(const std::vector<std::string>& frames) {
    std::vector<zmq::message_t> out;
    for (const auto& f : frames)
        out.emplace_back(f.data(), f.size());
    return out;
}

std::string cmd(command c) {
    return frame(protocol::u8_frame(static_cast<std::uint8_t>(c)));
}

/// Records what read_broker_message said, as text.
struct recorder : deferq::detail::broker_message_sink {
    std::vector<std::string> events;
    void on_heard() override { events.push_back("heard"); }
    void on_reply(std::uint64_t id, const deferq::detail::raw_reply& reply) override {
        events.push_back("reply " + std::to_string(id) + " " + std::string(reply.worker) + " " +
                         std::to_string(reply.attempt) + " " +
                         std::to_string(deferq::codec::decode_value<double>(reply.payload.data(),
                                                                            reply.payload.size())));
    }
    void on_error(std::uint64_t id, const deferq::Failure& failure) override {
        events.push_back("error " + std::to_string(id) + " " + failure.what());
    }
    void on_progress(std::uint64_t id, double fraction, std::string_view note) override {
        events.push_back("progress " + std::to_string(id) + " " + std::to_string(fraction) + " " +
                         std::string(note));
    }
    void on_heartbeat(const protocol::broker_heartbeat& beat) override {
        events.push_back("heartbeat " + std::to_string(beat.interval_ms));
    }
    void on_disconnect() override { events.push_back("disconnect"); }
    void on_bad_message(std::string_view reason) override {
        events.push_back("bad " + std::string(reason));
    }
};

std::vector<std::string> read(const std::vector<std::string>& frames) {
    recorder sink;
    auto message = build(frames);
    protocol::batch_reader batch;
    deferq::detail::read_broker_message(message, batch, sink);
    return sink.events;
}

const std::string id = "DFQC01";

} // namespace

TEST_CASE("the client reads a REPLY with its worker, attempt and payload", "[client][protocol]") {
    auto events = read({"", id, cmd(command::reply), frame(protocol::u64_frame(7)), "w1",
                        frame(protocol::u32_frame(2)), frame(deferq::codec::encode_value(89.0))});
    REQUIRE(events.size() == 2);
    CHECK(events[0] == "heard");
    CHECK(events[1] == "reply 7 w1 2 89.000000");
}

TEST_CASE("the client reads an ERROR as the Failure the call ends with", "[client][protocol]") {
    auto events = read({"", id, cmd(command::error), frame(protocol::u64_frame(3)),
                        frame(protocol::u8_frame(1)), "ValueError", "bad input", "w2",
                        frame(protocol::u32_frame(1))});
    REQUIRE(events.size() == 2);
    CHECK_THAT(events[1], Catch::StartsWith("error 3 remote_error"));
    CHECK_THAT(events[1], Catch::Contains("bad input"));
}

TEST_CASE("the client drops malformed messages from the broker", "[client][protocol]") {
    // "Every message is checked before use" (docs/protocol.md §4, Validation), on the client too.
    auto bad = [](const std::vector<std::string>& frames) {
        auto events = read(frames);
        return !events.empty() && events.back().rfind("bad ", 0) == 0 &&
               std::none_of(events.begin(), events.end(), [](const std::string& e) {
                   return e.rfind("reply", 0) == 0 || e.rfind("error", 0) == 0 ||
                          e == "disconnect" || e.rfind("heartbeat", 0) == 0;
               });
    };
    CHECK(bad({}));
    CHECK(bad({"", "DFQW01", cmd(command::heartbeat)}));
    CHECK(bad({"", id, cmd(command::reply), frame(protocol::u64_frame(7)).substr(1), "w",
               frame(protocol::u32_frame(1)), frame(deferq::codec::encode_value(1.0))}));
    CHECK(bad({"", id, cmd(command::error), frame(protocol::u64_frame(3)),
               frame(protocol::u8_frame(0xee)), "", "", "", frame(protocol::u32_frame(1))}));
    CHECK(bad({"", id, cmd(command::heartbeat), frame(protocol::u64_frame(1)),
               frame(protocol::u32_frame(0)), frame(protocol::u32_frame(3))}));
    CHECK(bad({"", id, cmd(command::disconnect), "unexpected"}));
    CHECK(bad({"", id, cmd(command::request)}));
}
