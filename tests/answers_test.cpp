// Every call ends with a clear answer, mistakes included (issue 14): what a new user's slips get,
// on real processes. docs/protocol.md §4 has the rules each test quotes.

#include "cluster.hpp"

#include <catch2/catch.hpp>

#include <chrono>

using namespace std::chrono_literals;
using deferq::test::cluster;

TEST_CASE("a call to a function nobody offers ends with no_such_function after the grace",
          "[answers]") {
    // "If no worker offers the function now, nor offered it within --function-memory, the call
    // SHALL fail with no_such_function once it has waited --unknown-function-grace."
    cluster c("unknown-function");
    c.start_broker();
    c.add_worker("w1");
    auto started = std::chrono::steady_clock::now();
    auto typo = c.cli({"call", "ad", "1", "2"}, 30s); // no --timeout: it must end anyway
    auto took = std::chrono::steady_clock::now() - started;
    CHECK(typo.exit_code == 1);
    CHECK_THAT(typo.output, Catch::Contains("no_such_function") &&
                                Catch::Contains("no worker offers 'ad'"));
    CHECK(took < 20s); // the default grace is 5 s (+ a tick)
    CHECK(c.cli({"call", "add", "1", "2"}).output == "3\n");
}

TEST_CASE("a name that cannot be a function's is answered at once, without echoing it",
          "[answers]") {
    // "A REQUEST whose function name is empty or over the limit SHALL be answered with
    // no_such_function, naming the limit; the name is not echoed."
    cluster c("bad-names");
    c.start_broker();
    auto empty = c.cli({"call", "", "1"}, 20s);
    CHECK(empty.exit_code == 1);
    CHECK_THAT(empty.output, Catch::Contains("no_such_function") && Catch::Contains("empty"));
    for (std::size_t length : {129, 10'240}) {
        auto name = std::string(length, 'n');
        auto result = c.cli({"call", name, "1"}, 20s);
        INFO(result.output.substr(0, 300));
        CHECK(result.exit_code == 1);
        CHECK_THAT(result.output, Catch::Contains("no_such_function") &&
                                      Catch::Contains("at most 128 bytes"));
        CHECK(result.output.find(name) == std::string::npos);
        CHECK(result.output.size() < 1000);
    }
}

TEST_CASE("a strict broker serves calls made just after its restart", "[answers]") {
    // "--strict answers no_such_function at once, but not during the first
    // --unknown-function-grace after the broker's start."
    cluster c("strict-restart");
    c.start_broker({"--strict"});
    c.add_worker("w1");
    CHECK(c.cli({"call", "add", "1", "2"}).output == "3\n");
    c.kill_broker();
    c.restart_broker();
    auto soon = c.cli({"call", "add", "2", "3"}, 30s); // workers are still re-registering
    CHECK(soon.exit_code == 0);
    CHECK(soon.output == "5\n");
    auto unknown = c.cli({"call", "nobody", "1"}, 30s); // ends at the window's end, or at once
    CHECK(unknown.exit_code == 1);
    CHECK_THAT(unknown.output, Catch::Contains("no_such_function"));
}
