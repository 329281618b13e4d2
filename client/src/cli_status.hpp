#pragma once
/// `deferq status`: the broker's mmi.status (docs/protocol.md §7) as tables or JSON, once or
/// refreshed (--watch).

#include "deferq/client.hpp"

#include <chrono>

namespace deferq::cli {

struct status_options {
    bool as_json = false;
    /// Refresh every this many seconds until SIGINT/SIGTERM; 0: print once.
    double watch_seconds = 0;
    std::chrono::milliseconds timeout{0};
};

/// Returns the exit code: 0, or 1 when the broker did not answer (once; --watch keeps trying).
int run_status(Client& client, const status_options& options);

} // namespace deferq::cli
