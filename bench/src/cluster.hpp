#pragma once
/// The processes the benchmark measures, all on 127.0.0.1 with kernel-chosen ports: a deferq
/// cluster (the real deferq-broker and deferq-worker programs) and the anchors' servers
/// (deferq-bench itself in its --serve modes). Everything started is killed when the object goes
/// away.

#include "child_process.hpp"

#include <zmq.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace deferq::bench {

/// Where the programs are.
struct program_paths {
    std::string broker; ///< deferq-broker
    std::string worker; ///< deferq-worker
    std::string bench;  ///< this program, for the anchors' --serve modes
};

/// Finds deferq-broker and deferq-worker: the explicit paths if given, else in `bin_dir` if given,
/// else next to this program, else where this build tree put them. Throws std::runtime_error when
/// missing.
program_paths find_programs(const std::string& bin_dir, std::string broker, std::string worker);

/// One deferq-broker and its deferq-worker processes.
class deferq_cluster {
public:
    /// `name` prefixes the log files in `log_dir`.
    deferq_cluster(program_paths programs, std::string log_dir, std::string name);
    ~deferq_cluster();
    deferq_cluster(const deferq_cluster&) = delete;
    deferq_cluster& operator=(const deferq_cluster&) = delete;

    /// Starts the broker with `extra` options and waits until it listens.
    void start_broker(const std::vector<std::string>& extra = {});
    /// Starts `count` workers with `extra` options and waits until the broker counts them all live.
    void add_workers(zmq::context_t& context, unsigned count,
                     const std::vector<std::string>& extra = {});

    /// Uses a broker that runs already (its workers with it) instead of starting one: no process is
    /// started, and broker_pid() and worker_pids() know none.
    void use_broker(std::string client_endpoint) { _client_endpoint = std::move(client_endpoint); }

    const std::string& client_endpoint() const { return _client_endpoint; }
    pid_t broker_pid() const { return _broker ? _broker->pid() : -1; }
    std::vector<pid_t> worker_pids() const;

private:
    program_paths _programs;
    std::string _log_dir, _name;
    std::unique_ptr<child_process> _broker;
    std::vector<std::unique_ptr<child_process>> _workers;
    std::string _client_endpoint, _worker_endpoint;
};

/// The anchors' servers: one raw ROUTER server, and one proxy with `rep_servers` REP servers behind
/// it.
class anchor_cluster {
public:
    anchor_cluster(program_paths programs, std::string log_dir, unsigned rep_servers,
                   std::chrono::seconds lifetime);
    ~anchor_cluster();
    anchor_cluster(const anchor_cluster&) = delete;
    anchor_cluster& operator=(const anchor_cluster&) = delete;

    const std::string& raw_endpoint() const { return _raw_endpoint; }
    const std::string& proxy_endpoint() const { return _proxy_endpoint; }
    pid_t raw_pid() const { return _raw_pid; }
    pid_t proxy_pid() const { return _proxy_pid; }
    std::vector<pid_t> rep_pids() const { return _rep_pids; }

private:
    std::vector<std::unique_ptr<child_process>> _processes;
    std::string _raw_endpoint, _proxy_endpoint;
    pid_t _raw_pid = -1, _proxy_pid = -1;
    std::vector<pid_t> _rep_pids;
};

} // namespace deferq::bench
