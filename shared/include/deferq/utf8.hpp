#pragma once
/// UTF-8 checks for text that comes from the network and goes into formats that demand UTF-8
/// (JSON, XML, Prometheus labels, JSON logs).

#include <cstddef>
#include <string>
#include <string_view>

namespace deferq {

/// The length (1 to 4) of the well-formed UTF-8 sequence that starts at `text[at]`, or 0 when the
/// bytes there are not one: overlong forms, surrogates and code points above U+10FFFF are not.
std::size_t utf8_sequence_length(std::string_view text, std::size_t at) noexcept;

/// True when all of `text` is well-formed UTF-8.
bool is_utf8(std::string_view text) noexcept;

/// `text` with every byte that does not start a well-formed sequence replaced by U+FFFD.
std::string to_valid_utf8(std::string_view text);

} // namespace deferq
