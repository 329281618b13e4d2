#pragma once
/// The "plain proxy" anchor of issue 18: a bare zmq::proxy(ROUTER frontend, DEALER backend) with
/// DEALER workers connected to its backend, one call at a time each. A call is [u64 correlation id]
/// [payload] from a DEALER client; a worker receives [routing id…][correlation id][payload] and
/// answers with the same frames before the payload and either the msgpack result of add(a, b)
/// (`dealer-worker`) or the payload itself, untouched (`dealer-echo`, for big arguments).
/// Each server runs in a child process (`deferq-bench --serve
/// plain-proxy|dealer-worker|dealer-echo`).

#include "child_process.hpp"
#include "cluster.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace deferq::bench {

/// Binds a ROUTER frontend and a DEALER backend on 127.0.0.1, writes `frontend=…` and `backend=…`
/// to `ready_file` and runs zmq::proxy between them; the process exits after `lifetime`.
int serve_plain_proxy(const std::string& ready_file, std::chrono::seconds lifetime);

/// Connects a DEALER to `endpoint` (a proxy's backend), writes `connected=1` to `ready_file` once
/// the connection is up, and answers calls one at a time for `lifetime`: with add(a, b)'s result,
/// or with the payload as it came when `echo`.
int serve_dealer_worker(const std::string& endpoint, const std::string& ready_file,
                        std::chrono::seconds lifetime, bool echo);

/// One plain proxy process and `workers` DEALER workers behind it (add, or echo), started as
/// children of this program; all stopped when the object goes away. Create and destroy it on the
/// main thread (child_process).
class plain_proxy_cluster {
public:
    plain_proxy_cluster(const program_paths& programs, const std::string& log_dir,
                        const std::string& name, unsigned workers, bool echo,
                        std::chrono::seconds lifetime);
    ~plain_proxy_cluster();
    plain_proxy_cluster(const plain_proxy_cluster&) = delete;
    plain_proxy_cluster& operator=(const plain_proxy_cluster&) = delete;

    const std::string& endpoint() const { return _endpoint; }
    pid_t proxy_pid() const { return _proxy_pid; }
    const std::vector<pid_t>& worker_pids() const { return _worker_pids; }

private:
    std::vector<std::unique_ptr<child_process>> _processes;
    std::string _endpoint;
    pid_t _proxy_pid = -1;
    std::vector<pid_t> _worker_pids;
};

} // namespace deferq::bench
