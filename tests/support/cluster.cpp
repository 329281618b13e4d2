#include "cluster.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include "deferq/client.hpp"

#include <fstream>
#include <regex>
#include <stdexcept>

namespace deferq::test {

cluster::cluster(std::string name) {
    _log_dir = std::string(DEFERQ_BINARY_DIR) + "/test-logs";
    ::mkdir(_log_dir.c_str(), 0755);
    static int instances = 0;
    _log_dir += "/" + name + "-" + std::to_string(::getpid()) + "-" + std::to_string(++instances);
    ::mkdir(_log_dir.c_str(), 0755);
}

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
    launch_broker("tcp://127.0.0.1:*", "tcp://127.0.0.1:*");
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
            struct timespec pause {
                0, 100'000'000
            };
            nanosleep(&pause, nullptr);
        }
    }
}

void cluster::kill_broker() {
    if (_broker) _broker->kill();
}

int cluster::joined_count() const {
    auto text = read_file(_log_dir + "/broker.log");
    int count = 0;
    for (std::size_t at = text.find(" joined: "); at != std::string::npos;
         at = text.find(" joined: ", at + 1))
        ++count;
    return count;
}

process& cluster::spawn_worker(const std::string& name, std::vector<std::string> extra) {
    std::vector<std::string> argv{DEFERQ_WORKER_BIN, "--broker", _worker_endpoint, "--name", name,
                                  "--log-level",     "debug"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    _workers.push_back(std::make_unique<process>(argv, _log_dir + "/worker-" + name + ".log"));
    return *_workers.back();
}

process& cluster::add_worker(const std::string& name, std::vector<std::string> extra) {
    auto before = joined_count();
    auto& worker = spawn_worker(name, std::move(extra));
    if (!eventually([&] { return joined_count() > before || worker.exited(); },
                    std::chrono::seconds{20}) ||
        worker.exited())
        throw std::runtime_error("worker " + name + " did not join; log:\n" + worker.log());
    return worker;
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

} // namespace deferq::test
