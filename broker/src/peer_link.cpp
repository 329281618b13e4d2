#include "peer_link.hpp"

#include "deferq/curve.hpp"
#include "deferq/log.hpp"
#include "deferq/protocol.hpp"

#include <spdlog/spdlog.h>

namespace deferq::broker_detail {
namespace {

/// A state message is tiny; anything larger is not the partner's (room for CURVE's handshake).
constexpr std::int64_t max_peer_message = 4096;
/// Messages read by one receive(), and states handled per loop turn.
constexpr int max_messages_per_receive = 64;

} // namespace

peer_link::peer_link(const standby_options& options,
                     const std::optional<curve::key_pair>& curve_keys, std::uint64_t instance,
                     std::chrono::milliseconds state_interval)
    : _pub(_context, zmq::socket_type::pub), _sub(_context, zmq::socket_type::sub),
      _options(options), _instance(instance), _interval(state_interval) {
    for (auto* socket : {&_pub, &_sub}) {
        socket->set(zmq::sockopt::linger, 0);
        socket->set(zmq::sockopt::maxmsgsize, max_peer_message);
    }
    // Only the latest state matters: a partner that reads slowly loses old ones, not new ones.
    _pub.set(zmq::sockopt::sndhwm, 16);
    _sub.set(zmq::sockopt::rcvhwm, 16);
    _sub.set(zmq::sockopt::subscribe, "");
    if (curve_keys) {
        curve::make_server(_pub, *curve_keys);
        curve::make_client(_sub, *curve_keys, curve_keys->public_key);
    }
}

peer_link::~peer_link() = default;

void peer_link::start() {
    while (true) {
        try {
            _pub.bind(_options.peer_bind);
            break;
        } catch (const zmq::error_t& e) {
            if (e.num() != EINTR) throw;
        }
    }
    _bound = _pub.get(zmq::sockopt::last_endpoint);
    _sub.connect(_options.peer);
}

std::optional<partner_state> peer_link::receive(time_point now) {
    // Bounded: a flood of malformed messages cannot hold the loop.
    for (int i = 0; i < max_messages_per_receive && protocol::receive_frames(_sub, _frames); ++i) {
        std::optional<ha_state> state;
        std::uint64_t instance = 0;
        if (_frames.size() == 3 && protocol::view(_frames[0]) == peer_protocol &&
            _frames[1].size() == 1 && _frames[2].size() == sizeof instance) {
            state = ha_state_from(*static_cast<const std::uint8_t*>(_frames[1].data()));
            const auto* bytes = static_cast<const unsigned char*>(_frames[2].data());
            for (std::size_t i = 0; i < sizeof instance; ++i) // big-endian, as every frame
                instance = (instance << 8) | bytes[i];
        }
        if (state) return partner_state{*state, instance};
        if (now >= _next_complaint) {
            log().warn("standby: dropped a malformed message on the peer link ({} frame(s)): is "
                       "--peer the partner's --peer-bind?",
                       _frames.size());
            _next_complaint = now + _interval;
        }
    }
    return std::nullopt;
}

void peer_link::say(ha_state state, time_point now, bool changed) {
    if (!changed && now < _next_say) return;
    std::vector<zmq::message_t> message;
    message.push_back(protocol::string_frame(peer_protocol));
    message.push_back(protocol::u8_frame(static_cast<std::uint8_t>(state)));
    message.push_back(protocol::u64_frame(_instance));
    [[maybe_unused]] bool sent = protocol::send_frames(_pub, message, zmq::send_flags::dontwait);
    _next_say = now + _interval;
}

} // namespace deferq::broker_detail
