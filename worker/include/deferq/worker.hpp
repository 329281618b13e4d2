#pragma once
/// deferq::Worker: offers functions to a broker and runs their jobs on a pool of threads.
///
///     deferq::Worker worker{{.broker = "tcp://127.0.0.1:5556", .concurrency = 4}};
///     worker.define("calculate", [](double a, double b) { return a + b; });
///     worker.run(); // until stop() or SIGTERM/SIGINT, then drains

#include "deferq/binding.hpp"
#include "deferq/combinators.hpp" // Deferred, Task and the combinators: the client's very types
#include "deferq/curve.hpp"
#include "deferq/deferred.hpp"
#include "deferq/endpoint.hpp"
#include "deferq/failure.hpp"
#include "deferq/job_context.hpp"
#include "deferq/task.hpp"

#include <zmq.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace deferq {

struct worker_options {
    /// The broker's worker endpoint.
    std::string broker = "tcp://127.0.0.1:5556";
    /// Jobs run at once (threads in the pool); 0 means one per hardware thread.
    unsigned concurrency = 0;
    /// Shown in logs, replies and status; default "<hostname>:<pid>".
    std::string name{};
    /// Jobs the broker may send beyond the free slots; empty: adapt to job duration
    /// (docs/protocol.md §6).
    std::optional<std::uint32_t> prefetch{};
    /// On stop, how long running jobs may take to finish before the worker leaves anyway.
    std::chrono::milliseconds drain_timeout{30'000};
    /// Stop (and drain) on SIGTERM/SIGINT while run() runs.
    bool handle_signals = true;
    /// CURVE (docs/security.md): this worker's key pair and the broker's public key (Z85).
    std::optional<curve::key_pair> curve_keys{};
    std::string curve_server_key{};
};

/// Counters, readable from any thread.
struct worker_counters {
    std::atomic<std::uint64_t> jobs_done{0};
    std::atomic<std::uint64_t> jobs_failed{0};
    std::atomic<std::uint64_t> jobs_cancelled{0};
    std::atomic<std::uint64_t> reconnects{0};
    /// Results of jobs received on an earlier connection: the broker gave those jobs to others.
    std::atomic<std::uint64_t> late_results_dropped{0};
    /// Prefetched jobs handed back unstarted because a long job lowered the prefetch.
    std::atomic<std::uint64_t> jobs_handed_back{0};
    /// Results over the broker's message size limit, answered with too_large instead.
    std::atomic<std::uint64_t> results_too_large{0};
};

class worker_impl;

/// A worker. define() functions, then run(). Non-copyable.
class Worker {
public:
    /// Uses a ZeroMQ context of its own. Throws config_error, naming the endpoint, when
    /// `options.broker` is not an endpoint one can connect to (docs/operations.md "Endpoints").
    explicit Worker(worker_options options);
    /// Uses the given context, which must outlive the worker.
    Worker(zmq::context_t& context, worker_options options);
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    /// Offers `callable` as `name`. Its parameters are decoded from the call's msgpack arguments
    /// (see bind_handler); wrong count or types reach the caller as bad_arguments, an exception as
    /// remote_error. Call before run(); redefining a name replaces it.
    template <typename F> void define(std::string name, F&& callable) {
        auto handler = bind_handler(name, std::forward<F>(callable));
        define_bound(std::move(name), std::move(handler));
    }
    void define_bound(std::string name, bound_handler handler);

    /// Names defined so far.
    std::vector<std::string> functions() const;

    /// Connects, registers and serves until stop() or (with handle_signals) SIGTERM/SIGINT; then
    /// drains: takes no new jobs, hands back those not started, finishes running ones (up to
    /// drain_timeout) and disconnects. Blocks the calling thread. Throws on bad configuration (no
    /// functions, bad endpoint), and std::runtime_error, once stopped, when the broker refused this
    /// worker (it reached the broker's client endpoint: docs/protocol.md §4, Wrong endpoint).
    void run();

    /// Asks run() to drain and return. Safe from any thread and from handlers.
    void stop();

    const worker_counters& counters() const;
    const std::string& name() const;

private:
    std::unique_ptr<worker_impl> _impl;
};

} // namespace deferq
