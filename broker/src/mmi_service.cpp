#include "mmi_service.hpp"

#include "deferq/broker_status.hpp"
#include "deferq/codec.hpp"
#include "deferq/protocol.hpp"

#include <vector>

namespace deferq::broker_detail {
namespace {

constexpr std::string_view broker_name = "broker"; ///< who answers mmi.*, in replies

std::string_view found(bool offered) {
    return offered ? "200" : "404";
}

} // namespace

std::optional<std::string> mmi_service::answer(client_record& client, std::uint64_t correlation_id,
                                               std::string_view function,
                                               const zmq::message_t& arguments, time_point now) {
    bump(_counters.requests);
    auto fail = [&](error_code code, const std::string& message) {
        _out.error(client, correlation_id, function, code, {}, message, {}, 0);
    };
    msgpack::sbuffer buffer;
    msgpack::packer<msgpack::sbuffer> out(buffer);
    if (function == "mmi.status") {
        auto packed = pack_status(_status.build(now));
        buffer.write(packed.data(), packed.size());
    } else if (function == "mmi.service") {
        msgpack::object_handle unpacked;
        try {
            unpacked = codec::unpack(arguments);
        } catch (const codec::decode_failure& e) {
            fail(error_code::bad_arguments, std::string("mmi.service(string): ") + e.what());
            return std::string("mmi.service arguments: ") + e.what();
        }
        std::string asked;
        try {
            auto list = codec::convert<std::vector<std::string>>(unpacked.get());
            if (list.size() != 1) throw codec::decode_failure("expected one function name");
            asked = list[0];
        } catch (const codec::decode_failure& e) {
            fail(error_code::bad_arguments, std::string("mmi.service(string): ") + e.what());
            return std::nullopt;
        }
        out.pack(found(_core.offered(asked)));
    } else {
        fail(error_code::no_such_function,
             "the broker has no service '" + std::string(function) + "'");
        return std::nullopt;
    }
    auto reply = codec::to_message(std::move(buffer));
    _out.reply(client, correlation_id, function, broker_name, 0, protocol::view(reply), &reply);
    return std::nullopt;
}

void mmi_service::answer_mdp(client_record& client, std::string_view service, std::string_view body,
                             time_point now) {
    bump(_counters.requests);
    std::string answer;
    if (service == "mmi.service")
        answer = found(_core.offered(body));
    else if (service == "mmi.status")
        answer = pack_status(_status.build(now));
    else
        answer = "501";
    _out.reply(client, 0, service, broker_name, 0, answer, nullptr);
}

} // namespace deferq::broker_detail
