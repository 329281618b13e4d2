#pragma once
/// The outbox of the broker's two ROUTER sockets. Each message is encoded in its peer's dialect.
/// What one turn of the loop sends a peer goes into that peer's batch and leaves as one BATCH at
/// the end of the turn (docs/protocol.md §3a); a message that travels alone (a big payload, a
/// heartbeat, a dialect without batches) first sends the peer's batch, so that messages to one
/// peer keep their order. A client whose connection has no room (it reads slowly: ZeroMQ's queue
/// for it is at its high-water mark) gets its messages held, in order, and sent as room comes;
/// the core limits what is held (docs/protocol.md §5, Replies waiting). Owned by the broker loop.

#include "core/outbox.hpp"
#include "core/records.hpp"
#include "peers/peer_dialect.hpp"

#include "deferq/broker_counters.hpp"

#include <zmq.hpp>

#include <deque>
#include <string_view>
#include <vector>

namespace deferq::broker_detail {

class socket_outbox final : public outbox {
public:
    socket_outbox(zmq::socket_t& clients, zmq::socket_t& workers, broker_counters& counters,
                  heartbeat_message announcement);

    /// The time of this turn (sends record it as the peer's last_sent).
    void set_now(time_point now) { _now = now; }

    void give_job(worker_record& worker, job& j, std::uint32_t remaining_ms) override;
    void cancel(worker_record& worker, std::uint64_t job_id) override;
    void reply(client_record& client, std::uint64_t correlation_id, std::string_view function,
               std::string_view worker, std::uint32_t attempt, std::string_view payload,
               zmq::message_t* frame) override;
    void error(client_record& client, std::uint64_t correlation_id, std::string_view function,
               error_code code, std::string_view type, std::string_view message,
               std::string_view worker, std::uint32_t attempts) override;
    void progress(client_record& client, std::uint64_t correlation_id,
                  const protocol::progress_update& update) override;
    void heartbeat(worker_record& worker) override;
    void heartbeat(client_record& client) override;
    void disconnect(worker_record& worker) override;
    void disconnect(client_record& client) override;
    [[nodiscard]] std::vector<std::uint64_t> discard(worker_record& worker) override;
    void discard(client_record& client) override;
    [[nodiscard]] std::uint64_t held_bytes() const override { return _held_bytes; }

    /// DISCONNECT to a peer the broker has no record of (an unregistered worker, a peer that is
    /// disconnected for bad messages, every peer at shutdown), in `dialect`.
    void disconnect(side to, std::string_view routing_id, const peer_dialect& dialect);

    /// Sends every batch the turn filled. Workers that turned out unreachable, with jobs the
    /// core must take back (their `output.undelivered`), are listed by take_unreachable().
    void flush();
    /// Workers with undelivered jobs since the last call (each at most once).
    [[nodiscard]] std::vector<worker_record*> take_unreachable();
    /// Sends what is held for slow clients, as far as their connections take it, and the
    /// DISCONNECTs that found no room.
    void send_held();
    /// Whether some client has messages held (the loop then comes back soon to send them).
    [[nodiscard]] bool holding() const { return !_holding.empty() || !_partings.empty(); }
    /// Clients whose held bytes changed since the last call (each at most once), for the core's
    /// review (broker_core::review_replies).
    [[nodiscard]] std::vector<client_record*> take_held_changes();

private:
    zmq::socket_t& socket(side to) { return to == side::client ? _clients : _workers; }
    /// The peer's batch, ready for one more record.
    template <typename Record> protocol::batch_writer& batch_of(Record& peer);
    void flush(worker_record& worker);
    void flush(client_record& client);
    /// Sends `_frames` (a whole message) to a worker; false when it cannot be delivered.
    bool send(worker_record& worker);
    void send(client_record& client);
    void unreachable(worker_record& worker);
    /// Keeps `_frames` (a whole message) for `client`, behind what it holds already.
    void hold(client_record& client);
    /// Drops what `client` holds (counted as replies_dropped).
    void drop_held(client_record& client);
    /// `bytes` more (or fewer) are held for `client`: its count, its tenant's and the broker's
    /// follow, and the client is listed for the core's review.
    void held_changed(client_record& client, std::int64_t bytes);

    /// A DISCONNECT that found no room: sent when it can, or dropped after parting_retry.
    struct parting {
        frame_list frames;
        time_point until;
    };

    zmq::socket_t& _clients;
    zmq::socket_t& _workers;
    broker_counters& _counters;
    heartbeat_message _announcement;
    time_point _now{};
    frame_list _frames; ///< the message being built
    std::vector<worker_record*> _dirty_workers;
    std::vector<client_record*> _dirty_clients;
    std::vector<worker_record*> _unreachable;
    std::vector<client_record*> _holding;      ///< clients with messages held
    std::vector<client_record*> _held_changes; ///< for take_held_changes()
    std::deque<parting> _partings;
    std::uint64_t _held_bytes = 0;
};

} // namespace deferq::broker_detail
