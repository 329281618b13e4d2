#include "msgpack_json.hpp"

#include "deferq/codec.hpp"
#include "deferq/utf8.hpp"

#include <cmath>

namespace deferq::msgpack_json {
namespace {

using packer = msgpack::packer<msgpack::sbuffer>;

/// Where a value sits inside the whole, as a chain up to the root; written out only for an error.
struct place {
    const place* parent = nullptr;
    bool is_key = false;
    std::uint32_t index = 0;
    std::string_view key;
};

bool is_identifier(std::string_view key) {
    if (key.empty() || (key.front() >= '0' && key.front() <= '9')) return false;
    for (char c : key)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return false;
    return true;
}

/// `$`, `$[2]`, `$.name`, `$["odd key"]` (long keys cut to 32 bytes).
std::string text_of(const place& at) {
    if (!at.parent) return "$";
    auto out = text_of(*at.parent);
    if (!at.is_key) return out + "[" + std::to_string(at.index) + "]";
    if (is_identifier(at.key) && at.key.size() <= 32) return out + "." + std::string(at.key);
    auto key = at.key;
    bool cut = key.size() > 32;
    if (cut) {
        key = key.substr(0, 32);
        while (!key.empty() && (static_cast<unsigned char>(key.back()) & 0xC0) == 0x80)
            key.remove_suffix(1); // no half a character
        if (!key.empty() && static_cast<unsigned char>(key.back()) >= 0xC0) key.remove_suffix(1);
    }
    return out + "[" + nlohmann::json(std::string(key) + (cut ? "..." : "")).dump() + "]";
}

[[noreturn]] void refuse(std::string_view what, const place& at, std::string_view why) {
    throw mapping_error(std::string(what) + " at " + text_of(at) + ": " + std::string(why));
}

std::string float_text(double value) {
    if (std::isnan(value)) return "nan";
    return value > 0 ? "inf" : "-inf";
}

std::string text(std::string_view value, const place& at, bad_utf8 strings, const char* what) {
    if (is_utf8(value)) return std::string(value);
    if (strings == bad_utf8::replace) return to_valid_utf8(value);
    refuse(what, at, "JSON strings are UTF-8");
}

nlohmann::json convert(const msgpack::object& value, const place& at, int depth, bad_utf8 strings) {
    if (depth > max_depth)
        throw mapping_error("nested deeper than " + std::to_string(max_depth) + " levels");
    switch (value.type) {
    case msgpack::type::NIL:
        return nullptr;
    case msgpack::type::BOOLEAN:
        return value.via.boolean;
    case msgpack::type::POSITIVE_INTEGER:
        return value.via.u64;
    case msgpack::type::NEGATIVE_INTEGER:
        return value.via.i64;
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
        if (!std::isfinite(value.via.f64))
            refuse(float_text(value.via.f64), at, "JSON has no infinity or NaN");
        return value.via.f64;
    case msgpack::type::STR:
        return text({value.via.str.ptr, value.via.str.size}, at, strings,
                    "a string that is not valid UTF-8");
    case msgpack::type::BIN:
        refuse("binary data (" + std::to_string(value.via.bin.size) + " bytes)", at,
               "JSON has no binary type");
    case msgpack::type::EXT:
        refuse("a msgpack extension (type " + std::to_string(value.via.ext.type()) + ", " +
                   std::to_string(value.via.ext.size) + " bytes)",
               at, "JSON has no such type");
    case msgpack::type::ARRAY: {
        auto out = nlohmann::json::array();
        out.get_ref<nlohmann::json::array_t&>().reserve(value.via.array.size);
        for (std::uint32_t i = 0; i < value.via.array.size; ++i)
            out.push_back(
                convert(value.via.array.ptr[i], place{&at, false, i, {}}, depth + 1, strings));
        return out;
    }
    case msgpack::type::MAP: {
        auto out = nlohmann::json::object();
        for (std::uint32_t i = 0; i < value.via.map.size; ++i) {
            const auto& entry = value.via.map.ptr[i];
            if (entry.key.type != msgpack::type::STR)
                refuse("a map key that is not a string (" + codec::msgpack_kind(entry.key) + ")",
                       at, "JSON object keys are strings");
            auto key = text({entry.key.via.str.ptr, entry.key.via.str.size}, at, strings,
                            "a map key that is not valid UTF-8");
            auto [slot, added] = out.emplace(key, nullptr);
            if (!added)
                refuse("the key " + nlohmann::json(key).dump() + " twice", at,
                       "a JSON object has each key once");
            slot.value() = convert(entry.val, place{&at, true, 0, key}, depth + 1, strings);
        }
        return out;
    }
    }
    refuse("a value of unknown msgpack type", at, "it has no JSON form");
}

void pack_at(packer& out, const nlohmann::json& value, int depth) {
    if (depth > max_depth)
        throw mapping_error("nested deeper than " + std::to_string(max_depth) + " levels");
    switch (value.type()) {
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded:
        out.pack_nil();
        return;
    case nlohmann::json::value_t::boolean:
        out.pack(value.get<bool>());
        return;
    case nlohmann::json::value_t::number_integer:
        out.pack(value.get<std::int64_t>());
        return;
    case nlohmann::json::value_t::number_unsigned:
        out.pack(value.get<std::uint64_t>());
        return;
    case nlohmann::json::value_t::number_float:
        out.pack(value.get<double>());
        return;
    case nlohmann::json::value_t::string: {
        const auto& text = value.get_ref<const std::string&>();
        out.pack_str(static_cast<std::uint32_t>(text.size()));
        out.pack_str_body(text.data(), static_cast<std::uint32_t>(text.size()));
        return;
    }
    case nlohmann::json::value_t::array:
        out.pack_array(static_cast<std::uint32_t>(value.size()));
        for (const auto& item : value)
            pack_at(out, item, depth + 1);
        return;
    case nlohmann::json::value_t::object:
        out.pack_map(static_cast<std::uint32_t>(value.size()));
        for (const auto& [key, item] : value.items()) {
            out.pack_str(static_cast<std::uint32_t>(key.size()));
            out.pack_str_body(key.data(), static_cast<std::uint32_t>(key.size()));
            pack_at(out, item, depth + 1);
        }
        return;
    case nlohmann::json::value_t::binary:
        throw mapping_error("binary JSON values are not supported");
    }
}

} // namespace

nlohmann::json to_json(const msgpack::object& value, bad_utf8 strings) {
    return convert(value, place{}, 0, strings);
}

nlohmann::json to_json(std::string_view msgpack_bytes, bad_utf8 strings) {
    auto handle = codec::unpack(msgpack_bytes.data(), msgpack_bytes.size());
    return to_json(handle.get(), strings);
}

void pack(packer& out, const nlohmann::json& value) {
    pack_at(out, value, 0);
}

std::string to_msgpack(const nlohmann::json& value) {
    msgpack::sbuffer buffer(codec::initial_encode_buffer);
    packer out(buffer);
    pack(out, value);
    return std::string(buffer.data(), buffer.size());
}

} // namespace deferq::msgpack_json
