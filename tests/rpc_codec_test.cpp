// The gateway's formats (docs/interop.md "Type mapping"), without sockets: JSON-RPC and XML-RPC
// requests into msgpack arguments, msgpack results back out, and everything that must be refused.
// The JSON value rules themselves are tested in msgpack_json_test.cpp.

#include "msgpack_of.hpp"
#include "rpc_codec.hpp"

#include "deferq/codec.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

namespace rpc = deferq::rpc;
using nlohmann::json;

using deferq::test::msgpack_of;

namespace {

json to_json_of(const std::string& bytes) {
    return deferq::msgpack_json::to_json(bytes);
}

/// The msgpack arguments of an XML-RPC call as JSON (for easy comparison).
json xml_arguments(const std::string& params) {
    auto parsed = rpc::parse_xml_call("<methodCall><methodName>f</methodName><params>" + params +
                                      "</params></methodCall>");
    if (auto* error = std::get_if<rpc::request_error>(&parsed))
        FAIL("refused: " << error->code << " " << error->message);
    auto& call = std::get<rpc::xml_call>(parsed);
    CHECK(call.method == "f");
    auto handle = deferq::codec::unpack(call.arguments.data(), call.arguments.size());
    if (handle.get().type == msgpack::type::ARRAY && handle.get().via.array.size > 0 &&
        handle.get().via.array.ptr[0].type == msgpack::type::BIN)
        return "binary";
    return deferq::msgpack_json::to_json(handle.get());
}

int xml_refusal(const std::string& body) {
    auto parsed = rpc::parse_xml_call(body);
    auto* error = std::get_if<rpc::request_error>(&parsed);
    if (!error) return 0;
    CHECK_FALSE(error->message.empty());
    return error->code;
}

std::string xml_of(const std::string& msgpack_bytes) {
    auto handle = deferq::codec::unpack(msgpack_bytes.data(), msgpack_bytes.size());
    return rpc::xml_response(handle.get());
}

} // namespace

TEST_CASE("a JSON-RPC request parses into calls with msgpack arguments", "[gateway]") {
    auto single = rpc::parse_json_request(
        R"({"jsonrpc": "2.0", "method": "calculate", "params": [42, 47.5], "id": "x"})");
    REQUIRE_FALSE(single.error);
    CHECK_FALSE(single.batch);
    REQUIRE(single.calls.size() == 1);
    CHECK(single.calls[0].id == "x");
    CHECK_FALSE(single.calls[0].notification);
    CHECK(single.calls[0].method == "calculate");
    CHECK(to_json_of(single.calls[0].arguments) == json::array({42, 47.5}));

    auto no_params = rpc::parse_json_request(R"({"jsonrpc": "2.0", "method": "f", "id": 1})");
    CHECK(to_json_of(no_params.calls[0].arguments) == json::array());

    auto batch = rpc::parse_json_request(
        R"([{"jsonrpc": "2.0", "method": "f"}, {"jsonrpc": "2.0", "method": "g", "id": null}])");
    REQUIRE(batch.batch);
    REQUIRE(batch.calls.size() == 2);
    CHECK(batch.calls[0].notification);
    CHECK_FALSE(batch.calls[1].notification); // an explicit null id is answered
}

