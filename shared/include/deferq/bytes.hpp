#pragma once
/// deferq::Bytes: a `bin` (or `str`) result as read-only bytes that stay in the message they came
/// in. `client.call<deferq::Bytes>("echo", data)` hands back the reply's own frame: no copy out and
/// no fresh buffer to fault in, which for results of megabytes is most of the client's work. Bytes
/// pack as a `bin` and read from a `bin` or `str` (codec.hpp).

#include <zmq.hpp>

#include <cstddef>
#include <memory>
#include <span>
#include <string_view>

namespace deferq {

/// Read-only bytes, cheap to copy (copies share them). Safe to pass between threads.
class Bytes {
public:
    Bytes() = default;
    /// A copy of `bytes`, in a buffer of its own.
    explicit Bytes(std::span<const std::byte> bytes);
    explicit Bytes(std::string_view bytes);
    /// The `size` bytes at `data`, which lie inside `frame`: shared with it, not copied (`frame`
    /// itself is copied as ZeroMQ copies a message: one more reference to the same buffer).
    Bytes(const zmq::message_t& frame, const void* data, std::size_t size);

    const std::byte* data() const { return _data; }
    std::size_t size() const { return _size; }
    bool empty() const { return _size == 0; }
    std::span<const std::byte> span() const { return {_data, _size}; }
    std::string_view view() const { return {reinterpret_cast<const char*>(_data), _size}; }
    /// True when the bytes are those of the message they came in (a reply in a frame of its own),
    /// false when they were copied (a small reply that came in a BATCH, or bytes made here).
    bool shares_message() const { return _shares; }

    friend bool operator==(const Bytes& a, const Bytes& b) { return a.view() == b.view(); }

private:
    std::shared_ptr<const zmq::message_t> _message;
    const std::byte* _data = nullptr;
    std::size_t _size = 0;
    bool _shares = false;
};

} // namespace deferq
