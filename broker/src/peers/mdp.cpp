#include "mdp.hpp"

#include <optional>
#include <string>

namespace deferq::mdp {
namespace {

using protocol::decode_error;
using protocol::view;

std::uint64_t read_u64(const zmq::message_t& frame) {
    const auto* in = static_cast<const unsigned char*>(frame.data());
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < 8; ++i)
        value = (value << 8) | in[i];
    return value;
}

void begin(std::vector<zmq::message_t>& out, std::string_view routing_id,
           std::string_view protocol_id) {
    out.clear();
    out.emplace_back(routing_id.data(), routing_id.size());
    out.emplace_back();
    out.emplace_back(protocol_id.data(), protocol_id.size());
}

} // namespace

std::string_view to_string(worker_command cmd) noexcept {
    switch (cmd) {
    case worker_command::ready:
        return "READY";
    case worker_command::request:
        return "REQUEST";
    case worker_command::reply:
        return "REPLY";
    case worker_command::heartbeat:
        return "HEARTBEAT";
    case worker_command::disconnect:
        return "DISCONNECT";
    }
    return "UNKNOWN";
}

bool speaks(std::span<const zmq::message_t> frames, std::string_view protocol_id) noexcept {
    return frames.size() >= 2 && frames[0].size() == 0 && view(frames[1]) == protocol_id;
}

protocol::decoded<client_request> decode_client_request(std::span<const zmq::message_t> frames,
                                                        const protocol::decode_limits& limits) {
    if (!speaks(frames, client_protocol)) return decode_error{"not an MDP/Client message"};
    if (frames.size() < 3) return decode_error{"missing service name"};
    auto service = view(frames[2]);
    if (service.empty()) return decode_error{"service name is empty"};
    if (service.size() > limits.max_function_name) return decode_error{"service name too long"};
    if (frames.size() < 4) return decode_error{"missing request body"};
    return client_request{service, 3, frames.size() - 3};
}

protocol::decoded<worker_message> decode_worker_message(std::span<const zmq::message_t> frames,
                                                        const protocol::decode_limits& limits) {
    if (!speaks(frames, worker_protocol)) return decode_error{"not an MDP/Worker message"};
    if (frames.size() < 3) return decode_error{"missing command"};
    if (frames[2].size() != 1) return decode_error{"command must be 1 byte"};
    auto byte = *static_cast<const std::uint8_t*>(frames[2].data());
    worker_message out{static_cast<worker_command>(byte), {}};
    auto expect_frames = [&](std::size_t count) -> std::optional<decode_error> {
        if (frames.size() == count) return std::nullopt;
        return decode_error{std::string(to_string(out.cmd)) + " must have " +
                            std::to_string(count) + " frames, got " +
                            std::to_string(frames.size())};
    };
    switch (out.cmd) {
    case worker_command::ready: {
        if (auto error = expect_frames(4)) return *error;
        out.service = view(frames[3]);
        if (out.service.empty()) return decode_error{"service name is empty"};
        if (out.service.size() > limits.max_function_name)
            return decode_error{"service name too long"};
        return out;
    }
    case worker_command::reply: {
        if (frames.size() < 5) return decode_error{"REPLY needs a client address and a delimiter"};
        if (frames[3].size() != 8)
            return decode_error{"client address must be the 8 bytes the broker sent, got " +
                                std::to_string(frames[3].size())};
        if (frames[4].size() != 0) return decode_error{"no empty frame after the client address"};
        out.job_id = read_u64(frames[3]);
        out.body_index = 5;
        out.body_frames = frames.size() - 5;
        return out;
    }
    case worker_command::heartbeat:
    case worker_command::disconnect: {
        if (auto error = expect_frames(3)) return *error;
        return out;
    }
    case worker_command::request:
        return decode_error{"REQUEST is not sent by workers"};
    }
    return decode_error{"unknown command " + std::to_string(byte)};
}

void begin_client_reply(std::vector<zmq::message_t>& out, std::string_view routing_id,
                        std::string_view service) {
    begin(out, routing_id, client_protocol);
    out.emplace_back(service.data(), service.size());
}

void append_error_body(std::vector<zmq::message_t>& out, error_code code, std::string_view message,
                       std::string_view type) {
    out.push_back(protocol::string_frame("error"));
    out.push_back(protocol::string_frame(deferq::to_string(code)));
    out.push_back(protocol::string_frame(message));
    out.push_back(protocol::string_frame(type));
}

void begin_worker_command(std::vector<zmq::message_t>& out, std::string_view routing_id,
                          worker_command cmd) {
    begin(out, routing_id, worker_protocol);
    out.push_back(protocol::u8_frame(static_cast<std::uint8_t>(cmd)));
}

void begin_worker_request(std::vector<zmq::message_t>& out, std::string_view routing_id,
                          std::uint64_t job_id) {
    begin_worker_command(out, routing_id, worker_command::request);
    out.push_back(protocol::u64_frame(job_id));
    out.emplace_back();
}

} // namespace deferq::mdp
