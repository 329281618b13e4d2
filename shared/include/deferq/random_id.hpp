#pragma once
/// Random identifiers (routing ids, broker instance ids, correlation id seeds).

#include <cstdint>
#include <string>

namespace deferq {

/// A random 64-bit value from a per-thread generator seeded by std::random_device. Thread-safe.
std::uint64_t random_u64();

/// `size` random bytes, for a ZeroMQ routing id. The first byte is never 0 (ids starting with a
/// zero byte are reserved by ZeroMQ).
std::string random_routing_id(std::size_t size = 16);

} // namespace deferq
