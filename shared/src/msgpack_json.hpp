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
/// beyond max_depth. The message names the value and its place (`$`, `$[2]`, `$.name`).
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

/// Packs a JSON value as msgpack: null, booleans, integers (int64, or uint64 above int64), floats
/// (float64), strings, arrays, objects (string keys). Throws mapping_error (too deep, binary).
void pack(msgpack::packer<msgpack::sbuffer>& out, const nlohmann::json& value);

/// pack() into a fresh buffer: the msgpack bytes.
[[nodiscard]] std::string to_msgpack(const nlohmann::json& value);

} // namespace deferq::msgpack_json
