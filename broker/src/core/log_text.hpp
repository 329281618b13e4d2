#pragma once
/// Peer-supplied text made safe for the broker's log lines. Private to the broker.

#include <cstdint>
#include <string>
#include <string_view>

namespace deferq::broker_detail {

/// A routing id as hex (its first 8 bytes), for logs and status.
std::string printable(std::string_view routing_id);

/// Untrusted text for a log line: printable ASCII as is, anything else as \xNN (so that a peer
/// cannot forge log lines), at most 200 bytes.
std::string escaped(std::string_view text);

/// A tenant's key as people read it: "key <z85>" or "client <routing id hex>".
std::string tenant_name(std::string_view key);

/// An amount of memory as people read it: "900 bytes", "12 KiB", "128 MiB" (rounded down).
std::string byte_count(std::uint64_t bytes);

} // namespace deferq::broker_detail
