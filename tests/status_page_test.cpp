// The broker's status page in a real browser: headless Chromium (Debian's `chromium`) loads
// http://BROKER/ from a broker with three workers, runs the page's script (it fetches
// /status.json) and must show the workers by name. It keeps a screenshot as a CI artifact:
// <build>/artifacts/status-page.png (and the DOM it saw: status-page.html).
//
// Prints "SKIPPED: …" (CTest then reports the test as skipped) only when Chromium is not installed
// or cannot start at all; once it starts, every check must pass. As root it needs --no-sandbox.

#include "cluster.hpp"

#include "deferq/client.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>

using namespace std::chrono_literals;
using deferq::test::cluster;

namespace {

std::string find_chromium() {
    if (const char* configured = std::getenv("DEFERQ_CHROMIUM"); configured && *configured)
        return configured;
    for (const char* candidate : {"/usr/bin/chromium", "/usr/bin/chromium-browser",
                                  "/usr/bin/google-chrome", "/usr/bin/google-chrome-stable"})
        if (::access(candidate, X_OK) == 0) return candidate;
    return {};
}

/// Chromium headless with what a root CI container needs; a fresh profile per run.
std::vector<std::string> chromium_command(const std::string& chromium, const std::string& profile,
                                          std::vector<std::string> extra) {
    std::vector<std::string> argv{chromium,
                                  "--headless",
                                  "--no-sandbox",
                                  "--disable-gpu",
                                  "--disable-dev-shm-usage",
                                  "--no-first-run",
                                  "--no-default-browser-check",
                                  "--disable-extensions",
                                  "--hide-scrollbars",
                                  "--user-data-dir=" + profile};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
}

} // namespace

TEST_CASE("the status page shows the workers by name in headless Chromium, and a screenshot is "
          "kept",
          "[observability][browser]") {
    auto chromium = find_chromium();
    if (chromium.empty()) {
        std::cout << "SKIPPED: chromium is not installed (bash .ci/install-chromium)" << std::endl;
        return;
    }
    cluster c("status-page");
    auto profile = c.log_dir() + "/chromium-profile";
    auto probe = deferq::test::run(
        chromium_command(chromium, profile,
                         {"--dump-dom", "data:text/html,<p id=probe>chromium-runs</p>"}),
        90s);
    if (probe.exit_code != 0 || probe.output.find("chromium-runs") == std::string::npos) {
        std::cout << "SKIPPED: chromium cannot run here (exit " << probe.exit_code << "):\n"
                  << probe.output << std::endl;
        return;
    }

    c.start_broker({"--http", "127.0.0.1:0"});
    REQUIRE_FALSE(c.http_endpoint().empty());
    std::vector<std::string> names{"alpha-worker", "beta-worker", "gamma-worker"};
    for (const auto& name : names)
        c.add_worker(name, {"--concurrency", "2", "--prefetch", "0", "--calculate-delay", "30000"});
    // Some history and a queue to look at: done, failed, queued and running jobs.
    deferq::Client client({.broker = c.client_endpoint()});
    for (int i = 0; i < 50; ++i)
        client.call<double>("add", i, 1).get(30s);
    try {
        client.call<std::int64_t>("fib", -1).get(30s);
    } catch (const deferq::Failure&) {
    }
    std::vector<deferq::Deferred<double>> long_jobs;
    for (int i = 0; i < 15; ++i)
        long_jobs.push_back(client.call_with<double>({.timeout = 60s}, "calculate", i, i));
    for (auto& job : long_jobs)
        job.add_errback([](const deferq::Failure&) {}); // cancelled when the test ends
    REQUIRE(
        deferq::test::eventually([&] { return c.status()["counters"]["running_jobs"] == 6; }, 10s));

    auto url = "http://" + c.http_endpoint() + "/";
    auto dom = deferq::test::run(
        chromium_command(chromium, profile, {"--virtual-time-budget=5000", "--dump-dom", url}),
        120s);
    auto artifacts = std::string(DEFERQ_BINARY_DIR) + "/artifacts";
    ::mkdir(artifacts.c_str(), 0755);
    std::ofstream(artifacts + "/status-page.html") << dom.output;
    INFO(dom.output);
    REQUIRE(dom.exit_code == 0);
    // The page's script ran: it fetched /status.json and drew the tables.
    CHECK_THAT(dom.output, Catch::Contains("class=\"live\""));
    for (const auto& name : names)
        CHECK_THAT(dom.output, Catch::Contains("data-worker=\"" + name + "\""));
    CHECK_THAT(dom.output, Catch::Contains("data-function=\"calculate\"") &&
                               Catch::Contains("data-function=\"add\""));

    auto screenshot = artifacts + "/status-page.png";
    ::unlink(screenshot.c_str());
    auto shot =
        deferq::test::run(chromium_command(chromium, profile,
                                           {"--virtual-time-budget=5000", "--window-size=1280,1000",
                                            "--screenshot=" + screenshot, url}),
                          120s);
    INFO(shot.output);
    CHECK(shot.exit_code == 0);
    auto png = deferq::test::read_file(screenshot);
    CHECK(png.size() > 10'000);
    CHECK(png.substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
    std::cout << "screenshot: " << screenshot << std::endl;
}
