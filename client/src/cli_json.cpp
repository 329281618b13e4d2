#include "cli_json.hpp"

#include "msgpack_json.hpp"

#include <charconv>
#include <cmath>
#include <sstream>

namespace deferq::cli {

json parse_word(const std::string& word) {
    std::int64_t integer;
    auto [end, error] = std::from_chars(word.data(), word.data() + word.size(), integer);
    if (error == std::errc() && end == word.data() + word.size()) return integer;
    double number;
    auto [end2, error2] = std::from_chars(word.data(), word.data() + word.size(), number);
    if (error2 == std::errc() && end2 == word.data() + word.size() && std::isfinite(number))
        return number;
    if (word == "true") return true;
    if (word == "false") return false;
    if (word == "null") return nullptr;
    return word;
}

zmq::message_t to_arguments(const json& array) {
    auto bytes = msgpack_json::to_msgpack(array);
    return zmq::message_t(bytes.data(), bytes.size());
}

std::string dump(const json& value, int indent) {
    return value.dump(indent, ' ', false, json::error_handler_t::replace);
}

} // namespace deferq::cli
