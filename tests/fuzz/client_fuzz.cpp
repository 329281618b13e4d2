// libFuzzer target over the client's handling of messages from the broker (docs/security.md,
// Fuzzing): read_broker_message (REPLY, ERROR, PROGRESS, HEARTBEAT, DISCONNECT validation), the
// broker monitor, the resolvers that decode a result into typed values and fire Deferred chains,
// and the CLI's rendering of untyped results. No sockets, no threads.
//
// Each input is a sequence of messages (fuzz_input.hpp). Eight calls are pending, with correlation
// ids 1 to 8, each expecting another result type. Op byte of each message:
//   bit 0     prepend the header: the empty delimiter and DFQC01
//   bit 1     replace frame 3 (the correlation id) with a pending call's id, 1 + (op >> 4) % 8
// The client must not crash, leak, trip a sanitizer or log an error (an unhandled failure, a throw
// that escaped): trap_log.hpp.

#include "broker_message.hpp"
#include "fuzz_input.hpp"
#include "result_text.hpp"
#include "trap_log.hpp"

#include "deferq/client.hpp"
#include "deferq/heartbeat.hpp"

#include <array>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace {

using namespace deferq;

/// Something that touches every part of a decoded value, so that the sanitizers see it whole.
std::size_t weigh(double value) {
    return value > 0 ? 1 : 0;
}
std::size_t weigh(std::int64_t value) {
    return static_cast<std::size_t>(value & 1);
}
std::size_t weigh(const std::string& value) {
    std::size_t sum = 0;
    for (char c : value)
        sum += static_cast<unsigned char>(c);
    return sum;
}
template <typename T> std::size_t weigh(const std::vector<T>& values) {
    std::size_t sum = 0;
    for (const auto& value : values)
        sum += weigh(value);
    return sum;
}
template <typename K, typename V> std::size_t weigh(const std::map<K, V>& values) {
    std::size_t sum = 0;
    for (const auto& [key, value] : values)
        sum += weigh(key) + weigh(value);
    return sum;
}
std::size_t weigh(const std::optional<int>& value) {
    return value ? 1 : 0;
}
std::size_t weigh(const msgpack_value& value) {
    return codec::msgpack_kind(value.unpack().get())
        .size(); // a throw here fails the Deferred: allowed
}
template <typename T> std::size_t weigh(const Reply<T>& reply) {
    return weigh(reply.value) + reply.worker.size() + reply.attempt;
}

std::size_t weight_seen = 0; // keeps weigh() from being optimised away

/// One pending call: a Deferred<R> with a callback, an errback, a then() and a progress handler,
/// fired by the same resolver a Client uses.
struct pending {
    detail::resolver resolve;
    std::function<void(double, std::string_view)> progress;
};

template <typename R> pending make_pending(std::vector<std::shared_ptr<void>>& keep) {
    auto shared = std::make_shared<detail::state<R>>(); // no executor: callbacks run inline
    Deferred<R> d(shared);
    d.add_callbacks(
        [](R& value) { weight_seen += weigh(value); },
        [](const Failure& failure) { weight_seen += std::string(failure.what()).size(); });
    d.on_progress([](double fraction, std::string_view note) {
        weight_seen += (fraction > 0.5 ? 1 : 0) + note.size();
    });
    auto next = d.then([](R& value) { return weigh(value); });
    next.add_errback([](const Failure&) {});
    keep.push_back(shared); // the Deferreds live as long as the input is handled
    keep.push_back(next.shared_state());
    auto progress = [weak = std::weak_ptr<detail::state<R>>(shared)](double fraction,
                                                                     std::string_view note) {
        if (auto alive = weak.lock()) alive->notify_progress(fraction, note);
    };
    return {detail::make_resolver<R>(shared, "f"), progress};
}

/// Plays the client's I/O loop (client.cpp, client_core) for one input.
class fuzz_client : public detail::broker_message_sink {
public:
    fuzz_client() {
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
    void on_reply(std::uint64_t id, const detail::raw_reply& reply) override {
        // `deferq call` prints any result it gets, outside a Deferred chain.
        try {
            weight_seen += cli::result_text(reply.payload).size();
        } catch (const Failure& failure) {
            // What `deferq call` reports for a result that is not msgpack or has no JSON form
            // (bad_result).
            weight_seen += failure.message().size();
        }
        if (auto call = take(id)) call->resolve(&reply, nullptr);
    }
    void on_error(std::uint64_t id, const Failure& failure) override {
        if (auto call = take(id)) call->resolve(nullptr, &failure);
    }
    void on_progress(std::uint64_t id, double fraction, std::string_view note) override {
        if (id >= 1 && id <= _calls.size() && _calls[id - 1].resolve)
            _calls[id - 1].progress(fraction, note);
    }
    void on_heartbeat(const protocol::broker_heartbeat& heartbeat) override {
        _monitor.announced(heartbeat);
        _monitor.loop_tick(clock::now());
        (void)_monitor.heartbeat_due(clock::now());
    }
    void on_disconnect() override { _monitor.forget_instance(); }
    void on_bad_message(std::string_view) override {}

private:
    using clock = std::chrono::steady_clock;

    std::optional<pending> take(std::uint64_t id) {
        if (id < 1 || id > _calls.size() || !_calls[id - 1].resolve) return std::nullopt;
        auto call = std::move(_calls[id - 1]);
        _calls[id - 1] = {};
        return call;
    }

    std::vector<std::shared_ptr<void>> _keep;
    std::array<pending, 8> _calls;
    broker_monitor _monitor;
};

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    fuzz::trap_errors_in_log();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz_client client;
    protocol::batch_reader batch;
    fuzz::for_each_message(data, size, "DFQC01", [&](std::vector<zmq::message_t>& frames) {
        detail::read_broker_message(frames, batch, client);
    });
    return 0;
}
