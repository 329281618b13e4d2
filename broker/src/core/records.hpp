#pragma once
/// What the broker's core remembers: jobs, the functions they belong to, workers and clients.
/// Plain records owned by the core's tables (job_table, worker_registry, client_registry) and
/// linked by pointer: a record does not move while it lives. Private to the broker.

#include "job_queue.hpp"

#include "deferq/broker_status.hpp"
#include "deferq/deadline_heap.hpp"
#include "deferq/histogram.hpp"
#include "deferq/protocol.hpp"

#include <zmq.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace deferq::broker_detail {

using clock_type = std::chrono::steady_clock;
using time_point = clock_type::time_point;

class peer_dialect;
struct worker_record;
/// The broker's two endpoints.
enum class side : std::uint8_t { client, worker };

struct client_record;

struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const noexcept {
        return std::hash<std::string_view>{}(text);
    }
};
/// A map by string that finds by string_view without making a string.
template <typename V>
using string_map = std::unordered_map<std::string, V, string_hash, std::equal_to<>>;

/// What one turn of the loop will send a peer: records for one BATCH, and the jobs among them
/// (taken back if the send fails). Written by the shell's outbox only; the core never reads it.
struct pending_output {
    protocol::batch_writer batch;
    std::vector<std::uint64_t> jobs;        ///< the jobs in `batch`
    std::vector<std::uint64_t> undelivered; ///< jobs a send failed to deliver: to take back
    bool dirty = false;                     ///< listed for sending at the end of the turn
};

/// Messages for a client that its connection had no room for (it reads more slowly than its
/// replies come), in order: sent as room comes (docs/protocol.md §5, Replies waiting). Written
/// by the shell's outbox; the core reads `bytes` only.
struct held_messages {
    std::deque<std::vector<zmq::message_t>> messages;
    std::uint64_t bytes = 0;
    bool listed = false; ///< listed for the core's review at the end of the turn
};

/// A caller the broker shares its workers between: a CURVE public key when CURVE is on (so that
/// more connections buy no more share), else one client connection (docs/protocol.md §5).
struct tenant_record {
    std::string key;       ///< "key:<z85 public key>" or "client:<routing id hex>"
    std::size_t users = 0; ///< clients and jobs that refer to it; forgotten at 0
    std::uint64_t queued_jobs = 0;
    std::uint64_t queued_bytes = 0; ///< payload bytes of its queued jobs
    std::uint64_t reply_bytes = 0;  ///< bytes its clients have not taken yet (held_messages)
    bool paused = false;            ///< its jobs wait: its clients have too much to read
};

struct function_record {
    std::string name;
    job_queue queue;
    std::size_t queued = 0; ///< live jobs in the queue
    std::size_t parked = 0; ///< resent calls waiting for the workers' reports (§3c)
    std::vector<worker_record*> workers;
    time_point last_offered{}; ///< when its last worker left; {}: never offered (or offered now)
    // Outcomes and latencies (mmi.status, /metrics): fixed-size, nothing allocated per job.
    std::uint64_t done = 0;
    failure_counts failed_by_code{};
    latency_histogram queue_wait;
    latency_histogram service_time;
};

enum class job_state : std::uint8_t {
    queued,    ///< in its function's queue
    running,   ///< held by a worker; the caller waits
    abandoned, ///< held by a worker; nobody waits (cancelled, timed out, caller gone)
    parked     ///< a resent call waiting, after the broker started, for the workers' reports (§3c)
};

struct job {
    std::uint64_t id = 0;
    client_record* client = nullptr; ///< null once the caller no longer waits
    std::uint64_t correlation_id = 0;
    function_record* function = nullptr;
    zmq::message_t payload;
    deadline_hook deadline; ///< armed while a caller waits with a timeout
    bool has_deadline = false;
    std::uint8_t priority = 0;
    std::uint8_t max_attempts = 0;
    job_state state = job_state::queued;
    bool waiting = false;       ///< held, its handler waits on a Deferred: it takes no slot (WAIT)
    bool unclaimed = false;     ///< adopted from a worker's report; its caller has not resent it
    std::uint16_t attempts = 0; ///< dispatches (at most max_attempts, a u8, plus declines)
    tenant_record* tenant = nullptr; ///< whose share it is served from
    queue_link link;                 ///< its place in its queue, while queued
    worker_record* worker = nullptr; ///< the worker that holds it (running or abandoned)
    time_point since{};              ///< queued: when it was queued; else when it was dispatched
};

struct worker_record {
    std::string routing_id;
    std::string name;
    std::string host; ///< the peer's address, when ZeroMQ knows it
    const peer_dialect* dialect = nullptr;
    std::uint32_t slots = 0;
    std::uint32_t prefetch = 0;
    std::vector<function_record*> functions;
    std::vector<std::uint64_t> held; ///< job ids dispatched and not answered
    time_point last_seen{};
    time_point last_sent{};
    time_point joined{};
    std::uint64_t last_dispatch = 0; ///< dispatch sequence, for least-recently-used choice
    std::uint64_t jobs_done = 0;
    std::uint64_t failures = 0; ///< jobs it answered with ERROR
    bool draining = false;
    bool unreachable = false; ///< a send failed: removed at the next tick
    pending_output output;
    std::uint32_t waiting = 0; ///< held jobs whose handlers wait (WAIT): they take no slot
    /// The worker as a caller: its jobs' calls to the cluster (CALL) are pending here, and their
    /// answers go to it on the worker endpoint. Made at its first CALL.
    std::unique_ptr<client_record> caller;

    /// Jobs that take a slot or a prefetch place.
    std::size_t busy() const { return held.size() - waiting; }
    bool has_credit() const {
        return !draining && !unreachable && busy() < std::size_t{slots} + prefetch;
    }
    std::int64_t free_slots() const {
        return std::int64_t{slots} - static_cast<std::int64_t>(busy());
    }
};

struct client_record {
    std::string routing_id;
    side endpoint = side::client; ///< side::worker: a worker calling from inside its jobs
    const peer_dialect* dialect = nullptr;
    tenant_record* tenant = nullptr;
    time_point last_seen{};
    time_point last_sent{};
    std::unordered_map<std::uint64_t, std::uint64_t> pending; ///< correlation id → job id
    pending_output output;
    held_messages held;
};

} // namespace deferq::broker_detail
