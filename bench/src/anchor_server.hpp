#pragma once
/// The anchors' servers: the same add(a, b) as deferq's built-in, over plain ZeroMQ with no deferq
/// in the way. Each runs in a child process (`deferq-bench --serve raw|proxy|rep …`).
///
///   raw:   one ROUTER that does the add itself (client DEALER ↔ ROUTER: no broker, no hop)
///   proxy: a bare zmq::proxy(ROUTER frontend, DEALER backend); REP servers behind it do the add
///
/// A call is [u64 correlation id][msgpack array (a, b)], its answer [u64 correlation id][msgpack a
/// + b]: the arguments and result are packed exactly as deferq packs them (deferq::codec).

#include <zmq.hpp>

#include <chrono>
#include <string>

namespace deferq::bench {

/// Decodes the msgpack arguments (two doubles) and packs their sum, as deferq's `add` does.
/// Throws codec::decode_failure on anything else.
zmq::message_t add_reply(const zmq::message_t& arguments);

/// Binds a ROUTER on 127.0.0.1 (kernel-chosen port), writes `endpoint=…` to `ready_file` and
/// answers calls for `lifetime`. Returns the exit code.
int serve_raw(const std::string& ready_file, std::chrono::seconds lifetime);

/// Binds a ROUTER frontend and a DEALER backend on 127.0.0.1, writes `frontend=…` and `backend=…`
/// to `ready_file` and runs zmq::proxy_steerable between them for `lifetime`.
int serve_proxy(const std::string& ready_file, std::chrono::seconds lifetime);

/// Connects a REP socket to `endpoint` (a proxy's backend), writes `connected=1` to `ready_file`
/// once the connection is up, and answers calls for `lifetime`.
int serve_rep(const std::string& endpoint, const std::string& ready_file,
              std::chrono::seconds lifetime);

} // namespace deferq::bench
