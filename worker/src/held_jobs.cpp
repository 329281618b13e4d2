#include "held_jobs.hpp"

#include "deferq/protocol.hpp"

#include <algorithm>

namespace deferq::worker_detail {

void recent_answers::keep(sent_answer answer) {
    if (_count == _ring.size()) {
        std::vector<sent_answer> grown(std::max<std::size_t>(16, 2 * _ring.size()));
        for (std::size_t i = 0; i < _count; ++i)
            grown[i] = std::move(at(i));
        _ring = std::move(grown);
        _head = 0;
    }
    _bytes += answer.payload.size();
    at(_count++) = std::move(answer);
    while (_count > 1 && (_count > _capacity || _bytes > _max_bytes))
        pop_front();
}

void recent_answers::prune(std::uint64_t connection, clock_type::time_point now,
                           std::chrono::milliseconds interval) {
    while (_count > 0 && at(0).connection == connection && at(0).sent + interval < now)
        pop_front();
}

sent_answer* recent_answers::find(const protocol::job_request& request) {
    for (std::size_t i = 0; i < _count; ++i)
        if (same_call(*at(i).job, request)) return &at(i);
    return nullptr;
}

bool same_call(const job_record& job, const protocol::job_request& request) {
    return job.id == request.job_id && job.caller.view() == request.caller &&
           job.correlation_id == request.correlation_id;
}

void recent_answers::pop_front() {
    auto& oldest = at(0);
    _bytes -= oldest.payload.size();
    oldest = sent_answer{}; // its job record and result go now
    _head = (_head + 1) % _ring.size();
    --_count;
}

void held_frames(std::vector<zmq::message_t>& out, const job_record& job) {
    out.push_back(protocol::u64_frame(job.id));
    out.push_back(protocol::string_frame(job.function));
    out.push_back(protocol::string_frame(job.caller.view()));
    out.push_back(protocol::u64_frame(job.correlation_id));
    out.push_back(protocol::u32_frame(job.attempt));
}

} // namespace deferq::worker_detail
