// The HTTP gateway (docs/interop.md): JSON-RPC 2.0 and XML-RPC on a real broker process, called by
// curl, by Python's xmlrpc.client and by raw HTTP requests.

#include "cluster.hpp"
#include "http.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>

using namespace std::chrono_literals;
using deferq::test::cluster;
using deferq::test::run;
using nlohmann::json;

namespace {

using deferq::test::http_reply;

http_reply post(const std::string& endpoint, const std::string& path, const std::string& body,
                const std::string& content_type, const std::string& authorization = "") {
    auto reply = deferq::test::http_post(endpoint, path, body, content_type, authorization);
    if (reply.status == 0) FAIL("POST " << path << " failed");
    return reply;
}

json json_rpc(const std::string& endpoint, const std::string& body) {
    auto reply = post(endpoint, "/rpc", body, "application/json");
    REQUIRE(reply.status == 200);
    return json::parse(reply.body);
}

std::string xml_call(const std::string& method, const std::string& params) {
    return "<?xml version=\"1.0\"?><methodCall><methodName>" + method + "</methodName><params>" +
           params + "</params></methodCall>";
}

/// Runs a Python snippet with Debian's python3 (xmlrpc.client is in the standard library).
deferq::test::run_result python(const std::string& code) {
    return run({"/usr/bin/python3", "-c", code}, 60s);
}

/// A broker with the gateway (strict, so an unknown method fails at once) and two workers.
void start(cluster& c, std::vector<std::string> extra = {}) {
    std::vector<std::string> options{"--http", "127.0.0.1:0", "--gateway", "--strict"};
    options.insert(options.end(), extra.begin(), extra.end());
    c.start_broker(options);
    c.add_worker("w1", {"--calculate-delay", "20"});
    c.add_worker("w2", {"--calculate-delay", "20"});
}

} // namespace

TEST_CASE("Python's xmlrpc.client and a JSON-RPC call by curl both get 89 for calculate(42, 47)",
          "[gateway]") {
    cluster c("gateway-calls");
    start(c);
    auto url = "http://" + c.http_endpoint();

    auto xml = python("import xmlrpc.client\n"
                      "print(xmlrpc.client.ServerProxy('" +
                      url + "/RPC2').calculate(42, 47))\n");
    INFO(xml.output);
    CHECK(xml.exit_code == 0);
    CHECK(std::stod(xml.output) == 89);

    auto curl = run({"curl", "-sS", "-H", "Content-Type: application/json", "-d",
                     R"({"jsonrpc": "2.0", "method": "calculate", "params": [42, 47], "id": 1})",
                     url + "/rpc"},
                    60s);
    INFO(curl.output);
    REQUIRE(curl.exit_code == 0);
    auto answer = json::parse(curl.output);
    CHECK(answer["jsonrpc"] == "2.0");
    CHECK(answer["id"] == 1);
    CHECK(answer["result"] == 89);
}

TEST_CASE("values map both ways: nested arrays and structs, strings, booleans, nil, base64",
          "[gateway]") {
    cluster c("gateway-values");
    start(c);
    auto url = "http://" + c.http_endpoint();
    // echo returns its one argument as it came.
    auto xml = python(
        "import xmlrpc.client\n"
        "p = xmlrpc.client.ServerProxy('" +
        url +
        "/RPC2', allow_none=True)\n"
        "v = {'name': 'ü ☃ <&>', 'n': -7, 'x': 2.5, 'ok': True,\n"
        "     'list': [1, [2, 3], {'deep': None}], 'raw': xmlrpc.client.Binary(b'\\0\\1\\xff')}\n"
        "r = p.echo(v)\n"
        "r['raw'] = r['raw'].data\n"
        "v['raw'] = v['raw'].data\n"
        "print('same' if r == v else 'different: %r' % (r,))\n");
    INFO(xml.output);
    CHECK(xml.exit_code == 0);
    CHECK_THAT(xml.output, Catch::StartsWith("same"));

    auto value = json{
        {"name", "ü ☃"}, {"n", -7},    {"big", 1099511627776LL},
        {"x", 2.5},      {"ok", true}, {"list", json::array({1, json::array({2, 3}), nullptr})}};
    auto answer = json_rpc(
        c.http_endpoint(),
        json{{"jsonrpc", "2.0"}, {"method", "echo"}, {"params", {value}}, {"id", "a"}}.dump());
    CHECK(answer["id"] == "a");
    CHECK(answer["result"] == value);
}

