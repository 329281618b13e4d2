#pragma once
/// What a running job's handler may know and do: its deadline, whether it was cancelled, progress.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace deferq {

/// Passed to handlers that take `const deferq::JobContext&` as their last parameter. Valid for the
/// duration of the handler call. All methods are safe from any thread.
class JobContext {
public:
    using clock_type = std::chrono::steady_clock;
    using progress_sink = std::function<void(double fraction, std::string_view note)>;

    JobContext(std::uint64_t job_id, std::string_view function, std::uint32_t attempt,
               std::optional<clock_type::time_point> deadline, const std::atomic<bool>& cancelled,
               progress_sink progress)
        : _job_id(job_id), _function(function), _attempt(attempt), _deadline(deadline),
          _cancelled(cancelled), _progress(std::move(progress)) {}

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
};

} // namespace deferq
