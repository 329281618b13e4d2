#include "deferq/broker_link.hpp"

#include "deferq/endpoint.hpp"
#include "deferq/log.hpp"

#include <spdlog/spdlog.h>

#include <poll.h>

namespace deferq {

broker_link::broker_link(zmq::context_t& context, std::string endpoints, std::string_view protocol,
                         std::optional<curve::key_pair> curve_keys, std::string curve_server_key)
    : _context(context), _endpoints(split_endpoints(endpoints, endpoint_use::connect)),
      _protocol(protocol), _curve_keys(std::move(curve_keys)),
      _curve_server_key(std::move(curve_server_key)) {}

void broker_link::connect(const std::string& routing_id) {
    auto socket = std::make_unique<zmq::socket_t>(_context, zmq::socket_type::dealer);
    socket->set(zmq::sockopt::routing_id, routing_id);
    socket->set(zmq::sockopt::linger, 0);
    socket->set(zmq::sockopt::sndhwm, 0);
    socket->set(zmq::sockopt::rcvhwm, 0);
    if (_curve_keys) curve::make_client(*socket, *_curve_keys, _curve_server_key);
    socket->connect(endpoint());
    _socket = std::move(socket);
    _batch.clear();
    _monitor.connected(clock_type::now());
}

std::vector<zmq::message_t>& broker_link::begin(protocol::command cmd) {
    protocol::begin_message(_out, {}, _protocol, cmd);
    return _out;
}

void broker_link::send() {
    flush();
    [[maybe_unused]] bool sent = protocol::send_frames(*_socket, _out);
    _monitor.sent(clock_type::now());
}

void broker_link::send_command(protocol::command cmd) {
    begin(cmd);
    send();
}

protocol::batch_writer& broker_link::record() {
    if (_batch.full()) flush();
    return _batch;
}

bool broker_link::readable() {
    return (_socket->get(zmq::sockopt::events) & ZMQ_POLLIN) != 0;
}

unsigned broker_link::wait(std::unique_lock<std::mutex>& lock, std::span<const int> fds,
                           std::chrono::milliseconds timeout, bool socket) {
    constexpr std::size_t most = 4; // the peers pass one or two (a mailbox, the signals)
    pollfd items[most + 1] = {};
    std::size_t count = std::min(fds.size(), most);
    items[0] = {socket ? _socket->get(zmq::sockopt::fd) : -1, POLLIN, 0};
    for (std::size_t i = 0; i < count; ++i)
        items[i + 1] = {fds[i], POLLIN, 0};
    if (readable()) timeout = std::chrono::milliseconds{0};
    lock.unlock();
    int ready =
        ::poll(items, count + 1, static_cast<int>(std::max<std::int64_t>(0, timeout.count())));
    lock.lock();
    unsigned which = 0;
    for (std::size_t i = 0; ready > 0 && i < count; ++i)
        if (items[i + 1].revents & POLLIN) which |= 1u << i;
    return which;
}

void broker_link::flush() {
    if (_batch.empty()) return;
    [[maybe_unused]] bool sent = protocol::send_batch(*_socket, _batch_out, {}, _protocol, _batch);
    _monitor.sent(clock_type::now());
}

bool broker_link::keep_alive(clock_type::time_point now) {
    if (_monitor.heartbeat_due(now)) send_command(protocol::command::heartbeat);
    if (!_monitor.expired(now)) return false;
    if (_endpoints.size() > 1) {
        // The broker went silent: the other one of the pair may have taken over (a passive broker
        // answers nothing, so a peer at the wrong one moves on too).
        auto silent = endpoint();
        // The instance id is kept: the next broker's differs, which the peer takes for a restart
        // (a client resends again, which the broker deduplicates; that resend is what recovers
        // calls a standby broker dropped before it became active).
        _current = (_current + 1) % _endpoints.size();
        log().info("broker {} silent for {} ms: moving to {} ({} of {})", silent,
                   _monitor.silence(now).count(), endpoint(), _current + 1, _endpoints.size());
    }
    return true;
}

void broker_link::close(std::chrono::milliseconds linger) {
    if (!_socket) return;
    _socket->set(zmq::sockopt::linger, static_cast<int>(linger.count()));
    _socket.reset();
}

} // namespace deferq
