// Integration tests for worker plugins (docs/plugins.md): deferq-worker --plugin loads functions
// from a shared library; a plugin that cannot be loaded stops it at start with a clear message.

#include "cluster.hpp"

#include "deferq/client.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using deferq::test::cluster;

namespace {

const std::string example_plugin = DEFERQ_EXAMPLE_PLUGIN;

std::string test_plugin(const std::string& name) {
    return std::string(DEFERQ_TEST_PLUGIN_DIR) + "/lib" + name + ".so";
}

/// Runs deferq-worker with these arguments against a port nobody listens on: a plugin failure must
/// stop it before it ever connects.
deferq::test::run_result worker_start(std::vector<std::string> args,
                                      std::vector<std::pair<std::string, std::string>> env = {}) {
    std::vector<std::string> argv{DEFERQ_WORKER_BIN, "--broker", "tcp://127.0.0.1:1"};
    argv.insert(argv.end(), args.begin(), args.end());
    return deferq::test::run(argv, 20s, std::move(env));
}

std::string trimmed(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
        text.pop_back();
    return text;
}

} // namespace

TEST_CASE("a plugin's functions are callable with deferq call through a broker", "[plugin]") {
    cluster c("plugin");
    c.start_broker();
    auto check_plugin_functions = [&] {
        auto words = c.cli({"call", "word_count", "the quick brown fox"});
        INFO(words.output);
        REQUIRE(words.exit_code == 0);
        CHECK(trimmed(words.output) == "4");
        auto product = c.cli({"call", "multiply", "6", "7"});
        INFO(product.output);
        REQUIRE(product.exit_code == 0);
        CHECK(trimmed(product.output) == "42");
        auto frequencies = c.cli({"call", "word_frequencies", "a b A c"});
        CHECK(trimmed(frequencies.output) == R"({"a":2,"b":1,"c":1})");
        // Wrong arguments are still bad_arguments, although the binding code lives in the plugin.
        auto wrong = c.cli({"call", "multiply", "6"});
        CHECK(wrong.exit_code != 0);
        CHECK(wrong.output.find("bad_arguments") != std::string::npos);
    };
    SECTION("next to the built-in functions") {
        c.add_worker("plugged", {"--plugin", example_plugin});
        check_plugin_functions();
        auto sum = c.cli({"call", "add", "1", "2"});
        INFO(sum.output);
        CHECK(sum.exit_code == 0);
        CHECK(trimmed(sum.output) == "3");
    }
    SECTION("alone (--no-builtins), from DEFERQ_PLUGIN") {
        auto before = c.joined_count();
        deferq::test::process worker(
            {DEFERQ_WORKER_BIN, "--broker", c.worker_endpoint(), "--name", "env", "--no-builtins"},
            c.log_dir() + "/worker-env.log", {{"DEFERQ_PLUGIN", example_plugin}});
        REQUIRE(deferq::test::eventually([&] { return c.joined_count() > before; }, 20s));
        check_plugin_functions();
        auto status = c.status();
        REQUIRE(status["workers"].size() == 1);
        CHECK(status["workers"][0]["functions"].size() == 3);
        auto add = c.cli({"--timeout", "300", "call", "add", "1", "2"});
        CHECK(add.exit_code != 0); // no built-ins here
    }
}

TEST_CASE("a plugin that cannot be loaded stops deferq-worker at start, naming file and reason",
          "[plugin]") {
    struct bad_case {
        std::string path;
        std::string reason;
    };
    auto [path, reason] = GENERATE(values<bad_case>({
        {"/nonexistent/libmissing.so", "no such file"},
        {"libmissing_here.so", "no such file"},
        {DEFERQ_TEST_PLUGIN_DIR, "is a directory"},
        {DEFERQ_SOURCE_DIR "/README.md", "cannot load"},
        {test_plugin("not_a_plugin"), "not a deferq plugin"},
        {test_plugin("wrong_abi"), "this deferq-worker loads ABI"},
        {test_plugin("no_register"), "no extern \"C\" deferq_register"},
        {test_plugin("registration_throws"), "registration failed: database unreachable"},
        {test_plugin("undefined_symbol"), "undefined symbol"},
    }));
    auto result = worker_start({"--plugin", path});
    INFO(result.output);
    CHECK(result.exit_code == 1);
    CHECK(result.output.find("plugin " + path + ": ") != std::string::npos);
    CHECK(result.output.find(reason) != std::string::npos);
}

TEST_CASE("DEFERQ_PLUGIN takes a colon-separated list and checks every plugin", "[plugin]") {
    auto result = worker_start({}, {{"DEFERQ_PLUGIN", example_plugin + ":/nonexistent/libx.so"}});
    INFO(result.output);
    CHECK(result.exit_code == 1);
    CHECK(result.output.find("loaded: multiply, word_count, word_frequencies") !=
          std::string::npos);
    CHECK(result.output.find("plugin /nonexistent/libx.so: no such file") != std::string::npos);
}

TEST_CASE("handlers take and return views of megabytes of arguments", "[plugin][views]") {
    // std::span<const std::byte> and std::string_view parameters view the job's arguments where
    // they came (binding_test checks that no copy is made); a view returned whole goes back as the
    // argument's own bytes, a part of one is packed.
    cluster c("byte-views");
    c.start_broker();
    c.add_worker("views", {"--plugin", test_plugin("byte_views")});
    deferq::Client client({.broker = c.client_endpoint()});
    std::vector<std::byte> bytes(3 << 20);
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        bytes[i] = static_cast<std::byte>((i * 131 + (i >> 12)) & 0xFF);
        sum += std::to_integer<std::uint64_t>(bytes[i]);
    }
    CHECK(client.call<std::uint64_t>("bytes_sum", bytes).get(30s) == sum);
    CHECK(client.call<std::vector<std::byte>>("bytes_back", bytes).get(30s) == bytes);
    CHECK(client.call<std::vector<std::byte>>("bytes_tail", bytes, 1000).get(30s) ==
          std::vector<std::byte>(bytes.end() - 1000, bytes.end()));
    std::string text(2 << 20, 'q');
    text[12345] = 'x';
    CHECK(client.call<std::string>("text_back", text).get(30s) == text);
    // A str is read as bytes and a bin as text, as the owning types take them.
    CHECK(client.call<std::uint64_t>("bytes_sum", std::string("abc")).get(30s) == 'a' + 'b' + 'c');
    CHECK(
        client
            .call<std::string>("text_back", std::vector<std::byte>{std::byte{'h'}, std::byte{'i'}})
            .get(30s) == "hi");
    try {
        client.call<std::uint64_t>("bytes_sum", 5).get(30s);
        FAIL("expected bad_arguments");
    } catch (const deferq::Failure& failure) {
        CHECK(failure.code() == deferq::error_code::bad_arguments);
        CHECK_THAT(failure.message(), Catch::Contains("bytes_sum(span<const byte>)"));
    }
}
