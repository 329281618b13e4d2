#include "zap_handler.hpp"

#include "deferq/curve.hpp"
#include "deferq/log.hpp"
#include "deferq/protocol.hpp"

#include <spdlog/spdlog.h>

namespace deferq::broker_detail {
namespace {

constexpr const char* zap_endpoint = "inproc://zeromq.zap.01";
/// A ZAP request: version, request id, domain, address, identity, mechanism, credentials…
constexpr std::size_t zap_request_frames = 7;

} // namespace

zap_handler::zap_handler(zmq::context_t& context, const broker_options& options,
                         broker_counters& counters)
    : _socket(context, zmq::socket_type::rep), _options(options), _counters(counters) {
    _socket.bind(zap_endpoint);
}

void zap_handler::serve(int max) {
    for (int i = 0; i < max && protocol::receive_frames(_socket, _request); ++i) {
        auto reply = answer(_request, _options, _counters);
        [[maybe_unused]] auto sent = protocol::send_frames(_socket, reply, zmq::send_flags::none);
    }
}

std::vector<zmq::message_t> zap_handler::answer(std::span<const zmq::message_t> request,
                                                const broker_options& options,
                                                broker_counters& counters) {
    using protocol::string_frame;
    using protocol::view;
    std::string_view status = "400", text = "malformed ZAP request";
    std::string user_id; ///< the key: every message of the connection carries it ("User-Id")
    std::string request_id = request.size() > 1 ? std::string(view(request[1])) : "";
    if (request.size() >= zap_request_frames && view(request[0]) == "1.0") {
        auto domain = view(request[2]);
        auto address = view(request[3]);
        auto mechanism = view(request[5]);
        auto key = curve::z85_from_binary(request[6].data(), request[6].size());
        bool workers = domain == zap_worker_domain;
        const auto& allowed = workers ? options.worker_keys : options.client_keys;
        if (mechanism == "CURVE" && !key.empty() && (domain == zap_client_domain || workers) &&
            allowed.contains(key)) {
            status = "200";
            text = "OK";
            user_id = key;
        } else {
            text = "key not allowed";
            bump(counters.unauthorized);
            log().warn("refused {} {} from {} with key {} ({} refused so far)",
                       std::string(mechanism), workers ? "worker" : "client", std::string(address),
                       key.empty() ? std::string("(none)") : key, counters.unauthorized.load());
        }
    }
    std::vector<zmq::message_t> reply;
    reply.push_back(string_frame("1.0"));
    reply.push_back(string_frame(request_id));
    reply.push_back(string_frame(status));
    reply.push_back(string_frame(text));
    reply.push_back(string_frame(user_id));
    reply.emplace_back();
    return reply;
}

} // namespace deferq::broker_detail
