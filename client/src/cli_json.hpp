#pragma once
/// JSON ↔ msgpack for the command-line tool: arguments typed on the command line or read as JSON,
/// results printed as JSON.

#include "deferq/client.hpp"

#include <nlohmann/json.hpp>

#include <string>

namespace deferq::cli {

using json = nlohmann::json;

/// A command-line word as a JSON value: integer, float, true/false/null, else a string.
json parse_word(const std::string& word);

/// A JSON array of arguments as the msgpack payload of a call (deferq::msgpack_json's rules).
/// Throws msgpack_json::mapping_error (nesting beyond its limit).
zmq::message_t to_arguments(const json& array);

/// JSON text that never throws on invalid UTF-8 (names and results come from the network).
std::string dump(const json& value, int indent = -1);

} // namespace deferq::cli
