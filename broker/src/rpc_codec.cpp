#include "rpc_codec.hpp"

#include "deferq/utf8.hpp"

#include <pugixml.hpp>

#include <charconv>
#include <cmath>
#include <limits>
#include <sstream>

namespace deferq::rpc {
namespace {

using packer = msgpack::packer<msgpack::sbuffer>;

std::string_view string_of(const msgpack::object& value) {
    return {value.via.str.ptr, value.via.str.size};
}

void check_depth(int depth) {
    if (depth > max_depth)
        throw mapping_error("nested deeper than " + std::to_string(max_depth) + " levels");
}

// ---- XML-RPC → msgpack

bool xml_char_ok(std::uint32_t code) {
    return code == 0x9 || code == 0xA || code == 0xD || (code >= 0x20 && code <= 0xD7FF) ||
           (code >= 0xE000 && code <= 0xFFFD) || code >= 0x10000;
}

/// Characters XML 1.0 cannot carry (most control characters) make a string unmappable.
void check_xml_text(std::string_view text) {
    if (!is_utf8(text)) throw mapping_error("a string that is not valid UTF-8");
    for (std::size_t i = 0; i < text.size(); ++i) {
        auto byte = static_cast<unsigned char>(text[i]);
        if (byte < 0x80 && !xml_char_ok(byte))
            throw mapping_error("a string with a control character XML cannot carry");
        if (byte == 0xEF && i + 2 < text.size() &&
            static_cast<unsigned char>(text[i + 1]) == 0xBF &&
            static_cast<unsigned char>(text[i + 2]) >= 0xBE)
            throw mapping_error("a string with U+FFFE or U+FFFF, which XML cannot carry");
    }
}

std::string_view trimmed(std::string_view text) {
    auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) return {};
    auto last = text.find_last_not_of(" \t\r\n");
    return text.substr(first, last - first + 1);
}

/// An element's children that are elements (XML-RPC ignores whitespace between them).
std::vector<pugi::xml_node> elements(pugi::xml_node node) {
    std::vector<pugi::xml_node> out;
    for (auto child : node.children())
        if (child.type() == pugi::node_element) out.push_back(child);
    return out;
}

template <typename Int> Int parse_integer(std::string_view text, const char* type) {
    text = trimmed(text);
    if (!text.empty() && text.front() == '+') text.remove_prefix(1);
    Int value{};
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size() || text.empty())
        throw mapping_error(std::string("<") + type + "> '" + std::string(text) +
                            "' is not an integer in range");
    return value;
}

void pack_xml_value(packer& out, pugi::xml_node value, int depth) {
    check_depth(depth);
    auto children = elements(value);
    if (children.empty()) { // <value>text</value> is a string
        std::string_view text = value.text().get();
        out.pack_str(static_cast<std::uint32_t>(text.size()));
        out.pack_str_body(text.data(), static_cast<std::uint32_t>(text.size()));
        return;
    }
    if (children.size() != 1) throw mapping_error("a <value> holds one typed element");
    auto typed = children.front();
    std::string_view type = typed.name();
    std::string_view text = typed.text().get();
    if (type == "int" || type == "i4") {
        out.pack(parse_integer<std::int32_t>(text, typed.name()));
    } else if (type == "i8") {
        out.pack(parse_integer<std::int64_t>(text, typed.name()));
    } else if (type == "boolean") {
        auto flag = trimmed(text);
        if (flag != "0" && flag != "1") throw mapping_error("<boolean> must be 0 or 1");
        out.pack(flag == "1");
    } else if (type == "double") {
        auto number = trimmed(text);
        double parsed = 0;
        auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), parsed);
        if (error != std::errc{} || end != number.data() + number.size() || number.empty() ||
            !std::isfinite(parsed))
            throw mapping_error("<double> '" + std::string(number) + "' is not a finite number");
        out.pack(parsed);
    } else if (type == "string" || type == "dateTime.iso8601") {
        out.pack_str(static_cast<std::uint32_t>(text.size()));
        out.pack_str_body(text.data(), static_cast<std::uint32_t>(text.size()));
    } else if (type == "base64") {
        auto bytes = base64_decode(text);
        if (!bytes) throw mapping_error("<base64> is not base64");
        out.pack_bin(static_cast<std::uint32_t>(bytes->size()));
        out.pack_bin_body(bytes->data(), static_cast<std::uint32_t>(bytes->size()));
    } else if (type == "nil") {
        out.pack_nil();
    } else if (type == "array") {
        auto data = typed.child("data");
        if (!data) throw mapping_error("<array> without <data>");
        auto values = elements(data);
        for (auto item : values)
            if (std::string_view(item.name()) != "value")
                throw mapping_error("<data> holds only <value> elements");
        out.pack_array(static_cast<std::uint32_t>(values.size()));
        for (auto item : values)
            pack_xml_value(out, item, depth + 1);
    } else if (type == "struct") {
        auto members = elements(typed);
        out.pack_map(static_cast<std::uint32_t>(members.size()));
        for (auto member : members) {
            auto name = member.child("name");
            auto item = member.child("value");
            if (std::string_view(member.name()) != "member" || !name || !item)
                throw mapping_error("a <struct> holds <member> elements with <name> and <value>");
            std::string_view key = name.text().get();
            out.pack_str(static_cast<std::uint32_t>(key.size()));
            out.pack_str_body(key.data(), static_cast<std::uint32_t>(key.size()));
            pack_xml_value(out, item, depth + 1);
        }
    } else {
        throw mapping_error("unknown XML-RPC type <" + std::string(type) + ">");
    }
}

