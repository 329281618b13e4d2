#include "deferq/codec.hpp"

#include <cxxabi.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
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

/// The big-endian unsigned number in the `width` bytes at `bytes`.
std::uint64_t big_endian(const unsigned char* bytes, std::size_t width) {
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < width; ++i)
        value = value << 8 | bytes[i];
    return value;
}

/// A signed integer as msgpack-c unpacks it: negative ones NEGATIVE_INTEGER, others POSITIVE.
void set_integer(msgpack::object& out, std::int64_t value) {
    if (value < 0) {
        out.type = msgpack::type::NEGATIVE_INTEGER;
        out.via.i64 = value;
    } else {
        out.type = msgpack::type::POSITIVE_INTEGER;
        out.via.u64 = static_cast<std::uint64_t>(value);
    }
}

/// The object that `size` bytes at `data` unpack to when they are exactly one nil, bool, integer
/// or float, as msgpack-c's unpacker makes it; false for anything else.
bool unpack_scalar(const void* data, std::size_t size, msgpack::object& out) {
    if (size == 0) return false;
    const auto* bytes = static_cast<const unsigned char*>(data);
    auto code = bytes[0];
    auto fits = [&](std::size_t width) { return size == 1 + width; };
    if (code <= 0x7f || code >= 0xe0) { // fixints
        if (!fits(0)) return false;
        set_integer(out, static_cast<std::int8_t>(code));
        return true;
    }
    if (code >= 0xcc && code <= 0xd3) { // uint, then int, of 8, 16, 32 and 64 bits
        std::size_t width = std::size_t{1} << (code & 3);
        if (!fits(width)) return false;
        auto raw = big_endian(bytes + 1, width);
        if (code <= 0xcf) {
            out.type = msgpack::type::POSITIVE_INTEGER;
            out.via.u64 = raw;
        } else {
            auto shift = 64 - 8 * width; // sign-extends from the value's own width
            set_integer(out, static_cast<std::int64_t>(raw << shift) >> shift);
        }
        return true;
    }
    switch (code) {
    case 0xc0:
        if (!fits(0)) return false;
        out.type = msgpack::type::NIL;
        return true;
    case 0xc2:
    case 0xc3:
        if (!fits(0)) return false;
        out.type = msgpack::type::BOOLEAN;
        out.via.boolean = code == 0xc3;
        return true;
    case 0xca: { // float 32
        if (!fits(4)) return false;
        auto bits = static_cast<std::uint32_t>(big_endian(bytes + 1, 4));
        float value;
        std::memcpy(&value, &bits, sizeof value);
        out.type = msgpack::type::FLOAT32;
        out.via.f64 = value;
        return true;
    }
    case 0xcb: { // float 64
        if (!fits(8)) return false;
        auto bits = big_endian(bytes + 1, 8);
        double value;
        std::memcpy(&value, &bits, sizeof value);
        out.type = msgpack::type::FLOAT64;
        out.via.f64 = value;
        return true;
    }
    default:
        return false;
    }
}

/// The first block of an unpacking's zone: room for what `size` bytes can unpack to (an object of
/// 16 bytes per byte at most, and the bytes of strings when they are copied), within msgpack's
/// default of 8 KiB. Small arguments and results then take a small block from the allocator's
/// fast lists instead of 8 KiB, whose allocation sorts the allocator's free blocks every time.
std::size_t zone_chunk(std::size_t size) {
    return std::clamp<std::size_t>(size * (sizeof(msgpack::object) + 1), 256,
                                   MSGPACK_ZONE_CHUNK_SIZE);
}

msgpack::object_handle unpack_with(const void* data, std::size_t size,
                                   msgpack::unpack_reference_func reference) {
    // A scalar (the result of most small calls) needs no zone: none is allocated for it.
    msgpack::object scalar;
    if (unpack_scalar(data, size, scalar)) return msgpack::object_handle(scalar, nullptr);
    try {
        // No container or string may claim more elements than the bytes could hold, so a tiny
        // hostile payload cannot make us reserve gigabytes.
        auto most = std::max<std::size_t>(size, 1);
        msgpack::unpack_limit limit(most, most, most, most, most, 512);
        std::size_t offset = 0;
        auto zone = std::make_unique<msgpack::zone>(zone_chunk(size));
        auto object = msgpack::unpack(*zone, static_cast<const char*>(data), size, offset,
                                      reference, nullptr, limit);
        if (offset != size) throw decode_failure("trailing bytes after the msgpack value");
        return msgpack::object_handle(object, std::move(zone));
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

namespace {

/// The length of the header just before `bytes` (with `room` bytes of the frame before them) when
/// it encodes a `bin` (or `str`) of `size` bytes, else 0. Shared results are over 65,535 bytes, and
/// msgpack has one form for those: the code and a 32-bit big-endian length.
std::size_t header_before(const unsigned char* bytes, std::size_t room, bool bin,
                          std::size_t size) {
    static_assert(min_shared_result > 0xffff, "smaller sizes have shorter forms too");
    constexpr std::size_t header = 5;
    if (room < header || bytes[-5] != (bin ? 0xc6 : 0xdb)) return 0;
    std::size_t length = 0;
    for (int i = 4; i >= 1; --i)
        length = length << 8 | bytes[-i];
    return length == size ? header : 0;
}

} // namespace

std::optional<zmq::message_t> share_encoded(const msgpack::object& value,
                                            const zmq::message_t& frame) {
    if (value.type == msgpack::type::BIN)
        return share_encoded(true, value.via.bin.ptr, value.via.bin.size, frame);
    if (value.type == msgpack::type::STR)
        return share_encoded(false, value.via.str.ptr, value.via.str.size, frame);
    return std::nullopt;
}

std::optional<zmq::message_t> share_encoded(bool bin, const void* data, std::size_t size,
                                            const zmq::message_t& frame) {
    if (size < min_shared_result || size < frame.size() / 2) return std::nullopt;
    auto* start = static_cast<const unsigned char*>(frame.data());
    auto* bytes = static_cast<const unsigned char*>(data);
    // Compared as addresses: `bytes` need not point into the frame at all.
    auto first = reinterpret_cast<std::uintptr_t>(start);
    auto at = reinterpret_cast<std::uintptr_t>(bytes);
    if (at < first || at - first > frame.size() || frame.size() - (at - first) < size)
        return std::nullopt;
    auto header = header_before(bytes, at - first, bin, size);
    if (header == 0) return std::nullopt;
    // The new message holds a reference to the frame's bytes (zmq_msg_copy shares, not copies).
    auto* owner = new zmq::message_t;
    owner->copy(const_cast<zmq::message_t&>(frame));
    auto* shared = static_cast<unsigned char*>(owner->data()) + (at - first) - header;
    return zmq::message_t(
        shared, header + size, [](void*, void* hint) { delete static_cast<zmq::message_t*>(hint); },
        owner);
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
