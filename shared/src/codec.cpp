#include "deferq/codec.hpp"

#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

namespace deferq::codec {

zmq::message_t to_message(msgpack::sbuffer&& buffer) {
    auto size = buffer.size();
    if (size <= 4096)
        return zmq::message_t(buffer.data(), size); // one exact-size copy, buffer freed
    char* data = buffer.release();
    return zmq::message_t(
        data, size, [](void* p, void*) { std::free(p); }, nullptr);
}

zmq::message_t encode_nil() {
    static constexpr unsigned char nil = 0xc0;
    return zmq::message_t(&nil, 1);
}

namespace {

bool in_place(msgpack::type::object_type, std::size_t, void*) {
    return true;
}

msgpack::object_handle unpack_with(const void* data, std::size_t size,
                                   msgpack::unpack_reference_func reference) {
    try {
        // No container or string may claim more elements than the bytes could hold, so a tiny
        // hostile payload cannot make us reserve gigabytes.
        auto most = std::max<std::size_t>(size, 1);
        msgpack::unpack_limit limit(most, most, most, most, most, 512);
        std::size_t offset = 0;
        auto handle = msgpack::unpack(static_cast<const char*>(data), size, offset, reference,
                                      nullptr, limit);
        if (offset != size) throw decode_failure("trailing bytes after the msgpack value");
        return handle;
    } catch (const decode_failure&) {
        throw;
    } catch (const std::exception& e) {
        throw decode_failure(std::string("malformed msgpack: ") + e.what());
    }
}

} // namespace

msgpack::object_handle unpack(const void* data, std::size_t size) {
    return unpack_with(data, size, nullptr);
}

msgpack::object_handle unpack_in_place(const void* data, std::size_t size) {
    return unpack_with(data, size, in_place);
}

std::string demangle(const char* mangled) {
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> name(
        abi::__cxa_demangle(mangled, nullptr, nullptr, &status), std::free);
    return status == 0 && name ? std::string(name.get()) : std::string(mangled);
}

std::string msgpack_kind(const msgpack::object& object) {
    switch (object.type) {
    case msgpack::type::NIL:
        return "nil";
    case msgpack::type::BOOLEAN:
        return "bool";
    case msgpack::type::POSITIVE_INTEGER:
    case msgpack::type::NEGATIVE_INTEGER:
        return "integer";
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
        return "float";
    case msgpack::type::STR:
        return "string";
    case msgpack::type::BIN:
        return "binary";
    case msgpack::type::ARRAY:
        return "array of " + std::to_string(object.via.array.size);
    case msgpack::type::MAP:
        return "map";
    case msgpack::type::EXT:
        return "extension";
    }
    return "unknown";
}

std::string msgpack_found(const msgpack::object& object) {
    if (object.type == msgpack::type::POSITIVE_INTEGER)
        return "integer " + std::to_string(object.via.u64);
    if (object.type == msgpack::type::NEGATIVE_INTEGER)
        return "integer " + std::to_string(object.via.i64);
    return msgpack_kind(object);
}

} // namespace deferq::codec
