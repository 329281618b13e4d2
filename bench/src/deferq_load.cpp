#include "deferq_load.hpp"

#include "add_call.hpp"
#include "child_process.hpp"

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace deferq::bench {
namespace {

std::int64_t nanoseconds(clock_type::duration duration) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(duration).count();
}

/// The calls one client makes in a window run. Calls are made from the thread that starts the run
/// and then from callbacks on the client's I/O thread; the run ends when every call was answered.
struct call_window {
    Client* client = nullptr;
    std::string function;
    std::function<zmq::message_t(std::uint64_t)> arguments; ///< call n's packed arguments
    std::function<double(std::uint64_t)> expected;          ///< call n's right result
    std::uint64_t calls = 0;

    std::vector<clock_type::time_point> started;
    std::vector<std::int64_t> latencies_ns; ///< -1: not answered rightly
    std::atomic<std::uint64_t> issued{0};
    std::atomic<std::uint64_t> answered{0};
    std::atomic<bool> stopping{false};
    clock_type::time_point last_answer{}; ///< written on the I/O thread, read once it is finished

    std::mutex mutex;
    std::condition_variable all_answered;
    bool finished = false;

    void prepare() {
        started.assign(calls, {});
        latencies_ns.assign(calls, -1);
    }

    /// Makes the next call, if any is left and the run is not stopping.
    void issue_next() {
        if (stopping.load(std::memory_order_relaxed))
            return; // also stops recursion when the client closes
        auto n = issued.fetch_add(1, std::memory_order_relaxed);
        if (n >= calls) return;
        started[n] = clock_type::now();
        client->call_encoded<double>(call_options{}, function, arguments(n))
            .add_callbacks(
                [this, n](double value) {
                    auto at = clock_type::now();
                    if (value == expected(n)) latencies_ns[n] = nanoseconds(at - started[n]);
                    answered_one(at); // a wrong value stays -1: counted as a failure
                    issue_next();
                },
                [this](const Failure&) {
                    answered_one(clock_type::now()); // latency stays -1: counted as a failure
                    issue_next();
                });
    }

    void answered_one(clock_type::time_point at) {
        last_answer = at;
        if (answered.fetch_add(1, std::memory_order_acq_rel) + 1 == calls) {
            std::lock_guard lock(mutex);
            finished = true;
            all_answered.notify_all();
        }
    }

    bool wait(clock_type::time_point until) {
        std::unique_lock lock(mutex);
        return all_answered.wait_until(lock, until, [this] { return finished; });
    }

    load_result result(clock_type::time_point first_call) const {
        load_result out;
        out.first_call = first_call;
        out.last_answer = last_answer;
        out.latencies_ns.reserve(calls);
        for (auto latency : latencies_ns)
            if (latency >= 0) out.latencies_ns.push_back(latency);
        out.calls = out.latencies_ns.size();
        out.failures = calls - out.calls;
        return out;
    }
};

using window_setup = std::function<void(call_window&, unsigned client_index)>;

/// Runs one call_window per client with `window` calls in flight each; `setup` names the function
/// and its arguments.
load_result run_windows(zmq::context_t& context, const std::string& endpoint, unsigned clients,
                        unsigned window, std::uint64_t calls, clock_type::time_point until,
                        const window_setup& setup) {
    clients = std::max(1u, clients);
    // The states outlive the clients: a client's destructor still runs callbacks (failing what is
    // left).
    std::vector<std::unique_ptr<call_window>> windows;
    for (unsigned i = 0; i < clients; ++i) {
        auto state = std::make_unique<call_window>();
        state->calls = calls / clients + (i < calls % clients ? 1 : 0);
        setup(*state, i);
        state->prepare();
        windows.push_back(std::move(state));
    }
    std::string error;
    auto first_call = clock_type::now();
    {
        std::vector<std::unique_ptr<Client>> connections;
        for (auto& state : windows) {
            connections.push_back(
                std::make_unique<Client>(context, client_options{.broker = endpoint}));
            state->client = connections.back().get();
        }
        first_call = clock_type::now();
        for (auto& state : windows)
            for (unsigned i = 0; i < window; ++i)
                state->issue_next();
        for (auto& state : windows)
            if (!state->wait(until) && error.empty())
                error = "stopped after " + std::to_string(state->answered.load()) + " of " +
                        std::to_string(state->calls) + " answers (time limit)";
        for (auto& state : windows)
            state->stopping = true;
    } // the clients close here: calls still pending fail with connection_lost
    load_result total;
    for (auto& state : windows)
        total.merge(state->result(first_call));
    total.error = error;
    return total;
}

/// Finds `key` in a msgpack map; null when absent.
const msgpack::object* find_key(const msgpack::object& map, std::string_view key) {
    if (map.type != msgpack::type::MAP) return nullptr;
    for (std::uint32_t i = 0; i < map.via.map.size; ++i) {
        const auto& entry = map.via.map.ptr[i];
        if (entry.key.type == msgpack::type::STR &&
            std::string_view(entry.key.via.str.ptr, entry.key.via.str.size) == key)
            return &entry.val;
    }
    return nullptr;
}

} // namespace

