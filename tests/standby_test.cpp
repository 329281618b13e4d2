// A standby broker pair (Binary Star, docs/protocol.md §8) on real processes: the active primary
// killed with -9 mid-batch and never restarted, the backup takes over; the primary comes back
// passive (no flip-flop); a backup alone never serves; bad combinations of options are refused.

#include "cluster.hpp"
#include "process.hpp"

#include "deferq/client.hpp"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using deferq::test::eventually;
using deferq::test::process;
using deferq::test::read_file;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

int occurrences(const std::string& text, const std::string& what) {
    int count = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
        ++count;
    return count;
}

constexpr int primary = 0, backup = 1;

constexpr auto heartbeat = deferq::test::test_heartbeat(std::chrono::milliseconds{200});
/// interval × liveness (the default liveness, 3).
constexpr auto expiry = heartbeat * 3;

/// The pair of tests/support/cluster.hpp, as these tests use it: every start at this file's
/// heartbeat, the brokers' logs and states, and workers started without waiting for them.
class broker_pair : public deferq::test::standby_pair {
public:
    using standby_pair::standby_pair;

    /// Starts broker `which` (primary or backup) and waits until it listens. Its interval is
    /// `heartbeat` (the peer state interval too); `extra`: more options, for this start only.
    process& start(int which, std::vector<std::string> extra = {}) {
        extra.insert(extra.begin(), {"--heartbeat-interval", std::to_string(heartbeat.count())});
        return standby_pair::start(which, std::move(extra));
    }

    std::string log(int which) { return broker(which).log(); }

    /// Waits until broker `which` logged that it went to `state` ("active", "passive").
    bool reaches(int which, const std::string& state, std::chrono::milliseconds timeout = 10s) {
        return eventually([&] { return log(which).find("→ " + state + ":") != std::string::npos; },
                          timeout);
    }

    /// Waits until the broker's /status.json (a snapshot at most 250 ms old) shows `state`.
    bool shows(int which, const std::string& state, std::chrono::milliseconds timeout = 5s) {
        return eventually([&] { return this->state(which) == state; }, timeout);
    }

    /// The broker's /status.json (its standby role and state, its counters).
    nlohmann::json status(int which) {
        auto status = standby_pair::status(which);
        REQUIRE(status.is_object());
        return status;
    }

    /// The client endpoint of broker `which` alone.
    std::string client_endpoint(int which) const {
        auto both = client_endpoints();
        auto comma = both.find(',');
        return which == primary ? both.substr(0, comma) : both.substr(comma + 1);
    }

    /// Starts a worker given both brokers' endpoints, without waiting for it.
    process& add_worker(const std::string& name, std::vector<std::string> extra,
                        deferq::test::environment_list environment) {
        return spawn_worker(name, std::move(extra), std::move(environment));
    }
};

/// Lines per key in the workers' execution log (tests/plugins/counted_jobs.cpp).
std::map<std::string, int> executions(const std::string& path) {
    std::map<std::string, int> count;
    std::istringstream lines(read_file(path));
    for (std::string line; std::getline(lines, line);)
        if (!line.empty()) ++count[line];
    return count;
}

} // namespace

