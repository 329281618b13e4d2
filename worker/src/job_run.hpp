#pragma once
/// A job as the worker holds it, and the running of its handler on a pool thread: what the I/O
/// thread sends for it (REPLY, ERROR, PROGRESS, WAIT) and the calls it makes (CALL, CANCEL),
/// as `outcome`s through the worker's mailbox (docs/protocol.md §3, §3b). Private to the worker.

#include "deferq/binding.hpp"
#include "deferq/call.hpp"
#include "deferq/error_code.hpp"
#include "deferq/job_context.hpp"

#include <zmq.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace deferq::worker_detail {

using clock_type = std::chrono::steady_clock;

/// Progress messages per job, at most one this often.
inline constexpr std::chrono::milliseconds progress_interval{100};

/// A round trip to the broker that prefetch should cover (docs/protocol.md §6).
inline constexpr std::chrono::microseconds assumed_round_trip{2000};
inline constexpr std::uint32_t max_adaptive_prefetch = 128;

/// Prefetch covering one broker round trip for `slots` slots and jobs of `service_ns` (0: none
/// measured yet, no prefetch).
std::uint32_t adaptive_prefetch(unsigned slots, double service_ns);

/// A caller's routing id, kept in the job without an allocation when it is short (deferq's are
/// 16 bytes).
class caller_id {
public:
    void assign(std::string_view id) {
        if (id.size() <= _inline.size()) {
            std::copy(id.begin(), id.end(), _inline.begin());
            _size = static_cast<std::uint8_t>(id.size());
            _longer.clear();
        } else {
            _longer.assign(id);
            _size = 0;
        }
    }
    std::string_view view() const {
        return _longer.empty() ? std::string_view(_inline.data(), _size)
                               : std::string_view(_longer);
    }
    bool empty() const { return view().empty(); }

private:
    std::array<char, 32> _inline {};
    std::uint8_t _size = 0;
    std::string _longer;
};

/// A function the worker offers, and how long its jobs took lately.
struct offered_function {
    bound_handler handler;
    /// Service time, ns, averaged over its recent jobs (0: none ran yet). Any pool thread.
    mutable std::atomic<std::int64_t> typical_ns{0};
};

/// Shared by the worker while queued or running, by its outcomes and by a handler's Deferred until
/// it fires. Its JobContext's sinks keep a plain pointer to it (they live inside it, and the
/// JobContext is valid only while the job runs or its Deferred waits): shared_from_this() makes an
/// outcome's share when they send one, with no allocation per job for their closures.
struct job_record : std::enable_shared_from_this<job_record> {
    std::uint64_t id;
    std::string function;
    std::uint32_t attempt;
    std::optional<clock_type::time_point> deadline;
    zmq::message_t payload;
    const offered_function* handler;
    std::uint64_t generation; ///< connection the job belongs to (it arrived on, or was reported on)
    caller_id caller;         ///< whose call it is, to report it to a new broker (§3c)
    std::uint64_t correlation_id = 0;
    std::atomic<bool> cancelled{false};
    std::atomic<std::int64_t> last_progress{0}; ///< steady clock ns
    std::atomic<std::int64_t> started{0}; ///< steady clock ns when a pool thread took it; 0 waiting
    /// Made when it starts; lives until the job's answer (a handler's Deferred may use it).
    std::optional<JobContext> context;
};

/// Something for the I/O thread: an answer of a job, its progress, its WAIT, a call it makes or
/// cancels; or only a wake-up.
struct outcome {
    enum class kind { reply, error, progress, wake, wait, call, cancel_call };
    explicit outcome(kind what, std::shared_ptr<job_record> job = nullptr)
        : what(what), job(std::move(job)) {}
    kind what;
    std::shared_ptr<job_record> job;
    zmq::message_t payload; ///< reply: the result; call: the arguments
    error_code code = error_code::remote_error;
    std::string type;
    std::string message; ///< error: the message; progress: the note; call: the function
    double fraction = 0;
    std::chrono::nanoseconds service_time{0};
    std::uint64_t call_id = 0; ///< call, cancel_call
    call_options options;      ///< call
    detail::resolver resolve;  ///< call
};

/// What running a job needs from the worker.
struct run_hooks {
    /// Hands an outcome to the I/O thread (any thread).
    std::function<void(outcome)> push;
    /// The JobContext's way to call the cluster, for `job` (docs/protocol.md §3b).
    std::function<JobContext::call_sink(const std::shared_ptr<job_record>& job)> calls_for;
};

/// The answers a pool thread holds back, queued in the worker's mailbox without waking its I/O
/// thread, while quick jobs wait behind its job: a busy worker's answers then leave together (one
/// BATCH) with no wake-up per job (docs/architecture.md, "Threads"). Any pool thread.
class answer_hold {
public:
    /// A function whose jobs lately took at most this is quick.
    static constexpr std::chrono::microseconds quick_job{50};
    /// An answer waits at most about this long for the quick jobs behind it.
    static constexpr std::chrono::microseconds longest_hold{200};
    /// While answers are held, the I/O thread takes them at least this often (a safety net: the
    /// jobs behind them may be handed back, or turn out slow).
    static constexpr std::chrono::milliseconds sweep{5};

    /// Learns how long a job of `job`'s function took.
    static void learn(const job_record& job, std::chrono::nanoseconds took);
    /// Whether `job`'s function is known to be quick.
    static bool quick(const job_record& job);
    /// Whether the answer of `job`, which has just run with jobs queued behind it (`more`), may be
    /// held; when true the caller queues it quietly, then calls held().
    bool may_hold(const job_record& job, bool more, clock_type::time_point now) const;
    /// An answer was queued quietly at `now`.
    void held(clock_type::time_point now);
    /// Whether answers may be held; forgets them (the caller sends them, or wakes the I/O thread).
    bool release() { return _since.exchange(0, std::memory_order_relaxed) != 0; }
    bool holding() const { return _since.load(std::memory_order_relaxed) != 0; }

private:
    std::atomic<std::int64_t> _since{0}; ///< steady clock ns of the first held answer; 0: none
};

/// Runs the job's handler on this (pool) thread. The outcome to send comes back at once, or,
/// when the handler returned a Deferred that has not fired, nothing: a `wait` outcome was pushed,
/// and the answer is pushed when the Deferred fires (wherever it fires).
std::optional<outcome> execute(const std::shared_ptr<job_record>& job, const run_hooks& hooks);

} // namespace deferq::worker_detail
