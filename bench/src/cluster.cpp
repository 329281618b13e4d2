#include "cluster.hpp"

#include "deferq_load.hpp"

#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <thread>

namespace deferq::bench {
namespace {

inline constexpr std::chrono::seconds start_timeout{20};

bool executable(const std::string& path) {
    return !path.empty() && ::access(path.c_str(), X_OK) == 0;
}

std::string locate(const std::string& explicit_path, const std::string& bin_dir,
                   const std::string& name, const std::string& build_tree_path) {
    if (!explicit_path.empty()) {
        if (!executable(explicit_path))
            throw std::runtime_error(explicit_path + " is not an executable");
        return explicit_path;
    }
    std::vector<std::string> candidates;
    if (!bin_dir.empty())
        candidates.push_back(bin_dir + "/" + name);
    else {
        candidates.push_back((std::filesystem::path(self_path()).parent_path() / name).string());
        candidates.push_back(build_tree_path);
    }
    for (const auto& candidate : candidates)
        if (executable(candidate)) return candidate;
    std::string tried;
    for (const auto& candidate : candidates)
        tried += " " + candidate;
    throw std::runtime_error("cannot find " + name + " (tried" + tried + "); use --bin-dir");
}

} // namespace

program_paths find_programs(const std::string& bin_dir, std::string broker, std::string worker) {
    return {locate(broker, bin_dir, "deferq-broker", DEFERQ_BENCH_BUILD_BROKER),
            locate(worker, bin_dir, "deferq-worker", DEFERQ_BENCH_BUILD_WORKER), self_path()};
}

// ---- deferq -------------------------------------------------------------------------------------

deferq_cluster::deferq_cluster(program_paths programs, std::string log_dir, std::string name)
    : _programs(std::move(programs)), _log_dir(std::move(log_dir)), _name(std::move(name)) {}

deferq_cluster::~deferq_cluster() {
    std::vector<child_process*> all;
    for (auto& worker : _workers)
        all.push_back(worker.get());
    if (_broker) all.push_back(_broker.get());
    stop_all(all);
}

void deferq_cluster::start_broker(const std::vector<std::string>& extra) {
    auto ready = _log_dir + "/" + _name + "-broker.ready";
    std::vector<std::string> argv{
        _programs.broker, "--clients", "tcp://127.0.0.1:*", "--workers", "tcp://127.0.0.1:*",
        "--ready-file",   ready};
    argv.insert(argv.end(), extra.begin(), extra.end());
    _broker = std::make_unique<child_process>(argv, _log_dir + "/" + _name + "-broker.log");
    auto endpoints = wait_for_ready_file(ready, *_broker, start_timeout);
    _client_endpoint = endpoints["clients"];
    _worker_endpoint = endpoints["workers"];
    if (_client_endpoint.empty() || _worker_endpoint.empty())
        throw std::runtime_error("the broker's ready file " + ready + " has no endpoints");
}

std::vector<pid_t> deferq_cluster::worker_pids() const {
    std::vector<pid_t> pids;
    for (const auto& worker : _workers)
        pids.push_back(worker->pid());
    return pids;
}

void deferq_cluster::add_workers(zmq::context_t& context, unsigned count,
                                 const std::vector<std::string>& extra) {
    auto first = _workers.size();
    for (unsigned i = 0; i < count; ++i) {
        auto name = _name + "-worker-" + std::to_string(first + i + 1);
        std::vector<std::string> argv{_programs.worker, "--broker", _worker_endpoint, "--name",
                                      name};
        argv.insert(argv.end(), extra.begin(), extra.end());
        _workers.push_back(std::make_unique<child_process>(argv, _log_dir + "/" + name + ".log"));
    }
    Client status(context, {.broker = _client_endpoint});
    auto until = std::chrono::steady_clock::now() + start_timeout;
    while (broker_counter(status, "live_workers", start_timeout) < _workers.size()) {
        for (auto& worker : _workers)
            if (worker->exited())
                throw std::runtime_error("a worker exited; its log:\n" +
                                         read_file(worker->log_path()));
        if (std::chrono::steady_clock::now() >= until)
            throw std::runtime_error("workers did not join within " +
                                     std::to_string(start_timeout.count()) + " s; logs in " +
                                     _log_dir);
        std::this_thread::sleep_for(std::chrono::milliseconds{20});
    }
}

// ---- anchors ------------------------------------------------------------------------------------

anchor_cluster::anchor_cluster(program_paths programs, std::string log_dir, unsigned rep_servers,
                               std::chrono::seconds lifetime) {
    auto serve = [&](const std::string& mode, std::vector<std::string> more) {
        std::vector<std::string> argv{programs.bench, "--serve", mode, "--lifetime",
                                      std::to_string(lifetime.count())};
        argv.insert(argv.end(), more.begin(), more.end());
        auto log =
            log_dir + "/anchor-" + mode + "-" + std::to_string(_processes.size() + 1) + ".log";
        _processes.push_back(std::make_unique<child_process>(argv, log));
        return _processes.back().get();
    };
    auto raw_ready = log_dir + "/anchor-raw.ready";
    auto* raw = serve("raw", {"--ready-file", raw_ready});
    auto proxy_ready = log_dir + "/anchor-proxy.ready";
    auto* proxy = serve("proxy", {"--ready-file", proxy_ready});
    _raw_endpoint = wait_for_ready_file(raw_ready, *raw, start_timeout)["endpoint"];
    auto proxy_endpoints = wait_for_ready_file(proxy_ready, *proxy, start_timeout);
    _proxy_endpoint = proxy_endpoints["frontend"];
    for (unsigned i = 0; i < rep_servers; ++i) {
        auto ready = log_dir + "/anchor-rep-" + std::to_string(i + 1) + ".ready";
        auto* rep = serve("rep", {"--connect", proxy_endpoints["backend"], "--ready-file", ready});
        wait_for_ready_file(ready, *rep, start_timeout);
        _rep_pids.push_back(rep->pid());
    }
    _raw_pid = raw->pid();
    _proxy_pid = proxy->pid();
    if (_raw_endpoint.empty() || _proxy_endpoint.empty())
        throw std::runtime_error("an anchor server wrote no endpoint; logs in " + log_dir);
}

anchor_cluster::~anchor_cluster() {
    std::vector<child_process*> all;
    for (auto& process : _processes)
        all.push_back(process.get());
    stop_all(all);
}

} // namespace deferq::bench
