#pragma once
/// The add(a, b) call every load makes, anchors and deferq alike, so that both carry the same
/// bytes: two doubles with a fraction (msgpack packs an integral double as an integer), packed by
/// deferq::codec as a 2-element array of float64 (19 bytes); the result is one float64 (9 bytes).
/// Exact in binary, so the result can be checked with ==.

#include "deferq/codec.hpp"

#include <cstdint>

namespace deferq::bench {

/// Argument a of call n made by client `client` (each client's calls differ).
inline double add_a(unsigned client, std::uint64_t n) {
    return static_cast<double>((std::uint64_t{client} << 32) + n) + 0.5;
}
inline constexpr double add_b = 0.25;

inline zmq::message_t add_arguments(unsigned client, std::uint64_t n) {
    return codec::encode_args(add_a(client, n), add_b);
}
inline double add_result(unsigned client, std::uint64_t n) {
    return add_a(client, n) + add_b;
}

} // namespace deferq::bench
