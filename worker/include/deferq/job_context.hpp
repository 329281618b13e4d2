#pragma once
/// What a running job's handler may know and do: its deadline, whether it was cancelled, progress,
/// and calls to the cluster (docs/protocol.md §3b).

#include "deferq/call.hpp"
#include "deferq/codec.hpp"
#include "deferq/deferred.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace deferq {

/// Passed to handlers that take `const deferq::JobContext&` as their last parameter. Valid for the
/// duration of the handler call, and, when the handler returns a Deferred or a Task, until that
/// fires; a copy is valid no longer (its progress and calls reach the job through a plain
/// pointer). All methods are safe from any thread.
class JobContext {
public:
    using clock_type = std::chrono::steady_clock;
    using progress_sink = std::function<void(double fraction, std::string_view note)>;
    /// Sends a call of this job to the broker; `resolve` runs once with its answer (on a pool
    /// thread of the worker). Returns what cancels the call.
    using call_sink =
        std::function<std::function<void()>(const call_options& options, std::string function,
                                            zmq::message_t arguments, detail::resolver resolve)>;

    JobContext(std::uint64_t job_id, std::string_view function, std::uint32_t attempt,
               std::optional<clock_type::time_point> deadline, const std::atomic<bool>& cancelled,
               progress_sink progress, call_sink calls = nullptr,
               const zmq::message_t* arguments_frame = nullptr)
        : _job_id(job_id), _function(function), _attempt(attempt), _deadline(deadline),
          _cancelled(cancelled), _progress(std::move(progress)), _calls(std::move(calls)),
          _arguments_frame(arguments_frame) {}

    /// Calls `function` on the cluster from inside this job, through the worker's own connection
    /// (and its CURVE key). The call is this job's child: it is served from the share of the call
    /// that started the job, ends no later than this job's deadline, and is cancelled when this
    /// job ends (docs/protocol.md §3b). Its Deferred fires on one of the worker's pool threads.
    /// A handler that waits for it should return a Deferred or be a Task: waiting holds no
    /// thread and no slot. Blocking on get() inside a handler holds both (and with concurrency 1
    /// deadlocks a call to the same worker).
    template <typename R, typename... Args>
    Deferred<R> call(std::string_view function, const Args&... args) const {
        return call_with<R>(call_options{}, function, args...);
    }
    template <typename R, typename... Args>
    Deferred<R> call_with(const call_options& options, std::string_view function,
                          const Args&... args) const {
        auto shared = std::make_shared<detail::state<R>>();
        std::string name(function);
        if (!_calls) {
            shared->resolve(typename detail::state<R>::result_type(
                std::in_place_index<1>,
                Failure(error_code::connection_lost, "this JobContext cannot call the cluster")));
            return Deferred<R>(shared);
        }
        auto resolve = detail::make_resolver<R>(shared, name);
        auto cancel =
            _calls(options, std::move(name), codec::encode_args(args...), std::move(resolve));
        if (cancel) shared->set_canceller(std::move(cancel));
        return Deferred<R>(shared);
    }

    /// True once the caller cancelled the call or its deadline passed: stop early (the result is
    /// dropped anyway).
    bool cancelled() const {
        return _cancelled.load(std::memory_order_relaxed) ||
               (_deadline && clock_type::now() >= *_deadline);
    }
    /// When the caller stops waiting, if it set a timeout.
    std::optional<clock_type::time_point> deadline() const { return _deadline; }
    /// 1 for the first dispatch; higher after the job's earlier workers were lost.
    std::uint32_t attempt() const { return _attempt; }
    std::uint64_t job_id() const { return _job_id; }
    std::string_view function() const { return _function; }
    /// The message the job's arguments were unpacked from in place (their `bin`/`str` bytes and
    /// the views bound to them point into it), until the job answers; null outside a worker. A
    /// bound handler whose msgpack::object or view result is one of them whole answers with those
    /// bytes, not a copy (codec::share_encoded).
    const zmq::message_t* arguments_frame() const { return _arguments_frame; }
    /// Reports progress (0.0 to 1.0) to the caller's on_progress. Best effort and rate-limited (at
    /// most one message per 100 ms per job; the last one before the result may be dropped).
    void progress(double fraction, std::string_view note = {}) const {
        if (_progress) _progress(fraction, note);
    }

private:
    std::uint64_t _job_id;
    std::string_view _function;
    std::uint32_t _attempt;
    std::optional<clock_type::time_point> _deadline;
    const std::atomic<bool>& _cancelled;
    progress_sink _progress;
    call_sink _calls;
    const zmq::message_t* _arguments_frame;
};

} // namespace deferq
