#pragma once
/// SIGTERM/SIGINT as a file descriptor: a self-pipe that becomes readable when either arrives, so
/// an event loop can poll it next to its sockets. Works whichever thread the kernel delivers to.

#include <chrono>
#include <optional>

namespace deferq {

/// Installs handlers for SIGTERM and SIGINT while alive and restores the previous ones afterwards.
/// Only one may be alive at a time (signal handlers are process-wide); a second throws.
class termination_signals {
public:
    termination_signals();
    ~termination_signals();
    termination_signals(const termination_signals&) = delete;
    termination_signals& operator=(const termination_signals&) = delete;

    /// Readable once a signal arrived (poll it with ZMQ_POLLIN).
    int fd() const;
    /// The signal number received, if any. Non-blocking.
    std::optional<int> received() const;
    /// Blocks until a signal arrives or `timeout` passes; returns the signal number.
    std::optional<int> wait(std::chrono::milliseconds timeout) const;
};

} // namespace deferq
