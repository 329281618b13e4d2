// The brokers deferq-chaos plays with: one broker, or a standby pair (tests/chaos_brokers.hpp).

#include "chaos_brokers.hpp"

#include <signal.h>

#include <cstdio>
#include <ctime>
#include <iostream>
#include <thread>

using namespace std::chrono_literals;
using deferq::test::eventually;

namespace deferq::chaos {

std::string wall_clock() {
    return wall_clock(clock_type::now());
}

std::string wall_clock(clock_type::time_point at) {
    auto now =
        std::chrono::system_clock::now() +
        std::chrono::duration_cast<std::chrono::system_clock::duration>(at - clock_type::now());
    auto seconds = std::chrono::system_clock::to_time_t(now);
    auto millis =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
        1000;
    std::tm local{};
    ::localtime_r(&seconds, &local);
    char text[32];
    std::snprintf(text, sizeof text, "%02d:%02d:%02d.%03d", local.tm_hour, local.tm_min,
                  local.tm_sec, static_cast<int>(millis));
    return text;
}

void journal::note(const std::string& line) {
    std::cout << "[" << wall_clock() << "] " << line << std::endl;
}

void journal::problem(const std::string& what) {
    note("PROBLEM: " + what);
    _problems.push_back(what);
}

std::string journal::actions() const {
    int total = 0;
    std::string list;
    for (auto& [name, count] : _actions) {
        total += count;
        list += (list.empty() ? "" : ", ") + name + " " + std::to_string(count);
    }
    return std::to_string(total) + " actions" + (list.empty() ? "" : " (" + list + ")");
}

namespace {

std::string milliseconds_since(clock_type::time_point since) {
    return std::to_string(
               std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - since)
                   .count()) +
           " ms";
}

/// One broker, restarted on the same ports.
class single final : public brokers {
public:
    single(journal& log, int heartbeat_interval_ms)
        : _cluster("chaos"), _log(log), _heartbeat(heartbeat_interval_ms) {}

    void start() override {
        _cluster.start_broker(
            {"--heartbeat-interval", std::to_string(_heartbeat), "--liveness", "3"});
        _pid = _cluster.broker().pid();
    }
    std::string client_endpoint() const override { return _cluster.client_endpoint(); }
    const std::string& log_dir() const override { return _cluster.log_dir(); }
    test::process& add_worker(const std::string& name, std::vector<std::string> extra,
                              test::environment_list environment, bool wait) override {
        return wait ? _cluster.add_worker(name, std::move(extra), std::move(environment))
                    : _cluster.spawn_worker(name, std::move(extra), std::move(environment));
    }
    int live_workers() override {
        try {
            return _cluster.status()["counters"]["live_workers"].get<int>();
        } catch (const std::exception&) {
            return -1;
        }
    }

    void look_after() override {
        if (_pid == _cluster.broker().pid() && _cluster.broker().exited()) {
            _log.problem("the broker exited by itself with code " +
                         std::to_string(_cluster.broker().wait(0ms).value_or(-1)));
            _pid = -1;
            restart();
        }
    }
    bool settled() override { return true; }

    void kill(std::mt19937_64& random) override {
        std::uniform_int_distribution<int> down_ms(0, 800);
        auto down = std::chrono::milliseconds{down_ms(random)};
        _cluster.kill_broker();
        _pid = -1;
        _log.count("kill-broker");
        _log.note("kill -9 broker, down for " + std::to_string(down.count()) + " ms");
        std::this_thread::sleep_for(down);
        restart();
    }

    void stop() override {
        _pid = -1;
        _cluster.broker().signal(SIGTERM);
        _log.count("term-broker");
        auto code = _cluster.broker().wait(10s);
        if (!code)
            _log.problem("the broker did not stop within 10 s of SIGTERM");
        else if (*code != 0)
            _log.problem("the broker exited with code " + std::to_string(*code) + " on SIGTERM");
        _log.note("SIGTERM broker (exit " + (code ? std::to_string(*code) : std::string("none")) +
                  "), restarting");
        restart();
    }

