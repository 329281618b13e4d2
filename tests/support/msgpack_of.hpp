#pragma once
/// msgpack bytes of a C++ value, for unit tests that feed encoded values to decoders.

#include <msgpack.hpp>

#include <string>

namespace deferq::test {

/// `value` packed by msgpack-c, as bytes.
template <typename T> std::string msgpack_of(const T& value) {
    msgpack::sbuffer buffer;
    msgpack::pack(buffer, value);
    return std::string(buffer.data(), buffer.size());
}

} // namespace deferq::test
