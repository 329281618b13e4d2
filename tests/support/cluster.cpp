#include "cluster.hpp"

#include "http.hpp"
#include "ports.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include "deferq/client.hpp"

#include <fstream>
#include <regex>
#include <stdexcept>

namespace deferq::test {

namespace {

/// <build>/test-logs/<name>-<pid>-<n>/, created.
std::string make_log_dir(const std::string& name) {
    auto dir = std::string(DEFERQ_BINARY_DIR) + "/test-logs";
    ::mkdir(dir.c_str(), 0755);
    static int instances = 0;
    dir += "/" + name + "-" + std::to_string(::getpid()) + "-" + std::to_string(++instances);
    ::mkdir(dir.c_str(), 0755);
    return dir;
}

int count_joined(const std::string& text) {
    int count = 0;
    for (std::size_t at = text.find(" joined: "); at != std::string::npos;
         at = text.find(" joined: ", at + 1))
        ++count;
    return count;
}

void pause_100ms() {
    struct timespec pause {
        0, 100'000'000
    };
    nanosleep(&pause, nullptr);
}

std::string local(int port) {
    return "tcp://127.0.0.1:" + std::to_string(port);
}

/// Starts deferq-worker `name` on `endpoint` (one broker or a list), logging in `log_dir`; `into`
/// keeps the process.
process& start_worker(std::vector<std::unique_ptr<process>>& into, const std::string& endpoint,
                      const std::string& log_dir, const std::string& name,
                      std::vector<std::string> extra, environment_list environment) {
    std::vector<std::string> argv{DEFERQ_WORKER_BIN, "--broker", endpoint, "--name", name,
                                  "--log-level",     "debug"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    into.push_back(std::make_unique<process>(argv, log_dir + "/worker-" + name + ".log",
                                             std::move(environment)));
    return *into.back();
}

/// Starts a worker with `peers.spawn_worker` and waits until `peers.joined_count()` says a broker
/// logged it joined; throws (with its log) when it exits or does not join within 20 s.
template <typename Peers>
process& start_joined_worker(Peers& peers, const std::string& name, std::vector<std::string> extra,
                             environment_list environment) {
    auto before = peers.joined_count();
    auto& worker = peers.spawn_worker(name, std::move(extra), std::move(environment));
    if (!eventually([&] { return peers.joined_count() > before || worker.exited(); },
                    std::chrono::seconds{20}) ||
        worker.exited())
        throw std::runtime_error("worker " + name + " did not join; log:\n" + worker.log());
    return worker;
}

} // namespace

cluster::cluster(std::string name) : _log_dir(make_log_dir(name)) {}

cluster::~cluster() {
    _workers.clear();
    _broker.reset();
}

void cluster::launch_broker(const std::string& clients, const std::string& workers) {
    auto ready = _log_dir + "/broker-ready-" + std::to_string(++_broker_starts);
    ::unlink(ready.c_str());
    std::vector<std::string> argv{
        DEFERQ_BROKER_BIN, "--clients", clients,       "--workers", workers,
        "--ready-file",    ready,       "--log-level", "debug"};
    argv.insert(argv.end(), _broker_extra.begin(), _broker_extra.end());
    argv.insert(argv.begin(), _broker_wrapper.begin(), _broker_wrapper.end());
    _broker = std::make_unique<process>(argv, _log_dir + "/broker.log");
    if (!eventually([&] { return ::access(ready.c_str(), R_OK) == 0 || _broker->exited(); },
                    std::chrono::seconds{20}) ||
        _broker->exited())
        throw std::runtime_error("broker did not start; log:\n" + _broker->log());
    auto text = read_file(ready);
    std::smatch match;
    if (std::regex_search(text, match, std::regex("clients=(\\S+)"))) _client_endpoint = match[1];
    if (std::regex_search(text, match, std::regex("workers=(\\S+)"))) _worker_endpoint = match[1];
    _http_endpoint.clear();
    if (std::regex_search(text, match, std::regex("http=(\\S+)"))) _http_endpoint = match[1];
}

void cluster::start_broker(std::vector<std::string> extra, std::vector<std::string> wrapper) {
    _broker_extra = std::move(extra);
    _broker_wrapper = std::move(wrapper);
    // Ports outside the kernel's ephemeral range (tests/support/ports.hpp), so that a restart finds
    // them free; if something outside the tests holds one, new ones.
    for (int attempt = 0;; ++attempt) {
        try {
            launch_broker(local(free_port()), local(free_port()));
            return;
        } catch (const std::exception& e) {
            if (attempt >= 5 ||
                std::string(e.what()).find("Address already in use") == std::string::npos)
                throw;
        }
    }
}

void cluster::restart_broker() {
    if (_broker) _broker->kill();
    // The old port may linger briefly in the kernel; retry for a while.
    for (int attempt = 0;; ++attempt) {
        try {
            launch_broker(_client_endpoint, _worker_endpoint);
            return;
        } catch (const std::exception&) {
            if (attempt >= 50) throw;
            pause_100ms();
        }
    }
}

void cluster::kill_broker() {
    if (_broker) _broker->kill();
}

int cluster::joined_count() const {
    return count_joined(read_file(_log_dir + "/broker.log"));
}

process& cluster::spawn_worker(const std::string& name, std::vector<std::string> extra,
                               environment_list environment) {
    return start_worker(_workers, _worker_endpoint, _log_dir, name, std::move(extra),
                        std::move(environment));
}

process& cluster::add_worker(const std::string& name, std::vector<std::string> extra,
                             environment_list environment) {
    return start_joined_worker(*this, name, std::move(extra), std::move(environment));
}

nlohmann::json cluster::status() {
    deferq::Client client({.broker = _client_endpoint});
    auto reply =
        client.call_with<deferq::msgpack_value>({.timeout = std::chrono::seconds{10}}, "mmi.status")
            .get();
    return nlohmann::json::from_msgpack(reply.bytes);
}

std::size_t cluster::broker_rss() {
    std::ifstream in("/proc/" + std::to_string(_broker->pid()) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
    return 0;
}

run_result cluster::cli(std::vector<std::string> args, std::chrono::milliseconds timeout) {
    std::vector<std::string> argv{DEFERQ_CLI_BIN, "--broker", _client_endpoint};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, timeout);
}

standby_pair::standby_pair(std::string name) : _log_dir(make_log_dir(name)) {
    for (int which : {primary, backup})
        for (auto* port : {&_clients[which], &_workers[which], &_peers[which]})
            *port = free_port();
}

standby_pair::~standby_pair() {
    _worker_processes.clear();
    for (auto& broker : _brokers)
        broker.reset();
}

process& standby_pair::start(int which, std::optional<std::vector<std::string>> extra) {
    if (extra) _extra[which] = std::move(*extra);
    if (_brokers[which]) _brokers[which]->kill();
    // The old ports may linger briefly after a kill: the broker then exits; start it again.
    for (int attempt = 0;; ++attempt) {
        auto ready = _log_dir + "/ready-" + role(which) + "-" + std::to_string(++_starts);
        auto log = _log_dir + "/" + role(which) + "-" + std::to_string(_starts) + ".log";
        std::vector<std::string> argv{DEFERQ_BROKER_BIN,
                                      "--clients",
                                      local(_clients[which]),
                                      "--workers",
                                      local(_workers[which]),
                                      "--peer-bind",
                                      local(_peers[which]),
                                      "--peer",
                                      local(_peers[1 - which]),
                                      "--http",
                                      "127.0.0.1:0",
                                      "--ready-file",
                                      ready,
                                      "--log-level",
                                      "debug"};
        if (which == backup) argv.push_back("--backup");
        argv.insert(argv.end(), _extra[which].begin(), _extra[which].end());
        _brokers[which] = std::make_unique<process>(argv, log);
        _logs.push_back(log);
        auto& broker = *_brokers[which];
        if (eventually([&] { return ::access(ready.c_str(), R_OK) == 0 || broker.exited(); },
                       std::chrono::seconds{20}) &&
            !broker.exited()) {
            std::smatch match;
            auto text = read_file(ready);
            if (std::regex_search(text, match, std::regex("http=(\\S+)"))) _http[which] = match[1];
            return broker;
        }
        if (attempt >= 50)
            throw std::runtime_error("the " + role(which) + " did not start; log:\n" +
                                     broker.log());
        broker.kill();
        pause_100ms();
    }
}

nlohmann::json standby_pair::status(int which) {
    if (!_brokers[which] || _http[which].empty()) return nullptr;
    auto reply = http_get(_http[which], "/status.json");
    if (reply.status != 200) return nullptr;
    try {
        return nlohmann::json::parse(reply.body);
    } catch (const std::exception&) {
        return nullptr;
    }
}

std::string standby_pair::state(int which) {
    auto status = this->status(which);
    if (!status.is_object() || !status.contains("standby") || !status["standby"].contains("state"))
        return "";
    return status["standby"]["state"].get<std::string>();
}

process& standby_pair::spawn_worker(const std::string& name, std::vector<std::string> extra,
                                    environment_list environment) {
    return start_worker(_worker_processes, worker_endpoints(), _log_dir, name, std::move(extra),
                        std::move(environment));
}

process& standby_pair::add_worker(const std::string& name, std::vector<std::string> extra,
                                  environment_list environment) {
    return start_joined_worker(*this, name, std::move(extra), std::move(environment));
}

int standby_pair::joined_count() const {
    int count = 0;
    for (auto& log : _logs)
        count += count_joined(read_file(log));
    return count;
}

std::string standby_pair::client_endpoints() const {
    return local(_clients[primary]) + "," + local(_clients[backup]);
}

std::string standby_pair::worker_endpoints() const {
    return local(_workers[primary]) + "," + local(_workers[backup]);
}

} // namespace deferq::test
