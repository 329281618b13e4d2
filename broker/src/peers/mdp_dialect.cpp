// Majordomo, 7/MDP (MDP/0.1), as the broker speaks it (docs/interop.md): no batches, no cancel,
// no progress; a client hears nothing between its REQUEST and the REPLY, which names the service.

#include "mdp.hpp"
#include "peer_dialect.hpp"

namespace deferq::broker_detail {
namespace {

class mdp_peer final : public peer_dialect {
public:
    std::string_view name() const noexcept override { return "7/MDP"; }
    const peer_traits& traits() const noexcept override { return _traits; }

    /// REQUEST: the client address frame is the job id, which the REPLY brings back. No deadline,
    /// no attempt: 7/MDP has no frames for them.
    void job(frame_list& out, std::string_view routing_id,
             const job_message& message) const override {
        mdp::begin_worker_request(out, routing_id, message.job_id);
        zmq::message_t payload;
        payload.copy(message.payload); // shares the buffer: the broker keeps it for a requeue
        out.push_back(std::move(payload));
    }

    void cancel(frame_list& out, std::string_view, std::uint64_t) const override {
        out.clear(); // 7/MDP has no cancel: the broker drops the late REPLY (traits().cancels)
    }

    void reply(frame_list& out, std::string_view routing_id,
               const reply_message& message) const override {
        mdp::begin_client_reply(out, routing_id, message.function);
        out.push_back(message.frame
                          ? std::move(*message.frame)
                          : zmq::message_t(message.payload.data(), message.payload.size()));
    }

    /// 7/MDP has no error frames: a failed call's REPLY carries four body frames, ["error"] [code
    /// name] [message] [exception type], where a result always has exactly one.
    void error(frame_list& out, std::string_view routing_id,
               const error_message& message) const override {
        mdp::begin_client_reply(out, routing_id, message.function);
        mdp::append_error_body(out, message.code, message.message, message.type);
    }

    void progress(frame_list& out, std::string_view, std::uint64_t,
                  const protocol::progress_update&) const override {
        out.clear(); // 7/MDP has no progress (traits().progress)
    }

    void heartbeat(frame_list& out, std::string_view routing_id, side,
                   const heartbeat_message&) const override {
        mdp::begin_worker_command(out, routing_id, mdp::worker_command::heartbeat);
    }

    bool disconnect(frame_list& out, std::string_view routing_id, side to) const override {
        if (to == side::client) return false; // MDP/Client has no DISCONNECT
        mdp::begin_worker_command(out, routing_id, mdp::worker_command::disconnect);
        return true;
    }

private:
    peer_traits _traits{.batches = false,
                        .client_heartbeats = false,
                        .cancels = false,
                        .progress = false,
                        .prefetch = false};
};

} // namespace

const peer_dialect& mdp_dialect() {
    static const mdp_peer dialect;
    return dialect;
}

} // namespace deferq::broker_detail
