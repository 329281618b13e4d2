#include "connection_monitor.hpp"

#include "deferq/log.hpp"
#include "deferq/protocol.hpp"
#include "deferq/random_id.hpp"

#include <spdlog/spdlog.h>

#include <sys/resource.h>

#include <cerrno>
#include <cstring>

namespace deferq::broker_detail {
namespace {

/// A monitor event's first frame: u16 event, u32 value (here: errno), in host byte order.
constexpr std::size_t event_frame_size = 6;
constexpr int max_events_per_drain = 1024;

std::uint64_t open_file_soft_limit() {
    rlimit limit{};
    return ::getrlimit(RLIMIT_NOFILE, &limit) == 0 ? limit.rlim_cur : 0;
}

} // namespace

connection_monitor::connection_monitor(zmq::context_t& context, zmq::socket_t& watched,
                                       std::string name, broker_counters& counters)
    : _events(context, zmq::socket_type::pair), _name(std::move(name)), _counters(counters) {
    auto endpoint = fmt::format("inproc://deferq-monitor-{:016x}", random_u64());
    if (zmq_socket_monitor(watched.handle(), endpoint.c_str(), ZMQ_EVENT_ACCEPT_FAILED) != 0)
        throw zmq::error_t();
    _events.connect(endpoint);
}

void connection_monitor::drain(std::chrono::steady_clock::time_point now,
                               std::chrono::milliseconds log_interval) {
    for (int i = 0; i < max_events_per_drain && protocol::receive_frames(_events, _frames); ++i) {
        if (_frames.size() != 2 || _frames[0].size() != event_frame_size) continue;
        std::uint16_t event;
        std::uint32_t value;
        std::memcpy(&event, _frames[0].data(), sizeof event);
        std::memcpy(&value, static_cast<const char*>(_frames[0].data()) + sizeof event,
                    sizeof value);
        if (event != ZMQ_EVENT_ACCEPT_FAILED) continue;
        bump(_counters.connections_refused);
        ++_unlogged;
        _last_errno = static_cast<int>(value);
    }
    if (_unlogged == 0 || now - _last_log < log_interval) return;
    _last_log = now;
    bool out_of_files = _last_errno == EMFILE || _last_errno == ENFILE;
    log().warn("refused {} connection attempt(s) on the {} ({}){}", _unlogged, _name,
               std::strerror(_last_errno),
               out_of_files ? fmt::format(": the open-file limit ({}) is reached; raise it for "
                                          "more peers (docs/operations.md, Sizing)",
                                          open_file_soft_limit())
                            : std::string());
    _unlogged = 0;
}

} // namespace deferq::broker_detail
