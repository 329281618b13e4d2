// deferq's own dialect: DFQC01 to clients, DFQW01 to workers (docs/protocol.md §3, §3a); and to
// a worker as the caller of the calls its jobs make (§3b), the answers in DFQW01.

#include "peer_dialect.hpp"

namespace deferq::broker_detail {
namespace {

using namespace protocol;

std::string_view protocol_of(side to) {
    return to == side::client ? client_protocol : worker_protocol;
}

class deferq_peer final : public peer_dialect {
public:
    /// `answers`: the protocol id of REPLY, ERROR and PROGRESS (to a client, or to a calling
    /// worker).
    deferq_peer(std::string_view answers, peer_traits traits)
        : _answers(answers), _traits(traits) {}

    std::string_view name() const noexcept override { return "deferq"; }
    const peer_traits& traits() const noexcept override { return _traits; }

    void job(frame_list& out, std::string_view routing_id,
             const job_message& message) const override {
        begin_message(out, routing_id, worker_protocol, command::request);
        out.push_back(u64_frame(message.job_id));
        out.push_back(string_frame(message.function));
        out.push_back(u32_frame(message.remaining_ms));
        out.push_back(u32_frame(message.attempt));
        zmq::message_t payload;
        payload.copy(message.payload); // shares the buffer: the broker keeps it for a requeue
        out.push_back(std::move(payload));
        out.push_back(string_frame(message.caller));
        out.push_back(u64_frame(message.correlation_id));
    }

    void cancel(frame_list& out, std::string_view routing_id, std::uint64_t job_id) const override {
        begin_message(out, routing_id, worker_protocol, command::cancel);
        out.push_back(u64_frame(job_id));
    }

    void reply(frame_list& out, std::string_view routing_id,
               const reply_message& message) const override {
        begin_message(out, routing_id, _answers, command::reply);
        out.push_back(u64_frame(message.correlation_id));
        out.push_back(string_frame(message.worker));
        out.push_back(u32_frame(message.attempt));
        out.push_back(message.frame
                          ? std::move(*message.frame)
                          : zmq::message_t(message.payload.data(), message.payload.size()));
    }

    void error(frame_list& out, std::string_view routing_id,
               const error_message& message) const override {
        begin_message(out, routing_id, _answers, command::error);
        out.push_back(u64_frame(message.correlation_id));
        out.push_back(u8_frame(static_cast<std::uint8_t>(message.code)));
        out.push_back(string_frame(message.type));
        out.push_back(string_frame(message.message));
        out.push_back(string_frame(message.worker));
        out.push_back(u32_frame(message.attempts));
    }

    void progress(frame_list& out, std::string_view routing_id, std::uint64_t correlation_id,
                  const progress_update& update) const override {
        begin_message(out, routing_id, _answers, command::progress);
        out.push_back(u64_frame(correlation_id));
        out.push_back(f64_frame(update.fraction));
        out.push_back(string_frame(update.note));
    }

    void heartbeat(frame_list& out, std::string_view routing_id, side to,
                   const heartbeat_message& message) const override {
        begin_message(out, routing_id, protocol_of(to), command::heartbeat);
        out.push_back(u64_frame(message.instance));
        out.push_back(u32_frame(message.interval_ms));
        out.push_back(u32_frame(message.liveness));
        out.push_back(u64_frame(message.max_message_size));
        out.push_back(u32_frame(message.features));
    }

    bool disconnect(frame_list& out, std::string_view routing_id, side to) const override {
        begin_message(out, routing_id, protocol_of(to), command::disconnect);
        return true;
    }

    void job_record(batch_writer& out, const job_message& message) const override {
        out.begin(command::request, 7);
        out.u64(message.job_id);
        out.bytes(message.function);
        out.u32(message.remaining_ms);
        out.u32(message.attempt);
        out.bytes(view(message.payload));
        out.bytes(message.caller);
        out.u64(message.correlation_id);
    }

    void cancel_record(batch_writer& out, std::uint64_t job_id) const override {
        out.begin(command::cancel, 1);
        out.u64(job_id);
    }

    void reply_record(batch_writer& out, const reply_message& message) const override {
        out.begin(command::reply, 4);
        out.u64(message.correlation_id);
        out.bytes(message.worker);
        out.u32(message.attempt);
        out.bytes(message.payload);
    }

    void error_record(batch_writer& out, const error_message& message) const override {
        out.begin(command::error, 6);
        out.u64(message.correlation_id);
        out.u8(static_cast<std::uint8_t>(message.code));
        out.bytes(message.type);
        out.bytes(message.message);
        out.bytes(message.worker);
        out.u32(message.attempts);
    }

private:
    std::string_view _answers;
    peer_traits _traits;
};

} // namespace

const peer_dialect& deferq_dialect() {
    static const deferq_peer dialect(client_protocol, {.batches = true,
                                                       .client_heartbeats = true,
                                                       .cancels = true,
                                                       .progress = true,
                                                       .prefetch = true});
    return dialect;
}

const peer_dialect& calling_worker_dialect() {
    // Not in any registry (the worker's record keeps it), so never expired as a client: it lives
    // as long as the worker. No PROGRESS of its calls (not in the protocol yet).
    static const deferq_peer dialect(worker_protocol, {.batches = true,
                                                       .client_heartbeats = true,
                                                       .cancels = true,
                                                       .progress = false,
                                                       .prefetch = true});
    return dialect;
}

} // namespace deferq::broker_detail
