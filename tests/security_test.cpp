// CURVE and allow-lists on real processes (docs/security.md).

#include "cluster.hpp"

#include "deferq/client.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <csignal>
#include <fstream>
#include <optional>
#include <sstream>

using namespace std::chrono_literals;
using deferq::test::cluster;

namespace {

/// Runs `deferq keygen DIR/NAME`; returns the key pair it wrote.
deferq::curve::key_pair keygen(const std::string& dir, const std::string& name) {
    auto result = deferq::test::run({DEFERQ_CLI_BIN, "keygen", dir + "/" + name}, 20s);
    REQUIRE(result.exit_code == 0);
    return deferq::curve::read_key_file(dir + "/" + name + ".key");
}

void write_list(const std::string& path, const std::vector<std::string>& keys) {
    std::ofstream out(path);
    out << "# allowed keys\n";
    for (auto& key : keys)
        out << key << "\n";
}

/// True when one line of `text` contains both `first` and `second`.
bool has_line_with(const std::string& text, const std::string& first, const std::string& second) {
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line))
        if (line.find(first) != std::string::npos && line.find(second) != std::string::npos)
            return true;
    return false;
}

} // namespace

TEST_CASE("CURVE: only allow-listed clients call and only allow-listed workers serve",
          "[security][curve]") {
    cluster c("curve");
    auto dir = c.log_dir();
    auto broker = keygen(dir, "broker");
    auto client_key = keygen(dir, "client");
    auto worker_key = keygen(dir, "worker");
    auto stranger = keygen(dir, "stranger");
    CHECK(deferq::curve::read_key_file(dir + "/broker.pub").secret_key.empty());
    write_list(dir + "/clients.list", {client_key.public_key});
    write_list(dir + "/workers.list", {"public = " + worker_key.public_key});
    c.start_broker({"--curve-secret-key", dir + "/broker.key", "--client-keys",
                    dir + "/clients.list", "--worker-keys", dir + "/workers.list"});
    c.add_worker("trusted",
                 {"--curve-key", dir + "/worker.key", "--curve-server-key", dir + "/broker.pub"});

    auto secure = [&](const deferq::curve::key_pair& keys) {
        return deferq::client_options{.broker = c.client_endpoint(),
                                      .curve_keys = keys,
                                      .curve_server_key = broker.public_key};
    };
    deferq::Client legit(secure(client_key));
    CHECK(legit.call<double>("add", 40, 2).get(10s) == 42);
    // A job calls the cluster through its worker's own connection, under CURVE with the worker's
    // key: nothing more to configure (docs/protocol.md §3b).
    CHECK(legit.call<std::int64_t>("fib_task", 8).get(30s) == 21);

    auto status = [&] {
        auto reply = legit.call_with<deferq::msgpack_value>({.timeout = 10s}, "mmi.status").get();
        return nlohmann::json::from_msgpack(reply.bytes);
    };
    auto refused_before = status()["counters"]["unauthorized"].get<int>();
    // A client with these keys gets no answer (its call times out), and the broker counts a
    // refusal.
    auto refused = [&](const deferq::curve::key_pair& keys) {
        deferq::Client refused_client(secure(keys));
        auto d = refused_client.call_with<double>({.timeout = 800ms}, "add", 1, 1);
        try {
            d.get(10s);
            FAIL("expected a failure");
        } catch (const deferq::Failure& failure) {
            CHECK(failure.code() == deferq::error_code::timeout);
        }
        CHECK(deferq::test::eventually(
            [&] { return status()["counters"]["unauthorized"].get<int>() > refused_before; }, 5s));
    };

    SECTION("a client without CURVE gets nothing through") {
        deferq::Client plain({.broker = c.client_endpoint()});
        auto d = plain.call_with<double>({.timeout = 800ms}, "add", 1, 1);
        CHECK_THROWS_AS(d.get(10s), deferq::Failure);
    }
    SECTION("a client with a key not in the allow-list is refused and counted") {
        refused(stranger);
        CHECK_THAT(c.broker().log(), Catch::Contains("refused CURVE client"));
    }
    SECTION("a worker's key cannot call as a client") {
        // The key is on the workers' allow-list only (the trusted worker serves with it right
        // now): the clients' endpoint SHALL refuse it like any unknown key.
        refused(worker_key);
        // The refusal is logged for the client endpoint and names the worker's key.
        CHECK(deferq::test::eventually(
            [&] {
                return has_line_with(c.broker().log(), "refused CURVE client from",
                                     worker_key.public_key);
            },
            5s));
        CHECK_FALSE(has_line_with(c.broker().log(), "refused CURVE worker", worker_key.public_key));
        CHECK(status()["counters"]["live_workers"] == 1);
    }
    SECTION("a client's key cannot register as a worker") {
        auto& impostor = c.spawn_worker("impostor", {"--curve-key", dir + "/client.key",
                                                     "--curve-server-key", broker.public_key});
        CHECK(deferq::test::eventually(
            [&] { return c.broker().log().find("refused CURVE worker") != std::string::npos; },
            10s));
        CHECK(status()["counters"]["live_workers"] == 1);
        impostor.kill();
    }
    SECTION("the CLI speaks CURVE with key files") {
        auto result = deferq::test::run({DEFERQ_CLI_BIN, "--broker", c.client_endpoint(),
                                         "--curve-key", dir + "/client.key", "--curve-server-key",
                                         dir + "/broker.pub", "call", "add", "2", "3"},
                                        30s);
        CHECK(result.exit_code == 0);
        CHECK(result.output == "5\n");
    }
    // The legitimate client's calls still complete. When one does not, say what the broker and
    // the worker saw (this once failed rarely, in sanitizer builds only).
    std::optional<double> sum;
    try {
        sum = legit.call<double>("add", 1, 2).get(10s);
    } catch (const deferq::Failure& failure) {
        std::string counters;
        try {
            deferq::Client witness(secure(client_key));
            auto reply =
                witness.call_with<deferq::msgpack_value>({.timeout = 10s}, "mmi.status").get();
            counters = nlohmann::json::from_msgpack(reply.bytes)["counters"].dump();
        } catch (const std::exception& e) {
            counters = std::string("(mmi.status failed too: ") + e.what() + ")";
        }
        INFO("client " << legit.id() << " with " << legit.pending() << " call(s) pending");
        INFO("counters: " << counters);
        INFO("broker log:\n" << c.broker().log());
        INFO("worker log:\n" << (c.workers().empty() ? "" : c.workers().front()->log()));
        FAIL_CHECK("the legitimate client's last call: " << failure.what());
    }
    if (sum) CHECK(*sum == 3);
}

