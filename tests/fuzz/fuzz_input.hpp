#pragma once
/// How the fuzz targets read their input, and how seeds are written in the same format.
///
/// An input is a sequence of messages. Each message is:
///   - one op byte (its meaning is up to the target: which peer sends, flags),
///   - one byte: the frame count (taken modulo 16),
///   - each frame: a length byte L, then L bytes; L = 255 means a 2-byte big-endian length follows.
/// A message cut short by the end of the input keeps the frames read so far (the last one may be
/// shorter than its length says). Parsing never fails: every byte string is some input.

#include "deferq/protocol.hpp"

#include <zmq.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace deferq::fuzz {

struct message {
    std::uint8_t op = 0;
    std::vector<std::string> frames;
};

class input_reader {
public:
    input_reader(const std::uint8_t* data, std::size_t size) : _data(data), _size(size) {}

    bool done() const { return _at >= _size; }

    message next() {
        message out;
        out.op = byte();
        auto count = byte() % 16;
        for (int i = 0; i < count && !done(); ++i) {
            std::size_t length = byte();
            if (length == 255) length = (std::size_t{byte()} << 8) | byte();
            length = std::min(length, _size - _at);
            out.frames.emplace_back(reinterpret_cast<const char*>(_data + _at), length);
            _at += length;
        }
        return out;
    }

private:
    std::uint8_t byte() { return _at < _size ? _data[_at++] : 0; }

    const std::uint8_t* _data;
    std::size_t _size;
    std::size_t _at = 0;
};

/// The messages of an input as a peer's DEALER receives them from the broker, up to 512, each
/// handed to `read(frames)`. Op byte: bit 0 prepends the header (the empty delimiter and
/// `protocol_id`); bit 1 replaces frame 3 (the first after the command) with a u64 (little
/// endian, as the protocol's integers) of 1 + (op >> 4) % 8: an id the target has pending.
template <typename Read>
void for_each_message(const std::uint8_t* data, std::size_t size, std::string_view protocol_id,
                      Read&& read) {
    input_reader in(data, size);
    std::vector<zmq::message_t> frames;
    for (int count = 0; !in.done() && count < 512; ++count) {
        auto message = in.next();
        std::vector<std::string> parts;
        if (message.op & 1u) {
            parts.push_back("");
            parts.push_back(std::string(protocol_id));
        }
        parts.insert(parts.end(), message.frames.begin(), message.frames.end());
        if ((message.op & 2u) && parts.size() > 3)
            parts[3] = std::string(protocol::view(protocol::u64_frame(1 + (message.op >> 4) % 8)));
        frames.clear();
        for (const auto& part : parts)
            frames.emplace_back(part.data(), part.size());
        read(frames);
    }
}

/// Appends one message in the input format (for seeds).
inline void write_message(std::string& out, std::uint8_t op,
                          const std::vector<std::string>& frames) {
    out += static_cast<char>(op);
    out += static_cast<char>(frames.size());
    for (const auto& frame : frames) {
        if (frame.size() < 255) {
            out += static_cast<char>(frame.size());
        } else {
            out += static_cast<char>(255);
            out += static_cast<char>((frame.size() >> 8) & 0xff);
            out += static_cast<char>(frame.size() & 0xff);
        }
        out += frame.substr(0, 65535);
    }
}

} // namespace deferq::fuzz
