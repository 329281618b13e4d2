#include "log_text.hpp"

namespace deferq::broker_detail {
namespace {

constexpr char hex_digits[] = "0123456789abcdef";
constexpr std::size_t max_routing_id_bytes = 8;
constexpr std::size_t max_escaped_bytes = 200;

} // namespace

std::string printable(std::string_view routing_id) {
    std::string out;
    for (unsigned char c : routing_id.substr(0, max_routing_id_bytes)) {
        out += hex_digits[c >> 4];
        out += hex_digits[c & 15];
    }
    return out;
}

std::string escaped(std::string_view text) {
    std::string out;
    for (unsigned char c : text.substr(0, max_escaped_bytes)) {
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out += static_cast<char>(c);
        } else {
            out += "\\x";
            out += hex_digits[c >> 4];
            out += hex_digits[c & 15];
        }
    }
    if (text.size() > max_escaped_bytes) out += "...";
    return out;
}

std::string tenant_name(std::string_view key) {
    if (key.starts_with("key:")) return "key " + std::string(key.substr(4));
    if (key.starts_with("client:")) return "client " + printable(key.substr(7));
    return escaped(key);
}

std::string byte_count(std::uint64_t bytes) {
    if (bytes < 1024 * 10) return std::to_string(bytes) + " bytes";
    if (bytes < std::uint64_t{10} << 20) return std::to_string(bytes >> 10) + " KiB";
    return std::to_string(bytes >> 20) + " MiB";
}

} // namespace deferq::broker_detail