TEST_CASE("the active primary killed mid-batch: the backup takes over, every call ends once, and "
          "the primary comes back passive",
          "[standby][integration]") {
    broker_pair pair("standby-failover");
    pair.start(primary);
    pair.start(backup);
    REQUIRE(pair.reaches(primary, "active"));
    REQUIRE(pair.reaches(backup, "passive"));
    CHECK(pair.shows(primary, "active"));
    CHECK(pair.shows(backup, "passive"));
    CHECK(pair.status(backup)["standby"]["role"] == "backup");

    auto exec_log = pair.log_dir() + "/exec.log";
    const std::string plugin = std::string(DEFERQ_TEST_PLUGIN_DIR) + "/libcounted_jobs.so";
    for (int i = 0; i < 4; ++i)
        pair.add_worker("w" + std::to_string(i), {"--concurrency", "2", "--plugin", plugin},
                        {{"DEFERQ_EXEC_LOG", exec_log}});
    REQUIRE(eventually([&] { return occurrences(pair.log(primary), " joined: ") >= 4; }, 20s));

    deferq::Client client({.broker = pair.client_endpoints()});
    constexpr int calls = 200;
    std::mutex mutex;
    std::vector<std::optional<clock_type::time_point>> answered(calls);
    std::atomic<int> answers{0}, wrong{0}, failed{0}, fired{0};
    std::vector<std::string> failures;
    std::vector<deferq::Deferred<std::string>> results;
    for (int i = 0; i < calls; ++i) {
        auto key = "k" + std::to_string(i);
        auto d = client.call_with<std::string>({.timeout = 60s}, "counted", key, 200.0);
        d.add_callback([&, i, key](std::string& value) {
            {
                std::lock_guard lock(mutex);
                answered[i] = clock_type::now();
            }
            if (value != key) ++wrong;
            ++answers;
            ++fired;
        });
        d.add_errback([&](const deferq::Failure& failure) {
            {
                std::lock_guard lock(mutex);
                failures.push_back(failure.what());
            }
            ++failed;
            ++fired;
        });
        results.push_back(std::move(d));
    }
    // Mid-batch: 8 slots, 200 ms each; about a fifth of the calls answered.
    REQUIRE(eventually([&] { return answers.load() >= 40; }, 30s));
    auto killed_at = clock_type::now();
    pair.broker(primary).kill(); // -9, never restarted below until every call ended
    REQUIRE(eventually([&] { return fired.load() == calls; }, 60s));
    for (const auto& failure : failures)
        UNSCOPED_INFO("failed: " << failure);
    CHECK(failed.load() == 0);
    CHECK(wrong.load() == 0);
    CHECK(answers.load() == calls);

    std::optional<clock_type::time_point> first_after_kill;
    for (const auto& at : answered)
        if (at && *at > killed_at && (!first_after_kill || *at < *first_after_kill))
            first_after_kill = at;
    REQUIRE(first_after_kill);
    auto failover = std::chrono::duration<double, std::milli>(*first_after_kill - killed_at);
    // Two heartbeat expiries: 2 × 200 ms × 3 (under a sanitizer 2 × 1000 ms × 3).
    std::printf("standby failover: first answer from the backup %.0f ms after the kill -9 of "
                "the active primary (heartbeat %lld ms, liveness 3; target: within %lld ms)\n",
                failover.count(), static_cast<long long>(heartbeat.count()),
                static_cast<long long>((2 * expiry).count()));
    std::fflush(stdout);
    CHECK(pair.reaches(backup, "active", 1s));
    CHECK_THAT(pair.log(backup), Catch::Contains("and a "));
    CHECK(pair.shows(backup, "active"));
    // The target of issue 17; generous on a loaded machine (3000 ms at the 200 ms heartbeat): the
    // exact figure is printed above.
    CHECK(failover < 5 * expiry);

    // Every key ran once: the jobs running when the primary died were adopted by the backup
    // (workers report what they hold when they register), not run again.
    auto ran = executions(exec_log);
    CHECK(ran.size() == static_cast<std::size_t>(calls));
    int twice = 0;
    for (const auto& [key, count] : ran)
        if (count > 1) ++twice;
    std::printf("standby failover: %zu keys executed, %d of them more than once\n", ran.size(),
                twice);
    std::fflush(stdout);
    CHECK(twice == 0);

    // The primary comes back: it hears its partner active and stands by; no second switch.
    pair.start(primary);
    REQUIRE(pair.reaches(primary, "passive"));
    CHECK(pair.shows(primary, "passive"));
    CHECK(pair.status(primary)["standby"]["role"] == "primary");
    std::this_thread::sleep_for(5 * heartbeat); // several state intervals and expiries
    CHECK(pair.log(backup).find("active →") == std::string::npos);
    CHECK(pair.status(backup)["standby"]["state"] == "active");
    CHECK(pair.log(primary).find("→ active") == std::string::npos);

    // New calls still succeed, from a client that tries the (passive) primary first.
    deferq::Client late({.broker = pair.client_endpoints()});
    CHECK(late.call_with<std::string>({.timeout = 20s}, "counted", "late", 1.0).get() == "late");
    auto cli = deferq::test::run(
        {DEFERQ_CLI_BIN, "--broker", pair.client_endpoints(), "call", "add", "1", "2"}, 30s);
    CHECK(cli.exit_code == 0);
    CHECK_THAT(cli.output, Catch::Contains("3"));
    // `deferq status` with both endpoints reaches the active broker, and says which it is.
    auto status =
        deferq::test::run({DEFERQ_CLI_BIN, "--broker", pair.client_endpoints(), "status"}, 30s);
    CHECK(status.exit_code == 0);
    CHECK_THAT(status.output, Catch::Contains("standby pair: the backup, active"));
    CHECK(pair.status(primary)["counters"]["standby_dropped"].get<std::uint64_t>() > 0);
    CHECK(pair.log(primary).find("→ active") == std::string::npos);
}

