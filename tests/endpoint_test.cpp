// Unit tests of the endpoint checks (shared/include/deferq/endpoint.hpp) and of the Client and
// Worker constructors that use them.

#include "deferq/client.hpp"
#include "deferq/endpoint.hpp"
#include "deferq/worker.hpp"

#include <catch2/catch.hpp>

using deferq::endpoint_problem;
using deferq::endpoint_use;

namespace {

std::string problem(std::string_view endpoint, endpoint_use use = endpoint_use::connect) {
    return endpoint_problem(endpoint, use).value_or("");
}

} // namespace

TEST_CASE("endpoints of the three transports pass", "[endpoint]") {
    for (auto good : {"tcp://127.0.0.1:5555", "tcp://localhost:5555", "tcp://broker-1.example:1",
                      "tcp://[::1]:5555", "tcp://::1:65535", "tcp://[fe80::1%eth0]:5555",
                      "tcp://10.0.0.2:0;broker:5555", "ipc:///tmp/deferq.sock", "ipc://@deferq",
                      "inproc://gateway"}) {
        INFO(good);
        CHECK(problem(good) == "");
    }
    for (auto good :
         {"tcp://*:5555", "tcp://*:*", "tcp://127.0.0.1:0", "tcp://eth0:5555", "ipc://*"}) {
        INFO(good);
        CHECK(problem(good, endpoint_use::bind) == "");
    }
}

TEST_CASE("a malformed endpoint is named with what is wrong with it", "[endpoint]") {
    CHECK(problem("localhost:5555") == "endpoint 'localhost:5555' has no transport: write "
                                       "tcp://localhost:5555 (or ipc://PATH, inproc://NAME)");
    CHECK(
        problem("broker") ==
        "endpoint 'broker' has no transport: write tcp://HOST:PORT (or ipc://PATH, inproc://NAME)");
    CHECK(problem("tcp://localhost") ==
          "endpoint 'tcp://localhost' has no port: write tcp://HOST:PORT");
    CHECK(problem("tcp://localhost:") ==
          "endpoint 'tcp://localhost:' has no port: write tcp://HOST:PORT");
    CHECK(problem("tcp://:5555") == "endpoint 'tcp://:5555' has no host: write tcp://HOST:PORT");
    CHECK(problem("tcp://[::1]") == "endpoint 'tcp://[::1]' has no port: write tcp://HOST:PORT");
    CHECK(problem("tcp://host:99999") ==
          "endpoint 'tcp://host:99999': port 99999 is out of range (1 to 65535)");
    CHECK(problem("tcp://host:55x") == "endpoint 'tcp://host:55x': port '55x' is not a number");
    CHECK(problem("tcp://host/x:5555") ==
          "endpoint 'tcp://host/x:5555': 'host/x' is not a host name or an IP address");
    CHECK(problem("tcp://_host:5555") ==
          "endpoint 'tcp://_host:5555': '_host' is not a host name or an IP address");
    CHECK(problem("tcp://[zz]:5555") ==
          "endpoint 'tcp://[zz]:5555': '[zz]' is not an IPv6 address in brackets");
    CHECK(problem("udp://host:5555") ==
          "endpoint 'udp://host:5555': transport 'udp' is not supported: use tcp://, ipc:// or "
          "inproc://");
    CHECK(problem("tcp:// host:5555") ==
          "endpoint 'tcp:// host:5555' contains a space or a control character");
    CHECK(problem("") == "the endpoint is empty: write tcp://HOST:PORT");
    CHECK(problem("ipc://") == "endpoint 'ipc://' has no path: ipc://PATH");
    CHECK(problem("ipc://" + std::string(108, 'p')).find("longer than 107 bytes") !=
          std::string::npos);
    CHECK(problem("inproc://") == "endpoint 'inproc://' has no name: inproc://NAME");
}

TEST_CASE("wildcards and port 0 are for binding, not for connecting", "[endpoint]") {
    CHECK(problem("tcp://*:5555").find("'*' (any interface) is for binding") != std::string::npos);
    CHECK(problem("tcp://host:*").find("port '*' (any port) is for binding") != std::string::npos);
    CHECK(problem("tcp://host:0").find("port 0 is for binding") != std::string::npos);
    CHECK(problem("ipc://*").find("is for binding") != std::string::npos);
}