TEST_CASE("the broker refuses a CURVE set-up without allow-lists, and a public key as its secret",
          "[security][curve]") {
    cluster c("curve-config");
    auto dir = c.log_dir();
    keygen(dir, "broker");
    auto no_lists =
        deferq::test::run({DEFERQ_BROKER_BIN, "--clients", "tcp://127.0.0.1:*", "--workers",
                           "tcp://127.0.0.1:*", "--curve-secret-key", dir + "/broker.key"},
                          20s);
    CHECK(no_lists.exit_code != 0);
    CHECK_THAT(no_lists.output, Catch::Contains("allow-lists"));
    auto public_only = deferq::test::run({DEFERQ_BROKER_BIN, "--clients", "tcp://127.0.0.1:*",
                                          "--workers", "tcp://127.0.0.1:*", "--curve-secret-key",
                                          dir + "/broker.pub", "--client-keys", dir + "/broker.pub",
                                          "--worker-keys", dir + "/broker.pub"},
                                         20s);
    CHECK(public_only.exit_code != 0);
    CHECK_THAT(public_only.output, Catch::Contains("no secret key"));
}

TEST_CASE("the broker warns when it listens beyond loopback without CURVE and only then",
          "[security][curve]") {
    // docs/security.md: without CURVE anyone who can connect may call functions or register as a
    // worker. The broker SHALL say so when an endpoint is reachable from other machines.
    cluster c("bind-warning");
    auto dir = c.log_dir();
    const std::string warning = "is reachable from other machines without CURVE";
    int started = 0;
    /// Runs deferq-broker on these endpoints until it listens, stops it with SIGTERM; returns the
    /// endpoints it bound (from its ready file) and its whole log.
    auto listen = [&](const std::string& clients, const std::string& workers,
                      std::vector<std::string> extra = {}) {
        auto name = "broker-" + std::to_string(++started);
        auto ready = dir + "/" + name + ".ready";
        std::vector<std::string> argv{DEFERQ_BROKER_BIN, "--clients",    clients, "--workers",
                                      workers,           "--ready-file", ready};
        argv.insert(argv.end(), extra.begin(), extra.end());
        deferq::test::process broker(argv, dir + "/" + name + ".log");
        REQUIRE(deferq::test::eventually(
            [&] { return ::access(ready.c_str(), R_OK) == 0 || broker.exited(); }, 20s));
        INFO(broker.log());
        REQUIRE_FALSE(broker.exited());
        auto endpoints = deferq::test::read_file(ready);
        broker.signal(SIGTERM);
        auto code = broker.wait(20s); // the log is complete once it exited
        REQUIRE(code.has_value());
        CHECK(*code == 0);
        return std::pair{endpoints, broker.log()};
    };
    auto count = [](const std::string& text, const std::string& what) {
        int found = 0;
        for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
            ++found;
        return found;
    };
    auto bound = [](const std::string& endpoints, const std::string& which) {
        std::istringstream lines(endpoints);
        std::string line;
        while (std::getline(lines, line))
            if (line.starts_with(which + "=")) return line.substr(which.size() + 1);
        return std::string();
    };

    // One warning, for the endpoint `which` bound on every interface, naming it.
    auto warns_once_for = [&](const std::string& clients, const std::string& workers,
                              const std::string& which) {
        auto [endpoints, log] = listen(clients, workers);
        INFO(log);
        auto endpoint = bound(endpoints, which);
        REQUIRE(endpoint.starts_with("tcp://0.0.0.0:"));
        CHECK(count(log, warning) == 1);
        CHECK_THAT(log, Catch::Contains(endpoint + " " + warning));
    };
    SECTION("clients on every interface") {
        warns_once_for("tcp://0.0.0.0:*", "tcp://127.0.0.1:*", "clients");
    }
    SECTION("workers on every interface, given as tcp://*") {
        warns_once_for("tcp://127.0.0.1:*", "tcp://*:*", "workers");
    }
    SECTION("both on 127.0.0.1: no warning") {
        auto [endpoints, log] = listen("tcp://127.0.0.1:*", "tcp://127.0.0.1:*");
        INFO(log);
        CHECK_THAT(log, Catch::Contains("listening: clients tcp://127.0.0.1:"));
        CHECK(count(log, "reachable from other machines") == 0);
    }
    SECTION("both on every interface with CURVE: no warning") {
        keygen(dir, "broker");
        auto client = keygen(dir, "client");
        write_list(dir + "/clients.list", {client.public_key});
        write_list(dir + "/workers.list", {client.public_key});
        auto [endpoints, log] =
            listen("tcp://0.0.0.0:*", "tcp://0.0.0.0:*",
                   {"--curve-secret-key", dir + "/broker.key", "--client-keys",
                    dir + "/clients.list", "--worker-keys", dir + "/workers.list"});
        INFO(log);
        CHECK_THAT(log, Catch::Contains("CURVE on"));
        CHECK_THAT(log, Catch::Contains("listening: clients tcp://0.0.0.0:"));
        CHECK(count(log, "reachable from other machines") == 0);
    }
}
