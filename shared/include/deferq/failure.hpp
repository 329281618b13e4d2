#pragma once
/// deferq::Failure: why a call (or a callback) failed — a typed code plus the remote exception's
/// type and message, the worker that ran it and how many attempts were made. Twisted's Failure,
/// typed.

#include "deferq/error_code.hpp"

#include <cstdint>
#include <exception>
#include <initializer_list>
#include <string>

namespace deferq {

class Failure : public std::exception {
public:
    Failure(error_code code, std::string message, std::string type = {}, std::string worker = {},
            std::uint32_t attempts = 0);

    /// Wraps any exception: a Failure stays itself; anything else becomes callback_error with the
    /// exception's type name and what(), and keeps the original for raise().
    static Failure from_exception(std::exception_ptr exception);

    error_code code() const noexcept { return _code; }
    /// The human-readable message (the remote exception's what() for remote_error).
    const std::string& message() const noexcept { return _message; }
    /// The exception's type name ("std::invalid_argument"); empty when none was involved.
    const std::string& type() const noexcept { return _type; }
    /// The worker that ran the job; empty when no worker was involved.
    const std::string& worker() const noexcept { return _worker; }
    std::uint32_t attempts() const noexcept { return _attempts; }
    /// The original local exception, for callback_error failures; null otherwise.
    std::exception_ptr exception() const noexcept { return _original; }

    /// "remote_error: std::invalid_argument: n must be >= 0 (worker w1, attempt 1)"
    const char* what() const noexcept override { return _what.c_str(); }

    /// True when this failure has the given code.
    bool check(error_code code) const noexcept { return _code == code; }
    /// Returns the first of `codes` this failure has; rethrows this failure when none matches
    /// (Twisted's trap).
    error_code trap(std::initializer_list<error_code> codes) const;
    template <typename... Codes> error_code trap(error_code first, Codes... rest) const {
        return trap({first, rest...});
    }
    /// Throws the original exception when there is one, else this Failure.
    [[noreturn]] void raise() const;

private:
    error_code _code;
    std::string _message, _type, _worker, _what;
    std::uint32_t _attempts;
    std::exception_ptr _original;
};

} // namespace deferq
