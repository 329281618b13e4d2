#pragma once
/// Writes the Prometheus text exposition format, version 0.0.4: metric families (# HELP, # TYPE)
/// and samples with escaped label values. Invalid UTF-8 in label values (names come from the
/// network) is replaced with U+FFFD, so the output always parses.

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace deferq {

class prometheus_text {
public:
    using label = std::pair<std::string_view, std::string_view>;

    /// Starts a metric family. `type`: counter, gauge, histogram, summary or untyped.
    void family(std::string_view name, std::string_view type, std::string_view help);
    void sample(std::string_view name, std::initializer_list<label> labels, std::uint64_t value);
    void sample(std::string_view name, std::initializer_list<label> labels, double value);
    void sample(std::string_view name, std::initializer_list<label> labels, std::int64_t value) {
        sample(name, labels, static_cast<double>(value));
    }
    void sample(std::string_view name, std::initializer_list<label> labels, std::uint32_t value) {
        sample(name, labels, std::uint64_t{value});
    }
    void sample(std::string_view name, std::initializer_list<label> labels, int value) {
        sample(name, labels, static_cast<double>(value));
    }

    /// The text written so far (moved out).
    std::string take() { return std::move(_text); }

    /// A float as the format writes it: shortest round-trip form, NaN, +Inf, -Inf.
    static std::string number(double value);
    static std::string hex(std::uint64_t value);
    /// A label value escaped for the format (backslash, double quote, newline; UTF-8 repaired).
    static std::string escape_label_value(std::string_view value);

private:
    void begin_sample(std::string_view name, std::initializer_list<label> labels);

    std::string _text;
};

} // namespace deferq
