// Integration tests of issue 8 ("see the cluster"): deferq status, the broker's HTTP endpoints
// (/metrics checked by a strict Prometheus text-format parser, /healthz, /status.json, /) and
// deferq map, against real processes on 127.0.0.1.

#include "cluster.hpp"
#include "http.hpp"
#include "prometheus.hpp"

#include "deferq/client.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <set>
#include <sstream>

using namespace std::chrono_literals;
using deferq::test::cluster;
using deferq::test::eventually;
using json = nlohmann::json;

namespace {

using deferq::test::http_get;

json status_json(cluster& c) {
    auto result = c.cli({"status", "--json"}, 30s);
    INFO(result.output);
    REQUIRE(result.exit_code == 0);
    return json::parse(result.output);
}

const json* find_named(const json& list, const std::string& name) {
    for (const auto& item : list)
        if (item["name"] == name) return &item;
    return nullptr;
}

std::set<std::string> worker_names(const json& status) {
    std::set<std::string> names;
    for (const auto& worker : status["workers"])
        names.insert(worker["name"].get<std::string>());
    return names;
}

} // namespace

TEST_CASE("deferq status shows 3 workers with queued and in-flight jobs while a batch runs, then 2 "
          "after one is killed and expired",
          "[observability][status]") {
    // Heartbeats every second: expiring the killed worker takes 3 s, and a live one stalled on a
    // loaded machine (sanitizers) is not expired by mistake, which would break the exact counts.
    cluster c("status");
    c.start_broker({"--heartbeat-interval", "1000"});
    // 45 jobs of 600 ms on 3 workers: about 9 s, so every worker is still busy when one is killed.
    for (auto name : {"w1", "w2", "w3"})
        c.add_worker(name, {"--concurrency", "1", "--calculate-delay", "600"});

    deferq::Client client({.broker = c.client_endpoint()});
    std::vector<deferq::Deferred<double>> batch;
    for (int i = 0; i < 45; ++i)
        batch.push_back(client.call_with<double>({.timeout = 60s}, "calculate", i, 1));

    // While the batch runs: three busy workers, a queue behind them.
    json status;
    REQUIRE(eventually(
        [&] {
            status = status_json(c);
            const auto* calculate = find_named(status["functions"], "calculate");
            return calculate && (*calculate)["in_flight"] == 3 && (*calculate)["queued"] > 0 &&
                   (*calculate)["oldest_queued_ms"] > 0; // integer ms: 0 within the first ms
        },
        10s));
    INFO(status.dump(2));
    CHECK(status["workers"].size() == 3);
    CHECK(worker_names(status) == std::set<std::string>{"w1", "w2", "w3"});
    for (const auto& worker : status["workers"]) {
        CHECK(worker["slots"] == 1);
        CHECK(worker["busy"] == 1);
        CHECK(worker["host"] == "127.0.0.1");
        CHECK(worker["id"].get<std::string>().size() == 16);
        CHECK(worker["last_seen_ms"].get<std::int64_t>() < 3000); // heard within its expiry
        CHECK_THAT(worker["functions"].dump(), Catch::Contains("\"calculate\""));
    }
    const auto& calculate = *find_named(status["functions"], "calculate");
    CHECK(calculate["workers"] == 3);
    CHECK(calculate["oldest_queued_ms"].get<std::int64_t>() < 10'000);
    CHECK(status["counters"]["live_workers"] == 3);
    CHECK(status["counters"]["queued_jobs"].get<std::uint64_t>() > 0);
    CHECK(status["counters"]["running_jobs"] == 3);
    CHECK(status["counters"]["live_clients"].get<std::uint64_t>() >= 1);
    CHECK(status["clients"].size() >= 1);
    CHECK(status["clients"][0]["pending"].get<std::uint64_t>() > 0); // most pending first
    CHECK(status["rates"]["window_s"].get<double>() > 0);

    // The table says the same for people.
    auto table = c.cli({"status"}, 30s);
    INFO(table.output);
    CHECK(table.exit_code == 0);
    CHECK_THAT(table.output, Catch::Contains("WORKER") && Catch::Contains("w1") &&
                                 Catch::Contains("w2") && Catch::Contains("w3") &&
                                 Catch::Contains("FUNCTION") && Catch::Contains("calculate"));

    // SIGKILL one: heartbeats expire it (1 s × 3); its job goes back to the queue.
    c.workers()[1]->kill();
    REQUIRE(eventually([&] { return status_json(c)["workers"].size() == 2; }, 15s));
    status = status_json(c);
    CHECK(worker_names(status) == std::set<std::string>{"w1", "w3"});
    CHECK(status["counters"]["workers_lost"] == 1);
    CHECK(status["counters"]["live_workers"] == 2);
    CHECK(status["counters"]["requeued"].get<std::uint64_t>() >= 1);
    CHECK((*find_named(status["functions"], "calculate"))["workers"] == 2);

    // Nothing lost; the outcomes are counted per function.
    auto values = deferq::gather_results(std::move(batch)).get(60s);
    CHECK(values.size() == 45);
    status = status_json(c);
    const auto& done = *find_named(status["functions"], "calculate");
    CHECK(done["done"] == 45);
    CHECK(done["failed"] == 0);
    CHECK(done["in_flight"] == 0);
    CHECK(done["queued"] == 0);
    CHECK(done["service_p50_ms"].get<double>() >= 100);
    CHECK(done["service_p99_ms"].get<double>() >= done["service_p50_ms"].get<double>());

    // --watch refreshes until stopped: one JSON document per line when not on a terminal.
    auto watched = c.cli({"status", "--json", "--watch", "0.2"}, 8s);
    std::istringstream lines(watched.output);
    std::string line;
    int frames = 0;
    while (std::getline(lines, line))
        if (!line.empty() && json::parse(line)["workers"].size() == 2) ++frames;
    CHECK(frames >= 2);
}

TEST_CASE("the broker's /metrics parses as strict Prometheus text and its counters match the jobs "
          "run, and /healthz, /status.json and / answer",
          "[observability][http]") {
    cluster c("metrics");
    c.start_broker({"--http", "127.0.0.1:0"});
    REQUIRE_FALSE(c.http_endpoint().empty());
    c.add_worker("m1", {"--concurrency", "2"});
    c.add_worker("m2", {"--concurrency", "2"});

    deferq::Client client({.broker = c.client_endpoint()});
    std::vector<deferq::Deferred<double>> adds;
    for (int i = 0; i < 200; ++i)
        adds.push_back(client.call_with<double>({.timeout = 30s}, "add", i, 1));
    CHECK(deferq::gather_results(std::move(adds)).get(60s).size() == 200);
    int failures = 0;
    for (int i = 0; i < 5; ++i) {
        try {
            client.call_with<std::int64_t>({.timeout = 30s}, "fib", -1).get(30s);
        } catch (const deferq::Failure& failure) {
            failures += failure.code() == deferq::error_code::remote_error;
        }
    }
    CHECK(failures == 5);

    // The snapshot behind the HTTP endpoints is at most 250 ms old.
    deferq::test::prometheus_exposition metrics;
    std::string text;
    REQUIRE(eventually(
        [&] {
            auto reply = http_get(c.http_endpoint(), "/metrics");
            if (reply.status != 200) return false;
            text = reply.body;
            metrics = deferq::test::parse_prometheus(text); // throws on any format error
            return metrics.value("deferq_errors_total") == 5.0;
        },
        10s));
    INFO(text);
    auto reply = http_get(c.http_endpoint(), "/metrics");
    CHECK_THAT(reply.content_type, Catch::StartsWith("text/plain; version=0.0.4"));

    // Counters end in _total; every family has HELP and TYPE.
    for (const auto& [family, type] : metrics.types) {
        CHECK(metrics.helps.count(family) == 1);
        if (type == "counter") CHECK_THAT(family, Catch::EndsWith("_total"));
    }
    CHECK(metrics.types.at("deferq_queue_wait_seconds") == "histogram");
    CHECK(metrics.types.at("deferq_service_time_seconds") == "histogram");
    CHECK(metrics.types.at("deferq_queued_jobs") == "gauge");

    CHECK(metrics.value("deferq_requests_total") == 205.0);
    CHECK(metrics.value("deferq_replies_total") == 200.0);
    CHECK(metrics.value("deferq_live_workers") == 2.0);
    CHECK(metrics.value("deferq_queued_jobs") == 0.0);
    CHECK(metrics.value("deferq_running_jobs") == 0.0);
    CHECK(metrics.value("deferq_function_calls_done_total", {{"function", "add"}}) == 200.0);
    CHECK(metrics.value("deferq_function_calls_failed_total",
                        {{"function", "fib"}, {"code", "remote_error"}}) == 5.0);
    CHECK_FALSE(metrics.value("deferq_function_calls_failed_total",
                              {{"function", "add"}, {"code", "remote_error"}}));
    CHECK(metrics.value("deferq_service_time_seconds_count", {{"function", "add"}}) == 200.0);
    CHECK(metrics.value("deferq_service_time_seconds_bucket",
                        {{"function", "add"}, {"le", "+Inf"}}) == 200.0);
    CHECK(metrics.value("deferq_queue_wait_seconds_count", {{"function", "add"}}) == 200.0);
    CHECK(metrics.value("deferq_service_time_seconds_count", {{"function", "fib"}}) == 5.0);
    CHECK(*metrics.value("deferq_service_time_seconds_sum", {{"function", "add"}}) > 0.0);
    double worker_jobs = 0, worker_failures = 0;
    std::set<std::string> workers;
    for (const auto& sample : metrics.samples) {
        if (sample.name == "deferq_worker_jobs_done_total") {
            worker_jobs += sample.value;
            workers.insert(sample.labels.at("worker"));
        }
        if (sample.name == "deferq_worker_failures_total") worker_failures += sample.value;
    }
    CHECK(worker_jobs == 205);
    CHECK(worker_failures == 5);
    CHECK(workers == std::set<std::string>{"m1", "m2"});

    auto health = http_get(c.http_endpoint(), "/healthz");
    CHECK(health.status == 200);
    CHECK(health.body == "ok\n");

    auto status = http_get(c.http_endpoint(), "/status.json");
    CHECK(status.status == 200);
    CHECK(status.content_type == "application/json");
    auto parsed = json::parse(status.body);
    CHECK(worker_names(parsed) == std::set<std::string>{"m1", "m2"});
    CHECK((*find_named(parsed["functions"], "add"))["done"] == 200);

    auto page = http_get(c.http_endpoint(), "/");
    CHECK(page.status == 200);
    CHECK_THAT(page.content_type, Catch::StartsWith("text/html"));
    CHECK_THAT(page.body, Catch::StartsWith("<!DOCTYPE html>") && Catch::Contains("status.json"));
    // Self-contained: nothing loaded from elsewhere.
    CHECK_THAT(page.body, !Catch::Contains("src=\"http") && !Catch::Contains("href=\"http"));

    CHECK(http_get(c.http_endpoint(), "/no-such-page").status == 404);
}

TEST_CASE("deferq map writes 1,000 results in input order, from a file or a range",
          "[observability][map]") {
    cluster c("map");
    c.start_broker();
    c.add_worker("a", {"--concurrency", "4"});
    c.add_worker("b", {"--concurrency", "4"});

    auto input = c.log_dir() + "/map-input.jsonl", output = c.log_dir() + "/map-output.jsonl";
    {
        std::ofstream out(input);
        for (int i = 0; i < 1000; ++i)
            out << "[" << i << ", 0.5]\n";
    }
    auto check_output = [&](const std::string& path) {
        std::ifstream in(path);
        std::string line;
        int count = 0;
        while (std::getline(in, line)) {
            auto record = json::parse(line);
            if (record["index"] != count || record["result"] != count + 0.5) {
                FAIL_CHECK("line " << count << ": " << line);
                return;
            }
            ++count;
        }
        CHECK(count == 1000);
    };

    auto from_file =
        c.cli({"map", "add", "--input", input, "--output", output, "--in-flight", "50"}, 120s);
    INFO(from_file.output);
    CHECK(from_file.exit_code == 0);
    CHECK_THAT(from_file.output, Catch::Contains("1000 call(s)") && Catch::Contains("1000 ok"));
    check_output(output);

    auto from_range = c.cli({"map", "add", "--range", "0:1000", "0.5", "--output", output}, 120s);
    INFO(from_range.output);
    CHECK(from_range.exit_code == 0);
    check_output(output);

    // {} places the number among fixed arguments: add(0.5, i).
    auto placed =
        c.cli({"map", "add", "--range", "0:6:2", "0.5", "{}", "--output", output, "--quiet"}, 60s);
    CHECK(placed.exit_code == 0);
    std::ifstream in(output);
    std::string line;
    std::vector<double> results;
    while (std::getline(in, line))
        results.push_back(json::parse(line)["result"].get<double>());
    CHECK(results == std::vector<double>{0.5, 2.5, 4.5});

    auto bad_range = c.cli({"map", "add", "--range", "10"}, 30s);
    CHECK(bad_range.exit_code == 2);
}

TEST_CASE("deferq map reports a failing input by code and exits non-zero", "[observability][map]") {
    cluster c("map-failure");
    c.start_broker();
    c.add_worker("a", {"--concurrency", "2"});
    auto input = c.log_dir() + "/map-input.jsonl", output = c.log_dir() + "/map-output.jsonl";
    {
        std::ofstream out(input);
        out << "[10]\n[-1]\n\n[12]\nnot json\n[\"x\"]\n";
    }
    auto result = c.cli({"map", "fib", "--input", input, "--output", output}, 60s);
    INFO(result.output);
    CHECK(result.exit_code == 1);
    CHECK_THAT(result.output,
               Catch::Contains("5 call(s)") && Catch::Contains("2 ok") &&
                   Catch::Contains("3 failed") && Catch::Contains("remote_error 1") &&
                   Catch::Contains("bad_input 1") && Catch::Contains("bad_arguments 1"));
    std::ifstream in(output);
    std::vector<json> lines;
    std::string line;
    while (std::getline(in, line))
        lines.push_back(json::parse(line));
    REQUIRE(lines.size() == 5);
    CHECK(lines[0]["result"] == 55);
    CHECK(lines[1]["error"]["code"] == "remote_error");
    CHECK(lines[1]["error"]["worker"] == "a");
    CHECK(lines[2]["result"] == 144);
    CHECK(lines[3]["error"]["code"] == "bad_input");
    CHECK_THAT(lines[3]["error"]["message"].get<std::string>(), Catch::Contains("line 5"));
    CHECK(lines[4]["error"]["code"] == "bad_arguments");
    for (std::size_t i = 0; i < lines.size(); ++i)
        CHECK(lines[i]["index"] == i);
}

TEST_CASE(
    "JSON logs (--log-format json) are one valid object per line in all three programs, whatever "
    "the names hold",
    "[observability][logs]") {
    cluster c("json-logs");
    c.start_broker({"--log-format", "json"});
    auto& worker = c.add_worker("odd \"name\" \\ here", {"--log-format", "json"});
    auto cli = c.cli({"--log-format", "json", "--log-level", "debug", "call", "add", "1", "2"});
    CHECK(cli.exit_code == 0);
    worker.signal(SIGTERM);
    CHECK(worker.wait(20s) == std::optional<int>(0));
    // The broker logs the worker leaving at info: wait for it, bounded.
    REQUIRE(eventually(
        [&] {
            return deferq::test::read_file(c.broker().log_path()).find("disconnected holding") !=
                   std::string::npos;
        },
        10s));

    auto check_lines = [](const std::string& text, const std::string& program, bool required) {
        INFO(program << " log:\n" << text);
        std::istringstream lines(text);
        std::string line;
        int objects = 0;
        while (std::getline(lines, line)) {
            if (line.empty() || line[0] != '{') continue; // the CLI's result on stdout
            auto record = json::parse(line);              // throws on a broken line
            CHECK(record.contains("time"));
            CHECK(record.contains("level"));
            CHECK(record["msg"].is_string());
            ++objects;
        }
        if (required) CHECK(objects > 0);
    };
    auto broker_log = deferq::test::read_file(c.broker().log_path());
    check_lines(broker_log, "broker", true);
    check_lines(deferq::test::read_file(worker.log_path()), "worker", true);
    check_lines(cli.output, "deferq", false); // quiet when all goes well; valid when it speaks
    // The events that matter, at their levels.
    CHECK_THAT(broker_log, Catch::Contains(R"("level":"info")") &&
                               Catch::Contains(R"(worker odd \"name\" \\x5c here joined: )") &&
                               Catch::Contains("from 127.0.0.1") &&
                               Catch::Contains("disconnected holding 0 job(s)"));
}

TEST_CASE("a full queue is logged once as a limit hit and counted as overloaded for its function",
          "[observability][logs]") {
    cluster c("limit-log");
    c.start_broker({"--max-queue-length", "2"});
    deferq::Client client({.broker = c.client_endpoint()});
    std::vector<deferq::Deferred<double>> calls;
    for (int i = 0; i < 4; ++i)
        calls.push_back(client.call_with<double>({.timeout = 2s}, "nobody_offers_this", i));
    int overloaded = 0;
    for (auto& call : calls) {
        try {
            call.get(10s);
        } catch (const deferq::Failure& failure) {
            overloaded += failure.code() == deferq::error_code::overloaded;
        }
    }
    CHECK(overloaded == 2);
    auto log = deferq::test::read_file(c.broker().log_path());
    INFO(log);
    CHECK_THAT(log, Catch::Contains("limit hit: queue of 'nobody_offers_this' is full (2 jobs)"));
    // At most once per heartbeat interval: the second refusal, right after, is not logged.
    CHECK(log.find("limit hit") == log.rfind("limit hit"));
}
