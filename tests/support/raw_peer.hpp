#pragma once
/// Raw DEALER peers for tests that speak the wire protocol byte by byte (docs/protocol.md): build
/// frames, send them, read what the broker answers. Header-only, no deferq library needed beyond
/// the protocol's frame encoders.

#include "deferq/protocol.hpp"

#include <zmq.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace deferq::test {

/// A message as byte strings, one per frame (no routing id: a DEALER sends and receives it so).
using frame_list = std::vector<std::string>;

/// A DEALER connected to `endpoint` with this routing id; no high-water marks (sends never block)
/// and no linger.
inline zmq::socket_t raw_dealer(zmq::context_t& context, const std::string& endpoint,
                                std::string_view routing_id) {
    zmq::socket_t socket(context, zmq::socket_type::dealer);
    socket.set(zmq::sockopt::routing_id, zmq::const_buffer(routing_id.data(), routing_id.size()));
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::sndhwm, 0);
    socket.set(zmq::sockopt::rcvhwm, 0);
    while (true) {
        try {
            socket.connect(endpoint);
            return socket;
        } catch (const zmq::error_t& e) {
            if (e.num() != EINTR) throw; // a signal (libFuzzer's timer) interrupted it: again
        }
    }
}

/// Sends one multipart message (never blocks: the HWM is off).
inline void send(zmq::socket_t& socket, const frame_list& frames) {
    std::vector<zmq::message_t> message;
    for (const auto& frame : frames)
        message.emplace_back(frame.data(), frame.size());
    [[maybe_unused]] bool sent = protocol::send_frames(socket, message, zmq::send_flags::none);
}

/// A received message in single forms: a BATCH (docs/protocol.md §3a) becomes the messages its
/// records stand for, in order (the broker batches what it sends); anything else stays as it is.
inline std::vector<frame_list> expanded(const std::vector<zmq::message_t>& frames) {
    frame_list message;
    for (const auto& frame : frames)
        message.emplace_back(protocol::view(frame));
    auto batch_command =
        std::string(1, static_cast<char>(static_cast<std::uint8_t>(protocol::command::batch)));
    protocol::batch_reader reader;
    if (message.size() != 4 || message[2] != batch_command || reader.parse(message[3]))
        return {message};
    std::vector<frame_list> messages;
    for (std::size_t i = 0; i < reader.size(); ++i) {
        auto record = reader.record(i);
        frame_list single{message[0], message[1],
                          std::string(1, static_cast<char>(static_cast<std::uint8_t>(record.cmd)))};
        for (auto frame : record.frames)
            single.emplace_back(frame);
        messages.push_back(std::move(single));
    }
    return messages;
}

/// Every message waiting on the socket, without blocking (BATCH records as single messages).
inline std::vector<frame_list> drain(zmq::socket_t& socket) {
    std::vector<frame_list> messages;
    std::vector<zmq::message_t> frames;
    while (protocol::receive_frames(socket, frames))
        for (auto& message : expanded(frames))
            messages.push_back(std::move(message));
    return messages;
}

/// Frame helpers: integers as the protocol encodes them.
inline std::string u8(std::uint8_t value) {
    return std::string(protocol::view(protocol::u8_frame(value)));
}
inline std::string u32(std::uint32_t value) {
    return std::string(protocol::view(protocol::u32_frame(value)));
}
inline std::string u64(std::uint64_t value) {
    return std::string(protocol::view(protocol::u64_frame(value)));
}
inline std::uint64_t read_u64(std::string_view bytes) {
    std::uint64_t value = 0;
    for (unsigned char c : bytes)
        value = (value << 8) | c;
    return value;
}
inline std::string command_frame(protocol::command cmd) {
    return u8(static_cast<std::uint8_t>(cmd));
}

/// The next message on the socket within `timeout` whose command frame is `cmd` (others are
/// dropped); nullopt when none came.
inline std::optional<frame_list> wait_for(zmq::socket_t& socket, protocol::command cmd,
                                          std::chrono::milliseconds timeout) {
    auto until = std::chrono::steady_clock::now() + timeout;
    std::vector<zmq::message_t> frames;
    while (true) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            until - std::chrono::steady_clock::now());
        if (left.count() <= 0) return std::nullopt;
        zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
        protocol::poll(&item, 1, left);
        while (protocol::receive_frames(socket, frames))
            for (auto& message : expanded(frames))
                if (message.size() >= 3 && message[2] == command_frame(cmd)) return message;
    }
}

} // namespace deferq::test
