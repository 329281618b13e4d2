// Integration tests of issue 14 ("every call ends with a clear answer", mistakes included), on
// real processes: malformed endpoints, results JSON cannot hold, integers typed on the command
// line, quantiles in `deferq status`, the built-in bytes(n).

#include "cluster.hpp"
#include "http.hpp"

#include "deferq/client.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <iomanip>
#include <sstream>

using namespace std::chrono_literals;
using deferq::test::cluster;
using nlohmann::json;

namespace {

bool contains(const std::string& text, std::string_view part) {
    return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("deferq and deferq-worker refuse a malformed --broker, naming the option and the value",
          "[endpoint][cli]") {
    // Before: the CLI aborted (`terminate called after throwing zmq::error_t`), the worker said
    // only "Invalid argument".
    auto cli = deferq::test::run(
        {DEFERQ_CLI_BIN, "--broker", "localhost:5555", "call", "add", "1", "2"}, 30s);
    INFO(cli.output);
    CHECK(cli.exit_code != 0);
    CHECK(cli.exit_code < 128); // an exit, not a signal (abort is 134)
    CHECK(contains(cli.output, "--broker"));
    CHECK(contains(cli.output, "'localhost:5555' has no transport: write tcp://localhost:5555"));
    CHECK_FALSE(contains(cli.output, "terminate"));

    // The same value from the environment, for the worker.
    auto worker = deferq::test::run({DEFERQ_WORKER_BIN}, 30s, {{"DEFERQ_BROKER", "tcp://broker"}});
    INFO(worker.output);
    CHECK(worker.exit_code != 0);
    CHECK(worker.exit_code < 128);
    CHECK(contains(worker.output, "--broker"));
    CHECK(contains(worker.output, "'tcp://broker' has no port"));

    // A list of endpoints (a standby pair, docs/protocol.md §8): each item is checked, and a bad
    // one is named.
    auto list = deferq::test::run(
        {DEFERQ_CLI_BIN, "--broker", "tcp://a:5555,b:5555", "call", "add", "1", "2"}, 30s);
    INFO(list.output);
    CHECK(list.exit_code != 0);
    CHECK(list.exit_code < 128);
    CHECK(contains(list.output, "--broker"));
    CHECK(contains(list.output, "'b:5555' has no transport"));
}

TEST_CASE("the example client, given a malformed endpoint, exits with the error instead of "
          "aborting",
          "[endpoint][examples]") {
    // Any C++ program using Client: the constructor throws a catchable error (the example lets it
    // reach main's end, where std::terminate would abort; it catches std::exception).
    auto result = deferq::test::run({DEFERQ_EXAMPLE_CLIENT_BIN, "localhost:5555"}, 30s);
    INFO(result.output);
    CHECK(result.exit_code != 0);
    CHECK(result.exit_code < 128);
    CHECK(contains(result.output, "'localhost:5555' has no transport"));
}

TEST_CASE("add(1e308, 1e308) fails with the same bad_result in deferq call, deferq map and the "
          "JSON-RPC gateway",
          "[json][cli][gateway]") {
    // Before: `deferq call` printed null with exit code 0; the gateway answered bad_result.
    cluster c("no-json-form");
    c.start_broker({"--http", "127.0.0.1:0", "--gateway"});
    c.add_worker("w\xff"); // a name that is not UTF-8: the status replaces it, never fails
    const std::string rule = "the result has no JSON form: inf at $: JSON has no infinity or NaN";

    auto call = c.cli({"call", "add", "1e308", "1e308"}, 30s);
    INFO(call.output);
    CHECK(call.exit_code == 1);
    CHECK(contains(call.output, "deferq: bad_result: " + rule));
    CHECK_FALSE(contains(call.output, "null"));

    auto inputs = c.log_dir() + "/inputs.jsonl", outputs = c.log_dir() + "/outputs.jsonl";
    std::ofstream(inputs) << "[1e308, 1e308]\n[1, 2]\n";
    auto map = c.cli({"map", "add", "--input", inputs, "--output", outputs, "--quiet"}, 30s);
    INFO(map.output);
    CHECK(map.exit_code == 1);
    CHECK(contains(map.output, "1 ok, 1 failed (bad_result 1)"));
    std::ifstream lines(outputs);
    std::string first, second;
    std::getline(lines, first);
    std::getline(lines, second);
    CHECK(json::parse(first) ==
          json{{"index", 0}, {"error", {{"code", "bad_result"}, {"message", rule}}}});
    CHECK(json::parse(second) == json{{"index", 1}, {"result", 3}});

    auto reply = deferq::test::http_post(
        c.http_endpoint(), "/rpc",
        R"({"jsonrpc": "2.0", "method": "add", "params": [1e308, 1e308], "id": 1})",
        "application/json");
    REQUIRE(reply.status == 200);
    auto answer = json::parse(reply.body);
    CHECK(answer["error"]["code"] == -32603);
    CHECK(answer["error"]["data"]["code"] == "bad_result");
    CHECK(answer["error"]["message"] == rule);

    // The status, both ways, through the same conversion: the worker's name with U+FFFD.
    auto status = c.cli({"status", "--json"}, 30s);
    REQUIRE(status.exit_code == 0);
    CHECK(json::parse(status.output)["workers"][0]["name"] == "w\xef\xbf\xbd");
    json page; // the snapshot /status.json serves is at most 250 ms old
    CHECK(deferq::test::eventually(
        [&] {
            auto reply = deferq::test::http_get(c.http_endpoint(), "/status.json");
            page = reply.status == 200 ? json::parse(reply.body) : json();
            return page.is_object() && !page["workers"].empty();
        },
        10s));
    INFO(page.dump());
    CHECK(page["workers"][0]["name"] == "w\xef\xbf\xbd");
}

TEST_CASE("integers typed on the command line, in map inputs and in JSON-RPC params stay integers",
          "[json][cli][gateway]") {
    // Before: `deferq call fib 18446744073709551615` said "expected int64, got float".
    cluster c("integers");
    c.start_broker({"--http", "127.0.0.1:0", "--gateway"});
    c.add_worker("w1");

    auto echo = [&](std::vector<std::string> words) {
        std::vector<std::string> args{"call", "echo"};
        args.insert(args.end(), words.begin(), words.end());
        auto result = c.cli(args, 30s);
        INFO(result.output);
        CHECK(result.exit_code == 0);
        return result.output;
    };
    CHECK(echo({"18446744073709551615"}) == "18446744073709551615\n");
    CHECK(echo({"-9223372036854775808"}) == "-9223372036854775808\n");
    CHECK(echo({"--json", R"({"a": 18446744073709551615, "b": -1, "c": 2.5})"}) ==
          R"({"a":18446744073709551615,"b":-1,"c":2.5})"
          "\n");

    auto fib = c.cli({"call", "fib", "18446744073709551615"}, 30s);
    INFO(fib.output);
    CHECK(fib.exit_code == 1);
    CHECK(contains(fib.output, "bad_arguments"));
    CHECK(contains(fib.output, "expected int64, got integer 18446744073709551615"));
    CHECK(c.cli({"call", "fib", "90"}, 30s).output == "2880067194370816120\n");
    // A number written as a float reaches the worker as one, integral or not.
    auto float_argument = c.cli({"call", "fib", "10.0"}, 30s);
    CHECK(float_argument.exit_code == 1);
    CHECK(contains(float_argument.output, "expected int64, got float"));

    auto too_big = c.cli({"call", "echo", "1", "18446744073709551616"}, 30s);
    INFO(too_big.output);
    CHECK(too_big.exit_code == 2);
    CHECK(contains(too_big.output, "deferq: argument 2: the integer 18446744073709551616 is out "
                                   "of range"));

    auto inputs = c.log_dir() + "/inputs.jsonl", outputs = c.log_dir() + "/outputs.jsonl";
    std::ofstream(inputs) << "[18446744073709551615]\n[18446744073709551616]\n";
    auto map = c.cli({"map", "echo", "--input", inputs, "--output", outputs, "--quiet"}, 30s);
    INFO(map.output);
    CHECK(map.exit_code == 1);
    std::ifstream lines(outputs);
    std::string first, second;
    std::getline(lines, first);
    std::getline(lines, second);
    CHECK(first == R"({"index":0,"result":18446744073709551615})");
    CHECK(json::parse(second)["error"]["code"] == "bad_input");
    CHECK(contains(second, "line 2: the integer 18446744073709551616 is out of range"));

    auto rpc = [&](const std::string& params) {
        auto reply = deferq::test::http_post(c.http_endpoint(), "/rpc",
                                             R"({"jsonrpc": "2.0", "method": "echo", "params": )" +
                                                 params + R"(, "id": 1})",
                                             "application/json");
        REQUIRE(reply.status == 200);
        return reply.body;
    };
    CHECK(rpc("[18446744073709551615]") ==
          R"({"id":1,"jsonrpc":"2.0","result":18446744073709551615})");
    auto refused = json::parse(rpc("[18446744073709551616]"));
    CHECK(refused["error"]["code"] == -32602);
    CHECK(contains(refused["error"]["message"].get<std::string>(),
                   "the integer 18446744073709551616 is out of range"));
}

TEST_CASE("deferq status after three 1.0 s calculate jobs shows service p50 and p99 near 1.0 s",
          "[status][histogram]") {
    // Before: p50 1.8 s, p99 2.5 s (interpolated inside the Prometheus bucket of 1 to 2.5 s).
    cluster c("quantiles");
    c.start_broker();
    c.add_worker("w1", {"--concurrency", "3", "--calculate-delay", "1000"});
    auto demo = c.cli({"demo"}, 60s);
    INFO(demo.output);
    REQUIRE(demo.exit_code == 0);

    auto status = c.cli({"status", "--json"}, 30s);
    REQUIRE(status.exit_code == 0);
    auto parsed = json::parse(status.output);
    json calculate;
    for (const auto& function : parsed["functions"])
        if (function["name"] == "calculate") calculate = function;
    INFO(calculate.dump());
    CHECK(calculate["service_count"] == 3);
    // Each job ran 1.0 s plus two hops: the estimates are within 10 % (the promise is 6.25 %) of a
    // duration between 1.0 s and what a loaded machine may add to it.
    for (auto key : {"service_p50_ms", "service_p99_ms"}) {
        CHECK(calculate[key].get<double>() >= 1000 * 0.9);
        CHECK(calculate[key].get<double>() <= 1300 * 1.1);
    }
    auto table = c.cli({"status"}, 30s);
    INFO(table.output);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    // "1.0 s" holds a job's two hops only up to about 70 ms (a p99 of 1,074 ms shows "1.1 s"),
    // which a sanitized worker and broker on a loaded 2-core machine can exceed. There the table
    // must show the figures checked above, in seconds with one decimal as it prints them.
    auto shown = [](const json& ms) {
        std::ostringstream text;
        text << std::fixed << std::setprecision(1) << ms.get<double>() / 1000 << " s";
        return text.str();
    };
    CHECK(contains(table.output, shown(calculate["service_p50_ms"]) + " / " +
                                     shown(calculate["service_p99_ms"])));
#else
    CHECK(contains(table.output, "1.0 s / 1.0 s"));
#endif
}

TEST_CASE("bytes(n) returns n bytes of binary up to the message limit, too_large beyond",
          "[builtins][bytes]") {
    cluster c("bytes");
    c.start_broker();
    c.add_worker("w1");
    deferq::Client client({.broker = c.client_endpoint()});

    auto mebibyte = client.call_with<std::vector<char>>({.timeout = 60s}, "bytes", 1 << 20).get();
    REQUIRE(mebibyte.size() == 1u << 20);
    for (std::size_t i : {std::size_t{0}, std::size_t{255}, std::size_t{256}, mebibyte.size() - 1})
        CHECK(static_cast<unsigned char>(mebibyte[i]) == (i & 0xff));
    CHECK(client.call_with<std::vector<char>>({.timeout = 60s}, "bytes", 0).get().empty());

    // The largest n: its reply (n + 5 bytes of msgpack) fits the broker's default 64 MiB limit.
    constexpr std::int64_t largest = 64 * 1024 * 1024 - 5;
    auto whole = client.call_with<deferq::msgpack_value>({.timeout = 120s}, "bytes", largest).get();
    CHECK(whole.bytes.size() == static_cast<std::size_t>(largest) + 5);

    try { // one byte more: the worker answers too_large (the limit it was announced)
        client.call_with<std::vector<char>>({.timeout = 120s}, "bytes", largest + 1).get();
        FAIL("expected too_large");
    } catch (const deferq::Failure& failure) {
        CHECK(failure.code() == deferq::error_code::too_large);
    }
    for (std::int64_t bad : {std::int64_t{-1}, std::int64_t{1} << 40}) {
        INFO(bad);
        try {
            client.call_with<std::vector<char>>({.timeout = 60s}, "bytes", bad).get();
            FAIL("expected bad_arguments");
        } catch (const deferq::Failure& failure) {
            CHECK(failure.code() == deferq::error_code::bad_arguments);
            CHECK(failure.message() ==
                  "bytes(int64 n): n must be 0 to 1073741824, got " + std::to_string(bad));
        }
    }

    // From the command line: binary has no JSON form (docs/interop.md), said so.
    auto cli = c.cli({"call", "bytes", "3"}, 30s);
    INFO(cli.output);
    CHECK(cli.exit_code == 1);
    CHECK(contains(cli.output, "bad_result: the result has no JSON form: binary data (3 bytes) at "
                               "$: JSON has no binary type"));
    auto negative = c.cli({"call", "bytes", "-1"}, 30s);
    CHECK(negative.exit_code == 1);
    CHECK(contains(negative.output, "bad_arguments: bytes(int64 n): n must be 0 to 1073741824"));
}
