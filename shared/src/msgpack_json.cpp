#include "msgpack_json.hpp"

#include "deferq/codec.hpp"
#include "deferq/utf8.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdlib>

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

/// A double as msgpack float64 even when it is integral: msgpack-c's packer would write 2.0 as the
/// integer 2, and a number written with a fraction or an exponent stays a float (docs/interop.md).
void pack_float64(msgpack::sbuffer& buffer, double value) {
    auto bits = std::bit_cast<std::uint64_t>(value);
    char bytes[9];
    bytes[0] = static_cast<char>(0xcb);
    for (int i = 0; i < 8; ++i)
        bytes[1 + i] = static_cast<char>(bits >> (56 - 8 * i));
    buffer.write(bytes, sizeof bytes);
}

/// `out` writes straight into `buffer` (msgpack-c's packer keeps no buffer of its own), so the two
/// can take turns.
void pack_at(msgpack::sbuffer& buffer, packer& out, const nlohmann::json& value, int depth) {
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
        pack_float64(buffer, value.get<double>());
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
            pack_at(buffer, out, item, depth + 1);
        return;
    case nlohmann::json::value_t::object:
        out.pack_map(static_cast<std::uint32_t>(value.size()));
        for (const auto& [key, item] : value.items()) {
            out.pack_str(static_cast<std::uint32_t>(key.size()));
            out.pack_str_body(key.data(), static_cast<std::uint32_t>(key.size()));
            pack_at(buffer, out, item, depth + 1);
        }
        return;
    case nlohmann::json::value_t::binary:
        throw mapping_error("binary JSON values are not supported");
    }
}

// ---- numbers in JSON text

/// A number's text for a message: cut when long (a request body may hold a huge one).
std::string shown(std::string_view number) {
    return number.size() <= 40 ? std::string(number) : std::string(number.substr(0, 40)) + "...";
}

bool is_integer_text(std::string_view text) {
    if (!text.empty() && text.front() == '-') text.remove_prefix(1);
    return !text.empty() &&
           std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

[[noreturn]] void integer_out_of_range(std::string_view text) {
    throw mapping_error("the integer " + shown(text) +
                        " is out of range: integers are -9223372036854775808 (int64) to "
                        "18446744073709551615 (uint64); write it with a fraction (" +
                        shown(text) + ".0) for a float");
}

[[noreturn]] void float_out_of_range(std::string_view text) {
    throw mapping_error("the number " + shown(text) + " is beyond the range of a double");
}

/// Builds the JSON value as nlohmann's own parser does, but refuses the numbers that parser would
/// round: an integer beyond uint64 (it makes a double of it) or a number beyond a double's range
/// (it makes infinity).
class exact_numbers final : public nlohmann::json_sax<nlohmann::json> {
public:
    explicit exact_numbers(nlohmann::json& result) : _dom(result, true) {}

    bool null() override { return _dom.null(); }
    bool boolean(bool value) override { return _dom.boolean(value); }
    bool number_integer(number_integer_t value) override { return _dom.number_integer(value); }
    bool number_unsigned(number_unsigned_t value) override { return _dom.number_unsigned(value); }
    bool number_float(number_float_t value, const string_t& text) override {
        if (is_integer_text(text)) integer_out_of_range(text);
        if (!std::isfinite(value)) float_out_of_range(text);
        return _dom.number_float(value, text);
    }
    bool string(string_t& value) override { return _dom.string(value); }
    bool binary(binary_t& value) override { return _dom.binary(value); }
    bool start_object(std::size_t size) override { return _dom.start_object(size); }
    bool key(string_t& value) override { return _dom.key(value); }
    bool end_object() override { return _dom.end_object(); }
    bool start_array(std::size_t size) override { return _dom.start_array(size); }
    bool end_array() override { return _dom.end_array(); }
    /// Throws the error as its own type (the DOM builder would throw a copy of the base class).
    bool parse_error(std::size_t, const std::string& last_token,
                     const nlohmann::detail::exception& error) override {
        if (auto* syntax = dynamic_cast<const nlohmann::json::parse_error*>(&error)) throw *syntax;
        if (error.id == 406) float_out_of_range(last_token); // nlohmann: "number overflow"
        if (auto* range = dynamic_cast<const nlohmann::json::out_of_range*>(&error)) throw *range;
        throw std::runtime_error(error.what());
    }

private:
    nlohmann::detail::json_sax_dom_parser<nlohmann::json> _dom;
};

} // namespace

nlohmann::json to_json(const msgpack::object& value, bad_utf8 strings) {
    return convert(value, place{}, 0, strings);
}

nlohmann::json to_json(std::string_view msgpack_bytes, bad_utf8 strings) {
    auto handle = codec::unpack(msgpack_bytes.data(), msgpack_bytes.size());
    return to_json(handle.get(), strings);
}

std::string to_msgpack(const nlohmann::json& value) {
    msgpack::sbuffer buffer(codec::initial_encode_buffer);
    packer out(buffer);
    pack_at(buffer, out, value, 0);
    return std::string(buffer.data(), buffer.size());
}

nlohmann::json parse(std::string_view text) {
    nlohmann::json result;
    exact_numbers builder(result);
    nlohmann::json::sax_parse(text.begin(), text.end(), &builder);
    return result;
}

std::optional<nlohmann::json> parse_number(std::string_view text) {
    const char* first = text.data();
    const char* last = text.data() + text.size();
    if (is_integer_text(text)) {
        std::int64_t signed_value = 0;
        if (auto [end, error] = std::from_chars(first, last, signed_value); error == std::errc{})
            return signed_value;
        std::uint64_t unsigned_value = 0;
        if (auto [end, error] = std::from_chars(first, last, unsigned_value); error == std::errc{})
            return unsigned_value;
        integer_out_of_range(text);
    }
    // Only digits, signs, points and exponents: "inf", "nan" and "0x10" stay words.
    if (text.find_first_not_of("0123456789+-.eE") != std::string_view::npos ||
        text.find_first_of("0123456789") == std::string_view::npos)
        return std::nullopt;
    double value = 0;
    auto [end, error] = std::from_chars(first, last, value);
    if (end != last) return std::nullopt; // not all of it is a number
    if (error == std::errc::result_out_of_range) {
        // Beyond the range, or so small that it rounds to 0 or a subnormal (kept, as JSON does).
        value = std::strtod(std::string(text).c_str(), nullptr);
        if (!std::isfinite(value)) float_out_of_range(text);
        return value;
    }
    if (error != std::errc{}) return std::nullopt;
    return value;
}

} // namespace deferq::msgpack_json
