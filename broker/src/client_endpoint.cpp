// What the broker's client endpoint accepts (docs/protocol.md §3; 7/MDP clients: docs/interop.md):
// each message is validated, then handed to the core.

#include "broker_shell.hpp"
#include "peers/mdp.hpp"

namespace deferq::broker_detail {

using namespace protocol;

void broker_shell::on_client_message(time_point now) {
    auto message = open_message(side::client, now);
    if (!message) return;
    auto [routing_id, body, dialect, cmd] = *message;
    if (dialect == &mdp_dialect()) return on_mdp_client_message(routing_id, body, now);

    switch (cmd) {
    case command::request: {
        auto request = decode_client_request(body);
        if (auto* error = std::get_if<decode_error>(&request))
            return malformed(side::client, routing_id, error->reason, now);
        auto* client = client_speaking(deferq_dialect(), routing_id, now);
        if (!client) return;
        const auto& decoded = std::get<client_request>(request);
        // +1: the routing id frame. The job keeps the frame itself: no copy.
        return on_request(*client, decoded, std::move(_frames[decoded.payload_index + 1]), now);
    }
    case command::batch: {
        if (body.size() != 4)
            return malformed(side::client, routing_id, "BATCH must be 1 frame", now);
        if (auto error = _batch_in.parse(view(body[3])))
            return malformed(side::client, routing_id, "BATCH: " + *error, now);
        auto* client = client_speaking(deferq_dialect(), routing_id, now);
        for (std::size_t i = 0; client && i < _batch_in.size(); ++i)
            on_client_record(*client, _batch_in.record(i), now);
        return;
    }
    case command::cancel: {
        auto cancel = decode_correlation_only(body);
        if (auto* error = std::get_if<decode_error>(&cancel))
            return malformed(side::client, routing_id, error->reason, now);
        if (auto* client = client_speaking(deferq_dialect(), routing_id, now))
            _core.on_cancel(*client, std::get<correlation_only>(cancel).correlation_id);
        return;
    }
    case command::heartbeat:
    case command::disconnect: {
        auto empty = decode_empty(body);
        if (auto* error = std::get_if<decode_error>(&empty))
            return malformed(side::client, routing_id, error->reason, now);
        if (cmd == command::heartbeat) {
            [[maybe_unused]] auto* client = client_speaking(deferq_dialect(), routing_id, now);
        } else if (auto* client = _core.find_client(routing_id)) {
            _core.forget_client(*client, "disconnected", parting::goodbye);
        }
        return;
    }
    default:
        return malformed(
            side::client, routing_id,
            "command " + std::to_string(static_cast<int>(cmd)) + " not valid from a client", now);
    }
}

client_record* broker_shell::client_speaking(const peer_dialect& dialect,
                                             std::string_view routing_id, time_point now) {
    auto* known = _core.find_client(routing_id);
    auto& client = known ? _core.touch_client(routing_id, dialect, now)
                         : _core.touch_client(routing_id, dialect, now, tenant_key());
    if (client.dialect == &dialect) return &client;
    malformed(side::client, routing_id,
              std::string(dialect.name()) + " message from a " +
                  std::string(client.dialect->name()) + " client",
              now);
    return nullptr;
}

/// One record of a client's BATCH: a REQUEST or a CANCEL (docs/protocol.md §3a).
void broker_shell::on_client_record(client_record& client, const batch_record& record,
                                    time_point now) {
    if (record.cmd == command::request) {
        auto request = decode_client_request(record.frames);
        if (auto* error = std::get_if<decode_error>(&request))
            return malformed(side::client, client.routing_id, "BATCH REQUEST: " + error->reason,
                             now);
        const auto& decoded = std::get<client_request>(request);
        return on_request(client, decoded,
                          zmq::message_t(decoded.payload.data(), decoded.payload.size()), now);
    }
    if (record.cmd == command::cancel) {
        auto cancel = decode_correlation_only(record.frames);
        if (auto* error = std::get_if<decode_error>(&cancel))
            return malformed(side::client, client.routing_id, "BATCH CANCEL: " + error->reason,
                             now);
        return _core.on_cancel(client, std::get<correlation_only>(cancel).correlation_id);
    }
    malformed(side::client, client.routing_id,
              "BATCH record " + std::string(to_string(record.cmd)) + " not valid from a client",
              now);
}

void broker_shell::on_request(client_record& client, const client_request& request,
                              zmq::message_t payload, time_point now) {
    if (is_broker_service(request.function)) {
        if (auto bad_arguments =
                _mmi.answer(client, request.correlation_id, request.function, payload, now))
            malformed(side::client, client.routing_id, *bad_arguments, now);
        return;
    }
    _core.on_request(client, {request.correlation_id, request.function, request.options},
                     std::move(payload), now);
}

/// An MDP/Client REQUEST becomes a call like a deferq client's, with a correlation id the broker
/// picks (MDP has none) and the broker's MDP deadline. `mmi.*` follows 8/MMI.
void broker_shell::on_mdp_client_message(std::string_view routing_id,
                                         std::span<const zmq::message_t> body, time_point now) {
    auto decoded = mdp::decode_client_request(body);
    if (auto* error = std::get_if<decode_error>(&decoded))
        return malformed(side::client, routing_id, "MDP: " + error->reason, now);
    const auto& request = std::get<mdp::client_request>(decoded);
    auto* known = client_speaking(mdp_dialect(), routing_id, now);
    if (!known) return;
    auto& client = *known;
    auto& first_body_frame = _frames[request.body_index + 1]; // +1: the routing id frame
    if (is_broker_service(request.service))
        return _mmi.answer_mdp(client, request.service, view(first_body_frame), now);
    auto correlation_id = _next_mdp_correlation_id++;
    if (request.body_frames != 1) {
        bump(counters.requests);
        return _out.error(client, correlation_id, request.service, error_code::bad_arguments, {},
                          "a call carries exactly one body frame (the msgpack argument array), "
                          "got " +
                              std::to_string(request.body_frames),
                          {}, 0);
    }
    auto timeout_ms = std::clamp<std::int64_t>(_options.mdp_timeout.count(), 0, UINT32_MAX);
    _core.on_request(
        client,
        {correlation_id, request.service, {.timeout_ms = static_cast<std::uint32_t>(timeout_ms)}},
        std::move(first_body_frame), now);
}

} // namespace deferq::broker_detail