// ---- msgpack → XML-RPC

std::string format_double(double value) {
    char text[64];
    auto [end, error] = std::to_chars(text, text + sizeof text, value);
    if (error != std::errc{}) throw mapping_error("a number that cannot be written");
    return std::string(text, end);
}

void append_value(pugi::xml_node parent, const msgpack::object& value, int depth) {
    check_depth(depth);
    auto node = parent.append_child("value");
    switch (value.type) {
    case msgpack::type::NIL:
        node.append_child("nil");
        return;
    case msgpack::type::BOOLEAN:
        node.append_child("boolean").text().set(value.via.boolean ? "1" : "0");
        return;
    case msgpack::type::POSITIVE_INTEGER:
        if (value.via.u64 > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
            throw mapping_error("an integer above 2^63-1 has no XML-RPC form");
        node.append_child(value.via.u64 <= std::numeric_limits<std::int32_t>::max() ? "int" : "i8")
            .text()
            .set(std::to_string(value.via.u64).c_str());
        return;
    case msgpack::type::NEGATIVE_INTEGER:
        node.append_child(value.via.i64 >= std::numeric_limits<std::int32_t>::min() ? "int" : "i8")
            .text()
            .set(std::to_string(value.via.i64).c_str());
        return;
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
        if (!std::isfinite(value.via.f64))
            throw mapping_error("NaN and infinity have no XML-RPC form");
        node.append_child("double").text().set(format_double(value.via.f64).c_str());
        return;
    case msgpack::type::STR: {
        auto text = string_of(value);
        check_xml_text(text);
        if (text.find('\0') != std::string_view::npos)
            throw mapping_error("a string with a NUL character");
        node.append_child("string")
            .append_child(pugi::node_pcdata)
            .set_value(std::string(text).c_str());
        return;
    }
    case msgpack::type::BIN: {
        std::string_view bytes(value.via.bin.ptr, value.via.bin.size);
        node.append_child("base64").text().set(base64_encode(bytes).c_str());
        return;
    }
    case msgpack::type::ARRAY: {
        auto data = node.append_child("array").append_child("data");
        for (std::uint32_t i = 0; i < value.via.array.size; ++i)
            append_value(data, value.via.array.ptr[i], depth + 1);
        return;
    }
    case msgpack::type::MAP: {
        auto members = node.append_child("struct");
        for (std::uint32_t i = 0; i < value.via.map.size; ++i) {
            const auto& entry = value.via.map.ptr[i];
            if (entry.key.type != msgpack::type::STR)
                throw mapping_error("a map whose keys are not strings has no XML-RPC form");
            auto key = string_of(entry.key);
            check_xml_text(key);
            auto member = members.append_child("member");
            member.append_child("name")
                .append_child(pugi::node_pcdata)
                .set_value(std::string(key).c_str());
            append_value(member, entry.val, depth + 1);
        }
        return;
    }
    case msgpack::type::EXT:
        throw mapping_error("msgpack extension types have no XML-RPC form");
    }
    throw mapping_error("unknown msgpack type");
}

std::string serialize(const pugi::xml_document& document) {
    std::ostringstream out;
    document.save(out, "", pugi::format_raw, pugi::encoding_utf8);
    return out.str();
}

pugi::xml_document response_document() {
    pugi::xml_document document;
    auto declaration = document.append_child(pugi::node_declaration);
    declaration.append_attribute("version") = "1.0";
    return document;
}

std::string pack_params(const std::vector<pugi::xml_node>& params) {
    msgpack::sbuffer buffer;
    packer out(buffer);
    out.pack_array(static_cast<std::uint32_t>(params.size()));
    for (auto param : params) {
        auto value = param.child("value");
        if (std::string_view(param.name()) != "param" || !value)
            throw mapping_error("<params> holds <param> elements, each with a <value>");
        pack_xml_value(out, value, 1);
    }
    return std::string(buffer.data(), buffer.size());
}

} // namespace

