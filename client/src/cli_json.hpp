#pragma once
/// JSON ↔ msgpack for the command-line tool: arguments typed on the command line or read as JSON,
/// results printed as JSON.

#include "deferq/client.hpp"

#include <nlohmann/json.hpp>

#include <string>

namespace deferq::cli {

using json = nlohmann::json;

/// A command-line word as a JSON value: a number as msgpack_json::parse_number() reads it (an
/// integer stays an integer: int64, or uint64 above int64; a float only when written as one),
/// true/false/null, else a string. Throws msgpack_json::mapping_error for a number that fits no
/// type (an integer beyond uint64, 1e999).
json parse_word(const std::string& word);

/// A command-line word given with --json, or a line of `deferq map --input`: JSON whose numbers
/// keep their type, by the same rules (msgpack_json::parse()). Throws json::parse_error or
/// msgpack_json::mapping_error.
json parse_json(std::string_view text);

/// A JSON array of arguments as the msgpack payload of a call (deferq::msgpack_json's rules).
/// Throws msgpack_json::mapping_error (nesting beyond its limit).
zmq::message_t to_arguments(const json& array);

/// JSON text that never throws on invalid UTF-8 (names and results come from the network).
std::string dump(const json& value, int indent = -1);

} // namespace deferq::cli
