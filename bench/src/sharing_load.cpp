#include "sharing_load.hpp"

#include "child_process.hpp"

#include "deferq/client.hpp"
#include "deferq/protocol.hpp"

#include <msgpack.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

namespace deferq::bench {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

double percentile(std::vector<double> values, double p) {
    if (values.empty()) return no_figure;
    std::sort(values.begin(), values.end());
    auto at = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
    return values[std::min(at, values.size() - 1)];
}

/// Caller B's calls while caller A's backlog waits (2 workers of 1 slot).
figures fair_share_run(const program_paths& programs, const std::string& log_dir,
                       zmq::context_t& context, const sharing_plan& plan, unsigned repeat) {
    figures out;
    deferq_cluster cluster(programs, log_dir, "w7-fair-" + std::to_string(repeat));
    cluster.start_broker();
    cluster.add_workers(context, 2, {"--concurrency", "1"});
    Client a(context, {.broker = cluster.client_endpoint()});
    Client b(context, {.broker = cluster.client_endpoint()});
    auto limit = std::chrono::milliseconds(plan.job_ms) * (plan.backlog_jobs + 100);
    std::vector<Deferred<std::int64_t>> backlog;
    for (unsigned i = 0; i < plan.backlog_jobs; ++i)
        backlog.push_back(a.call_with<std::int64_t>({.timeout = limit}, "sleep_ms", plan.job_ms));
    std::this_thread::sleep_for(200ms); // A's calls are queued
    std::vector<double> latencies;
    for (unsigned i = 0; i < plan.probe_calls; ++i) {
        auto started = clock_type::now();
        b.call_with<std::int64_t>({.timeout = limit}, "sleep_ms", plan.job_ms).get(limit);
        latencies.push_back(
            std::chrono::duration<double, std::micro>(clock_type::now() - started).count());
    }
    out.p50_us = percentile(latencies, 0.5);
    out.p99_us = percentile(latencies, 0.99);
    out.ratio_base = out.p50_us / (static_cast<double>(plan.job_ms) * 1000.0);
    out.calls = latencies.size();
    for (auto& call : backlog) { // A's backlog is not what is measured
        call.add_errback([](const Failure&) {});
        call.cancel();
    }
    return out;
}

/// A bare DEALER sends echo calls and never reads; the broker's RSS before, at most, and after.
figures slow_reader_run(const program_paths& programs, const std::string& log_dir,
                        zmq::context_t& context, const sharing_plan& plan, unsigned repeat) {
    figures out;
    deferq_cluster cluster(programs, log_dir, "w7-slow-" + std::to_string(repeat));
    cluster.start_broker(
        {"--tenant-budget", std::to_string(plan.tenant_budget), "--heartbeat-interval", "250"});
    cluster.add_workers(context, 2, {"--concurrency", "2"});
    auto pid = cluster.broker_pid();
    Client other(context, {.broker = cluster.client_endpoint()});
    other.call<std::string>("echo", "warm").get(30s);
    auto before = resident_bytes(pid).value_or(0);
    std::size_t peak = before;
    {
        zmq::socket_t slow(context, zmq::socket_type::dealer);
        slow.set(zmq::sockopt::rcvhwm, 1);
        slow.set(zmq::sockopt::rcvbuf, 4096);
        slow.set(zmq::sockopt::linger, 0);
        slow.connect(cluster.client_endpoint());
        msgpack::sbuffer arguments;
        msgpack::pack(arguments, std::make_tuple(std::string(plan.slow_payload, 's')));
        std::atomic<bool> sending{true};
        std::thread sender([&] {
            std::vector<zmq::message_t> frames;
            for (std::uint64_t id = 1; id <= plan.slow_calls; ++id) {
                protocol::request_message(frames, id, "echo", {},
                                          zmq::message_t(arguments.data(), arguments.size()));
                if (!protocol::send_frames(slow, frames, zmq::send_flags::none)) break;
            }
            sending = false;
        });
        std::vector<double> latencies; // the other caller, meanwhile
        while (sending) {
            auto started = clock_type::now();
            other.call_with<std::string>({.timeout = 30s}, "echo", "meanwhile").get(30s);
            latencies.push_back(
                std::chrono::duration<double, std::micro>(clock_type::now() - started).count());
            peak = std::max(peak, resident_bytes(pid).value_or(0));
        }
        sender.join();
        std::this_thread::sleep_for(300ms);
        peak = std::max(peak, resident_bytes(pid).value_or(0));
        out.p50_us = percentile(latencies, 0.5);
        out.p99_us = percentile(latencies, 0.99);
        out.calls = latencies.size();
    } // the slow socket closes
    std::size_t after = peak;
    auto deadline = clock_type::now() + 15s;
    while (clock_type::now() < deadline) { // its record expires, the memory goes back
        std::this_thread::sleep_for(250ms);
        after = resident_bytes(pid).value_or(0);
        if (after < before + (8u << 20)) break;
    }
    out.rss_growth_bytes = static_cast<double>(peak - before);
    out.rss_left_bytes = static_cast<double>(after > before ? after - before : 0);
    return out;
}

} // namespace

std::vector<row> sharing_rows(const program_paths& programs, const std::string& log_dir,
                              zmq::context_t& context, unsigned repeats, const sharing_plan& plan) {
    std::vector<row> rows{{"W7 fair share: B's sleep_ms(" + std::to_string(plan.job_ms) + ") × " +
                               std::to_string(plan.probe_calls) + " while A has " +
                               std::to_string(plan.backlog_jobs) + " queued, 2 workers × 1 slot",
                           "deferq (B's latency)",
                           row_kind::sharing,
                           false,
                           goal{"p50 ≤ 3× its job time", &figures::ratio_base, 3.0, true},
                           "",
                           "",
                           {}},
                          {"W7 slow reader: " + std::to_string(plan.slow_calls) + " × echo of " +
                               std::to_string(plan.slow_payload / 1024) +
                               " KiB sent, no answer read, tenant budget " +
                               std::to_string(plan.tenant_budget >> 20) + " MiB",
                           "deferq (another caller's echo)",
                           row_kind::slow_reader,
                           false,
                           goal{"broker RSS ≤ +4× the budget", &figures::rss_growth_bytes,
                                4.0 * static_cast<double>(plan.tenant_budget), true},
                           "",
                           "",
                           {}}};
    for (unsigned repeat = 1; repeat <= repeats; ++repeat) {
        auto attempt = [&](auto&& run) {
            try {
                return run();
            } catch (const std::exception& e) {
                figures failed;
                failed.error = e.what();
                return failed;
            }
        };
        rows[0].runs.push_back(
            attempt([&] { return fair_share_run(programs, log_dir, context, plan, repeat); }));
        rows[1].runs.push_back(
            attempt([&] { return slow_reader_run(programs, log_dir, context, plan, repeat); }));
    }
    return rows;
}

} // namespace deferq::bench
