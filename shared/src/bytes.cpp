#include "deferq/bytes.hpp"

namespace deferq {

Bytes::Bytes(std::span<const std::byte> bytes)
    : Bytes(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size())) {}

Bytes::Bytes(std::string_view bytes)
    : _message(std::make_shared<const zmq::message_t>(bytes.data(), bytes.size())),
      _data(_message->data<std::byte>()), _size(bytes.size()) {}

Bytes::Bytes(const zmq::message_t& frame, const void* data, std::size_t size) {
    auto shared = std::make_shared<zmq::message_t>();
    // ZeroMQ's copy of a message refers to the same buffer (it only counts one more reference);
    // libzmq's signature takes the source as mutable because it marks the buffer shared.
    if (zmq_msg_copy(shared->handle(), const_cast<zmq_msg_t*>(frame.handle())) != 0)
        throw zmq::error_t();
    auto offset = static_cast<const std::byte*>(data) - frame.data<std::byte>();
    _data = shared->data<std::byte>() + offset;
    _size = size;
    _shares = true;
    _message = std::move(shared);
}

} // namespace deferq
