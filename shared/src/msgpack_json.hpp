#pragma once
/// msgpack ↔ JSON: the one set of rules for every place deferq shows a msgpack value as JSON or
/// reads JSON into msgpack — `deferq call` and `deferq map` (arguments and results), the JSON-RPC
/// gateway (params and results), `/status.json` and `deferq status --json`. The rules are written
/// in docs/interop.md ("JSON and msgpack"): a value that has no exact counterpart is refused with a
/// mapping_error that says what it is and where, never changed silently.
///
/// Library deferq::json (shared/CMakeLists.txt): internal, not installed, since it needs
/// nlohmann-json. Pure functions: no sockets, no threads, safe from any thread.

#include <msgpack.hpp>
#include <nlohmann/json.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace deferq::msgpack_json {

/// Containers nested deeper than this (an array in an array in …) are refused both ways.
inline constexpr int max_depth = 64;

/// A value with no counterpart in the other format: NaN or infinity, binary data, a msgpack
/// extension, a map key that is not a string or comes twice, a string that is not UTF-8, nesting
/// beyond max_depth; or JSON input that fits no msgpack type (an integer beyond int64 and uint64,
/// a number beyond a double's range). The message names the value and its place (`$`, `$[2]`,
/// `$.name`) when it has one.
class mapping_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// What to do with strings (and map keys) that are not valid UTF-8. Results are values: refused.
/// The broker's status holds names peers announced, shown as labels: each bad byte becomes U+FFFD.
enum class bad_utf8 { refuse, replace };

/// A msgpack value as JSON. Throws mapping_error.
[[nodiscard]] nlohmann::json to_json(const msgpack::object& value,
                                     bad_utf8 strings = bad_utf8::refuse);

/// Bytes that hold exactly one msgpack value, as JSON. Throws codec::decode_failure when they are
/// not msgpack (within codec::unpack's bounds), mapping_error when the value has no JSON form.
[[nodiscard]] nlohmann::json to_json(std::string_view msgpack_bytes,
                                     bad_utf8 strings = bad_utf8::refuse);

/// A JSON value as msgpack bytes: null, booleans, strings, arrays, objects (string keys) one to
/// one; an integer as a msgpack integer (int64, or uint64 above int64); a float as float64, even
/// when integral (2.0 stays a float). Throws mapping_error (too deep, binary).
[[nodiscard]] std::string to_msgpack(const nlohmann::json& value);

/// Parses JSON text keeping every number exact: an integer is an int64, or a uint64 above int64;
/// a number with a fraction or an exponent is a double. An integer that fits neither, or a number
/// beyond a double's range (1e999), is refused with mapping_error instead of becoming a rounded
/// float or infinity. Throws nlohmann::json::parse_error for text that is not JSON.
[[nodiscard]] nlohmann::json parse(std::string_view text);

/// A number written as text on a command line, by the same rules as parse(): `42`, `-7`,
/// `18446744073709551615` (uint64), `2.5`, `1e3` (double). Empty when the text is not a number
/// (`inf`, `nan`, `0x10`, `+5` and words are not); mapping_error when it is one that fits no type.
[[nodiscard]] std::optional<nlohmann::json> parse_number(std::string_view text);

} // namespace deferq::msgpack_json
