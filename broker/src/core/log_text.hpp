#pragma once
/// Peer-supplied text made safe for the broker's log lines. Private to the broker.

#include <string>
#include <string_view>

namespace deferq::broker_detail {

/// A routing id as hex (its first 8 bytes), for logs and status.
std::string printable(std::string_view routing_id);

/// Untrusted text for a log line: printable ASCII as is, anything else as \xNN (so that a peer
/// cannot forge log lines), at most 200 bytes.
std::string escaped(std::string_view text);

} // namespace deferq::broker_detail
