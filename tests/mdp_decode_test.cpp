// 7/MDP framing in the broker (broker/src/mdp.hpp, docs/interop.md), without sockets.

#include "peers/mdp.hpp"

#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

namespace {

namespace mdp = deferq::mdp;
using deferq::protocol::decode_error;

std::vector<zmq::message_t> build(const std::vector<std::string>& message) {
    std::vector<zmq::message_t> frames;
    for (const auto& frame : message)
        frames.emplace_back(frame.data(), frame.size());
    return frames;
}

std::vector<std::string> strings(const std::vector<zmq::message_t>& frames) {
    std::vector<std::string> out;
    for (const auto& frame : frames)
        out.push_back(frame.to_string());
    return out;
}

template <typename T> bool rejected(const deferq::protocol::decoded<T>& result) {
    return std::holds_alternative<decode_error>(result);
}

const std::string job_id_bytes("\x00\x00\x00\x00\x00\x00\x01\x02", 8);

} // namespace

TEST_CASE("speaks tells Majordomo messages from deferq ones by the protocol id frame", "[mdp]") {
    CHECK(mdp::speaks(build({"", "MDPC01", "echo", "body"}), mdp::client_protocol));
    CHECK(mdp::speaks(build({"", "MDPW01", "\x04"}), mdp::worker_protocol));
    CHECK_FALSE(mdp::speaks(build({"", "DFQC01", "\x01"}), mdp::client_protocol));
    CHECK_FALSE(mdp::speaks(build({"x", "MDPC01", "echo", "body"}), mdp::client_protocol));
    CHECK_FALSE(mdp::speaks(build({""}), mdp::client_protocol));
    CHECK_FALSE(mdp::speaks(build({"", "MDPC01"}), mdp::worker_protocol));
}

TEST_CASE("an MDP client request has a service and at least one body frame", "[mdp]") {
    auto frames = build({"", "MDPC01", "add", "a", "b"});
    auto request = mdp::decode_client_request(frames);
    REQUIRE_FALSE(rejected(request));
    const auto& decoded = std::get<mdp::client_request>(request);
    CHECK(decoded.service == "add");
    CHECK(decoded.body_index == 3);
    CHECK(decoded.body_frames == 2);

    CHECK(rejected(mdp::decode_client_request(build({"", "MDPC01"}))));
    CHECK(rejected(mdp::decode_client_request(build({"", "MDPC01", "add"}))));
    CHECK(rejected(mdp::decode_client_request(build({"", "MDPC01", "", "body"}))));
    CHECK(rejected(mdp::decode_client_request(build({"", "MDPC01", std::string(129, 'x'), "b"}))));
    CHECK_FALSE(
        rejected(mdp::decode_client_request(build({"", "MDPC01", std::string(128, 'x'), "b"}))));
}

TEST_CASE("MDP worker commands decode with their exact frames", "[mdp]") {
    auto ready = build({"", "MDPW01", "\x01", "echo"});
    auto decoded = mdp::decode_worker_message(ready);
    REQUIRE_FALSE(rejected(decoded));
    CHECK(std::get<mdp::worker_message>(decoded).cmd == mdp::worker_command::ready);
    CHECK(std::get<mdp::worker_message>(decoded).service == "echo");

    auto reply = build({"", "MDPW01", "\x03", job_id_bytes, "", "result", "more"});
    decoded = mdp::decode_worker_message(reply);
    REQUIRE_FALSE(rejected(decoded));
    const auto& message = std::get<mdp::worker_message>(decoded);
    CHECK(message.cmd == mdp::worker_command::reply);
    CHECK(message.job_id == 0x0102);
    CHECK(message.body_index == 5);
    CHECK(message.body_frames == 2);

    auto empty_body = build({"", "MDPW01", "\x03", job_id_bytes, ""});
    decoded = mdp::decode_worker_message(empty_body);
    REQUIRE_FALSE(rejected(decoded));
    CHECK(std::get<mdp::worker_message>(decoded).body_frames == 0);

    CHECK_FALSE(rejected(mdp::decode_worker_message(build({"", "MDPW01", "\x04"}))));
    CHECK_FALSE(rejected(mdp::decode_worker_message(build({"", "MDPW01", "\x05"}))));
}

TEST_CASE("MDP worker messages that break the RFC are rejected", "[mdp]") {
    const std::vector<std::vector<std::string>> bad{
        {"", "MDPW01"},
        {"", "MDPW01", ""},
        {"", "MDPW01", "\x01\x01"},
        {"", "MDPW01", std::string(1, '\0')},
        {"", "MDPW01", "\x06"},
        {"", "MDPW01", "\x01"},
        {"", "MDPW01", "\x01", ""},
        {"", "MDPW01", "\x01", "a", "b"},
        {"", "MDPW01", "\x01", std::string(129, 'x')},
        {"", "MDPW01", "\x02", job_id_bytes, "", "body"},
        {"", "MDPW01", "\x03", job_id_bytes},
        {"", "MDPW01", "\x03", "short", "", "body"},
        {"", "MDPW01", "\x03", job_id_bytes, "not empty", "body"},
        {"", "MDPW01", "\x04", "x"},
        {"", "MDPW01", "\x05", "x"},
        {"", "MDPC01", "\x04"},
    };
    for (const auto& message : bad) {
        INFO(message.size() << " frames, command " << (message.size() > 2 ? message[2] : ""));
        CHECK(rejected(mdp::decode_worker_message(build(message))));
    }
}

TEST_CASE("MDP decoders never throw on 2,000 random multipart messages", "[mdp][fuzz]") {
    std::mt19937 random(7);
    for (int round = 0; round < 2000; ++round) {
        std::vector<std::string> message{"", round % 2 ? "MDPW01" : "MDPC01"};
        auto count = random() % 7;
        for (unsigned i = 0; i < count; ++i) {
            std::string frame(random() % 10, '\0');
            for (auto& byte : frame)
                byte = static_cast<char>(random() % 8);
            message.push_back(frame);
        }
        auto frames = build(message);
        CHECK_NOTHROW(mdp::decode_worker_message(frames));
        CHECK_NOTHROW(mdp::decode_client_request(frames));
    }
}

TEST_CASE("the broker's MDP messages have the RFC's frames", "[mdp]") {
    std::vector<zmq::message_t> out;
    mdp::begin_worker_request(out, "peer", 0x0102);
    out.emplace_back(std::string_view("body"));
    CHECK(strings(out) ==
          std::vector<std::string>{"peer", "", "MDPW01", "\x02", job_id_bytes, "", "body"});

    mdp::begin_worker_command(out, "peer", mdp::worker_command::heartbeat);
    CHECK(strings(out) == std::vector<std::string>{"peer", "", "MDPW01", "\x04"});

    mdp::begin_client_reply(out, "peer", "add");
    mdp::append_error_body(out, deferq::error_code::timeout, "too slow", "");
    CHECK(strings(out) == std::vector<std::string>{"peer", "", "MDPC01", "add", "error", "timeout",
                                                   "too slow", ""});
}
