#pragma once
/// The HTTP gateway's formats (docs/interop.md "HTTP gateway"): JSON-RPC 2.0 and XML-RPC requests
/// turned into a function name and a msgpack argument array, and msgpack results turned back into
/// JSON-RPC responses and XML-RPC methodResponses. Pure functions over bytes: no sockets, no
/// threads. JSON is parsed by nlohmann-json and converted by deferq::msgpack_json (the rules the
/// CLI and the status share), XML by pugixml.

#include "msgpack_json.hpp"

#include "deferq/error_code.hpp"

#include <msgpack.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace deferq::rpc {

/// Nesting deeper than this (arrays in arrays…) is refused in both directions, as for JSON.
inline constexpr int max_depth = msgpack_json::max_depth;

/// A value with no counterpart in the other format (NaN, binary data in JSON, a map whose keys are
/// not strings, an XML-RPC <int> out of range…). The message says which and where. The same type
/// as the JSON conversion's (shared/src/msgpack_json.hpp), which the JSON-RPC side uses.
using mapping_error = msgpack_json::mapping_error;

/// A request the gateway refuses before any call: its JSON-RPC / XML-RPC fault code and message.
struct request_error {
    int code;
    std::string message;
};

/// Standard JSON-RPC 2.0 error codes (also used as XML-RPC fault codes for the same cases, as the
/// XML-RPC "specification for fault code interoperability" does).
inline constexpr int parse_error_code = -32700;
inline constexpr int invalid_request_code = -32600;
inline constexpr int method_not_found_code = -32601;
inline constexpr int invalid_params_code = -32602;
inline constexpr int internal_error_code = -32603;

// ---- values
// ---------------------------------------------------------------------------------------

/// Standard base64 (RFC 4648, with padding).
std::string base64_encode(std::string_view bytes);
/// Decodes standard base64, ignoring whitespace. Empty when the text is not base64.
std::optional<std::string> base64_decode(std::string_view text);

// ---- JSON-RPC 2.0
// ---------------------------------------------------------------------------------

/// One call of a JSON-RPC request (a single request or one element of a batch).
struct json_call {
    nlohmann::json id;         ///< echoed in the response (null when absent)
    bool notification = false; ///< no "id": run it, answer nothing
    std::string method;
    std::string arguments; ///< the msgpack array of "params" (by position)
    /// Set when this element is invalid: the response to send instead of calling.
    std::optional<nlohmann::json> error;
};

struct json_request {
    bool batch = false;
    std::vector<json_call> calls;
    /// Set when the body as a whole is refused (not JSON, an empty batch): the response to send.
    std::optional<nlohmann::json> error;
};

json_request parse_json_request(std::string_view body);

nlohmann::json json_result(const nlohmann::json& id, nlohmann::json result);
nlohmann::json json_error(const nlohmann::json& id, int code, std::string_view message,
                          nlohmann::json data = nullptr);

/// The JSON-RPC error code for a deferq error code: no_such_function → -32601 (method not found),
/// bad_arguments → -32602 (invalid params), every other code → -32000 - its wire value (server
/// errors: remote_error -32001, timeout -32002, …). The deferq code name is in the error's data.
int json_code(error_code code) noexcept;

// ---- XML-RPC
// -------------------------------------------------------------------------------------

struct xml_call {
    std::string method;
    std::string arguments; ///< the msgpack array of the <params>
};

/// Parses a methodCall. Returns the call, or the fault to answer (malformed XML, a value that does
/// not map).
std::variant<xml_call, request_error> parse_xml_call(std::string_view body);

/// A methodResponse with one param. Throws mapping_error (non-string struct keys, extension types,
/// NaN or infinity, characters XML cannot carry, too deep).
std::string xml_response(const msgpack::object& result);
/// A methodResponse with a fault (faultCode, faultString).
std::string xml_fault(int code, std::string_view message);

} // namespace deferq::rpc
