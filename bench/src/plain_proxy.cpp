#include "plain_proxy.hpp"

#include "anchor_server.hpp"

#include "deferq/codec.hpp"
#include "deferq/protocol.hpp"

#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <thread>

namespace deferq::bench {
namespace {

using clock_type = std::chrono::steady_clock;
inline constexpr std::chrono::milliseconds poll_interval{100};
inline constexpr std::chrono::seconds start_timeout{20};

} // namespace

int serve_plain_proxy(const std::string& ready_file, std::chrono::seconds lifetime) {
    zmq::context_t context;
    zmq::socket_t frontend(context, zmq::socket_type::router);
    zmq::socket_t backend(context, zmq::socket_type::dealer);
    for (auto* socket : {&frontend, &backend})
        socket->set(zmq::sockopt::linger, 0);
    frontend.bind("tcp://127.0.0.1:*");
    backend.bind("tcp://127.0.0.1:*");
    // A bare zmq::proxy cannot be told to stop: the process ends when its lifetime is over (or
    // when deferq-bench stops it with SIGTERM, or dies).
    std::thread([lifetime] {
        std::this_thread::sleep_for(lifetime);
        std::_Exit(0);
    }).detach();
    write_ready_file(ready_file, {{"frontend", frontend.get(zmq::sockopt::last_endpoint)},
                                  {"backend", backend.get(zmq::sockopt::last_endpoint)}});
    zmq::proxy(frontend, backend);
    return 0;
}

int serve_dealer_worker(const std::string& endpoint, const std::string& ready_file,
                        std::chrono::seconds lifetime, bool echo) {
    zmq::context_t context;
    zmq::socket_t dealer(context, zmq::socket_type::dealer);
    dealer.set(zmq::sockopt::linger, 0);
    // Connected before the first call, so that the proxy spreads calls over every worker.
    zmq::monitor_t monitor;
    monitor.init(dealer, "inproc://anchor-dealer-monitor", ZMQ_EVENT_CONNECTED);
    dealer.connect(endpoint);
    auto until = clock_type::now() + lifetime;
    while (!monitor.check_event(static_cast<int>(poll_interval.count())))
        if (clock_type::now() >= until) return 1;
    write_ready_file(ready_file, {{"connected", "1"}});
    std::vector<zmq::message_t> frames;
    while (clock_type::now() < until) {
        zmq::pollitem_t item{dealer.handle(), 0, ZMQ_POLLIN, 0};
        protocol::poll(&item, 1, poll_interval);
        // One call at a time: read one, answer it, then read the next.
        for (int i = 0; i < 1024 && protocol::receive_frames(dealer, frames); ++i) {
            if (frames.size() < 2) continue;
            if (!echo) {
                try {
                    frames.back() = add_reply(frames.back());
                } catch (const codec::decode_failure& e) {
                    std::cerr << "anchor: bad call: " << e.what() << "\n";
                    frames.back() = codec::encode_nil();
                }
            }
            [[maybe_unused]] bool sent =
                protocol::send_frames(dealer, frames, zmq::send_flags::none);
        }
    }
    return 0;
}

plain_proxy_cluster::plain_proxy_cluster(const program_paths& programs, const std::string& log_dir,
                                         const std::string& name, unsigned workers, bool echo,
                                         std::chrono::seconds lifetime) {
    auto serve = [&](const std::string& mode, std::vector<std::string> more) {
        std::vector<std::string> argv{programs.bench, "--serve", mode, "--lifetime",
                                      std::to_string(lifetime.count())};
        argv.insert(argv.end(), more.begin(), more.end());
        auto log = log_dir + "/" + name + "-" + mode + "-" + std::to_string(_processes.size() + 1) +
                   ".log";
        _processes.push_back(std::make_unique<child_process>(argv, log));
        return _processes.back().get();
    };
    auto proxy_ready = log_dir + "/" + name + "-plain-proxy.ready";
    auto* proxy = serve("plain-proxy", {"--ready-file", proxy_ready});
    auto endpoints = wait_for_ready_file(proxy_ready, *proxy, start_timeout);
    _endpoint = endpoints["frontend"];
    if (_endpoint.empty() || endpoints["backend"].empty())
        throw std::runtime_error("the plain proxy wrote no endpoint; logs in " + log_dir);
    _proxy_pid = proxy->pid();
    for (unsigned i = 0; i < workers; ++i) {
        auto ready = log_dir + "/" + name + "-worker-" + std::to_string(i + 1) + ".ready";
        auto* worker = serve(echo ? "dealer-echo" : "dealer-worker",
                             {"--connect", endpoints["backend"], "--ready-file", ready});
        wait_for_ready_file(ready, *worker, start_timeout);
        _worker_pids.push_back(worker->pid());
    }
}

plain_proxy_cluster::~plain_proxy_cluster() {
    std::vector<child_process*> all;
    for (auto& process : _processes)
        all.push_back(process.get());
    stop_all(all);
}

} // namespace deferq::bench
