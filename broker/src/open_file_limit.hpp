#pragma once
/// The broker's open-file limit. Every client and worker connection costs the broker one file
/// descriptor; with the usual soft limit of 1,024 a broker refuses connections past about a
/// thousand peers. The program raises its soft limit to the hard limit at start and says how many
/// peers that allows (docs/operations.md, Sizing).

#include <cstdint>

namespace deferq {

struct open_file_limit {
    std::uint64_t before; ///< the soft limit the process started with
    std::uint64_t now; ///< the soft limit after raising it (the hard limit, or as far as it went)
    std::uint64_t hard;
};

/// Raises this process's soft RLIMIT_NOFILE to its hard limit and logs the result.
open_file_limit raise_open_file_limit();

/// File descriptors the broker keeps for itself (sockets, ZeroMQ's internals, logs, HTTP).
inline constexpr std::uint64_t reserved_file_descriptors = 64;

} // namespace deferq