TEST_CASE("a JSON-RPC request that breaks the spec gets the standard error", "[gateway]") {
    auto code_of = [](const std::string& body) {
        auto request = rpc::parse_json_request(body);
        if (request.error) return (*request.error)["error"]["code"].get<int>();
        REQUIRE(request.calls.size() == 1);
        REQUIRE(request.calls[0].error);
        return (*request.calls[0].error)["error"]["code"].get<int>();
    };
    CHECK(code_of("{") == rpc::parse_error_code);
    CHECK(code_of("[]") == rpc::invalid_request_code);
    CHECK(code_of("42") == rpc::invalid_request_code);
    CHECK(code_of(R"({"method": "f", "id": 1})") == rpc::invalid_request_code);
    CHECK(code_of(R"({"jsonrpc": "1.0", "method": "f", "id": 1})") == rpc::invalid_request_code);
    CHECK(code_of(R"({"jsonrpc": "2.0", "method": "", "id": 1})") == rpc::invalid_request_code);
    CHECK(code_of(R"({"jsonrpc": "2.0", "method": 7, "id": 1})") == rpc::invalid_request_code);
    CHECK(code_of(R"({"jsonrpc": "2.0", "method": "f", "id": [1]})") == rpc::invalid_request_code);
    CHECK(code_of(R"({"jsonrpc": "2.0", "method": "f", "params": 3, "id": 1})") ==
          rpc::invalid_request_code);
    CHECK(code_of(R"({"jsonrpc": "2.0", "method": "f", "params": {"a": 1}, "id": 1})") ==
          rpc::invalid_params_code);
}

TEST_CASE("deferq error codes map to JSON-RPC codes", "[gateway]") {
    using deferq::error_code;
    CHECK(rpc::json_code(error_code::no_such_function) == rpc::method_not_found_code);
    CHECK(rpc::json_code(error_code::bad_arguments) == rpc::invalid_params_code);
    CHECK(rpc::json_code(error_code::remote_error) == -32001);
    CHECK(rpc::json_code(error_code::timeout) == -32002);
    CHECK(rpc::json_code(error_code::overloaded) == -32008);
    auto error = rpc::json_error(3, -32002, "too slow", {{"code", "timeout"}});
    CHECK(error ==
          json{{"jsonrpc", "2.0"},
               {"error",
                {{"code", -32002}, {"message", "too slow"}, {"data", {{"code", "timeout"}}}}},
               {"id", 3}});
    CHECK(rpc::json_result(nullptr, 5) == json{{"jsonrpc", "2.0"}, {"result", 5}, {"id", nullptr}});
}

TEST_CASE("XML-RPC parameters of every type become msgpack", "[gateway]") {
    CHECK(xml_arguments("<param><value><int>42</int></value></param>"
                        "<param><value><i4>-7</i4></value></param>"
                        "<param><value><i8>1099511627776</i8></value></param>"
                        "<param><value><double>2.5</double></value></param>"
                        "<param><value><boolean>1</boolean></value></param>"
                        "<param><value><string>a &lt;b&gt; ü</string></value></param>"
                        "<param><value>untyped</value></param>"
                        "<param><value><dateTime.iso8601>19980717T14:08:55</dateTime.iso8601>"
                        "</value></param>"
                        "<param><value><nil/></value></param>") ==
          json::array({42, -7, 1099511627776LL, 2.5, true, "a <b> ü", "untyped",
                       "19980717T14:08:55", nullptr}));
    CHECK(xml_arguments("<param><value><array><data>"
                        "<value><int>1</int></value>"
                        "<value><struct><member><name>k</name><value><string>v</string></value>"
                        "</member></struct></value>"
                        "</data></array></value></param>") ==
          json::array({json::array({1, json{{"k", "v"}}})}));
    CHECK(xml_arguments("<param><value><base64>AAH/</base64></value></param>") == "binary");
    CHECK(xml_arguments("") == json::array());
}