TEST_CASE(
    "malformed XML and JSON, unknown methods and wrong params get their faults, and the broker "
    "keeps serving",
    "[gateway]") {
    cluster c("gateway-errors");
    start(c);
    auto endpoint = c.http_endpoint();

    // JSON-RPC: the standard error objects, with the deferq code in data.
    auto parse_error = json_rpc(endpoint, R"({"jsonrpc": "2.0", "method": "add", "params": [1,)");
    CHECK(parse_error["error"]["code"] == -32700);
    CHECK(parse_error["id"] == nullptr);
    auto invalid = json_rpc(endpoint, R"({"method": "add", "params": [1, 2], "id": 5})");
    CHECK(invalid["error"]["code"] == -32600);
    CHECK(invalid["id"] == 5);
    auto unknown =
        json_rpc(endpoint, R"({"jsonrpc": "2.0", "method": "nope", "params": [], "id": 6})");
    CHECK(unknown["error"]["code"] == -32601);
    CHECK(unknown["error"]["data"]["code"] == "no_such_function");
    auto wrong =
        json_rpc(endpoint, R"({"jsonrpc": "2.0", "method": "add", "params": ["x", 2], "id": 7})");
    CHECK(wrong["error"]["code"] == -32602);
    CHECK(wrong["error"]["data"]["code"] == "bad_arguments");
    CHECK_THAT(wrong["error"]["message"].get<std::string>(), Catch::Contains("add"));
    auto by_name =
        json_rpc(endpoint, R"({"jsonrpc": "2.0", "method": "add", "params": {"a": 1}, "id": 8})");
    CHECK(by_name["error"]["code"] == -32602);
    auto thrown =
        json_rpc(endpoint, R"({"jsonrpc": "2.0", "method": "sleep_ms", "params": [-1], "id": 9})");
    CHECK(thrown["error"]["code"] == -32001); // -32000 - remote_error (1)
    CHECK(thrown["error"]["data"]["code"] == "remote_error");
    CHECK(thrown["error"]["data"]["type"] == "std::invalid_argument");

    // XML-RPC: faults with the interoperability codes or the deferq code.
    auto fault_code = [&](const std::string& body) {
        auto reply = post(endpoint, "/RPC2", body, "text/xml");
        REQUIRE(reply.status == 200);
        // <name>faultCode</name><value><int>N</int>: the gateway writes it so (no spaces).
        auto at = reply.body.find("<name>faultCode</name><value><int>");
        if (at == std::string::npos) return std::string("no fault: ") + reply.body;
        at += std::string("<name>faultCode</name><value><int>").size();
        return reply.body.substr(at, reply.body.find('<', at) - at);
    };
    CHECK(fault_code("<methodCall><methodName>add</methodName><params>") == "-32700");
    CHECK(fault_code("<notAMethodCall/>") == "-32600");
    CHECK(fault_code(xml_call("nope", "")) == "5"); // no_such_function
    CHECK(fault_code(xml_call("add", "<param><value><string>x</string></value></param>"
                                     "<param><value><int>2</int></value></param>")) ==
          "6"); // bad_arguments
    CHECK(fault_code(xml_call("add", "<param><value><int>99999999999</int></value></param>")) ==
          "-32602"); // an <int> beyond 32 bits does not map
    CHECK(fault_code(xml_call("add", "<param><value><bogus>1</bogus></value></param>")) ==
          "-32602");

    // Still serving.
    auto good =
        json_rpc(endpoint, R"({"jsonrpc": "2.0", "method": "add", "params": [2, 3], "id": 10})");
    CHECK(good["result"] == 5);
    CHECK(c.counter("live_workers") == 2);
}

TEST_CASE("a JSON-RPC batch is answered in order, without the notifications", "[gateway]") {
    cluster c("gateway-batch");
    start(c);
    auto answer = json_rpc(c.http_endpoint(), R"([
        {"jsonrpc": "2.0", "method": "calculate", "params": [42, 47], "id": 1},
        {"jsonrpc": "2.0", "method": "add", "params": [1, 1]},
        {"jsonrpc": "2.0", "method": "calculate", "params": [52, 58], "id": 2},
        {"jsonrpc": "2.0", "method": "nope", "id": 3},
        "not a request"])");
    REQUIRE(answer.is_array());
    REQUIRE(answer.size() == 4);
    CHECK(answer[0]["id"] == 1);
    CHECK(answer[0]["result"] == 89);
    CHECK(answer[1]["id"] == 2);
    CHECK(answer[1]["result"] == 110);
    CHECK(answer[2]["error"]["code"] == -32601);
    CHECK(answer[3]["error"]["code"] == -32600);
    auto empty = json_rpc(c.http_endpoint(), "[]");
    CHECK(empty["error"]["code"] == -32600);
    // Only notifications: nothing to answer.
    auto silent =
        post(c.http_endpoint(), "/rpc", R"({"jsonrpc": "2.0", "method": "add", "params": [1, 2]})",
             "application/json");
    CHECK(silent.status == 204);
    CHECK(silent.body.empty());
}

