#include "deferq/failure.hpp"

#include "deferq/codec.hpp"

#include <cxxabi.h>

#include <typeinfo>

namespace deferq {

Failure::Failure(error_code code, std::string message, std::string type, std::string worker,
                 std::uint32_t attempts)
    : _code(code), _message(std::move(message)), _type(std::move(type)), _worker(std::move(worker)),
      _attempts(attempts) {
    _what = std::string(to_string(_code)) + ": ";
    if (!_type.empty()) _what += _type + ": ";
    _what += _message;
    if (!_worker.empty() || _attempts)
        _what += " (" + (_worker.empty() ? std::string() : "worker " + _worker) +
                 (!_worker.empty() && _attempts ? ", " : "") +
                 (_attempts ? "attempt " + std::to_string(_attempts) : std::string()) + ")";
}

Failure Failure::from_exception(std::exception_ptr exception) {
    try {
        std::rethrow_exception(exception);
    } catch (const Failure& failure) {
        return failure;
    } catch (const std::exception& e) {
        Failure failure(error_code::callback_error, e.what(), codec::demangle(typeid(e).name()));
        failure._original = exception;
        return failure;
    } catch (...) {
        auto* type = abi::__cxa_current_exception_type();
        Failure failure(error_code::callback_error, "non-standard exception",
                        type ? codec::demangle(type->name()) : "unknown");
        failure._original = exception;
        return failure;
    }
}

error_code Failure::trap(std::initializer_list<error_code> codes) const {
    for (auto code : codes)
        if (code == _code) return code;
    throw *this;
}

void Failure::raise() const {
    if (_original) std::rethrow_exception(_original);
    throw *this;
}

} // namespace deferq
