// The deferq-broker program's settings (broker/src/broker_config.*): options, DEFERQ_*
// environment variables, and the checks that name the option that cannot work.

#include "broker_config.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace {

std::variant<deferq::broker_config, deferq::exit_now> parse(std::vector<std::string> args) {
    args.insert(args.begin(), "deferq-broker");
    std::vector<const char*> argv;
    for (const auto& arg : args)
        argv.push_back(arg.c_str());
    return deferq::parse_broker_config(static_cast<int>(argv.size()), argv.data());
}

deferq::broker_config config(std::vector<std::string> args) {
    auto parsed = parse(std::move(args));
    REQUIRE(std::holds_alternative<deferq::broker_config>(parsed));
    return std::get<deferq::broker_config>(parsed);
}

std::string error_of(std::vector<std::string> args) {
    try {
        parse(std::move(args));
    } catch (const deferq::config_error& e) {
        return e.what();
    }
    return "(no error)";
}

/// Sets an environment variable for the life of the object.
struct scoped_env {
    scoped_env(const char* name, const char* value) : _name(name) { ::setenv(name, value, 1); }
    ~scoped_env() { ::unsetenv(_name); }
    const char* _name;
};

} // namespace

TEST_CASE("the broker's defaults, and options on the command line", "[broker_config]") {
    auto defaults = config({});
    CHECK(defaults.broker.client_endpoint == "tcp://*:5555");
    CHECK(defaults.broker.worker_endpoint == "tcp://*:5556");
    CHECK(defaults.broker.heartbeat_interval == std::chrono::milliseconds{1000});
    CHECK_FALSE(defaults.gateway);

    auto given =
        config({"--clients", "tcp://127.0.0.1:7000", "--heartbeat-interval", "250", "--strict",
                "--http", "127.0.0.1:0", "--gateway", "--gateway-timeout", "1500"});
    CHECK(given.broker.client_endpoint == "tcp://127.0.0.1:7000");
    CHECK(given.broker.heartbeat_interval == std::chrono::milliseconds{250});
    CHECK(given.broker.strict);
    CHECK(given.gateway);
    CHECK(given.gateway_timeout == std::chrono::milliseconds{1500});
}

TEST_CASE("every option comes from its DEFERQ_ variable too", "[broker_config]") {
    scoped_env workers("DEFERQ_WORKERS", "tcp://127.0.0.1:7001");
    scoped_env liveness("DEFERQ_LIVENESS", "7");
    scoped_env level("DEFERQ_LOG_LEVEL", "debug");
    auto parsed = config({});
    CHECK(parsed.broker.worker_endpoint == "tcp://127.0.0.1:7001");
    CHECK(parsed.broker.liveness == 7);
    CHECK(parsed.log_level == "debug");
    CHECK(config({"--liveness", "2"}).broker.liveness == 2); // the command line wins
}

TEST_CASE("--help and a bad command line end the program with its code", "[broker_config]") {
    auto help = parse({"--help"});
    REQUIRE(std::holds_alternative<deferq::exit_now>(help));
    CHECK(std::get<deferq::exit_now>(help).code == 0);
    auto out_of_range = parse({"--heartbeat-interval", "5"});
    REQUIRE(std::holds_alternative<deferq::exit_now>(out_of_range));
    CHECK(std::get<deferq::exit_now>(out_of_range).code != 0);
    auto unknown = parse({"--no-such-option"});
    REQUIRE(std::holds_alternative<deferq::exit_now>(unknown));
    CHECK(std::get<deferq::exit_now>(unknown).code != 0);
}

TEST_CASE("settings that cannot work are refused, naming the option", "[broker_config]") {
    CHECK_THAT(error_of({"--gateway"}), Catch::Contains("--gateway needs --http"));
    CHECK_THAT(error_of({"--client-keys", "x"}), Catch::Contains("need --curve-secret-key"));
    CHECK_THAT(error_of({"--gateway-token-file", "/nonexistent/token"}),
               Catch::Contains("--gateway-token-file"));
    CHECK_THAT(error_of({"--clients", "localhost:5555"}),
               Catch::Contains("--clients: endpoint 'localhost:5555'"));
    CHECK_THAT(error_of({"--workers", "tcp://*:99999"}), Catch::Contains("--workers"));
}

TEST_CASE("the gateway token is read from its file, without the line end", "[broker_config]") {
    auto path = std::string(DEFERQ_BINARY_DIR) + "/broker_config_test.token";
    std::ofstream(path) << "s3cret  \nsecond line\n";
    auto parsed = config({"--http", "127.0.0.1:0", "--gateway", "--gateway-token-file", path});
    CHECK(parsed.gateway_token == "s3cret");
    std::remove(path.c_str());
}

TEST_CASE("a standby pair: --peer-bind, --peer and --backup", "[broker_config][standby]") {
    CHECK_FALSE(config({}).broker.standby);
    auto primary = config({"--peer-bind", "tcp://*:5557", "--peer", "tcp://b:5557"});
    REQUIRE(primary.broker.standby);
    CHECK(primary.broker.standby->peer_bind == "tcp://*:5557");
    CHECK(primary.broker.standby->peer == "tcp://b:5557");
    CHECK_FALSE(primary.broker.standby->backup);
    auto backup = config({"--peer-bind", "tcp://*:5557", "--peer", "tcp://a:5557", "--backup"});
    REQUIRE(backup.broker.standby);
    CHECK(backup.broker.standby->backup);
    scoped_env bind("DEFERQ_PEER_BIND", "tcp://*:6557");
    scoped_env peer("DEFERQ_PEER", "tcp://a:6557");
    scoped_env is_backup("DEFERQ_BACKUP", "1");
    auto from_environment = config({});
    REQUIRE(from_environment.broker.standby);
    CHECK(from_environment.broker.standby->peer == "tcp://a:6557");
    CHECK(from_environment.broker.standby->backup);
}

TEST_CASE("a standby pair's bad combinations are refused, naming the option",
          "[broker_config][standby]") {
    CHECK_THAT(error_of({"--backup"}), Catch::StartsWith("--backup needs --peer-bind and --peer"));
    CHECK_THAT(error_of({"--peer-bind", "tcp://*:5557"}),
               Catch::StartsWith("--peer-bind needs --peer"));
    CHECK_THAT(error_of({"--peer", "tcp://b:5557", "--backup"}),
               Catch::StartsWith("--peer needs --peer-bind"));
    CHECK_THAT(error_of({"--peer-bind", "5557", "--peer", "tcp://b:5557"}),
               Catch::StartsWith("--peer-bind: endpoint '5557'"));
    CHECK_THAT(error_of({"--peer-bind", "tcp://*:5557", "--peer", "tcp://*:5557"}),
               Catch::StartsWith("--peer: endpoint 'tcp://*:5557'"));
    CHECK_THAT(error_of({"--peer-bind", "tcp://*:5557", "--peer", "tcp://a:5557,tcp://b:5557"}),
               Catch::StartsWith("--peer: 'tcp://a:5557,tcp://b:5557' is a list"));
    CHECK_THAT(error_of({"--peer-bind", "tcp://127.0.0.1:5557", "--peer", "tcp://127.0.0.1:5557"}),
               Catch::Contains("is this broker's own --peer-bind"));
}
