#pragma once
/// 7/MDP (MDP/0.1) on the broker's endpoints: telling Majordomo messages apart from deferq ones,
/// decoding them (validated, like deferq's own) and encoding the broker's answers. How Majordomo
/// maps onto deferq's calls and workers is written down in docs/interop.md; this file is its
/// framing. Private to the broker.

#include "deferq/error_code.hpp"
#include "deferq/protocol.hpp"

#include <zmq.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace deferq::mdp {

inline constexpr std::string_view client_protocol = "MDPC01";
inline constexpr std::string_view worker_protocol = "MDPW01";

/// MDP/Worker command byte (frame 2). Values are wire values (they differ from deferq's).
enum class worker_command : std::uint8_t {
    ready = 0x01,
    request = 0x02,
    reply = 0x03,
    heartbeat = 0x04,
    disconnect = 0x05,
};

std::string_view to_string(worker_command cmd) noexcept;

/// True when `frames` (a message without its routing id) starts with the empty delimiter and the
/// given protocol id: how the broker tells 7/MDP peers from deferq ones on a shared endpoint.
bool speaks(std::span<const zmq::message_t> frames, std::string_view protocol_id) noexcept;

/// An MDP/Client REQUEST: [empty] ["MDPC01"] [service] [body…].
struct client_request {
    std::string_view service;
    std::size_t body_index; ///< index of the first body frame in the message
    std::size_t body_frames;
};

/// Checks an MDP/Client REQUEST: a service name of 1 to `max_function_name` bytes and at least one
/// body frame.
[[nodiscard]] protocol::decoded<client_request>
decode_client_request(std::span<const zmq::message_t> frames,
                      const protocol::decode_limits& limits = {});

/// An MDP/Worker command from a worker.
struct worker_message {
    worker_command cmd;
    std::string_view service;   ///< READY: the service the worker offers
    std::uint64_t job_id = 0;   ///< REPLY: the client address frame, which is the broker's job id
    std::size_t body_index = 0; ///< REPLY: index of the first body frame (== size when none)
    std::size_t body_frames = 0;
};

/// Checks an MDP/Worker command sent by a worker: READY (one service name), REPLY (an 8-byte client
/// address, as the broker sent it in REQUEST, then the empty delimiter and zero or more body
/// frames), HEARTBEAT and DISCONNECT (no further frames). REQUEST and unknown commands are errors.
[[nodiscard]] protocol::decoded<worker_message>
decode_worker_message(std::span<const zmq::message_t> frames,
                      const protocol::decode_limits& limits = {});

// ---- encoding (each starts `out` afresh: [routing id] [empty] [protocol id] …)

/// An MDP/Client REPLY without its body: [routing id] [empty] ["MDPC01"] [service].
void begin_client_reply(std::vector<zmq::message_t>& out, std::string_view routing_id,
                        std::string_view service);

/// Appends the body of a failed call (docs/interop.md): ["error"] [code name] [message] [type].
void append_error_body(std::vector<zmq::message_t>& out, error_code code, std::string_view message,
                       std::string_view type);

/// A bodiless MDP/Worker command: [routing id] [empty] ["MDPW01"] [command].
void begin_worker_command(std::vector<zmq::message_t>& out, std::string_view routing_id,
                          worker_command cmd);

/// An MDP/Worker REQUEST without its body: the client address frame is the job id (8 bytes,
/// big-endian), followed by the empty delimiter.
void begin_worker_request(std::vector<zmq::message_t>& out, std::string_view routing_id,
                          std::uint64_t job_id);

} // namespace deferq::mdp
