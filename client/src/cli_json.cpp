#include "cli_json.hpp"

#include "msgpack_json.hpp"

namespace deferq::cli {

json parse_word(const std::string& word) {
    if (auto number = msgpack_json::parse_number(word)) return *number;
    if (word == "true") return true;
    if (word == "false") return false;
    if (word == "null") return nullptr;
    return word;
}

json parse_json(std::string_view text) {
    return msgpack_json::parse(text);
}

zmq::message_t to_arguments(const json& array) {
    auto bytes = msgpack_json::to_msgpack(array);
    return zmq::message_t(bytes.data(), bytes.size());
}

std::string dump(const json& value, int indent) {
    return value.dump(indent, ' ', false, json::error_handler_t::replace);
}

} // namespace deferq::cli
