#pragma once
/// A deferq cluster of real processes on 127.0.0.1 for integration tests: one broker (on ports from
/// tests/support/ports.hpp: outside the kernel's ephemeral range, so a restart finds them free, and
/// never two alike among test processes running at once), any number of workers. Everything it
/// started is killed when it goes away.

#include "process.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace deferq::test {

/// Variables set in a child process's environment, beside those it inherits.
using environment_list = std::vector<std::pair<std::string, std::string>>;

class cluster {
public:
    /// `name` names the log folder: <build>/test-logs/<name>-<pid>/.
    explicit cluster(std::string name);
    ~cluster();

    /// Starts the broker and waits until it listens. `extra` are more command-line options;
    /// `wrapper` a command the broker runs under (`{"prlimit", "--nofile=256:256", "--"}`).
    void start_broker(std::vector<std::string> extra = {}, std::vector<std::string> wrapper = {});
    /// Starts the broker again on the same ports (after kill_broker or stop_broker).
    void restart_broker();
    void kill_broker();
    process& broker() { return *_broker; }

    /// Starts a worker process and waits until the broker logs that it joined. `environment`: more
    /// variables for the worker (`{{"DEFERQ_EXEC_LOG", path}}`).
    process& add_worker(const std::string& name, std::vector<std::string> extra = {},
                        environment_list environment = {});
    /// Starts a worker without waiting.
    process& spawn_worker(const std::string& name, std::vector<std::string> extra = {},
                          environment_list environment = {});
    std::vector<std::unique_ptr<process>>& workers() { return _workers; }

    /// Times the broker logged "worker … joined".
    int joined_count() const;

    const std::string& client_endpoint() const { return _client_endpoint; }
    const std::string& worker_endpoint() const { return _worker_endpoint; }
    /// "127.0.0.1:PORT" when the broker was started with --http; empty otherwise.
    const std::string& http_endpoint() const { return _http_endpoint; }
    const std::string& log_dir() const { return _log_dir; }

    /// The broker's mmi.status as JSON (throws deferq::Failure if it does not answer in 10 s).
    nlohmann::json status();
    /// One counter of mmi.status.
    std::uint64_t counter(const std::string& name) {
        return status()["counters"][name].get<std::uint64_t>();
    }
    /// Resident memory of the broker process, bytes.
    std::size_t broker_rss();

    /// Runs `deferq` (the CLI) against this cluster.
    run_result cli(std::vector<std::string> args,
                   std::chrono::milliseconds timeout = std::chrono::seconds{60});

private:
    void launch_broker(const std::string& clients, const std::string& workers);

    std::string _log_dir;
    std::vector<std::string> _broker_extra, _broker_wrapper;
    std::unique_ptr<process> _broker;
    std::vector<std::unique_ptr<process>> _workers;
    std::string _client_endpoint, _worker_endpoint, _http_endpoint;
    int _broker_starts = 0;
};

/// A standby broker pair (Binary Star, docs/protocol.md §8) on 127.0.0.1: a primary and a backup
/// that know each other (ports chosen before either starts: each is given the other's), each with
/// an HTTP endpoint to read its standby state, and workers given both endpoints. Everything it
/// started is killed when it goes away.
class standby_pair {
public:
    static constexpr int primary = 0, backup = 1;

    /// `name` names the log folder: <build>/test-logs/<name>-<pid>-<n>/.
    explicit standby_pair(std::string name);
    ~standby_pair();

    /// Starts broker `which` (again, on the same ports, after a kill or a stop) and waits until it
    /// listens. `extra`: more options for it; the last ones given are kept for later starts.
    process& start(int which, std::optional<std::vector<std::string>> extra = std::nullopt);
    process& broker(int which) { return *_brokers[which]; }
    bool started(int which) const { return _brokers[which] != nullptr; }
    /// "primary" or "backup".
    static std::string role(int which) { return which == primary ? "primary" : "backup"; }

    /// The broker's standby state from its /status.json ("primary", "backup", "active",
    /// "passive"); empty when it does not answer.
    std::string state(int which);
    /// The broker's /status.json (counters, workers, standby); null when it does not answer.
    nlohmann::json status(int which);

    /// Starts a worker given both brokers' endpoints, without waiting.
    process& spawn_worker(const std::string& name, std::vector<std::string> extra = {},
                          environment_list environment = {});
    /// Starts a worker and waits until a broker of the pair logs that it joined.
    process& add_worker(const std::string& name, std::vector<std::string> extra = {},
                        environment_list environment = {});
    /// Times the brokers (every start of both) logged "worker … joined".
    int joined_count() const;

    /// "tcp://127.0.0.1:P1,tcp://127.0.0.1:P2": for clients, primary first.
    std::string client_endpoints() const;
    std::string worker_endpoints() const;
    const std::string& log_dir() const { return _log_dir; }

private:
    std::string _log_dir;
    int _clients[2]{}, _workers[2]{}, _peers[2]{};
    std::string _http[2];
    std::vector<std::string> _extra[2];
    std::unique_ptr<process> _brokers[2];
    std::vector<std::unique_ptr<process>> _worker_processes;
    std::vector<std::string> _logs; ///< every broker log, of every start
    int _starts = 0;
};

} // namespace deferq::test
