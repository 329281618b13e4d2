#pragma once
/// The broker's own services, `mmi.*` (after 8/MMI): answered by the broker itself, never queued.
/// `mmi.status` answers the msgpack status map (docs/protocol.md §7); `mmi.service` says whether a
/// function is offered ("200" or "404"). deferq clients call them like functions (msgpack
/// arguments and results); 7/MDP clients as 8/MMI says (the name as the body, "200"/"404"/"501").

#include "core/broker_core.hpp"
#include "core/outbox.hpp"
#include "status_builder.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace deferq::broker_detail {

/// True for a function name the broker answers itself.
inline bool is_broker_service(std::string_view function) {
    return function.starts_with("mmi.");
}

class mmi_service {
public:
    mmi_service(broker_core& core, status_builder& status, outbox& out, broker_counters& counters)
        : _core(core), _status(status), _out(out), _counters(counters) {}

    /// Answers a deferq client's call of an mmi.* function. Returns the reason when its arguments
    /// are not msgpack (the one payload the broker reads): a malformed message, which the shell
    /// counts against the client — the caller still gets its bad_arguments answer.
    [[nodiscard]] std::optional<std::string>
    answer(client_record& client, std::uint64_t correlation_id, std::string_view function,
           const zmq::message_t& arguments, time_point now);

    /// Answers a 7/MDP client's request to an mmi.* service (`body`: its first body frame).
    void answer_mdp(client_record& client, std::string_view service, std::string_view body,
                    time_point now);

private:
    broker_core& _core;
    status_builder& _status;
    outbox& _out;
    broker_counters& _counters;
};

} // namespace deferq::broker_detail
