#include "held_jobs.hpp"

#include "deferq/protocol.hpp"

namespace deferq::worker_detail {

void recent_answers::keep(sent_answer answer) {
    _bytes += answer.payload.size();
    _answers.push_back(std::move(answer));
    while (_answers.size() > 1 && (_answers.size() > _capacity || _bytes > _max_bytes))
        pop_front();
}

void recent_answers::prune(std::uint64_t connection, clock_type::time_point now,
                           std::chrono::milliseconds interval) {
    while (!_answers.empty() && _answers.front().connection == connection &&
           _answers.front().sent + interval < now)
        pop_front();
}

sent_answer* recent_answers::find(const protocol::job_request& request) {
    for (auto& answer : _answers)
        if (same_call(*answer.job, request)) return &answer;
    return nullptr;
}

bool same_call(const job_record& job, const protocol::job_request& request) {
    return job.id == request.job_id && job.caller.view() == request.caller &&
           job.correlation_id == request.correlation_id;
}

void recent_answers::pop_front() {
    _bytes -= _answers.front().payload.size();
    _answers.pop_front();
}

void held_frames(std::vector<zmq::message_t>& out, const job_record& job) {
    out.push_back(protocol::u64_frame(job.id));
    out.push_back(protocol::string_frame(job.function));
    out.push_back(protocol::string_frame(job.caller.view()));
    out.push_back(protocol::u64_frame(job.correlation_id));
    out.push_back(protocol::u32_frame(job.attempt));
}

} // namespace deferq::worker_detail
