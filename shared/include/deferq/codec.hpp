#pragma once
/// msgpack helpers: arguments are a msgpack array, results a single msgpack value (docs/protocol.md
/// §1). Encoding hands the packed buffer to ZeroMQ without a copy.

#include "deferq/bytes.hpp"

#include <msgpack.hpp>
#include <zmq.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <typeinfo>
#include <unordered_map>
#include <vector>

namespace deferq::codec {

/// Thrown when bytes do not decode as the requested type. The message says what was expected.
class decode_failure : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Turns a packed sbuffer into a message: small encodings are copied into an exact-size message (no
/// heap block for ZeroMQ's inline small messages), large ones are handed over without a copy.
zmq::message_t to_message(msgpack::sbuffer&& buffer);

/// Initial size of encoding buffers: most arguments and results fit, so packing allocates once,
/// small (msgpack's default is 8 KiB, which each pending call would otherwise hold).
inline constexpr std::size_t initial_encode_buffer = 128;

/// True for the types whose bytes travel as one msgpack `bin` or `str` and that decode from one in
/// a single pass (convert()): std::string, and vectors of char, unsigned char and std::byte.
template <typename T> inline constexpr bool is_byte_sequence = false;
template <> inline constexpr bool is_byte_sequence<std::string> = true;
template <> inline constexpr bool is_byte_sequence<std::vector<char>> = true;
template <> inline constexpr bool is_byte_sequence<std::vector<unsigned char>> = true;
template <> inline constexpr bool is_byte_sequence<std::vector<std::byte>> = true;

/// Handler parameter types that view a `bin` or `str` argument's bytes where they came, in the
/// job's arguments frame (no copy): valid until the job answers. Never a call's result type.
template <typename T>
inline constexpr bool is_byte_view =
    std::is_same_v<T, std::string_view> || std::is_same_v<T, std::span<const std::byte>>;

/// Bytes of a value's encoding that are known before packing: the length of a byte sequence or of
/// a `bin`/`str`/`ext` object (plus its header), 0 for anything else. Sizes the encoding buffer so
/// that a big argument or result is copied once into a buffer of its size, not into one that grows.
template <typename T> std::size_t known_size(const T& value) {
    if constexpr (is_byte_sequence<T> || is_byte_view<T> || std::is_same_v<T, Bytes>)
        return value.size() + 5;
    else if constexpr (std::is_same_v<T, msgpack::object>)
        return value.type == msgpack::type::STR   ? value.via.str.size + 5
               : value.type == msgpack::type::BIN ? value.via.bin.size + 5
               : value.type == msgpack::type::EXT ? value.via.ext.size + 6
                                                  : 0;
    else
        return 0;
}

/// An encoding buffer for values of `known` bytes and a little more (their other fields).
inline msgpack::sbuffer encode_buffer(std::size_t known) {
    return msgpack::sbuffer(known == 0 ? initial_encode_buffer : known + initial_encode_buffer);
}

/// Packs the arguments as one msgpack array.
template <typename... Args> zmq::message_t encode_args(const Args&... args) {
    auto buffer = encode_buffer((std::size_t{0} + ... + known_size(args)));
    msgpack::packer<msgpack::sbuffer> packer(buffer);
    packer.pack_array(sizeof...(Args));
    (packer.pack(args), ...);
    return to_message(std::move(buffer));
}

/// Packs one value (a result).
template <typename T> zmq::message_t encode_value(const T& value) {
    auto buffer = encode_buffer(known_size(value));
    msgpack::pack(buffer, value);
    return to_message(std::move(buffer));
}

/// Packs nil (the result of a void function).
zmq::message_t encode_nil();

/// Unpacks one msgpack value that must fill the whole frame. Throws decode_failure. The handle owns
/// everything: it may outlive `data`. A scalar (nil, bool, integer, float) needs no memory beyond
/// the object: its handle has no zone (`zone()` is null), so nothing may be allocated in it.
msgpack::object_handle unpack(const void* data, std::size_t size);
inline msgpack::object_handle unpack(const zmq::message_t& frame) {
    return unpack(frame.data(), frame.size());
}

/// As unpack(), but the bytes of `bin`, `str` and `ext` objects are not copied: the objects point
/// into `data`. The caller keeps `data` alive and unchanged for as long as the handle, the objects
/// and anything converted to a view type (std::string_view) are used. For big payloads this saves
/// one pass over the bytes and one fresh buffer.
msgpack::object_handle unpack_in_place(const void* data, std::size_t size);
inline msgpack::object_handle unpack_in_place(const zmq::message_t& frame) {
    return unpack_in_place(frame.data(), frame.size());
}

/// As share_encoded(), for the bytes of a `bin` (`bin` true) or a `str` at `data` (a byte view a
/// handler returned): they are shared only when the frame has them as that type.
std::optional<zmq::message_t> share_encoded(bool bin, const void* data, std::size_t size,
                                            const zmq::message_t& frame);

/// Results of at least this many bytes may share the frame they came from (share_encoded).
inline constexpr std::size_t min_shared_result = 64 * 1024;

/// The encoding of `value` as a message that shares `frame`'s bytes instead of copying them, when
/// `value` is a `bin` or `str` unpacked in place from `frame` (unpack_in_place), its bytes preceded
/// there by a header that encodes it, and it is big: at least min_shared_result bytes and at least
/// half the frame (a small part does not keep a big frame alive). A handler that returns a large
/// argument, or most of one, as a msgpack::object then answers without a pass over the bytes.
/// Empty otherwise: the caller packs `value` as usual.
std::optional<zmq::message_t> share_encoded(const msgpack::object& value,
                                            const zmq::message_t& frame);

/// A readable name for a C++ type as users see it in signatures ("double", "vector<int64>").
template <typename T> struct type_name { static std::string get(); };

std::string demangle(const char* mangled);
std::string msgpack_kind(const msgpack::object& object);
/// msgpack_kind(), with the value for an integer ("integer 18446744073709551615"): what convert()
/// says it found, since an integer that does not convert is out of the range asked for.
std::string msgpack_found(const msgpack::object& object);

template <typename T> std::string type_name<T>::get() {
    return demangle(typeid(T).name());
}
#define DEFERQ_TYPE_NAME(type, text)                                                               \
    template <> struct type_name<type> {                                                           \
        static std::string get() { return text; }                                                  \
    }
DEFERQ_TYPE_NAME(bool, "bool");
DEFERQ_TYPE_NAME(char, "char");
DEFERQ_TYPE_NAME(signed char, "int8");
DEFERQ_TYPE_NAME(unsigned char, "uint8");
DEFERQ_TYPE_NAME(short, "int16");
DEFERQ_TYPE_NAME(unsigned short, "uint16");
DEFERQ_TYPE_NAME(int, "int32");
DEFERQ_TYPE_NAME(unsigned int, "uint32");
DEFERQ_TYPE_NAME(long, "int64");
DEFERQ_TYPE_NAME(unsigned long, "uint64");
DEFERQ_TYPE_NAME(long long, "int64");
DEFERQ_TYPE_NAME(unsigned long long, "uint64");
DEFERQ_TYPE_NAME(float, "float");
DEFERQ_TYPE_NAME(double, "double");
DEFERQ_TYPE_NAME(std::string, "string");
DEFERQ_TYPE_NAME(std::string_view, "string_view");
DEFERQ_TYPE_NAME(std::span<const std::byte>, "span<const byte>");
DEFERQ_TYPE_NAME(msgpack::object, "any");
DEFERQ_TYPE_NAME(Bytes, "bytes");
#undef DEFERQ_TYPE_NAME
template <typename T> struct type_name<std::vector<T>> {
    static std::string get() { return "vector<" + type_name<T>::get() + ">"; }
};
template <typename T> struct type_name<std::optional<T>> {
    static std::string get() { return "optional<" + type_name<T>::get() + ">"; }
};
template <typename K, typename V> struct type_name<std::map<K, V>> {
    static std::string get() {
        return "map<" + type_name<K>::get() + ", " + type_name<V>::get() + ">";
    }
};
template <typename K, typename V> struct type_name<std::unordered_map<K, V>> {
    static std::string get() {
        return "map<" + type_name<K>::get() + ", " + type_name<V>::get() + ">";
    }
};
template <typename A, typename B> struct type_name<std::pair<A, B>> {
    static std::string get() {
        return "pair<" + type_name<A>::get() + ", " + type_name<B>::get() + ">";
    }
};

/// The bytes of a `bin` or `str` object, where they lie; none for any other kind.
inline std::optional<std::string_view> bin_or_str(const msgpack::object& object) {
    if (object.type == msgpack::type::BIN)
        return std::string_view(object.via.bin.ptr, object.via.bin.size);
    if (object.type == msgpack::type::STR)
        return std::string_view(object.via.str.ptr, object.via.str.size);
    return std::nullopt;
}

/// Converts a msgpack object to T; throws decode_failure naming both the expected and the found
/// kind. A byte sequence (is_byte_sequence) takes a `bin` or a `str` in one copy, with nothing
/// zero-filled first.
template <typename T> T convert(const msgpack::object& object) {
    try {
        if constexpr (std::is_same_v<T, msgpack::object>)
            return object;
        else if constexpr (std::is_same_v<T, Bytes>) {
            if (auto bytes = bin_or_str(object)) return Bytes(*bytes); // a copy: no frame here
            throw decode_failure("not bytes"); // the catch below says what was expected and found
        } else if constexpr (is_byte_view<T>) {
            // Either kind, as the byte sequences take it (msgpack's span adaptor takes bin only).
            if (auto bytes = bin_or_str(object))
                return T(reinterpret_cast<const typename T::value_type*>(bytes->data()),
                         bytes->size());
            throw decode_failure("not bytes");
        } else if constexpr (is_byte_sequence<T>) {
            if (auto bytes = bin_or_str(object)) {
                const auto* first = reinterpret_cast<const typename T::value_type*>(bytes->data());
                return T(first, first + bytes->size());
            }
            return object.as<T>(); // throws type_error, with msgpack's own rules
        } else
            return object.as<T>();
    } catch (const std::exception&) {
        throw decode_failure("expected " + type_name<T>::get() + ", got " + msgpack_found(object));
    }
}

/// Decodes bytes that hold exactly one msgpack value as T. `bin` and `str` are read in place
/// (unpack_in_place): the bytes are copied once, into the T. T must own what it holds (not
/// msgpack::object, std::string_view).
template <typename T> T decode_value(const void* data, std::size_t size) {
    static_assert(!is_byte_view<T>, "a view would outlive the bytes it views: decode a std::string "
                                    "or a std::vector<std::byte>");
    auto handle = unpack_in_place(data, size);
    return convert<T>(handle.get());
}

/// Decodes a whole frame as T.
template <typename T> T decode_value(const zmq::message_t& frame) {
    return decode_value<T>(frame.data(), frame.size());
}

} // namespace deferq::codec

namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
    namespace adaptor {
    /// Bytes inside another value (a vector of them, a tuple) are copied out of a `bin` or `str`;
    /// a result that is one Bytes keeps its frame instead (deferq::detail::result_decoder).
    template <> struct convert<deferq::Bytes> {
        const msgpack::object& operator()(const msgpack::object& in, deferq::Bytes& out) const {
            out = deferq::codec::convert<deferq::Bytes>(in);
            return in;
        }
    };
    /// Bytes pack as one `bin` (an argument or a result).
    template <> struct pack<deferq::Bytes> {
        template <typename Stream>
        packer<Stream>& operator()(packer<Stream>& out, const deferq::Bytes& bytes) const {
            out.pack_bin(static_cast<std::uint32_t>(bytes.size()));
            out.pack_bin_body(reinterpret_cast<const char*>(bytes.data()),
                              static_cast<std::uint32_t>(bytes.size()));
            return out;
        }
    };
    } // namespace adaptor
} // MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS)
} // namespace msgpack