load_result run_deferq_window(zmq::context_t& context, const std::string& endpoint,
                              unsigned clients, unsigned window, std::uint64_t calls,
                              clock_type::time_point until) {
    return run_windows(
        context, endpoint, clients, window, calls, until, [](call_window& state, unsigned index) {
            state.function = "add";
            state.arguments = [index](std::uint64_t n) { return add_arguments(index, n); };
            state.expected = [index](std::uint64_t n) { return add_result(index, n); };
        });
}

load_result run_deferq_sequential(zmq::context_t& context, const std::string& endpoint,
                                  std::uint64_t calls, clock_type::time_point until) {
    load_result result;
    result.latencies_ns.reserve(calls);
    Client client(context, {.broker = endpoint});
    result.first_call = clock_type::now();
    std::uint64_t made = 0;
    for (; made < calls; ++made) {
        auto start = clock_type::now();
        if (start >= until) {
            result.error = "stopped after " + std::to_string(made) + " of " +
                           std::to_string(calls) + " calls (time limit)";
            break;
        }
        try {
            auto value = client.call<double>("add", add_a(0, made), add_b).get(until - start);
            auto at = clock_type::now();
            result.last_answer = at;
            if (value != add_result(0, made)) {
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

load_result run_deferq_spread(zmq::context_t& context, const std::string& endpoint, unsigned jobs,
                              std::int64_t job_ms, clock_type::time_point until) {
    return run_windows(
        context, endpoint, 1, jobs, jobs, until, [job_ms](call_window& state, unsigned) {
            state.function = "sleep_ms";
            state.arguments = [job_ms](std::uint64_t) { return codec::encode_args(job_ms); };
            state.expected = [job_ms](std::uint64_t) { return static_cast<double>(job_ms); };
        });
}

load_result run_deferq_jobs(zmq::context_t& context, const std::string& endpoint, unsigned window,
                            std::uint64_t calls, const std::string& function,
                            std::function<zmq::message_t(std::uint64_t)> arguments, double expected,
                            clock_type::time_point until) {
    return run_windows(context, endpoint, 1, window, calls, until,
                       [&](call_window& state, unsigned) {
                           state.function = function;
                           state.arguments = arguments;
                           state.expected = [expected](std::uint64_t) { return expected; };
                       });
}

double memory_result::bytes_per_job() const {
    if (jobs == 0 || rss_after < rss_before) return std::numeric_limits<double>::quiet_NaN();
    return static_cast<double>(rss_after - rss_before) / static_cast<double>(jobs);
}

memory_result run_deferq_memory(zmq::context_t& context, const std::string& endpoint, pid_t broker,
                                std::uint64_t jobs, clock_type::time_point until) {
    memory_result result;
    std::atomic<std::uint64_t> failures{
        0}; // outlives the client, whose destructor fails what is queued
    {
        Client client(context, {.broker = endpoint});
        auto left = [&] {
            return std::max(
                std::chrono::milliseconds{1},
                std::chrono::duration_cast<std::chrono::milliseconds>(until - clock_type::now()));
        };
        // Connected, known to the broker, nothing queued: the baseline.
        if (auto queued = broker_counter(client, "queued_jobs", left()); queued != 0) {
            result.error = "the broker already holds " + std::to_string(queued) + " queued jobs";
            return result;
        }
        result.rss_before = resident_bytes(broker).value_or(0);
        // Earlier workloads left freed memory in this process's heap, which the pending calls would
        // reuse without growing the RSS: give it back first, so that the growth counts them.
        ::malloc_trim(0);
        result.client_rss_before = resident_bytes(::getpid()).value_or(0);
        auto start = clock_type::now();
        for (std::uint64_t n = 0; n < jobs; ++n)
            client
                .call_with<double>({.timeout = std::chrono::milliseconds{0}}, "add", add_a(0, n),
                                   add_b)
                .add_errback([&failures](const Failure&) {
                    failures.fetch_add(1, std::memory_order_relaxed);
                });
        // mmi.status travels behind the calls on the same connection, so it is answered after them.
        while (true) {
            auto queued = broker_counter(client, "queued_jobs", left());
            result.jobs = queued;
            if (queued >= jobs) break;
            if (failures.load() > 0) {
                result.error =
                    std::to_string(failures.load()) + " calls failed while queueing (overloaded?)";
                break;
            }
            if (clock_type::now() >= until) {
                result.error = "only " + std::to_string(queued) + " of " + std::to_string(jobs) +
                               " queued (time limit)";
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds{50});
        }
        result.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
        result.rss_after = resident_bytes(broker).value_or(0);
        result.client_rss_after = resident_bytes(::getpid()).value_or(0);
    }
    return result;
}

std::uint64_t broker_counter(Client& client, std::string_view name,
                             std::chrono::milliseconds timeout) {
    auto reply = client.call_with<msgpack_value>({.timeout = timeout}, "mmi.status")
                     .get(timeout + std::chrono::seconds{1});
    auto handle = reply.unpack();
    const auto* counters = find_key(handle.get(), "counters");
    const auto* value = counters ? find_key(*counters, name) : nullptr;
    if (!value) throw std::runtime_error("mmi.status has no counter '" + std::string(name) + "'");
    return value->as<std::uint64_t>();
}

} // namespace deferq::bench
