#include "prometheus_text.hpp"

#include <fmt/format.h>

#include "deferq/utf8.hpp"

#include <cmath>

namespace deferq {

std::string prometheus_text::number(double value) {
    if (std::isnan(value)) return "NaN";
    if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
    return fmt::format("{}", value);
}

std::string prometheus_text::hex(std::uint64_t value) {
    return fmt::format("{:016x}", value);
}

std::string prometheus_text::escape_label_value(std::string_view value) {
    std::string out;
    for (char c : to_valid_utf8(value)) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

void prometheus_text::family(std::string_view name, std::string_view type, std::string_view help) {
    _text += "# HELP ";
    _text += name;
    _text += ' ';
    for (char c : help) {
        if (c == '\\')
            _text += "\\\\";
        else if (c == '\n')
            _text += "\\n";
        else
            _text += c;
    }
    _text += "\n# TYPE ";
    _text += name;
    _text += ' ';
    _text += type;
    _text += '\n';
}

void prometheus_text::begin_sample(std::string_view name, std::initializer_list<label> labels) {
    _text += name;
    if (labels.size() != 0) {
        _text += '{';
        bool first = true;
        for (const auto& [key, value] : labels) {
            if (!first) _text += ',';
            first = false;
            _text += key;
            _text += "=\"";
            _text += escape_label_value(value);
            _text += '"';
        }
        _text += '}';
    }
    _text += ' ';
}

void prometheus_text::sample(std::string_view name, std::initializer_list<label> labels,
                             std::uint64_t value) {
    begin_sample(name, labels);
    _text += std::to_string(value);
    _text += '\n';
}

void prometheus_text::sample(std::string_view name, std::initializer_list<label> labels,
                             double value) {
    begin_sample(name, labels);
    _text += number(value);
    _text += '\n';
}

} // namespace deferq