TEST_CASE("with a token, the gateway refuses callers without it", "[gateway][security]") {
    cluster c("gateway-token");
    start(c, {"--gateway-token", "s3cret"});
    auto endpoint = c.http_endpoint();
    auto body = R"({"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": 1})";
    CHECK(post(endpoint, "/rpc", body, "application/json").status == 401);
    CHECK(post(endpoint, "/rpc", body, "application/json", "Bearer wrong").status == 401);
    auto allowed = post(endpoint, "/rpc", body, "application/json", "Bearer s3cret");
    CHECK(allowed.status == 200);
    CHECK(json::parse(allowed.body)["result"] == 3);
    // xmlrpc.client sends the URL's password as basic authentication.
    auto xml = python("import xmlrpc.client\n"
                      "print(xmlrpc.client.ServerProxy('http://anyone:s3cret@" +
                      endpoint + "/RPC2').add(1, 2))\n");
    CHECK(xml.exit_code == 0);
    CHECK(std::stod(xml.output) == 3);
    auto refused = python("import xmlrpc.client\n"
                          "xmlrpc.client.ServerProxy('http://" +
                          endpoint + "/RPC2').add(1, 2)\n");
    CHECK(refused.exit_code != 0);
    CHECK_THAT(refused.output, Catch::Contains("401"));
    CHECK_THAT(c.broker().log(), Catch::Contains("gateway: refused"));
}

TEST_CASE("the gateway is off unless enabled, and needs a token when CURVE is on",
          "[gateway][security]") {
    cluster c("gateway-off");
    c.start_broker({"--http", "127.0.0.1:0"});
    auto reply = post(c.http_endpoint(), "/rpc", "{}", "application/json");
    CHECK(reply.status == 404);

    auto keys = c.log_dir() + "/broker";
    REQUIRE(run({DEFERQ_CLI_BIN, "keygen", keys}, 20s).exit_code == 0);
    std::ofstream(c.log_dir() + "/allowed") << "\n";
    auto refused =
        run({DEFERQ_BROKER_BIN, "--clients", "tcp://127.0.0.1:0", "--workers", "tcp://127.0.0.1:0",
             "--http", "127.0.0.1:0", "--gateway", "--curve-secret-key", keys + ".key",
             "--client-keys", c.log_dir() + "/allowed", "--worker-keys", c.log_dir() + "/allowed"},
            20s);
    CHECK(refused.exit_code != 0);
    CHECK_THAT(refused.output, Catch::Contains("--gateway-token"));

    // With a token it runs, and its in-process client gets past CURVE (the broker answers
    // mmi.service itself: no worker needed).
    cluster secured("gateway-curve");
    secured.start_broker({"--http", "127.0.0.1:0", "--gateway", "--gateway-token", "t",
                          "--curve-secret-key", keys + ".key", "--client-keys",
                          c.log_dir() + "/allowed", "--worker-keys", c.log_dir() + "/allowed"});
    auto answer = post(secured.http_endpoint(), "/rpc",
                       R"({"jsonrpc": "2.0", "method": "mmi.service", "params": ["add"], "id": 1})",
                       "application/json", "Bearer t");
    REQUIRE(answer.status == 200);
    CHECK(json::parse(answer.body)["result"] == "404");
}

TEST_CASE("the XML-RPC example in Python totals 330 over three workers", "[gateway][examples]") {
    cluster c("gateway-example");
    c.start_broker({"--http", "127.0.0.1:0", "--gateway"});
    for (auto name : {"w1", "w2", "w3"})
        c.add_worker(name, {"--calculate-delay", "300"});
    auto result = run({"/usr/bin/python3", DEFERQ_SOURCE_DIR "/examples/xmlrpc_client.py",
                       "http://" + c.http_endpoint() + "/RPC2"},
                      60s);
    INFO(result.output);
    CHECK(result.exit_code == 0);
    CHECK_THAT(result.output, Catch::Contains("calculate(42, 47) = 89"));
    CHECK_THAT(result.output, Catch::Contains("total: 330"));
}

TEST_CASE("the gateway refuses a body over 16 MiB and a batch over 1,000 calls, and still serves",
          "[gateway][limits]") {
    // docs/interop.md: "request bodies up to 16 MiB (the HTTP server's limit), at most 1,000 calls
    // per JSON-RPC batch".
    cluster c("gateway-limits");
    start(c);
    const auto& endpoint = c.http_endpoint();
    auto big = std::string(R"({"jsonrpc": "2.0", "method": "echo", "params": [")") +
               std::string(16 * 1024 * 1024 + 1, 'x') + R"("], "id": 1})";
    CHECK(post(endpoint, "/rpc", big, "application/json").status == 413);

    auto batch = [](std::size_t calls) {
        std::string body = "[";
        for (std::size_t i = 0; i < calls; ++i)
            body += (i ? "," : "") +
                    std::string(R"({"jsonrpc": "2.0", "method": "add", "params": [)") +
                    std::to_string(i) + R"(, 1], "id": )" + std::to_string(i) + "}";
        return body + "]";
    };
    auto refused = json_rpc(endpoint, batch(1'001));
    CHECK(refused["error"]["code"] == -32600);
    CHECK_THAT(refused["error"]["message"].get<std::string>(), Catch::Contains("at most 1000"));
    auto served = json_rpc(endpoint, batch(1'000));
    REQUIRE(served.is_array());
    REQUIRE(served.size() == 1'000);
    CHECK(served[999]["id"] == 999);
    CHECK(served[999]["result"] == 1'000);
}
