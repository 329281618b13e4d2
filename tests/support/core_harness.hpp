#pragma once
/// A broker core driven by hand for unit tests: injected time, a recording outbox, and short ways
/// to register workers, connect clients and make calls. No socket, no thread, no sleep.

#include "recording_outbox.hpp"

#include "core/broker_core.hpp"
#include "peers/peer_dialect.hpp"

#include "deferq/broker.hpp"
#include "deferq/codec.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace deferq::test {

inline broker_options core_options() {
    broker_options options;
    options.heartbeat_interval = std::chrono::seconds{1};
    options.liveness = 3;
    options.max_attempts = 3;
    return options;
}

class core_harness {
public:
    using time_point = broker_detail::time_point;

    explicit core_harness(broker_options o = core_options()) : options(std::move(o)) {}

    broker_options options;
    broker_counters counters;
    time_point now = time_point{} + std::chrono::hours{1};
    recording_outbox out{&now};
    broker_detail::broker_core core{options, counters, out, now};

    /// Moves time on and lets the core act on it (deadlines, and a tick when asked).
    void advance(std::chrono::milliseconds by, bool tick = false) {
        now += by;
        core.expire_deadlines(now);
        if (tick) core.tick(now);
    }

    broker_detail::worker_record& worker(const std::string& name, std::uint32_t slots,
                                         std::uint32_t prefetch,
                                         std::vector<std::string_view> functions = {"f"}) {
        return core.on_ready(name, broker_detail::deferq_dialect(),
                             {name, slots, prefetch, functions, {}}, now);
    }

    broker_detail::client_record& client(const std::string& name = "client") {
        return core.touch_client(name, broker_detail::deferq_dialect(), now);
    }

    /// A call from `client` (its payload is the text given).
    void call(const std::string& client_name, std::uint64_t correlation_id,
              std::string_view function = "f", std::uint32_t timeout_ms = 0,
              std::uint8_t priority = 0, std::string_view payload = "args") {
        auto& c = client(client_name);
        core.on_request(c,
                        {correlation_id,
                         function,
                         {.timeout_ms = timeout_ms, .priority = priority, .max_attempts = 0}},
                        zmq::message_t(payload.data(), payload.size()), now);
    }

    /// The worker answers a job with a result.
    bool reply(const std::string& worker_name, std::uint64_t job_id,
               std::string_view result = "result") {
        auto* w = core.find_worker(worker_name);
        return w && core.on_reply(*w, job_id, result, nullptr, now);
    }

    /// Job ids given to a worker so far, in order.
    std::vector<std::uint64_t> given(const std::string& worker_name) const {
        return out.jobs_given(worker_name);
    }
};

} // namespace deferq::test
