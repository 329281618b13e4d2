#include "anchor_server.hpp"

#include "child_process.hpp"

#include "deferq/codec.hpp"
#include "deferq/protocol.hpp"

#include <iostream>
#include <thread>
#include <vector>

namespace deferq::bench {
namespace {

using clock_type = std::chrono::steady_clock;
inline constexpr std::chrono::milliseconds poll_interval{100};

/// Answers every call waiting on `socket`: the last frame holds the arguments and is replaced by
/// the result; the frames before it (routing id, correlation id) go back as they came.
void answer_ready_calls(zmq::socket_t& socket, std::vector<zmq::message_t>& frames,
                        zmq::send_flags flags) {
    for (int i = 0; i < 1024 && protocol::receive_frames(socket, frames); ++i) {
        if (frames.size() < 2) continue;
        try {
            frames.back() = add_reply(frames.back());
        } catch (const codec::decode_failure& e) {
            // Answer anyway (nil): a REP socket cannot read the next call before it answers this
            // one.
            std::cerr << "anchor: bad call: " << e.what() << "\n";
            frames.back() = codec::encode_nil();
        }
        [[maybe_unused]] bool sent = protocol::send_frames(socket, frames, flags);
    }
}

} // namespace

zmq::message_t add_reply(const zmq::message_t& arguments) {
    auto handle = codec::unpack(arguments);
    const auto& array = handle.get();
    if (array.type != msgpack::type::ARRAY || array.via.array.size != 2)
        throw codec::decode_failure("add(a, b): expected an array of 2 arguments");
    auto a = codec::convert<double>(array.via.array.ptr[0]);
    auto b = codec::convert<double>(array.via.array.ptr[1]);
    return codec::encode_value(a + b);
}

int serve_raw(const std::string& ready_file, std::chrono::seconds lifetime) {
    zmq::context_t context;
    zmq::socket_t router(context, zmq::socket_type::router);
    router.set(zmq::sockopt::linger, 0);
    router.bind("tcp://127.0.0.1:*");
    write_ready_file(ready_file, {{"endpoint", router.get(zmq::sockopt::last_endpoint)}});
    std::vector<zmq::message_t> frames;
    for (auto until = clock_type::now() + lifetime; clock_type::now() < until;) {
        zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
        protocol::poll(&item, 1, poll_interval);
        answer_ready_calls(router, frames, zmq::send_flags::dontwait); // a ROUTER never blocks
    }
    return 0;
}

int serve_proxy(const std::string& ready_file, std::chrono::seconds lifetime) {
    zmq::context_t context;
    zmq::socket_t frontend(context, zmq::socket_type::router);
    zmq::socket_t backend(context, zmq::socket_type::dealer);
    zmq::socket_t control(context, zmq::socket_type::pair);
    for (auto* socket : {&frontend, &backend, &control})
        socket->set(zmq::sockopt::linger, 0);
    frontend.bind("tcp://127.0.0.1:*");
    backend.bind("tcp://127.0.0.1:*");
    control.bind("inproc://anchor-proxy-control");
    // The watchdog ends the proxy when its lifetime is over (its own socket: one socket, one
    // thread).
    std::jthread watchdog([&context, lifetime](std::stop_token stop) {
        zmq::socket_t terminate(context, zmq::socket_type::pair);
        terminate.set(zmq::sockopt::linger, 0);
        terminate.connect("inproc://anchor-proxy-control");
        for (auto until = clock_type::now() + lifetime;
             clock_type::now() < until && !stop.stop_requested();)
            std::this_thread::sleep_for(poll_interval);
        terminate.send(zmq::str_buffer("TERMINATE"), zmq::send_flags::dontwait);
    });
    write_ready_file(ready_file, {{"frontend", frontend.get(zmq::sockopt::last_endpoint)},
                                  {"backend", backend.get(zmq::sockopt::last_endpoint)}});
    zmq::proxy_steerable(frontend, backend, zmq::socket_ref(), control);
    return 0;
}

int serve_rep(const std::string& endpoint, const std::string& ready_file,
              std::chrono::seconds lifetime) {
    zmq::context_t context;
    zmq::socket_t rep(context, zmq::socket_type::rep);
    rep.set(zmq::sockopt::linger, 0);
    // A connection monitor tells when the TCP connection is up, so that the proxy's DEALER spreads
    // calls over every REP server from the first call on.
    zmq::monitor_t monitor;
    monitor.init(rep, "inproc://anchor-rep-monitor", ZMQ_EVENT_CONNECTED);
    rep.connect(endpoint);
    auto until = clock_type::now() + lifetime;
    while (!monitor.check_event(static_cast<int>(poll_interval.count())))
        if (clock_type::now() >= until) return 1;
    write_ready_file(ready_file, {{"connected", "1"}});
    std::vector<zmq::message_t> frames;
    while (clock_type::now() < until) {
        zmq::pollitem_t item{rep.handle(), 0, ZMQ_POLLIN, 0};
        protocol::poll(&item, 1, poll_interval);
        answer_ready_calls(rep, frames,
                           zmq::send_flags::none); // REP must answer before it reads again
    }
    return 0;
}

} // namespace deferq::bench
