#pragma once
/// Where the broker's core writes what it wants sent. The core decides; the shell's socket_outbox
/// encodes each message in the peer's dialect and sends it at the end of the loop's turn. Unit
/// tests of the core implement it with a recorder. Private to the broker.

#include "records.hpp"

#include "deferq/error_code.hpp"
#include "deferq/protocol.hpp"

#include <cstdint>
#include <string_view>
#include <vector>

namespace deferq::broker_detail {

class outbox {
public:
    virtual ~outbox() = default;

    /// A job for `worker`, which now holds it. If the worker turns out to be unreachable, the
    /// shell gives the job back to the core (broker_core::take_back) at the end of the turn.
    virtual void give_job(worker_record& worker, job& j, std::uint32_t remaining_ms) = 0;
    /// Stop a job the worker holds (nothing for dialects without cancel).
    virtual void cancel(worker_record& worker, std::uint64_t job_id) = 0;

    /// A result for a caller. `frame`: the payload as a frame of its own when there is one (sent
    /// without a copy); null when `payload` views bytes inside another frame.
    virtual void reply(client_record& client, std::uint64_t correlation_id,
                       std::string_view function, std::string_view worker, std::uint32_t attempt,
                       std::string_view payload, zmq::message_t* frame) = 0;
    virtual void error(client_record& client, std::uint64_t correlation_id,
                       std::string_view function, error_code code, std::string_view type,
                       std::string_view message, std::string_view worker,
                       std::uint32_t attempts) = 0;
    virtual void progress(client_record& client, std::uint64_t correlation_id,
                          const protocol::progress_update& update) = 0;

    /// Heartbeats announce the broker's instance, interval and liveness.
    virtual void heartbeat(worker_record& worker) = 0;
    virtual void heartbeat(client_record& client) = 0;

    /// Tells a peer that the broker forgets it (after what it was sent this turn), in its
    /// dialect; nothing for dialects that cannot say it.
    virtual void disconnect(worker_record& worker) = 0;
    virtual void disconnect(client_record& client) = 0;

    /// A record goes away: what it was not sent yet is dropped with it. For a worker: the jobs it
    /// was given and never sent (or not delivered), which were no attempt.
    [[nodiscard]] virtual std::vector<std::uint64_t> discard(worker_record& worker) = 0;
    virtual void discard(client_record& client) = 0;

    /// Bytes held for clients that read slowly, all together (each client's: client.held.bytes;
    /// each tenant's: tenant_record::reply_bytes).
    [[nodiscard]] virtual std::uint64_t held_bytes() const = 0;
};

} // namespace deferq::broker_detail
