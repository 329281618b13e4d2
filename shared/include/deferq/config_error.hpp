#pragma once
/// The error for settings a program or a library object cannot run with.

#include <stdexcept>

namespace deferq {

/// A setting that cannot work (a malformed endpoint, a CURVE key that is not a key, …). The message
/// names the value (never a secret) and says what is wrong. Thrown by the Client and Worker
/// constructors; programs catch it at start and exit non-zero naming the option.
class config_error : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

} // namespace deferq
