// Jobs outlive their broker (docs/protocol.md §3c): the broker is killed with -9 under load and
// restarted, twice; every call ends once with its value and every job ran once (the workers count
// each execution in a shared file).

#include "cluster.hpp"

#include "deferq/client.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

using namespace std::chrono_literals;
using deferq::test::cluster;
using deferq::test::eventually;

namespace {

const std::vector<std::string> fast_heartbeat{
    "--heartbeat-interval", std::to_string(deferq::test::test_heartbeat(250ms).count()),
    "--liveness", "3"};

std::string counted_plugin() {
    return std::string(DEFERQ_TEST_PLUGIN_DIR) + "/libcounted_jobs.so";
}

/// How many times each key ran, from the workers' execution log.
std::map<std::string, int> executions(const std::string& path) {
    std::map<std::string, int> runs;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line))
        ++runs[line];
    return runs;
}

} // namespace

TEST_CASE("kill -9 of the broker under load, twice: every call ends once with its value and "
          "every job ran once",
          "[fault][adoption]") {
    cluster c("restart-once");
    auto exec_log = c.log_dir() + "/executions.log";
    ::setenv("DEFERQ_EXEC_LOG", exec_log.c_str(), 1); // the workers inherit it
    c.start_broker(fast_heartbeat);
    for (auto name : {"w1", "w2", "w3", "w4"})
        c.add_worker(name, {"--concurrency", "2", "--plugin", counted_plugin()});
    deferq::Client client({.broker = c.client_endpoint()});

    constexpr int calls = 300;
    std::vector<std::atomic<int>> fired(calls);
    std::atomic<int> done{0}, wrong{0}, failed{0};
    std::mutex mutex;
    std::string first_failure;
    for (int i = 0; i < calls; ++i) {
        auto key = "k" + std::to_string(i);
        client.call_with<std::string>({.timeout = 180s}, "counted", key, 300.0)
            .add_callbacks(
                [&, i, key](const std::string& value) {
                    fired[i].fetch_add(1);
                    if (value != key) wrong.fetch_add(1);
                    done.fetch_add(1);
                },
                [&, i](const deferq::Failure& failure) {
                    fired[i].fetch_add(1);
                    failed.fetch_add(1);
                    done.fetch_add(1);
                    std::lock_guard lock(mutex);
                    if (first_failure.empty()) first_failure = failure.what();
                });
    }
    for (int threshold : {40, 150}) {
        REQUIRE(eventually([&] { return done.load() >= threshold; }, 120s));
        c.kill_broker();
        std::this_thread::sleep_for(200ms);
        c.restart_broker();
    }
    REQUIRE(eventually([&] { return done.load() >= calls; }, 180s));
    std::this_thread::sleep_for(500ms); // a second firing would show here
    int lost = 0, duplicated = 0;
    for (auto& count : fired) {
        if (count == 0) ++lost;
        if (count > 1) ++duplicated;
    }
    auto runs = executions(exec_log);
    int ran_twice = 0, never_ran = 0;
    for (int i = 0; i < calls; ++i) {
        auto found = runs.find("k" + std::to_string(i));
        if (found == runs.end())
            ++never_ran;
        else if (found->second > 1)
            ++ran_twice;
    }
    auto status = c.status()["counters"];
    std::cout << "broker killed twice: " << calls << " calls, " << runs.size() << " keys executed, "
              << ran_twice << " more than once; the last broker adopted " << status["jobs_adopted"]
              << " job(s), parked " << status["resent_parked"] << " resent call(s), refused "
              << status["adoptions_refused"] << "\n";
    INFO("first failure: " << (first_failure.empty() ? "none" : first_failure));
    INFO("the last broker: jobs_adopted " << status["jobs_adopted"] << ", resent_parked "
                                          << status["resent_parked"] << ", adoptions_refused "
                                          << status["adoptions_refused"]);
    INFO("broker log:\n" << c.broker().log());
    CHECK(lost == 0);
    CHECK(duplicated == 0);
    CHECK(wrong == 0);
    CHECK(failed == 0);
    CHECK(never_ran == 0);
    CHECK(ran_twice == 0);
    CHECK(status["jobs_adopted"].get<int>() > 0);
}