// ---- values
// ---------------------------------------------------------------------------------------

std::string base64_encode(std::string_view bytes) {
    static constexpr char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        std::uint32_t group = (static_cast<unsigned char>(bytes[i]) << 16) |
                              (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                              static_cast<unsigned char>(bytes[i + 2]);
        for (int shift = 18; shift >= 0; shift -= 6)
            out += alphabet[(group >> shift) & 63];
    }
    if (auto rest = bytes.size() - i; rest > 0) {
        std::uint32_t group = static_cast<unsigned char>(bytes[i]) << 16;
        if (rest == 2) group |= static_cast<unsigned char>(bytes[i + 1]) << 8;
        out += alphabet[(group >> 18) & 63];
        out += alphabet[(group >> 12) & 63];
        out += rest == 2 ? alphabet[(group >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    std::string digits;
    for (char c : text)
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n') digits += c;
    if (digits.size() % 4 != 0) return std::nullopt;
    auto value_of = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    std::string out;
    for (std::size_t i = 0; i < digits.size(); i += 4) {
        bool last = i + 4 == digits.size();
        int padding = 0;
        std::uint32_t group = 0;
        for (std::size_t k = 0; k < 4; ++k) {
            char c = digits[i + k];
            int value;
            if (c == '=' && last && k >= 2) {
                ++padding;
                value = 0;
            } else {
                if (padding > 0) return std::nullopt; // data after padding
                value = value_of(c);
                if (value < 0) return std::nullopt;
            }
            group = (group << 6) | static_cast<std::uint32_t>(value);
        }
        out += static_cast<char>(group >> 16);
        if (padding < 2) out += static_cast<char>((group >> 8) & 0xFF);
        if (padding < 1) out += static_cast<char>(group & 0xFF);
    }
    return out;
}

// ---- JSON-RPC 2.0
// ---------------------------------------------------------------------------------

nlohmann::json json_result(const nlohmann::json& id, nlohmann::json result) {
    return {{"jsonrpc", "2.0"}, {"result", std::move(result)}, {"id", id}};
}

nlohmann::json json_error(const nlohmann::json& id, int code, std::string_view message,
                          nlohmann::json data) {
    nlohmann::json error{{"code", code}, {"message", std::string(message)}};
    if (!data.is_null()) error["data"] = std::move(data);
    return {{"jsonrpc", "2.0"}, {"error", std::move(error)}, {"id", id}};
}

int json_code(error_code code) noexcept {
    switch (code) {
    case error_code::no_such_function:
        return method_not_found_code;
    case error_code::bad_arguments:
        return invalid_params_code;
    default:
        return -32000 - static_cast<int>(code);
    }
}

namespace {

json_call parse_json_call(const nlohmann::json& element) {
    json_call call;
    auto invalid = [&](std::string_view why) {
        call.error = json_error(call.id, invalid_request_code, why);
        return call;
    };
    if (!element.is_object()) return invalid("a request is a JSON object");
    if (auto id = element.find("id"); id != element.end()) {
        if (!id->is_null() && !id->is_string() && !id->is_number())
            return invalid("id must be a string, a number or null");
        call.id = *id;
    } else {
        call.notification = true;
    }
    auto version = element.find("jsonrpc");
    if (version == element.end() || *version != "2.0") return invalid("jsonrpc must be \"2.0\"");
    auto method = element.find("method");
    if (method == element.end() || !method->is_string() ||
        method->get_ref<const std::string&>().empty())
        return invalid("method must be a non-empty string");
    call.method = method->get<std::string>();
    nlohmann::json params = nlohmann::json::array();
    if (auto found = element.find("params"); found != element.end()) {
        if (found->is_object()) {
            call.error = json_error(call.id, invalid_params_code,
                                    "params by name are not supported: give them by position");
            return call;
        }
        if (!found->is_array()) return invalid("params must be an array");
        params = *found;
    }
    try {
        call.arguments = msgpack_json::to_msgpack(params);
    } catch (const mapping_error& e) {
        call.error = json_error(call.id, invalid_params_code, e.what());
    }
    return call;
}

} // namespace

json_request parse_json_request(std::string_view body) {
    json_request request;
    nlohmann::json parsed;
    try {
        parsed = msgpack_json::parse(body); // numbers keep their type, or are refused
    } catch (const nlohmann::json::exception& e) {
        request.error =
            json_error(nullptr, parse_error_code, std::string("parse error: ") + e.what());
        return request;
    } catch (const mapping_error& e) {
        request.error = json_error(nullptr, invalid_params_code, e.what());
        return request;
    }
    if (parsed.is_array()) {
        request.batch = true;
        if (parsed.empty()) {
            request.error = json_error(nullptr, invalid_request_code, "an empty batch");
            return request;
        }
        for (const auto& element : parsed)
            request.calls.push_back(parse_json_call(element));
        return request;
    }
    request.calls.push_back(parse_json_call(parsed));
    return request;
}

// ---- XML-RPC
// -------------------------------------------------------------------------------------

std::variant<xml_call, request_error> parse_xml_call(std::string_view body) {
    pugi::xml_document document;
    // No DOCTYPE or entity expansion beyond XML's own five: nothing external is ever read.
    auto parsed =
        document.load_buffer(body.data(), body.size(), pugi::parse_default & ~pugi::parse_doctype);
    if (!parsed)
        return request_error{parse_error_code, std::string("malformed XML: ") +
                                                   parsed.description() + " at offset " +
                                                   std::to_string(parsed.offset)};
    auto call = document.child("methodCall");
    if (!call) return request_error{invalid_request_code, "the root element must be <methodCall>"};
    auto method = std::string(trimmed(call.child("methodName").text().get()));
    if (method.empty())
        return request_error{invalid_request_code, "<methodName> is missing or empty"};
    std::vector<pugi::xml_node> params;
    if (auto list = call.child("params")) params = elements(list);
    try {
        return xml_call{method, pack_params(params)};
    } catch (const mapping_error& e) {
        return request_error{invalid_params_code, e.what()};
    }
}

std::string xml_response(const msgpack::object& result) {
    auto document = response_document();
    auto params = document.append_child("methodResponse").append_child("params");
    append_value(params.append_child("param"), result, 1);
    return serialize(document);
}

std::string xml_fault(int code, std::string_view message) {
    auto document = response_document();
    auto value =
        document.append_child("methodResponse").append_child("fault").append_child("value");
    auto members = value.append_child("struct");
    auto code_member = members.append_child("member");
    code_member.append_child("name").text().set("faultCode");
    code_member.append_child("value").append_child("int").text().set(code);
    auto text_member = members.append_child("member");
    text_member.append_child("name").text().set("faultString");
    std::string text(message);
    // A fault string must be XML text too: replace what XML cannot carry.
    for (auto& c : text)
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') c = '?';
    if (!is_utf8(text)) text = "(message not valid UTF-8)";
    text_member.append_child("value")
        .append_child("string")
        .append_child(pugi::node_pcdata)
        .set_value(text.c_str());
    return serialize(document);
}

} // namespace deferq::rpc