TEST_CASE("malformed or unmappable XML-RPC calls are refused with their fault codes", "[gateway]") {
    CHECK(xml_refusal("<methodCall><methodName>f</methodName>") == rpc::parse_error_code);
    CHECK(xml_refusal("not xml at all") == rpc::parse_error_code);
    CHECK(xml_refusal("<methodResponse/>") == rpc::invalid_request_code);
    CHECK(xml_refusal("<methodCall><params/></methodCall>") == rpc::invalid_request_code);
    auto call = [](const std::string& value) {
        return "<methodCall><methodName>f</methodName><params><param><value>" + value +
               "</value></param></params></methodCall>";
    };
    CHECK(xml_refusal(call("<int>2147483648</int>")) == rpc::invalid_params_code);
    CHECK(xml_refusal(call("<int>12x</int>")) == rpc::invalid_params_code);
    CHECK(xml_refusal(call("<boolean>yes</boolean>")) == rpc::invalid_params_code);
    CHECK(xml_refusal(call("<double>nan</double>")) == rpc::invalid_params_code);
    CHECK(xml_refusal(call("<base64>!!!</base64>")) == rpc::invalid_params_code);
    CHECK(xml_refusal(call("<unknown>1</unknown>")) == rpc::invalid_params_code);
    CHECK(xml_refusal(call("<array/>")) == rpc::invalid_params_code);
    CHECK(xml_refusal(call("<struct><member><name>k</name></member></struct>")) ==
          rpc::invalid_params_code);
    // DOCTYPE is skipped: no entity is declared, so none is fetched or expanded.
    auto parsed = rpc::parse_xml_call("<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>"
                                      "<methodCall><methodName>&e;</methodName></methodCall>");
    if (auto* call = std::get_if<rpc::xml_call>(&parsed)) CHECK(call->method == "&e;");
}

TEST_CASE("msgpack results become XML-RPC responses, faults carry a code and a string",
          "[gateway]") {
    CHECK(xml_of(msgpack_of(2.5)) ==
          "<?xml version=\"1.0\"?><methodResponse><params><param><value><double>2.5</double>"
          "</value></param></params></methodResponse>");
    // msgpack-c packs an integral double as an integer: 89.0 arrives as <int>89</int>.
    CHECK_THAT(xml_of(msgpack_of(89.0)), Catch::Contains("<value><int>89</int></value>"));
    auto nested = xml_of(msgpack_of(
        std::map<std::string, std::vector<std::int64_t>>{{"a&b", {1, 5'000'000'000LL}}}));
    CHECK_THAT(nested, Catch::Contains("<struct><member><name>a&amp;b</name><value><array><data>"
                                       "<value><int>1</int></value><value><i8>5000000000</i8>"
                                       "</value></data></array></value></member></struct>"));
    CHECK_THAT(xml_of(msgpack_of(std::vector<char>{'\0', '\x01'})),
               Catch::Contains("<base64>AAE=</base64>"));
    CHECK_THAT(xml_of(msgpack_of(msgpack::type::nil_t())),
               Catch::Contains("<value><nil/></value>"));
    CHECK_THROWS_AS(xml_of(msgpack_of(std::string("bell\a"))), rpc::mapping_error);
    CHECK_THROWS_AS(xml_of(msgpack_of(std::map<int, int>{{1, 2}})), rpc::mapping_error);
    auto fault = rpc::xml_fault(2, "timeout: <late>");
    CHECK_THAT(fault, Catch::Contains("<fault><value><struct><member><name>faultCode</name>"
                                      "<value><int>2</int></value></member>"));
    CHECK_THAT(fault, Catch::Contains("<string>timeout: &lt;late&gt;</string>"));
}

TEST_CASE("base64 round-trips any bytes and refuses what is not base64", "[gateway]") {
    for (std::string bytes : {std::string(), std::string("f"), std::string("fo"),
                              std::string("foo"), std::string("\0\xff\x10\x80", 4)}) {
        auto text = rpc::base64_encode(bytes);
        CHECK(text.size() % 4 == 0);
        CHECK(rpc::base64_decode(text) == bytes);
    }
    CHECK(rpc::base64_encode("foob") == "Zm9vYg==");
    CHECK(rpc::base64_decode(" Zm9v\nYmFy ") == std::string("foobar"));
    CHECK_FALSE(rpc::base64_decode("Zm9"));
    CHECK_FALSE(rpc::base64_decode("Zm=v"));
    CHECK_FALSE(rpc::base64_decode("Zm9v*A=="));
}
