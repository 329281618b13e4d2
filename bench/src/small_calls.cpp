#include "small_calls.hpp"

#include "anchor_load.hpp"
#include "caller_thread_load.hpp"
#include "deferq_load.hpp"
#include "plain_proxy.hpp"

#include <thread>

namespace deferq::bench {
namespace {

using namespace std::chrono_literals;

/// deferq ÷ anchor: p50 ÷ p50 for latency rows, calls/s ÷ calls/s for throughput rows.
void compare(figures& ours, const figures& proxy, const figures& raw, const figures& plain,
             row_kind kind) {
    auto ratio = [kind](const figures& a, const figures& b) {
        return kind == row_kind::latency ? a.p50_us / b.p50_us
                                         : a.calls_per_second / b.calls_per_second;
    };
    ours.ratio_proxy = ratio(ours, proxy);
    ours.ratio_raw = ratio(ours, raw);
    ours.ratio_plain = ratio(ours, plain);
}

/// The systems of a block, in the order of its rows.
enum class measured_system {
    raw,
    proxy,
    plain_proxy,
    plain_proxy_io_thread,
    deferq_caller_thread, ///< the headline (issue 18)
    deferq_get,           ///< W1 only: call().get()
    deferq_callback,      ///< the next call from the callback, on the client's I/O thread
};

} // namespace

std::vector<row> latency_and_throughput(const bench_setup& setup, bool latency, bool throughput) {
    const auto& counts = setup.counts;
    auto w1 = "W1 latency: " + grouped(counts.latency_calls) + " sequential add calls, 1 client";
    auto w2 = "W2 throughput: " + grouped(counts.throughput_calls) +
              " add calls, 1 client × 100 in flight";
    auto w2x4 = "W2 throughput: " + grouped(counts.throughput_calls) +
                " add calls, 4 clients × 25 in flight";
    const std::string deferq_system =
        setup.broker.empty() ? "2 workers" : "the broker at " + setup.broker;
    // DESIGN.md's goals against the proxy anchor, and issue 18's against the plain proxy.
    goal latency_goal{"p50 ≤ 1.25× proxy", &figures::ratio_proxy, 1.25, true};
    goal throughput_goal{"calls/s ≥ 0.70× proxy", &figures::ratio_proxy, 0.70, false};
    goal latency_headline{"p50 ≤ 1.0× plain proxy", &figures::ratio_plain, 1.0, true};
    goal throughput_headline{"calls/s ≥ 1.0× plain proxy", &figures::ratio_plain, 1.0, false};
    struct block {
        std::string workload;
        row_kind kind;
        unsigned clients, window;
        std::uint64_t calls;
        bool enabled;
        std::vector<measured_system> systems;
        std::vector<row> rows;
    };
    std::vector<block> blocks;
    blocks.push_back({w1, row_kind::latency, 1, 1, counts.latency_calls, latency, {}, {}});
    blocks.push_back(
        {w2, row_kind::throughput, 1, 100, counts.throughput_calls, throughput, {}, {}});
    blocks.push_back(
        {w2x4, row_kind::throughput, 4, 25, counts.throughput_calls, throughput, {}, {}});
    for (auto& b : blocks) {
        auto add = [&](measured_system s, std::string name, bool anchor, std::optional<goal> target,
                       std::string hop, std::string servers) {
            b.systems.push_back(s);
            b.rows.push_back({b.workload,
                              std::move(name),
                              b.kind,
                              anchor,
                              std::move(target),
                              std::move(hop),
                              std::move(servers),
                              {}});
        };
        bool is_latency = b.kind == row_kind::latency;
        add(measured_system::raw, "raw anchor: DEALER ↔ ROUTER server", true, std::nullopt, "",
            "server");
        add(measured_system::proxy, "proxy anchor: zmq::proxy_steerable, 2 REP servers", true,
            std::nullopt, "proxy", "REP servers");
        add(measured_system::plain_proxy, "plain proxy anchor: zmq::proxy, 2 DEALER workers", true,
            std::nullopt, "proxy", "DEALER workers");
        add(measured_system::plain_proxy_io_thread, "plain proxy fed through an I/O thread", false,
            std::nullopt, "proxy", "DEALER workers");
        add(measured_system::deferq_caller_thread,
            "deferq: from the caller's thread (callbacks → queue), " + deferq_system, false,
            is_latency ? latency_headline : throughput_headline, "broker", "workers");
        if (is_latency) {
            add(measured_system::deferq_get, "deferq: call().get(), " + deferq_system, false,
                latency_goal, "broker", "workers");
            add(measured_system::deferq_callback, "deferq: next call from the callback", false,
                std::nullopt, "broker", "workers");
        } else {
            add(measured_system::deferq_callback,
                "deferq: next call from the callback, " + deferq_system, false, throughput_goal,
                "broker", "workers");
        }
    }
    std::erase_if(blocks, [](const block& b) { return !b.enabled; });
    if (blocks.empty()) return {};

    try {
        // Long enough for every run of this phase; the servers also die with this program.
        auto lifetime = std::chrono::duration_cast<std::chrono::seconds>(counts.run_limit *
                                                                         (20 * setup.repeats + 6));
        anchor_cluster anchors(setup.programs, setup.log_dir, 2, lifetime);
        plain_proxy_cluster plain(setup.programs, setup.log_dir, "anchor-plain", 2, false,
                                  lifetime);
        deferq_cluster cluster(setup.programs, setup.log_dir, "w1w2");
        if (setup.broker.empty()) {
            progress("started the anchors' servers; starting a deferq broker with 2 workers");
            cluster.start_broker();
            cluster.add_workers(setup.context, 2, {"--concurrency", "1"});
        } else {
            progress("started the anchors' servers; using the broker at " + setup.broker);
            cluster.use_broker(setup.broker);
        }
        const auto& raw_endpoint = anchors.raw_endpoint();
        const auto& proxy_endpoint = anchors.proxy_endpoint();
        const auto& plain_endpoint = plain.endpoint();
        const auto& deferq_endpoint = cluster.client_endpoint();
        const process_parts raw_parts{-1, {anchors.raw_pid()}};
        const process_parts proxy_parts{anchors.proxy_pid(), anchors.rep_pids()};
        const process_parts plain_parts{plain.proxy_pid(), plain.worker_pids()};
        const process_parts deferq_parts{cluster.broker_pid(), cluster.worker_pids()};

        progress("warming up (" + grouped(counts.warmup_calls) + " calls each)");
        auto until = [&] { return clock_type::now() + counts.run_limit; };
        run_anchor_load(setup.context, anchor_kind::raw, raw_endpoint, 1, 100, counts.warmup_calls,
                        until());
        run_anchor_load(setup.context, anchor_kind::proxy, proxy_endpoint, 1, 100,
                        counts.warmup_calls, until());
        run_anchor_load(setup.context, anchor_kind::plain_proxy, plain_endpoint, 1, 100,
                        counts.warmup_calls, until());
        run_deferq_window(setup.context, deferq_endpoint, 1, 100, counts.warmup_calls, until());
        run_deferq_caller_thread(setup.context, deferq_endpoint, 1, 100, counts.warmup_calls,
                                 until());
        std::this_thread::sleep_for(
            300ms); // the workers' adaptive prefetch settles (CREDIT every 100 ms)

        for (unsigned repeat = 1; repeat <= setup.repeats; ++repeat) {
            auto of = " (run " + std::to_string(repeat) + "/" + std::to_string(setup.repeats) + ")";
            for (auto& b : blocks) {
                auto label = b.workload.substr(0, 2) + " " + std::to_string(b.clients) + "×" +
                             std::to_string(b.window) + " ";
                auto run = [&](measured_system s) -> figures {
                    auto anchor = [&](anchor_kind kind, const std::string& endpoint,
                                      const process_parts& parts) {
                        return with_cpu(parts, [&] {
                            return run_anchor_load(setup.context, kind, endpoint, b.clients,
                                                   b.window, b.calls, until());
                        });
                    };
                    switch (s) {
                    case measured_system::raw:
                        return anchor(anchor_kind::raw, raw_endpoint, raw_parts);
                    case measured_system::proxy:
                        return anchor(anchor_kind::proxy, proxy_endpoint, proxy_parts);
                    case measured_system::plain_proxy:
                        return anchor(anchor_kind::plain_proxy, plain_endpoint, plain_parts);
                    case measured_system::plain_proxy_io_thread:
                        return with_cpu(plain_parts, [&] {
                            return run_plain_proxy_io_thread(setup.context, plain_endpoint,
                                                             b.clients, b.window, b.calls, until());
                        });
                    case measured_system::deferq_caller_thread:
                        return with_cpu(deferq_parts, [&] {
                            return run_deferq_caller_thread(setup.context, deferq_endpoint,
                                                            b.clients, b.window, b.calls, until());
                        });
                    case measured_system::deferq_get:
                        return with_cpu(deferq_parts, [&] {
                            return run_deferq_sequential(setup.context, deferq_endpoint, b.calls,
                                                         until());
                        });
                    case measured_system::deferq_callback:
                        return with_cpu(deferq_parts, [&] {
                            return run_deferq_window(setup.context, deferq_endpoint, b.clients,
                                                     b.window, b.calls, until());
                        });
                    }
                    return {};
                };
                std::vector<figures> runs;
                for (std::size_t i = 0; i < b.systems.size(); ++i)
                    runs.push_back(
                        measure(label + b.rows[i].system + of, [&] { return run(b.systems[i]); }));
                for (std::size_t i = 0; i < b.systems.size(); ++i) {
                    if (!b.rows[i].is_anchor) compare(runs[i], runs[1], runs[0], runs[2], b.kind);
                    b.rows[i].runs.push_back(runs[i]);
                }
            }
        }
    } catch (const std::exception& e) {
        progress(std::string("W1/W2 stopped: ") + e.what());
        for (auto& b : blocks)
            mark_failed(b.rows, setup.repeats, e.what());
    }
    std::vector<row> out;
    for (auto& b : blocks)
        for (auto& r : b.rows)
            out.push_back(std::move(r));
    return out;
}

} // namespace deferq::bench
