#include "big_args.hpp"

#include "plain_proxy.hpp"

#include "deferq/client.hpp"
#include "deferq/protocol.hpp"

#include <cstring>
#include <vector>

namespace deferq::bench {
namespace {

using namespace std::chrono_literals;

/// Byte i of every payload (not constant, so that a misplaced block shows).
char pattern_byte(std::size_t i) {
    return static_cast<char>((i * 131 + (i >> 12)) & 0xFF);
}

/// Whether `data` holds the first `size` bytes of the pattern: checked at 64 places and both ends.
bool right_bytes(const char* data, std::size_t size, std::size_t expected_size) {
    if (size != expected_size) return false;
    if (size == 0) return true;
    for (std::size_t k = 0; k <= 64; ++k) {
        auto i = std::min(size - 1, k * (size / 64));
        if (data[i] != pattern_byte(i)) return false;
    }
    return true;
}

std::int64_t nanoseconds(clock_type::duration duration) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(duration).count();
}

/// `calls` echo calls of `size` bytes through the echo anchor, one at a time: the payload is
/// copied in once (into the message) and the answer out once (into `into`).
load_result anchor_echo(zmq::socket_t& dealer, const std::vector<char>& payload, std::size_t size,
                        unsigned calls, std::vector<char>& into, std::uint64_t& next_id,
                        clock_type::time_point until) {
    load_result result;
    std::vector<zmq::message_t> frames;
    result.first_call = clock_type::now();
    for (unsigned c = 0; c < calls; ++c) {
        auto id = next_id++;
        auto start = clock_type::now();
        frames.clear();
        frames.emplace_back(&id, sizeof id);
        frames.emplace_back(payload.data(), size); // the copy in
        if (!protocol::send_frames(dealer, frames, zmq::send_flags::none)) {
            result.error = "the anchor's DEALER refused a message";
            break;
        }
        bool answered = false;
        while (!answered) {
            auto now = clock_type::now();
            if (now >= until) break;
            zmq::pollitem_t item{dealer.handle(), 0, ZMQ_POLLIN, 0};
            protocol::poll(
                &item, 1,
                std::min(std::chrono::duration_cast<std::chrono::milliseconds>(until - now) + 1ms,
                         1000ms));
            while (protocol::receive_frames(dealer, frames)) {
                std::uint64_t got = 0;
                if (frames.size() != 2 || frames[0].size() != sizeof got) continue;
                std::memcpy(&got, frames[0].data(), sizeof got);
                if (got != id) continue; // a late answer of a run that timed out
                into.resize(frames[1].size());
                std::memcpy(into.data(), frames[1].data(), frames[1].size()); // the copy out
                answered = true;
            }
        }
        if (!answered) {
            result.error = "no answer within the time limit";
            break;
        }
        auto at = clock_type::now();
        result.last_answer = at;
        if (!right_bytes(into.data(), into.size(), size)) {
            ++result.failures;
            continue;
        }
        ++result.calls;
        result.latencies_ns.push_back(nanoseconds(at - start));
    }
    result.failures += calls - result.calls - result.failures;
    return result;
}

/// `calls` echo calls of `size` bytes through deferq, one at a time, from this thread, each
/// result taken as an R: a std::vector<char> (copied out of the reply) or deferq::Bytes (left in
/// the reply's frame).
template <typename R>
load_result deferq_echo(Client& client, const std::vector<char>& payload, unsigned calls,
                        clock_type::time_point until) {
    load_result result;
    result.first_call = clock_type::now();
    for (unsigned c = 0; c < calls; ++c) {
        auto start = clock_type::now();
        if (start >= until) {
            result.error = "time limit";
            break;
        }
        try {
            auto echoed = client.call<R>("echo", payload).get(until - start);
            auto at = clock_type::now();
            result.last_answer = at;
            if (!right_bytes(reinterpret_cast<const char*>(echoed.data()), echoed.size(),
                             payload.size())) {
                ++result.failures;
                continue;
            }
            ++result.calls;
            result.latencies_ns.push_back(nanoseconds(at - start));
        } catch (const Failure& failure) {
            result.error = failure.what();
            break;
        }
    }
    result.failures += calls - result.calls - result.failures;
    return result;
}

double megabytes_per_second(std::size_t size, const figures& f) {
    return static_cast<double>(size) / (f.p50_us * 1e-6) / 1e6;
}

} // namespace

