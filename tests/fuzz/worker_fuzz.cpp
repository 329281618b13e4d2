// libFuzzer target over the worker's handling of messages from the broker (docs/security.md,
// Fuzzing): read_worker_message (REQUEST, CANCEL, the answers to its jobs' calls, HEARTBEAT,
// refusals, DISCONNECT, BATCH), the broker monitor, and the resolvers that decode a call's answer
// into typed values and fire Deferred chains (docs/protocol.md §3b). No sockets, no threads.
//
// Each input is a sequence of messages (fuzz_input.hpp). Eight calls are pending, with call ids 1
// to 8, each expecting another result type. Op byte of each message:
//   bit 0     prepend the header: the empty delimiter and DFQW01
//   bit 1     replace frame 3 (the job or call id) with a pending call's id, 1 + (op >> 4) % 8
// The worker must not crash, leak, trip a sanitizer or log an error: trap_log.hpp.

#include "fuzz_input.hpp"
#include "trap_log.hpp"
#include "worker_message.hpp"

#include "deferq/heartbeat.hpp"
#include "deferq/worker.hpp"

#include <array>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using namespace deferq;

std::size_t weight_seen = 0; // keeps the reads from being optimised away

template <typename R> detail::resolver make_pending(std::vector<std::shared_ptr<void>>& keep) {
    auto shared = std::make_shared<detail::state<R>>(); // no executor: callbacks run inline
    Deferred<R> d(shared);
    d.add_callbacks([](R&) { ++weight_seen; },
                    [](const Failure& failure) { weight_seen += failure.message().size(); });
    keep.push_back(shared);
    return detail::make_resolver<R>(shared, "f");
}

/// Plays the worker's I/O loop (worker.cpp) for one input.
class fuzz_worker : public worker_detail::worker_message_sink {
public:
    fuzz_worker() {
        _calls[0] = make_pending<double>(_keep);
        _calls[1] = make_pending<std::int64_t>(_keep);
        _calls[2] = make_pending<std::string>(_keep);
        _calls[3] = make_pending<std::vector<double>>(_keep);
        _calls[4] = make_pending<std::map<std::string, std::int64_t>>(_keep);
        _calls[5] = make_pending<std::optional<int>>(_keep);
        _calls[6] = make_pending<msgpack_value>(_keep);
        _calls[7] = make_pending<Reply<std::vector<std::string>>>(_keep);
    }

    void on_heard() override { _monitor.heard(clock::now()); }
    void on_job(const protocol::job_request& job, zmq::message_t payload) override {
        weight_seen += job.function.size() + payload.size();
        if (_jobs.size() < 1024) _jobs[job.job_id] = std::move(payload);
    }
    void on_cancel(std::uint64_t job_id) override { _jobs.erase(job_id); }
    void on_call_reply(std::uint64_t id, const detail::raw_reply& reply) override {
        if (auto resolve = take(id)) (*resolve)(&reply, nullptr);
    }
    void on_call_error(std::uint64_t id, const Failure& failure) override {
        if (auto resolve = take(id)) (*resolve)(nullptr, &failure);
    }
    void on_heartbeat(const protocol::broker_heartbeat& heartbeat) override {
        _monitor.announced(heartbeat);
        _monitor.loop_tick(clock::now());
        (void)_monitor.heartbeat_due(clock::now());
    }
    void on_refused(std::string_view why) override { weight_seen += why.size(); }
    void on_disconnect() override { _monitor.forget_instance(); }
    void on_bad_message(std::string_view) override {}

private:
    using clock = std::chrono::steady_clock;

    std::optional<detail::resolver> take(std::uint64_t id) {
        if (id < 1 || id > _calls.size() || !_calls[id - 1]) return std::nullopt;
        auto resolve = std::move(_calls[id - 1]);
        _calls[id - 1] = nullptr;
        return resolve;
    }

    std::vector<std::shared_ptr<void>> _keep;
    std::array<detail::resolver, 8> _calls;
    std::unordered_map<std::uint64_t, zmq::message_t> _jobs;
    broker_monitor _monitor;
};

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    fuzz::trap_errors_in_log();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz_worker worker;
    protocol::batch_reader batch;
    fuzz::for_each_message(data, size, "DFQW01", [&](std::vector<zmq::message_t>& frames) {
        worker_detail::read_worker_message(frames, batch, worker);
    });
    return 0;
}
