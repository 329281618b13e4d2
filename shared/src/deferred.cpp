#include "deferq/deferred.hpp"

#include "deferq/log.hpp"

#include <spdlog/spdlog.h>

namespace deferq::detail {

void log_unhandled(const Failure& failure) noexcept {
    try {
        log().error("Unhandled error in Deferred: {}", failure.what());
    } catch (...) {
        // Logging must never throw out of a destructor.
    }
}

} // namespace deferq::detail
