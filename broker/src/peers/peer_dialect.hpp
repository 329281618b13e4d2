#pragma once
/// How the broker speaks to one kind of peer. The broker serves two wire dialects on the same
/// endpoints: deferq's own (DFQC01/DFQW01, docs/protocol.md) and 7/MDP (MDPC01/MDPW01,
/// docs/interop.md). Each is one implementation of this interface — an ops table, as nng has one
/// per protocol — so that the core and the outbox never ask "is this an MDP peer?": they ask the
/// peer's dialect what it supports and have it encode each message.
///
/// Implementations are stateless and shared by every peer of their kind; any thread may read them.
/// Private to the broker.

#include "../core/records.hpp"

#include "deferq/error_code.hpp"
#include "deferq/protocol.hpp"

#include <zmq.hpp>

#include <cstdint>
#include <string_view>
#include <vector>

namespace deferq::broker_detail {

/// What a dialect can carry.
struct peer_traits {
    bool batches;           ///< messages may travel as records of one BATCH (docs/protocol.md §3a)
    bool client_heartbeats; ///< its clients heartbeat and are expired when silent; MDP clients
                            ///< send nothing between calls and are kept while they wait
    bool cancels;           ///< a CANCEL reaches a worker's running job
    bool progress;          ///< PROGRESS reaches a caller
    bool prefetch;          ///< its workers announce slots and prefetch (else: 1 slot, none)
};

/// A job for a worker.
struct job_message {
    std::uint64_t job_id;
    std::string_view function;
    std::uint32_t remaining_ms; ///< time left before the deadline; 0: none
    std::uint32_t attempt;
    zmq::message_t& payload;      ///< the job's own frame: shared, never copied, when sent alone
    std::string_view caller;      ///< the caller's routing id (the worker reports it: §3c)
    std::uint64_t correlation_id; ///< the caller's id of the call
};

/// A result for a caller.
struct reply_message {
    std::uint64_t correlation_id;
    std::string_view function; ///< the call's function (7/MDP names it in its REPLY)
    std::string_view worker;
    std::uint32_t attempt;
    std::string_view payload;
    zmq::message_t* frame; ///< the payload as a frame of its own when there is one (moved when sent
                           ///< alone, no copy); else null and `payload` is copied
};

/// A failure for a caller.
struct error_message {
    std::uint64_t correlation_id;
    std::string_view function;
    error_code code;
    std::string_view type;
    std::string_view message;
    std::string_view worker;
    std::uint32_t attempts;
};

/// What a heartbeat announces (deferq peers; 7/MDP heartbeats carry nothing).
struct heartbeat_message {
    std::uint64_t instance;
    std::uint32_t interval_ms;
    std::uint32_t liveness;
    std::uint64_t max_message_size; ///< so that peers refuse what the broker would drop
    std::uint32_t features = protocol::broker_features::adopts_jobs; ///< since 1.2 (§3c)
};

/// The frames of one message. Each encoder starts it afresh: [routing id] [empty] [protocol]
/// [command] and the body.
using frame_list = std::vector<zmq::message_t>;

class peer_dialect {
public:
    virtual ~peer_dialect() = default;

    /// For logs: "deferq" or "7/MDP".
    virtual std::string_view name() const noexcept = 0;
    virtual const peer_traits& traits() const noexcept = 0;

    // ---- one message on its own (every dialect)
    virtual void job(frame_list& out, std::string_view routing_id,
                     const job_message& message) const = 0;
    /// Only when traits().cancels.
    virtual void cancel(frame_list& out, std::string_view routing_id,
                        std::uint64_t job_id) const = 0;
    virtual void reply(frame_list& out, std::string_view routing_id,
                       const reply_message& message) const = 0;
    virtual void error(frame_list& out, std::string_view routing_id,
                       const error_message& message) const = 0;
    /// Only when traits().progress.
    virtual void progress(frame_list& out, std::string_view routing_id,
                          std::uint64_t correlation_id,
                          const protocol::progress_update& update) const = 0;
    /// Only to workers when !traits().client_heartbeats.
    virtual void heartbeat(frame_list& out, std::string_view routing_id, side to,
                           const heartbeat_message& message) const = 0;
    /// False when the dialect has no way to say it to that side (nothing is appended).
    [[nodiscard]] virtual bool disconnect(frame_list& out, std::string_view routing_id,
                                          side to) const = 0;

    // ---- records of a BATCH (only when traits().batches; the base class refuses)
    virtual void job_record(protocol::batch_writer& out, const job_message& message) const;
    virtual void cancel_record(protocol::batch_writer& out, std::uint64_t job_id) const;
    virtual void reply_record(protocol::batch_writer& out, const reply_message& message) const;
    virtual void error_record(protocol::batch_writer& out, const error_message& message) const;
};

/// deferq's own dialect (docs/protocol.md).
const peer_dialect& deferq_dialect();
/// deferq's dialect toward a worker as the caller of its jobs' calls (docs/protocol.md §3b).
const peer_dialect& calling_worker_dialect();
/// Majordomo, 7/MDP (docs/interop.md).
const peer_dialect& mdp_dialect();

} // namespace deferq::broker_detail
