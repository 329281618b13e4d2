#include "caller_thread_load.hpp"

#include "add_call.hpp"

#include "deferq/client.hpp"
#include "deferq/protocol.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

namespace deferq::bench {
namespace {

/// One answer as the caller's thread takes it: which call, its value, whether it failed.
struct answer {
    std::uint64_t n;
    double value;
    bool ok;
};

/// The queue the callbacks (another thread) fill and the caller's thread drains all at once.
class answer_queue {
public:
    void push(answer a) {
        {
            std::lock_guard lock(_mutex);
            _answers.push_back(a);
        }
        _ready.notify_one();
    }

    /// Waits until there is at least one answer (or `until`) and swaps them all into `into`
    /// (cleared first). False when the time is up and nothing came.
    bool take_all(std::vector<answer>& into, clock_type::time_point until) {
        into.clear();
        std::unique_lock lock(_mutex);
        if (!_ready.wait_until(lock, until, [this] { return !_answers.empty(); })) return false;
        std::swap(into, _answers);
        return true;
    }

private:
    std::mutex _mutex;
    std::condition_variable _ready;
    std::vector<answer> _answers;
};

std::int64_t nanoseconds(clock_type::duration duration) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(duration).count();
}

/// The caller's loop, whatever carries the calls: `issue(n)` sends call n; its answer arrives in
/// `queue`.
template <typename Issue>
load_result caller_loop(answer_queue& queue, unsigned client, unsigned window, std::uint64_t calls,
                        clock_type::time_point until, Issue&& issue) {
    load_result result;
    result.latencies_ns.reserve(calls);
    std::vector<clock_type::time_point> started(calls);
    std::vector<answer> taken;
    std::uint64_t issued = 0, answered = 0;
    result.first_call = clock_type::now();
    while (answered < calls) {
        while (issued < calls && issued - answered < window) {
            started[issued] = clock_type::now();
            issue(issued);
            ++issued;
        }
        if (!queue.take_all(taken, until)) {
            result.error = "stopped after " + std::to_string(answered) + " of " +
                           std::to_string(calls) + " answers (time limit)";
            break;
        }
        auto at = clock_type::now();
        for (const auto& a : taken) {
            ++answered;
            if (a.n >= issued || !a.ok || a.value != add_result(client, a.n)) {
                ++result.failures;
                continue;
            }
            ++result.calls;
            result.latencies_ns.push_back(nanoseconds(at - started[a.n]));
        }
        result.last_answer = at;
    }
    result.failures += calls - std::min(calls, answered);
    return result;
}

load_result deferq_client(zmq::context_t& context, const std::string& endpoint, unsigned client,
                          unsigned window, std::uint64_t calls, clock_type::time_point until) {
    answer_queue queue; // outlives the client, whose destructor fails what is still pending
    Client connection(context, {.broker = endpoint});
    return caller_loop(queue, client, window, calls, until, [&](std::uint64_t n) {
        connection.call<double>("add", add_a(client, n), add_b)
            .add_callbacks(
                [&queue, n](double value) {
                    queue.push({n, value, true});
                },
                [&queue, n](const Failure&) {
                    queue.push({n, 0, false});
                });
    });
}

zmq::message_t id_frame(std::uint64_t id) {
    return zmq::message_t(&id, sizeof id);
}

load_result io_thread_client(zmq::context_t& context, const std::string& endpoint, unsigned client,
                             unsigned window, std::uint64_t calls, clock_type::time_point until) {
    answer_queue queue;
    auto pipe = "inproc://bench-io-thread-" + std::to_string(client) + "-" +
                std::to_string(reinterpret_cast<std::uintptr_t>(&queue));
    zmq::socket_t to_io(context, zmq::socket_type::pair);
    to_io.set(zmq::sockopt::linger, 0);
    to_io.bind(pipe);
    std::atomic<bool> stop{false};
    // The I/O thread: owns the DEALER; forwards calls from the pipe, answers into the queue.
    std::thread io([&] {
        zmq::socket_t from_caller(context, zmq::socket_type::pair);
        from_caller.set(zmq::sockopt::linger, 0);
        from_caller.connect(pipe);
        zmq::socket_t dealer(context, zmq::socket_type::dealer);
        dealer.set(zmq::sockopt::linger, 0);
        dealer.connect(endpoint);
        std::vector<zmq::message_t> frames;
        while (!stop.load(std::memory_order_relaxed)) {
            zmq::pollitem_t items[] = {{from_caller.handle(), 0, ZMQ_POLLIN, 0},
                                       {dealer.handle(), 0, ZMQ_POLLIN, 0}};
            protocol::poll(items, 2, std::chrono::milliseconds{100});
            while (protocol::receive_frames(from_caller, frames)) {
                [[maybe_unused]] bool sent =
                    protocol::send_frames(dealer, frames, zmq::send_flags::none);
            }
            while (protocol::receive_frames(dealer, frames)) {
                if (frames.size() != 2 || frames[0].size() != sizeof(std::uint64_t)) continue;
                std::uint64_t n;
                std::memcpy(&n, frames[0].data(), sizeof n);
                try {
                    queue.push({n, codec::decode_value<double>(frames[1]), true});
                } catch (const codec::decode_failure&) {
                    queue.push({n, 0, false});
                }
            }
        }
    });
    std::vector<zmq::message_t> out;
    load_result result;
    try {
        result = caller_loop(queue, client, window, calls, until, [&](std::uint64_t n) {
            out.clear();
            out.push_back(id_frame(n));
            out.push_back(add_arguments(client, n));
            [[maybe_unused]] bool sent = protocol::send_frames(to_io, out, zmq::send_flags::none);
        });
    } catch (...) {
        stop = true;
        io.join();
        throw;
    }
    stop = true;
    io.join();
    return result;
}

/// Runs `one(client index, share of the calls)` on this thread for 1 client, else on a thread
/// per client, and merges the results.
template <typename One> load_result per_client(unsigned clients, std::uint64_t calls, One&& one) {
    clients = std::max(1u, clients);
    if (clients == 1) return one(0u, calls);
    std::vector<load_result> results(clients);
    {
        std::vector<std::jthread> threads;
        for (unsigned i = 0; i < clients; ++i) {
            auto share = calls / clients + (i < calls % clients ? 1 : 0);
            threads.emplace_back([&, i, share] {
                try {
                    results[i] = one(i, share);
                } catch (const std::exception& e) {
                    results[i].failures = share;
                    results[i].error = e.what();
                }
            });
        }
    }
    load_result total;
    for (auto& result : results)
        total.merge(std::move(result));
    return total;
}

} // namespace

load_result run_deferq_caller_thread(zmq::context_t& context, const std::string& endpoint,
                                     unsigned clients, unsigned window, std::uint64_t calls,
                                     clock_type::time_point until) {
    return per_client(clients, calls, [&](unsigned client, std::uint64_t share) {
        return deferq_client(context, endpoint, client, window, share, until);
    });
}

load_result run_plain_proxy_io_thread(zmq::context_t& context, const std::string& endpoint,
                                      unsigned clients, unsigned window, std::uint64_t calls,
                                      clock_type::time_point until) {
    return per_client(clients, calls, [&](unsigned client, std::uint64_t share) {
        return io_thread_client(context, endpoint, client, window, share, until);
    });
}

} // namespace deferq::bench
