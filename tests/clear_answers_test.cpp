// Integration tests of issue 14 ("every call ends with a clear answer", mistakes included), on
// real processes: malformed endpoints, results JSON cannot hold, integers typed on the command
// line, quantiles in `deferq status`, the built-in bytes(n).

#include "cluster.hpp"

#include "deferq/client.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using deferq::test::cluster;

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

    // A list of endpoints: refused for now, saying so.
    auto list = deferq::test::run(
        {DEFERQ_CLI_BIN, "--broker", "tcp://a:5555,tcp://b:5555", "call", "add", "1", "2"}, 30s);
    INFO(list.output);
    CHECK(list.exit_code != 0);
    CHECK(list.exit_code < 128);
    CHECK(contains(list.output, "is a list of 2 endpoints, where one is expected"));
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