TEST_CASE("a list of brokers to connect to, each checked, and one endpoint to bind", "[endpoint]") {
    // Clients and workers take the brokers of a standby pair (docs/operations.md).
    CHECK(problem("tcp://a:5555,tcp://b:5555").empty());
    CHECK(problem("tcp://a:5555, ipc:///tmp/b").empty());
    CHECK(problem("tcp://a:5555,,tcp://b:1") ==
          "the list of endpoints 'tcp://a:5555,,tcp://b:1' has an empty item");
    CHECK(problem("tcp://a:5555,") == "the list of endpoints 'tcp://a:5555,' has an empty item");
    CHECK(problem("tcp://a:5555,b:1") ==
          "endpoint 'b:1' has no transport: write tcp://b:1 (or ipc://PATH, inproc://NAME)");
    CHECK(problem("tcp://a:5555,tcp://*:1").find("is for binding") != std::string::npos);
    CHECK(problem("tcp://*:5555,tcp://*:5556", endpoint_use::bind) ==
          "'tcp://*:5555,tcp://*:5556' is a list of 2 endpoints, where one is expected");
    CHECK_NOTHROW(deferq::check_endpoint("tcp://a:1,tcp://b:2", endpoint_use::connect));
    CHECK(deferq::split_endpoints("tcp://a:5555, tcp://b:5556 ", endpoint_use::connect) ==
          std::vector<std::string>{"tcp://a:5555", "tcp://b:5556"});
    CHECK(deferq::split_endpoints("tcp://a:5555", endpoint_use::connect) ==
          std::vector<std::string>{"tcp://a:5555"});
    CHECK_THROWS_WITH(deferq::split_endpoints("tcp://a:5555,,tcp://b:1", endpoint_use::connect),
                      "the list of endpoints 'tcp://a:5555,,tcp://b:1' has an empty item");
    CHECK_THROWS_WITH(deferq::split_endpoints(" ", endpoint_use::connect),
                      "the list of endpoints is empty");
    CHECK_THROWS_WITH(deferq::split_endpoints("tcp://a:5555,b:1", endpoint_use::connect),
                      "endpoint 'b:1' has no transport: write tcp://b:1 (or ipc://PATH, "
                      "inproc://NAME)");
    CHECK_THROWS_AS(deferq::split_endpoints("tcp://*:1", endpoint_use::connect),
                    deferq::config_error);
}

TEST_CASE("Client and Worker refuse a malformed endpoint with a catchable config_error",
          "[endpoint][client][worker]") {
    // Before: `terminate called after throwing zmq::error_t` from the client's I/O thread.
    CHECK_THROWS_AS(deferq::Client({.broker = "localhost:5555"}), deferq::config_error);
    CHECK_THROWS_WITH(deferq::Client({.broker = "localhost:5555"}),
                      Catch::Contains("'localhost:5555' has no transport"));
    CHECK_THROWS_WITH(deferq::Client({.broker = "tcp://127.0.0.1:1,tcp://b"}),
                      Catch::Contains("'tcp://b' has no port"));
    CHECK_THROWS_AS(deferq::Worker({.broker = "tcp://broker"}), deferq::config_error);
    CHECK_THROWS_WITH(deferq::Worker({.broker = "tcp://broker"}),
                      Catch::Contains("'tcp://broker' has no port"));
    // CURVE keys that are not keys: refused here too, rather than by libzmq on the I/O thread.
    deferq::curve::key_pair keys{std::string(40, 'a'), std::string(40, 'b')};
    CHECK_THROWS_WITH(
        deferq::Client(
            {.broker = "tcp://127.0.0.1:1", .curve_keys = keys, .curve_server_key = "x"}),
        "CURVE: the broker's public key is not a 40-character Z85 key");
    CHECK_THROWS_AS(deferq::Worker({.broker = "tcp://127.0.0.1:1",
                                    .curve_keys = deferq::curve::key_pair{"short", ""},
                                    .curve_server_key = std::string(40, 'c')}),
                    deferq::config_error);
    // A good endpoint with no broker behind it is not an error: ZeroMQ connects when one comes.
    deferq::Client client({.broker = "tcp://127.0.0.1:1"});
    CHECK(client.pending() == 0);
}
