// Unit tests of the Prometheus text writer and of the broker status rendered with it, read back
// by the strict parser of tests/support/prometheus.hpp.

#include "prometheus.hpp"
#include "prometheus_text.hpp"

#include "deferq/utf8.hpp"

#include "deferq/broker_status.hpp"

#include <catch2/catch.hpp>

#include <limits>

using deferq::prometheus_text;
using deferq::test::parse_prometheus;

TEST_CASE("label values are escaped and invalid UTF-8 is repaired", "[prometheus]") {
    CHECK(prometheus_text::escape_label_value("plain") == "plain");
    CHECK(prometheus_text::escape_label_value("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
    CHECK(prometheus_text::escape_label_value("caf\xC3\xA9") == "caf\xC3\xA9");
    CHECK(prometheus_text::escape_label_value("bad\xFF") == "bad\xEF\xBF\xBD");
    CHECK(prometheus_text::escape_label_value("\xC0\xAF") ==
          "\xEF\xBF\xBD\xEF\xBF\xBD"); // overlong
    CHECK(deferq::to_valid_utf8("\xED\xA0\x80") ==
          "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"); // surrogate
}

TEST_CASE("numbers are written as the format wants them", "[prometheus]") {
    CHECK(prometheus_text::number(0.25) == "0.25");
    CHECK(prometheus_text::number(1.0) == "1");
    CHECK(prometheus_text::number(std::numeric_limits<double>::infinity()) == "+Inf");
    CHECK(prometheus_text::number(-std::numeric_limits<double>::infinity()) == "-Inf");
}

TEST_CASE("a broker status with hostile names renders as strict Prometheus text", "[prometheus]") {
    deferq::broker_status status;
    status.instance = 0xabcdef;
    status.uptime_ms = 1500;
    for (auto [name, value] :
         {std::pair{"requests", 10}, {"replies", 7}, {"errors", 3}, {"queued_jobs", 2}})
        status.counters[deferq::counter_index(name)] = value;
    deferq::function_status f;
    f.name = "we\"ird\\name\n\xFF";
    f.queued = 2;
    f.done = 7;
    f.failed_by_code[static_cast<std::size_t>(deferq::error_code::timeout)] = 3;
    for (int i = 0; i < 7; ++i)
        f.service_time.observe(std::chrono::milliseconds{3 * i});
    status.functions.push_back(f);
    deferq::worker_status w;
    w.name = "w\"1";
    w.id = "0011223344556677";
    w.slots = 4;
    status.workers.push_back(w);

    auto text = deferq::to_prometheus(status);
    INFO(text);
    auto parsed = parse_prometheus(text);
    std::string name = "we\"ird\\name\n\xEF\xBF\xBD";
    CHECK(parsed.value("deferq_requests_total") == 10.0);
    CHECK(parsed.value("deferq_queued_jobs") == 2.0);
    CHECK(parsed.value("deferq_function_calls_done_total", {{"function", name}}) == 7.0);
    CHECK(parsed.value("deferq_function_calls_failed_total",
                       {{"function", name}, {"code", "timeout"}}) == 3.0);
    CHECK(parsed.value("deferq_service_time_seconds_count", {{"function", name}}) == 7.0);
    CHECK(parsed.value("deferq_queue_wait_seconds_count", {{"function", name}}) == 0.0);
    CHECK(parsed.value("deferq_worker_slots", {{"worker", "w\"1"}, {"id", "0011223344556677"}}) ==
          4.0);
    CHECK(parsed.types.at("deferq_service_time_seconds") == "histogram");
}

TEST_CASE("the strict parser rejects what Prometheus rejects", "[prometheus]") {
    auto rejects = [](const std::string& text) {
        INFO(text);
        CHECK_THROWS(parse_prometheus(text));
    };
    rejects("x_total 1\n");                                // no TYPE
    rejects("# TYPE x counter\nx 1");                      // no final newline
    rejects("# TYPE x counter\nx{a=\"b\\q\"} 1\n");        // bad escape
    rejects("# TYPE x counter\nx{1a=\"b\"} 1\n");          // bad label name
    rejects("# TYPE x counter\nx 1\nx 2\n");               // duplicate series
    rejects("# TYPE x gauge\n# TYPE y gauge\ny 1\nx 1\n"); // family split
    rejects("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\n"
            "h_count 1\n");                                                       // decreasing
    rejects("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n");    // no +Inf
    rejects("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n"); // +Inf ≠ count
    CHECK_NOTHROW(parse_prometheus("# HELP h help\n# TYPE h histogram\nh_bucket{le=\"0.5\"} 1\n"
                                   "h_bucket{le=\"+Inf\"} 2\nh_sum 1.5\nh_count 2\n"));
}
