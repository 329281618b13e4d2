#pragma once
/// The deferq broker: a client-facing and a worker-facing ROUTER socket, one queue per function,
/// credit-based dispatch, heartbeats, requeue on worker loss, deadlines and limits
/// (docs/protocol.md).

#include "deferq/broker_counters.hpp"
#include "deferq/broker_status.hpp"
#include "deferq/curve.hpp"
#include "deferq/protocol.hpp"

#include <zmq.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <stop_token>
#include <string>

namespace deferq {

/// A standby pair (Binary Star, docs/protocol.md §8): where this broker listens for its partner,
/// where it reaches the partner's `peer_bind`, and whether it is the backup (else the primary).
struct standby_options {
    std::string peer_bind;
    std::string peer;
    bool backup = false;
};

struct broker_options {
    std::string client_endpoint = "tcp://*:5555";
    std::string worker_endpoint = "tcp://*:5556";
    std::chrono::milliseconds heartbeat_interval = protocol::default_heartbeat_interval;
    std::uint32_t liveness = protocol::default_liveness;
    /// Dispatches of one job whose worker is lost before it fails with worker_lost.
    std::uint32_t max_attempts = protocol::default_max_attempts;
    std::size_t max_queue_length = 100'000;
    std::size_t max_pending_per_client = 100'000;
    /// Byte budgets (docs/operations.md, Sharing): the argument bytes one tenant may have queued,
    /// and all tenants together. Past one, a call fails at once with overloaded, naming it.
    std::uint64_t tenant_budget = 128ull << 20;
    std::uint64_t broker_budget = 512ull << 20;
    std::int64_t max_message_size = protocol::default_max_message_size;
    protocol::decode_limits limits{};
    /// Fail a call at once with no_such_function when no worker offers the function (once the
    /// broker has been up for unknown_function_grace: workers re-register after a restart).
    bool strict = false;
    /// A call to a function that no worker offers, nor offered within function_memory, waits this
    /// long for a worker (measured from its arrival, or from the broker's start), then fails with
    /// no_such_function (docs/protocol.md §5). A function its workers offered lately is waited for
    /// until the call's own timeout: its workers may be restarting.
    std::chrono::milliseconds unknown_function_grace{5'000};
    std::chrono::milliseconds function_memory{600'000};
    /// Deadline of a call from a 7/MDP client, which cannot send one (docs/interop.md); 0: none.
    std::chrono::milliseconds mdp_timeout{600'000};
    /// A peer that sends more than this many bad messages (malformed, or about a job it does not
    /// hold) within one heartbeat interval is disconnected and ignored for `offender_ban`
    /// (docs/protocol.md §4, Validation). 0: never disconnect.
    std::uint32_t max_malformed = 10;
    std::chrono::milliseconds offender_ban{10'000};
    /// Peers tracked at once for the per-peer log limit and the disconnect rule (bounded memory:
    /// beyond it, bad messages are still dropped and counted, logged at most once per interval).
    std::size_t max_tracked_peers = 4096;
    /// CURVE security (docs/security.md): the broker's key pair. When set, both endpoints require
    /// CURVE and admit only the public keys in the matching allow-list.
    std::optional<curve::key_pair> curve_keys{};
    std::set<std::string> client_keys{}; ///< allowed on the client endpoint
    std::set<std::string> worker_keys{}; ///< allowed on the worker endpoint
    /// How often the loop publishes a status snapshot for other threads (Broker::snapshot(), the
    /// HTTP endpoints); 0: never.
    std::chrono::milliseconds snapshot_interval{0};
    /// Set: this broker is one of a standby pair; it serves only while active (docs/protocol.md
    /// §8, docs/operations.md "A standby broker"). Unset: it serves alone, always.
    std::optional<standby_options> standby{};
};

class broker_impl;

/// The broker. Construct, bind(), then run() on one thread until the stop token is requested.
/// Non-copyable; the context must outlive it.
class Broker {
public:
    Broker(zmq::context_t& context, broker_options options);
    ~Broker();
    Broker(const Broker&) = delete;
    Broker& operator=(const Broker&) = delete;

    /// Binds both endpoints (throws zmq::error_t on failure). Call before run(), on any thread.
    void bind();

    /// The endpoints actually bound, with wildcard ports resolved ("tcp://127.0.0.1:41234").
    std::string client_endpoint() const;
    std::string worker_endpoint() const;
    /// An inproc endpoint on the client socket, for clients in this process that share the
    /// broker's context (the HTTP gateway): "inproc://deferq-clients-<instance>". After bind().
    std::string in_process_client_endpoint() const;

    /// Runs the broker loop on the calling thread until `stop` is requested, then tells every
    /// client and worker (DISCONNECT) and returns. Throws only on broken sockets.
    void run(std::stop_token stop);

    /// One turn of the loop run() repeats: waits up to `timeout` for a message, handles those ready
    /// (a bounded batch per endpoint), then deadlines and, when due, heartbeats and expiry. For
    /// tests and fuzzing, which step the broker themselves; never with run() on another thread.
    void run_once(std::chrono::milliseconds timeout);

    /// Counters; safe to read from any thread.
    const broker_counters& counters() const;

    /// This broker's random instance id, announced in heartbeats.
    std::uint64_t instance_id() const;

    /// The status the loop published last (every `snapshot_interval`); null before the first or
    /// when snapshots are off. Safe from any thread; the loop never waits for readers.
    std::shared_ptr<const broker_status> snapshot() const;

    /// When the broker loop last went round (it does at least every 100 ms while it runs). Safe
    /// from any thread: a health check compares it with now.
    std::chrono::steady_clock::time_point last_loop_activity() const;

private:
    std::unique_ptr<broker_impl> _impl;
};

} // namespace deferq