    void calm_down() override {
        look_after();
        if (_cluster.broker().exited()) {
            _log.note("broker not running at the end: restarting it");
            restart();
        }
    }

private:
    void restart() {
        try {
            _cluster.restart_broker();
            _pid = _cluster.broker().pid();
        } catch (const std::exception& e) {
            _log.problem(std::string("the broker did not restart: ") + e.what());
        }
    }

    test::cluster _cluster;
    journal& _log;
    int _heartbeat;
    pid_t _pid = -1; ///< the broker that should be running; -1 while chaos has it down
};

/// A standby pair. A broker action takes the active broker down and starts a failover, which
/// look_after() follows: the other takes over, the victim stays down a moment more, comes back and
/// must stand by (passive).
class pair final : public brokers {
public:
    pair(journal& log, int heartbeat_interval_ms)
        : _pair("chaos-pair"), _log(log), _heartbeat(heartbeat_interval_ms) {}

    void start() override {
        std::vector<std::string> options{"--heartbeat-interval", std::to_string(_heartbeat),
                                         "--liveness", "3"};
        for (int which : {primary, backup})
            _pid[which] = _pair.start(which, options).pid();
        if (!eventually(
                [&] {
                    return _pair.state(primary) == "active" && _pair.state(backup) == "passive";
                },
                20s))
            throw std::runtime_error("the pair did not settle (primary active, backup passive) "
                                     "within 20 s of its start");
    }
    std::string client_endpoint() const override { return _pair.client_endpoints(); }
    const std::string& log_dir() const override { return _pair.log_dir(); }
    test::process& add_worker(const std::string& name, std::vector<std::string> extra,
                              test::environment_list environment, bool wait) override {
        return wait ? _pair.add_worker(name, std::move(extra), std::move(environment))
                    : _pair.spawn_worker(name, std::move(extra), std::move(environment));
    }
    int live_workers() override {
        auto active = which_active();
        if (active < 0) return -1;
        auto status = _pair.status(active);
        try {
            return status["counters"]["live_workers"].get<int>();
        } catch (const std::exception&) {
            return -1;
        }
    }

    void look_after() override {
        for (int which : {primary, backup})
            if (_pid[which] > 0 && _pair.broker(which).exited()) {
                _log.problem("the " + role(which) + " exited by itself with code " +
                             std::to_string(_pair.broker(which).wait(0ms).value_or(-1)) + " (log " +
                             _pair.broker(which).log_path() + ")");
                _pid[which] = -1;
                if (_phase == phase::idle)
                    went_down(which, 0ms);
                else
                    restart(which);
            }
        if (_phase == phase::idle) return;
        auto now = clock_type::now();
        if (now - _polled < 100ms) return;
        _polled = now;
        int other = 1 - _victim;
        switch (_phase) {
        case phase::taking_over:
            if (_pair.state(other) == "active") {
                _log.note("the " + role(other) + " took over " + milliseconds_since(_since) +
                          " after; the " + role(_victim) + " stays down " +
                          std::to_string(_down.count()) + " ms more");
                _taken_over = true;
                _phase = phase::down;
                _since = now;
            } else if (now - _since > 20s) {
                _log.problem("the " + role(other) + " did not take over within 20 s of the " +
                             role(_victim) + " going down");
                _phase = phase::down;
                _since = now;
            }
            break;
        case phase::down:
            if (now - _since >= _down) {
                restart(_victim);
                _phase = phase::coming_back;
                _since = clock_type::now();
            }
            break;
        case phase::coming_back: {
            auto state = _pair.state(_victim);
            if (state == "passive") {
                _log.note("the " + role(_victim) + " is back, passive, after " +
                          milliseconds_since(_since));
                _phase = phase::idle;
            } else if (state == "active" && _taken_over) {
                _log.problem("the " + role(_victim) + " came back active while the " + role(other) +
                             " served (a second switch)");
                _phase = phase::idle;
            } else if (state == "active") {
                _log.note("the " + role(_victim) + " is back, active (nobody had taken over)");
                _phase = phase::idle;
            } else if (now - _since > 20s) {
                _log.problem("the " + role(_victim) + " is not passive 20 s after it came back (" +
                             (state.empty() ? std::string("no answer") : state) + ")");
                _phase = phase::idle;
            }
            break;
        }
        case phase::idle:
            break;
        }
    }

