#include "held_jobs.hpp"

#include "deferq/protocol.hpp"

namespace deferq::worker_detail {

void recent_answers::keep(sent_answer answer) {
    _answers.push_back(std::move(answer));
    while (_answers.size() > _capacity)
        _answers.pop_front();
}

void recent_answers::prune(clock_type::time_point last_heard, std::chrono::milliseconds interval) {
    while (!_answers.empty() && _answers.front().sent + interval < last_heard)
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
