#pragma once
/// An outbox for unit tests of the broker's core: it records what the core asked to send, in
/// order, instead of sending anything. With injected time, a test drives the core through a whole
/// scenario with no socket, no process and no sleep.

#include "core/outbox.hpp"
#include "peers/peer_dialect.hpp"

#include <algorithm>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace deferq::test {

struct sent_message {
    enum class kind { job, cancel, reply, error, progress, heartbeat, disconnect };
    kind what;
    std::string peer;               ///< routing id
    std::uint64_t id = 0;           ///< job id (to workers) or correlation id (to clients)
    std::uint32_t remaining_ms = 0; ///< job: time left before its deadline; 0: none
    std::uint32_t attempt = 0;      ///< job, reply, error
    error_code code = error_code::remote_error; ///< error
    std::string text;                           ///< reply: the payload; error: the message
};

class recording_outbox final : public broker_detail::outbox {
public:
    using kind = sent_message::kind;

    /// `clock`: the test's time, recorded as each peer's last_sent as a real outbox would.
    explicit recording_outbox(const broker_detail::time_point* clock) : _clock(clock) {}

    void give_job(broker_detail::worker_record& worker, broker_detail::job& j,
                  std::uint32_t remaining_ms) override {
        sent_to(worker);
        add(kind::job, worker.routing_id, j.id, remaining_ms, j.attempts);
        _given[worker.routing_id].push_back(j.id);
    }
    void cancel(broker_detail::worker_record& worker, std::uint64_t job_id) override {
        add(kind::cancel, worker.routing_id, job_id);
    }
    void reply(broker_detail::client_record& client, std::uint64_t correlation_id, std::string_view,
               std::string_view, std::uint32_t attempt, std::string_view payload,
               zmq::message_t*) override {
        sent_to(client);
        add(kind::reply, client.routing_id, correlation_id, 0, attempt, error_code::remote_error,
            std::string(payload));
    }
    void error(broker_detail::client_record& client, std::uint64_t correlation_id, std::string_view,
               error_code code, std::string_view, std::string_view message, std::string_view,
               std::uint32_t attempts) override {
        sent_to(client);
        add(kind::error, client.routing_id, correlation_id, 0, attempts, code,
            std::string(message));
    }
    void progress(broker_detail::client_record& client, std::uint64_t correlation_id,
                  const protocol::progress_update&) override {
        add(kind::progress, client.routing_id, correlation_id);
    }
    void heartbeat(broker_detail::worker_record& worker) override {
        sent_to(worker);
        add(kind::heartbeat, worker.routing_id);
    }
    void heartbeat(broker_detail::client_record& client) override {
        sent_to(client);
        add(kind::heartbeat, client.routing_id);
    }
    void disconnect(broker_detail::worker_record& worker) override {
        add(kind::disconnect, worker.routing_id);
    }
    void disconnect(broker_detail::client_record& client) override {
        add(kind::disconnect, client.routing_id);
    }
    std::vector<std::uint64_t> discard(broker_detail::worker_record& worker) override {
        _given.erase(worker.routing_id);
        return {};
    }
    void discard(broker_detail::client_record& client) override { hold(client, 0); }
    std::uint64_t held_bytes() const override { return _held; }

    /// As the socket outbox does when a client's connection has no room: `bytes` are now held
    /// for `client` (0: it took them all).
    void hold(broker_detail::client_record& client, std::uint64_t bytes) {
        _held = _held - client.held.bytes + bytes;
        if (client.tenant)
            client.tenant->reply_bytes = client.tenant->reply_bytes - client.held.bytes + bytes;
        client.held.bytes = bytes;
    }

    /// Everything recorded, oldest first.
    const std::vector<sent_message>& sent() const { return _sent; }
    /// The recorded messages of one kind (to one peer, when given), oldest first.
    std::vector<sent_message> of(kind what, const std::string& peer = {}) const {
        std::vector<sent_message> found;
        for (const auto& message : _sent)
            if (message.what == what && (peer.empty() || message.peer == peer))
                found.push_back(message);
        return found;
    }
    /// Job ids given to a worker, in order.
    std::vector<std::uint64_t> jobs_given(const std::string& worker) const {
        auto it = _given.find(worker);
        return it == _given.end() ? std::vector<std::uint64_t>{} : it->second;
    }
    void clear() {
        _sent.clear();
        _given.clear();
    }

private:
    void add(kind what, const std::string& peer, std::uint64_t id = 0,
             std::uint32_t remaining_ms = 0, std::uint32_t attempt = 0,
             error_code code = error_code::remote_error, std::string text = {}) {
        _sent.push_back({what, peer, id, remaining_ms, attempt, code, std::move(text)});
    }
    template <typename Peer> void sent_to(Peer& peer) { peer.last_sent = *_clock; }

    const broker_detail::time_point* _clock;
    std::vector<sent_message> _sent;
    std::unordered_map<std::string, std::vector<std::uint64_t>> _given;
    std::uint64_t _held = 0;
};

} // namespace deferq::test