    bool settled() override {
        if (_phase != phase::idle) return false;
        auto active = which_active();
        return active >= 0 && _pair.state(1 - active) == "passive";
    }

    void kill(std::mt19937_64& random) override {
        auto active = which_active();
        if (active < 0) return;
        std::uniform_int_distribution<int> down_ms(0, 800);
        _pair.broker(active).kill();
        _pid[active] = -1;
        _log.count("kill-broker");
        _log.note("kill -9 the " + role(active) + " (active)");
        went_down(active, std::chrono::milliseconds{down_ms(random)});
    }

    void stop() override {
        auto active = which_active();
        if (active < 0) return;
        _pid[active] = -1;
        _pair.broker(active).signal(SIGTERM);
        _log.count("term-broker");
        auto code = _pair.broker(active).wait(10s);
        if (!code)
            _log.problem("the " + role(active) + " did not stop within 10 s of SIGTERM");
        else if (*code != 0)
            _log.problem("the " + role(active) + " exited with code " + std::to_string(*code) +
                         " on SIGTERM");
        _log.note("SIGTERM the " + role(active) + " (active; exit " +
                  (code ? std::to_string(*code) : std::string("none")) + ")");
        went_down(active, 0ms);
    }

    void calm_down() override {
        auto until = clock_type::now() + 60s;
        while (_phase != phase::idle && clock_type::now() < until) {
            look_after();
            std::this_thread::sleep_for(20ms);
        }
        if (_phase != phase::idle) _log.problem("the failover under way did not end within 60 s");
        _phase = phase::idle;
        for (int which : {primary, backup})
            if (_pair.broker(which).exited()) {
                _log.note("the " + role(which) + " not running at the end: starting it");
                restart(which);
            }
        if (!eventually([&] { return settled(); }, 20s))
            _log.problem("the pair is not one active and one passive at the end (primary " +
                         _pair.state(primary) + ", backup " + _pair.state(backup) + ")");
    }

private:
    static constexpr int primary = test::standby_pair::primary;
    static constexpr int backup = test::standby_pair::backup;
    enum class phase { idle, taking_over, down, coming_back };

    static std::string role(int which) { return test::standby_pair::role(which); }

    int which_active() {
        for (int which : {primary, backup})
            if (_pid[which] > 0 && _pair.state(which) == "active") return which;
        return -1;
    }

    void went_down(int which, std::chrono::milliseconds more) {
        _victim = which;
        _down = more;
        _taken_over = false;
        _phase = phase::taking_over;
        _since = clock_type::now();
    }

    void restart(int which) {
        try {
            _pid[which] = _pair.start(which).pid();
        } catch (const std::exception& e) {
            _log.problem("the " + role(which) + " did not start again: " + e.what());
        }
    }

    test::standby_pair _pair;
    journal& _log;
    int _heartbeat;
    pid_t _pid[2]{-1, -1}; ///< the brokers that should be running; -1 while chaos has one down
    phase _phase = phase::idle;
    int _victim = -1;
    bool _taken_over = false;
    std::chrono::milliseconds _down{0};
    clock_type::time_point _since, _polled;
};

} // namespace

std::unique_ptr<brokers> single_broker(journal& log, int heartbeat_interval_ms) {
    return std::make_unique<single>(log, heartbeat_interval_ms);
}

std::unique_ptr<brokers> broker_pair(journal& log, int heartbeat_interval_ms) {
    return std::make_unique<pair>(log, heartbeat_interval_ms);
}

} // namespace deferq::chaos
