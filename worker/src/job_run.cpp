#include "job_run.hpp"

#include "deferq/codec.hpp"
#include "deferq/failure.hpp"

#include <cxxabi.h>

#include <algorithm>
#include <cmath>

namespace deferq::worker_detail {
namespace {

std::string current_exception_type() {
    auto* type = abi::__cxa_current_exception_type();
    return type ? codec::demangle(type->name()) : "unknown";
}

/// What a job that answers after it was cancelled, or past its deadline, answers instead.
void settle(outcome& result, const job_record& job) {
    if (result.what == outcome::kind::reply && job.cancelled) {
        result.what = outcome::kind::error;
        result.code = error_code::cancelled;
        result.message = "cancelled while running";
    } else if (result.what == outcome::kind::error && result.code == error_code::remote_error) {
        // A handler that throws once JobContext::cancelled() is true was told to stop (builtins
        // throw "… cancelled"): the caller learns why it stopped, not that it threw. Otherwise a
        // call whose deadline passes while it runs could end with remote_error instead of timeout
        // when this ERROR reaches the broker and client before their own deadlines fire.
        if (job.cancelled) {
            result.code = error_code::cancelled;
            result.message = "cancelled while running (" + result.message + ")";
        } else if (job.deadline && clock_type::now() >= *job.deadline) {
            result.code = error_code::timeout;
            result.message = "deadline passed while running (" + result.message + ")";
        }
    }
}

/// A handler's Deferred failed: the job's ERROR. cancelled and timeout stay what they are (a
/// child cancelled with its family, or past the job's deadline); any other Failure is the
/// handler's error, as if it had thrown it.
outcome failed(const std::shared_ptr<job_record>& job, const Failure& failure) {
    outcome result(outcome::kind::error, job);
    if (failure.check(error_code::cancelled) || failure.check(error_code::timeout)) {
        result.code = failure.code();
        result.message = failure.message();
    } else {
        result.code = error_code::remote_error;
        result.type = failure.type().empty() ? "deferq::Failure" : failure.type();
        result.message = failure.what();
    }
    settle(result, *job);
    return result;
}

/// The job's handler returned a Deferred: its answer goes when it fires.
void answer_later(const std::shared_ptr<job_record>& job, Deferred<std::string> later,
                  const run_hooks& hooks) {
    if (!later.called()) {
        job->started.store(0, std::memory_order_relaxed); // it holds no thread now
        hooks.push(outcome(outcome::kind::wait, job));    // before the answer: it may come at once
    }
    auto push = hooks.push;
    later.add_callbacks(
        [job, push](std::string bytes) {
            outcome result(outcome::kind::reply, job);
            result.payload = zmq::message_t(bytes.data(), bytes.size());
            settle(result, *job);
            push(std::move(result));
        },
        [job, push](const Failure& failure) {
            push(failed(job, failure));
            return std::string(); // handled: the job's ERROR says it
        });
}

} // namespace

std::optional<outcome> execute(const std::shared_ptr<job_record>& job, const run_hooks& hooks) {
    outcome result(outcome::kind::error, job);
    if (job->cancelled) {
        result.code = error_code::cancelled;
        result.message = "cancelled before it started";
        return result;
    }
    if (job->deadline && clock_type::now() >= *job->deadline) {
        result.code = error_code::timeout;
        result.message = "deadline passed before it started";
        return result;
    }
    // Two pointers, kept inside std::function with no allocation (job_record says why a plain
    // pointer to the job is enough).
    auto progress = [&hooks, job = job.get()](double fraction, std::string_view note) {
        auto now = clock_type::now().time_since_epoch().count();
        auto last = job->last_progress.load();
        if (now - last < std::chrono::nanoseconds(progress_interval).count()) return;
        if (!job->last_progress.compare_exchange_strong(last, now)) return;
        outcome update(outcome::kind::progress, job->shared_from_this());
        update.fraction = std::isfinite(fraction) ? std::clamp(fraction, 0.0, 1.0) : 0.0;
        update.message = std::string(note);
        hooks.push(std::move(update));
    };
    job->context.emplace(job->id, job->function, job->attempt, job->deadline, job->cancelled,
                         progress, hooks.calls_for(job), &job->payload);
    auto started = clock_type::now();
    job->started.store(started.time_since_epoch().count(), std::memory_order_relaxed);
    try {
        // In place: a `bin`/`str` argument points into the job's payload, which the job keeps until
        // its answer (a handler that returns a Deferred included); the handler gets converted
        // values, so the objects are needed only while it is bound.
        auto arguments = codec::unpack_in_place(job->payload);
        auto bound = job->handler->handler(arguments.get(), *job->context);
        if (auto* later = std::get_if<Deferred<std::string>>(&bound)) {
            answer_later(job, std::move(*later), hooks);
            return std::nullopt;
        }
        result.payload = std::move(std::get<zmq::message_t>(bound));
        result.what = outcome::kind::reply;
    } catch (const bad_arguments_error& e) {
        result.code = error_code::bad_arguments;
        result.message = e.what();
    } catch (const codec::decode_failure& e) {
        result.code = error_code::bad_arguments;
        result.message = job->function + ": " + e.what();
    } catch (const std::exception& e) {
        result.code = error_code::remote_error;
        result.type = codec::demangle(typeid(e).name());
        result.message = e.what();
    } catch (...) {
        result.code = error_code::remote_error;
        result.type = current_exception_type();
        result.message = "non-standard exception";
    }
    result.service_time = clock_type::now() - started;
    settle(result, *job);
    return result;
}

std::uint32_t adaptive_prefetch(unsigned slots, double service_ns) {
    if (service_ns <= 0) return 0;
    auto covered = static_cast<double>(slots) *
                   std::chrono::duration<double, std::nano>(assumed_round_trip).count() /
                   service_ns;
    return static_cast<std::uint32_t>(
        std::clamp(covered, 0.0, static_cast<double>(max_adaptive_prefetch)));
}

void answer_hold::learn(const job_record& job, std::chrono::nanoseconds took) {
    auto& typical = job.handler->typical_ns;
    auto before = typical.load(std::memory_order_relaxed);
    auto sample = std::max<std::int64_t>(took.count(), 1);
    typical.store(before == 0 ? sample : before - before / 4 + sample / 4,
                  std::memory_order_relaxed);
}

bool answer_hold::quick(const job_record& job) {
    auto typical = job.handler->typical_ns.load(std::memory_order_relaxed);
    return typical != 0 && typical <= std::chrono::nanoseconds(quick_job).count();
}

bool answer_hold::may_hold(const job_record& job, bool more, clock_type::time_point now) const {
    if (!more || !quick(job)) return false;
    auto since = _since.load(std::memory_order_relaxed);
    return since == 0 ||
           now.time_since_epoch().count() - since < std::chrono::nanoseconds(longest_hold).count();
}

void answer_hold::held(clock_type::time_point now) {
    std::int64_t none = 0;
    _since.compare_exchange_strong(none, now.time_since_epoch().count(), std::memory_order_relaxed);
}

} // namespace deferq::worker_detail
