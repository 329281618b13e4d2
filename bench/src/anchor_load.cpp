#include "anchor_load.hpp"

#include "add_call.hpp"

#include "deferq/codec.hpp"
#include "deferq/protocol.hpp"

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

namespace deferq::bench {
namespace {

zmq::message_t id_frame(std::uint64_t id) {
    return zmq::message_t(&id, sizeof id);
}

std::optional<std::uint64_t> read_id(const zmq::message_t& frame) {
    if (frame.size() != sizeof(std::uint64_t)) return std::nullopt;
    std::uint64_t id;
    std::memcpy(&id, frame.data(), sizeof id);
    return id;
}

/// One client: its own socket, its own share of the calls.
load_result run_one_client(zmq::context_t& context, anchor_kind kind, const std::string& endpoint,
                           unsigned window, unsigned client, std::uint64_t calls,
                           clock_type::time_point until) {
    zmq::socket_t dealer(context, zmq::socket_type::dealer);
    dealer.set(zmq::sockopt::linger, 0);
    dealer.connect(endpoint);
    const std::size_t id_index = kind == anchor_kind::proxy ? 1 : 0;

    load_result result;
    result.latencies_ns.reserve(calls);
    std::vector<clock_type::time_point> started(calls);
    std::vector<zmq::message_t> out, in;
    std::uint64_t issued = 0, answered = 0;
    result.first_call = clock_type::now();
    while (answered < calls) {
        while (issued < calls && issued - answered < window) {
            out.clear();
            if (kind == anchor_kind::proxy) out.emplace_back(); // the delimiter REP expects
            out.push_back(id_frame(issued));
            out.push_back(add_arguments(client, issued));
            started[issued] = clock_type::now();
            [[maybe_unused]] bool sent = protocol::send_frames(dealer, out, zmq::send_flags::none);
            ++issued;
        }
        auto now = clock_type::now();
        if (now >= until) {
            result.error = "stopped after " + std::to_string(answered) + " of " +
                           std::to_string(calls) + " answers (time limit)";
            break;
        }
        zmq::pollitem_t item{dealer.handle(), 0, ZMQ_POLLIN, 0};
        protocol::poll(&item, 1,
                       std::min(std::chrono::duration_cast<std::chrono::milliseconds>(until - now) +
                                    std::chrono::milliseconds{1},
                                std::chrono::milliseconds{1000}));
        while (answered < calls && protocol::receive_frames(dealer, in)) {
            auto at = clock_type::now();
            auto id = in.size() == id_index + 2 ? read_id(in[id_index]) : std::nullopt;
            if (!id || *id >= issued) {
                ++result.failures; // not one of ours: counted, not answered
                continue;
            }
            ++answered;
            result.last_answer = at;
            bool right = false;
            try {
                right = codec::decode_value<double>(in.back()) == add_result(client, *id);
            } catch (const codec::decode_failure&) {
            }
            if (!right) {
                ++result.failures;
                continue;
            }
            ++result.calls;
            result.latencies_ns.push_back(
                std::chrono::duration_cast<std::chrono::nanoseconds>(at - started[*id]).count());
        }
    }
    result.failures += calls - answered;
    return result;
}

} // namespace

load_result run_anchor_load(zmq::context_t& context, anchor_kind kind, const std::string& endpoint,
                            unsigned clients, unsigned window, std::uint64_t calls,
                            clock_type::time_point until) {
    clients = std::max(1u, clients);
    if (clients == 1) return run_one_client(context, kind, endpoint, window, 0, calls, until);
    std::vector<load_result> results(clients);
    {
        std::vector<std::jthread> threads;
        for (unsigned i = 0; i < clients; ++i) {
            auto share = calls / clients + (i < calls % clients ? 1 : 0);
            threads.emplace_back([&, i, share] {
                try {
                    results[i] = run_one_client(context, kind, endpoint, window, i, share, until);
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

} // namespace deferq::bench