std::vector<row> big_args(const bench_setup& setup) {
    const auto& counts = setup.counts;
    std::vector<row> rows;
    for (auto [mib, calls] : counts.big_args) {
        auto workload = "W6 big arguments: echo of " + std::to_string(mib) + " MiB of bin, " +
                        std::to_string(calls) + " calls one at a time";
        rows.push_back({workload,
                        "echo anchor: zmq::proxy, 2 DEALER echo workers",
                        row_kind::big_args,
                        true,
                        std::nullopt,
                        "proxy",
                        "echo workers",
                        {}});
        rows.push_back({workload,
                        "deferq: call<vector<char>>(\"echo\", bytes).get(), 2 workers",
                        row_kind::big_args,
                        false,
                        goal{"MB/s ≥ 0.8× echo anchor", &figures::ratio_proxy, 0.8, false},
                        "broker",
                        "workers",
                        {}});
        rows.push_back({workload,
                        "deferq: call<deferq::Bytes>(\"echo\", bytes).get(), 2 workers",
                        row_kind::big_args,
                        false,
                        goal{"MB/s ≥ 0.8× echo anchor", &figures::ratio_proxy, 0.8, false},
                        "broker",
                        "workers",
                        {}});
    }
    if (rows.empty()) return rows;
    try {
        std::size_t largest = 0;
        for (auto [mib, calls] : counts.big_args)
            largest = std::max(largest, mib << 20);
        auto lifetime = std::chrono::duration_cast<std::chrono::seconds>(
            counts.run_limit * (2 * counts.big_args.size() * setup.repeats + 2));
        plain_proxy_cluster anchor(setup.programs, setup.log_dir, "w6-anchor", 2, true, lifetime);
        deferq_cluster cluster(setup.programs, setup.log_dir, "w6");
        // A 60 MiB argument is near the default 64 MiB message limit, and half the default tenant
        // budget: both raised, so that only the transport is measured.
        auto limit = std::to_string(std::max<std::size_t>(2 * largest, 64u << 20));
        progress("W6: started the echo anchor; starting a deferq broker with 2 workers");
        cluster.start_broker({"--max-message-size", limit, "--tenant-budget",
                              std::to_string(8 * largest + (256u << 20))});
        cluster.add_workers(setup.context, 2, {"--concurrency", "1"});
        const process_parts anchor_parts{anchor.proxy_pid(), anchor.worker_pids()};
        const process_parts deferq_parts{cluster.broker_pid(), cluster.worker_pids()};

        zmq::socket_t dealer(setup.context, zmq::socket_type::dealer);
        dealer.set(zmq::sockopt::linger, 0);
        dealer.connect(anchor.endpoint());
        Client client(setup.context, {.broker = cluster.client_endpoint()});
        std::vector<char> source(largest), into;
        for (std::size_t i = 0; i < largest; ++i)
            source[i] = pattern_byte(i);
        std::uint64_t next_id = 1;
        auto until = [&] { return clock_type::now() + counts.run_limit; };

        for (std::size_t s = 0; s < counts.big_args.size(); ++s) {
            auto [mib, calls] = counts.big_args[s];
            auto size = mib << 20;
            std::vector<char> payload(source.begin(),
                                      source.begin() + static_cast<std::ptrdiff_t>(size));
            // One call of each first: connections, buffers and the heaps' first growth.
            anchor_echo(dealer, source, size, 1, into, next_id, until());
            deferq_echo<std::vector<char>>(client, payload, 1, until());
            for (unsigned repeat = 1; repeat <= setup.repeats; ++repeat) {
                auto of = " " + std::to_string(mib) + " MiB (run " + std::to_string(repeat) + "/" +
                          std::to_string(setup.repeats) + ")";
                auto ours_anchor = measure("W6 echo anchor" + of, [&] {
                    return with_cpu(anchor_parts, [&] {
                        return anchor_echo(dealer, source, size, calls, into, next_id, until());
                    });
                });
                auto ours = measure("W6 deferq" + of, [&] {
                    return with_cpu(deferq_parts, [&] {
                        return deferq_echo<std::vector<char>>(client, payload, calls, until());
                    });
                });
                auto shared = measure("W6 deferq Bytes" + of, [&] {
                    return with_cpu(deferq_parts, [&] {
                        return deferq_echo<Bytes>(client, payload, calls, until());
                    });
                });
                ours_anchor.megabytes_per_second = megabytes_per_second(size, ours_anchor);
                rows[3 * s].runs.push_back(ours_anchor);
                for (auto [measured, at] : {std::pair{&ours, 1}, std::pair{&shared, 2}}) {
                    measured->megabytes_per_second = megabytes_per_second(size, *measured);
                    measured->ratio_proxy =
                        measured->megabytes_per_second / ours_anchor.megabytes_per_second;
                    rows[3 * s + static_cast<std::size_t>(at)].runs.push_back(*measured);
                }
            }
        }
    } catch (const std::exception& e) {
        progress(std::string("W6 stopped: ") + e.what());
        mark_failed(rows, setup.repeats, e.what());
    }
    return rows;
}

} // namespace deferq::bench
