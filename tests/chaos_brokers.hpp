#pragma once
// The brokers deferq-chaos plays with (tests/chaos.cpp): one broker, killed or stopped and
// restarted on its ports; or a standby pair (--pair), whose active broker is killed or stopped, the
// other takes over, and it comes back passive. And the journal of what the chaos did.

#include "cluster.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace deferq::chaos {

using clock_type = std::chrono::steady_clock;

/// "12:34:56.789", to match the broker's and workers' log lines: now, or at `at`.
std::string wall_clock();
std::string wall_clock(clock_type::time_point at);

/// What the chaos did (printed as it happens, counted by action) and what went wrong (crashes,
/// hangs, failed restarts: each is a bug, or a broken machine). Main thread only.
class journal {
public:
    void note(const std::string& line);
    void problem(const std::string& what);
    void count(const std::string& action) { ++_actions[action]; }
    /// "37 actions (kill-worker 8, stop-worker 7, …)"
    std::string actions() const;
    const std::vector<std::string>& problems() const { return _problems; }

private:
    std::map<std::string, int> _actions;
    std::vector<std::string> _problems;
};

/// The broker side of the cluster. Main thread only.
class brokers {
public:
    virtual ~brokers() = default;

    /// Starts the broker(s) and waits until they serve.
    virtual void start() = 0;
    /// What clients are given (a pair: both endpoints).
    virtual std::string client_endpoint() const = 0;
    virtual const std::string& log_dir() const = 0;
    /// Starts a worker (given both endpoints for a pair); `wait`: until a broker logs it joined.
    virtual test::process& add_worker(const std::string& name, std::vector<std::string> extra,
                                      test::environment_list environment, bool wait) = 0;
    /// Live workers the serving broker counts; -1 when it does not answer.
    virtual int live_workers() = 0;

    /// Called every few ms: a broker that exited by itself is a problem (restarted); a pair goes on
    /// with the failover under way.
    virtual void look_after() = 0;
    /// True when a broker action may start (a pair: one active, the other passive, no failover
    /// under way).
    virtual bool settled() = 0;
    /// kill -9 of the (active) broker; it comes back. Counted as "kill-broker".
    virtual void kill(std::mt19937_64& random) = 0;
    /// SIGTERM of the (active) broker: it must exit 0; it comes back. Counted as "term-broker".
    virtual void stop() = 0;
    /// At the end of the chaos: every broker runs, and serves or stands by.
    virtual void calm_down() = 0;
};

/// One broker (tests/support/cluster.hpp), restarted on the same ports.
std::unique_ptr<brokers> single_broker(journal& log, int heartbeat_interval_ms);
/// A standby pair (docs/protocol.md §8): the active one is killed or stopped; chaos waits until
/// the other one took over (a problem if it does not within 20 s), then starts it again, and it
/// must come back passive (no second switch).
std::unique_ptr<brokers> broker_pair(journal& log, int heartbeat_interval_ms);

} // namespace deferq::chaos
