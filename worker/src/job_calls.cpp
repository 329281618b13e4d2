#include "job_calls.hpp"

#include "deferq/protocol.hpp"

namespace deferq::worker_detail {

using namespace protocol;

JobContext::call_sink job_calls::sink(const std::shared_ptr<job_record>& job) {
    // Two pointers, kept inside std::function with no allocation (job_record says why a plain
    // pointer to the job is enough).
    return [this, raw = job.get()](const call_options& options, std::string function,
                                   zmq::message_t arguments,
                                   detail::resolver resolve) -> std::function<void()> {
        auto id = _next_call_id.fetch_add(1, std::memory_order_relaxed);
        outcome call(outcome::kind::call, raw->shared_from_this());
        call.call_id = id;
        call.message = std::move(function);
        call.options = options;
        call.payload = std::move(arguments);
        call.resolve = std::move(resolve);
        _outcomes.push(std::move(call));
        return [this, id] {
            outcome cancel(outcome::kind::cancel_call);
            cancel.call_id = id;
            _outcomes.push(std::move(cancel));
        };
    };
}

void job_calls::send(outcome& call, broker_link& link, bool job_holds) {
    const auto& job = call.job;
    if (!job || !job_holds)
        return fire(std::move(call.resolve),
                    Failure(error_code::cancelled, "the job that made this call has ended"));
    _calls[call.call_id] = std::move(call.resolve);
    link.begin(command::call);
    link.message().push_back(u64_frame(job->id));
    link.message().push_back(u64_frame(call.call_id));
    link.message().push_back(string_frame(call.message));
    link.message().push_back(options_frame(to_request_options(call.options)));
    link.message().push_back(std::move(call.payload));
    link.send();
}

void job_calls::cancel(std::uint64_t call_id, broker_link& link) {
    if (_calls.erase(call_id) == 0) return; // answered already
    link.begin(command::cancel);
    link.message().push_back(u64_frame(call_id));
    link.send(); // the Deferred has failed with cancelled already
}

void job_calls::on_answer(std::uint64_t call_id, const detail::raw_reply* reply,
                          const Failure* failure) {
    auto found = _calls.find(call_id);
    if (found == _calls.end()) return; // cancelled, or of an earlier connection
    auto resolve = std::move(found->second);
    _calls.erase(found);
    if (failure) return fire(std::move(resolve), *failure);
    fire(std::move(resolve), *reply);
}

void job_calls::fail_all() {
    for (auto& [id, resolve] : _calls)
        fire(std::move(resolve),
             Failure(error_code::cancelled,
                     "the worker reconnected: the job that made this call is no longer its own"));
    _calls.clear();
}

void job_calls::fire(detail::resolver resolve, Failure failure) {
    _pool.post([resolve = std::move(resolve), failure = std::move(failure)] {
        resolve(nullptr, &failure);
    });
}

void job_calls::fire(detail::resolver resolve, const detail::raw_reply& reply) {
    _pool.post([resolve = std::move(resolve), payload = std::string(reply.payload),
                worker = std::string(reply.worker), attempt = reply.attempt] {
        detail::raw_reply copy{payload, worker, attempt};
        resolve(&copy, nullptr);
    });
}

} // namespace deferq::worker_detail
