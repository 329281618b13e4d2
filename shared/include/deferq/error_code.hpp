#pragma once
/// The typed error codes carried by ERROR messages and by `deferq::Failure` (docs/protocol.md §5).

#include <cstdint>
#include <optional>
#include <string_view>

namespace deferq {

/// Why a call failed. The numeric values are the wire values; never renumber them.
enum class error_code : std::uint8_t {
    remote_error = 1,
    timeout = 2,
    cancelled = 3,
    worker_lost = 4,
    no_such_function = 5,
    bad_arguments = 6,
    bad_result = 7,
    overloaded = 8,
    connection_lost = 9,
    unauthorized = 10,
    protocol_error = 11,
    /// Client-side only: a local callback or errback threw. Never sent on the wire.
    callback_error = 12,
    /// A request or a result larger than the broker's message size limit.
    too_large = 13,
};

inline constexpr std::uint8_t max_wire_error_code = 13;

/// The code's name as written in the docs ("remote_error"); "unknown" for values outside the enum.
std::string_view to_string(error_code code) noexcept;

/// Parses a wire byte; empty for a value that is not a wire error code.
std::optional<error_code> error_code_from_wire(std::uint8_t value) noexcept;

/// Parses a name as produced by to_string.
std::optional<error_code> error_code_from_name(std::string_view name) noexcept;

} // namespace deferq
