#include "deferq/error_code.hpp"

#include <array>
#include <utility>

namespace deferq {
namespace {

constexpr std::array<std::pair<error_code, std::string_view>, 13> error_names{{
    {error_code::remote_error, "remote_error"},
    {error_code::timeout, "timeout"},
    {error_code::cancelled, "cancelled"},
    {error_code::worker_lost, "worker_lost"},
    {error_code::no_such_function, "no_such_function"},
    {error_code::bad_arguments, "bad_arguments"},
    {error_code::bad_result, "bad_result"},
    {error_code::overloaded, "overloaded"},
    {error_code::connection_lost, "connection_lost"},
    {error_code::unauthorized, "unauthorized"},
    {error_code::protocol_error, "protocol_error"},
    {error_code::callback_error, "callback_error"},
    {error_code::too_large, "too_large"},
}};

} // namespace

std::string_view to_string(error_code code) noexcept {
    for (const auto& [value, name] : error_names)
        if (value == code) return name;
    return "unknown";
}

std::optional<error_code> error_code_from_wire(std::uint8_t value) noexcept {
    if (value == 0 || value > max_wire_error_code ||
        value == static_cast<std::uint8_t>(error_code::callback_error))
        return std::nullopt; // callback_error is the client's own, never sent
    return static_cast<error_code>(value);
}

std::optional<error_code> error_code_from_name(std::string_view name) noexcept {
    for (const auto& [value, text] : error_names)
        if (text == name) return value;
    return std::nullopt;
}

} // namespace deferq