TEST_CASE("a backup that never saw its primary never serves", "[standby][integration]") {
    broker_pair pair("standby-alone");
    pair.start(backup);
    deferq::Client client({.broker = pair.client_endpoint(backup)});
    auto call = client.call_with<std::int64_t>({.timeout = 2s}, "add", 1, 2);
    CHECK_THROWS_AS(call.get(), deferq::Failure); // silence, then the client's own timeout
    auto status = pair.status(backup);
    CHECK(status["standby"] == nlohmann::json{{"role", "backup"}, {"state", "backup"}});
    CHECK(status["counters"]["standby_dropped"].get<std::uint64_t>() > 0);
    CHECK(status["counters"]["requests"].get<std::uint64_t>() == 0);
    CHECK(pair.log(backup).find("→ active") == std::string::npos);
}

TEST_CASE("deferq-broker refuses a standby pair's bad options, naming the option",
          "[standby][integration]") {
    auto refused = [](std::vector<std::string> args) {
        args.insert(args.begin(), DEFERQ_BROKER_BIN);
        return deferq::test::run(args, 10s);
    };
    auto backup_alone = refused({"--backup"});
    CHECK(backup_alone.exit_code != 0);
    CHECK_THAT(backup_alone.output, Catch::Contains("--backup needs --peer-bind and --peer"));
    auto half = refused({"--peer-bind", "tcp://127.0.0.1:0"});
    CHECK(half.exit_code != 0);
    CHECK_THAT(half.output, Catch::Contains("--peer-bind needs --peer"));
    auto other_half = refused({"--peer", "tcp://127.0.0.1:1", "--backup"});
    CHECK(other_half.exit_code != 0);
    CHECK_THAT(other_half.output, Catch::Contains("--peer needs --peer-bind"));
}

TEST_CASE("with CURVE, the two brokers share one key pair and the peer link uses it",
          "[standby][integration][security]") {
    broker_pair pair("standby-curve");
    const auto keys = pair.log_dir() + "/keys";
    ::mkdir(keys.c_str(), 0700);
    for (const std::string name : {"broker", "other", "client", "worker"})
        REQUIRE(deferq::test::run({DEFERQ_CLI_BIN, "keygen", keys + "/" + name}, 10s).exit_code ==
                0);
    ::link((keys + "/client.pub").c_str(), (keys + "/clients.list").c_str());
    ::link((keys + "/worker.pub").c_str(), (keys + "/workers.list").c_str());
    auto curve = [&](const std::string& key) {
        return std::vector<std::string>{"--curve-secret-key", keys + "/" + key + ".key",
                                        "--client-keys",      keys + "/clients.list",
                                        "--worker-keys",      keys + "/workers.list"};
    };
    SECTION("the same key pair: the partners hear each other") {
        pair.start(primary, curve("broker"));
        pair.start(backup, curve("broker"));
        CHECK(pair.reaches(primary, "active"));
        CHECK(pair.reaches(backup, "passive"));
        CHECK_THAT(pair.log(backup), Catch::Contains("(CURVE)"));
    }
    SECTION("another key pair: the backup never hears the primary, and never serves") {
        pair.start(primary, curve("broker"));
        pair.start(backup, curve("other"));
        CHECK(pair.reaches(primary, "active")); // alone: it heard nobody
        CHECK_THAT(pair.log(primary), Catch::Contains("serving alone"));
        std::this_thread::sleep_for(5 * heartbeat); // several state intervals
        CHECK(pair.log(backup).find("→ ") == std::string::npos);
        CHECK(pair.status(backup)["standby"]["state"] == "backup");
    }
}
