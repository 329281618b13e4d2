#pragma once
/// The calls jobs make (docs/protocol.md §3b): the JobContext's sink that hands them to the I/O
/// thread, and the I/O thread's side: CALL and CANCEL out, the broker's answers in, each call's
/// Deferred fired on a pool thread (its callbacks are the waiting job's continuation, CPU work the
/// I/O thread must not do). Private to the worker.

#include "job_pool.hpp"
#include "job_run.hpp"

#include "deferq/broker_link.hpp"
#include "deferq/mailbox.hpp"

#include <atomic>
#include <cstdint>
#include <unordered_map>

namespace deferq::worker_detail {

class job_calls {
public:
    job_calls(mailbox<outcome>& outcomes, job_pool& pool) : _outcomes(outcomes), _pool(pool) {}

    /// The JobContext's way to call the cluster for `job` (any thread): the call goes to the I/O
    /// thread as an outcome (kind `call`, and `cancel_call` for its cancel).
    JobContext::call_sink sink(const std::shared_ptr<job_record>& job);

    // The I/O thread's side.
    /// Sends the call, or fails it when the job that made it has ended (`job_holds` false).
    void send(outcome& call, broker_link& link, bool job_holds);
    void cancel(std::uint64_t call_id, broker_link& link);
    /// The broker's answer to a call (REPLY, or ERROR about it).
    void on_answer(std::uint64_t call_id, const detail::raw_reply* reply, const Failure* failure);
    /// A new connection: calls made on the old one end (the broker ended their jobs too).
    void fail_all();

private:
    void fire(detail::resolver resolve, Failure failure);
    void fire(detail::resolver resolve, const detail::raw_reply& reply);

    mailbox<outcome>& _outcomes;
    job_pool& _pool;
    std::unordered_map<std::uint64_t, detail::resolver> _calls; ///< waiting, by call id
    std::atomic<std::uint64_t> _next_call_id{1};
};

} // namespace deferq::worker_detail
