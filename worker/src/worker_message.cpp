#include "worker_message.hpp"

#include <string>

namespace deferq::worker_detail {

using namespace protocol;

namespace {

// What may come as a whole message or as a BATCH record.
template <typename Frames> void read_cancel(Frames frames, worker_message_sink& sink) {
    auto cancel = decode_job_only(frames);
    if (auto* error = std::get_if<decode_error>(&cancel)) return sink.on_bad_message(error->reason);
    sink.on_cancel(std::get<job_only>(cancel).job_id);
}

template <typename Frames> void read_call_reply(Frames frames, worker_message_sink& sink) {
    auto reply = decode_broker_reply(frames);
    if (auto* error = std::get_if<decode_error>(&reply)) return sink.on_bad_message(error->reason);
    const auto& message = std::get<broker_reply>(reply);
    detail::raw_reply raw{message.payload, message.worker, message.attempt};
    sink.on_call_reply(message.correlation_id, raw);
}

template <typename Frames> void read_call_error(Frames frames, worker_message_sink& sink) {
    auto failure = decode_broker_error(frames);
    if (auto* error = std::get_if<decode_error>(&failure))
        return sink.on_bad_message(error->reason);
    const auto& message = std::get<broker_error>(failure);
    if (message.correlation_id == 0) return sink.on_bad_message("ERROR about call 0");
    sink.on_call_error(message.correlation_id,
                       Failure(message.code, std::string(message.message),
                               std::string(message.type), std::string(message.worker),
                               message.attempts));
}

void read_record(const batch_record& record, worker_message_sink& sink) {
    switch (record.cmd) {
    case command::request: {
        auto request = decode_job_request(record.frames);
        if (auto* error = std::get_if<decode_error>(&request))
            return sink.on_bad_message(error->reason);
        const auto& job = std::get<job_request>(request);
        return sink.on_job(job, zmq::message_t(job.payload.data(), job.payload.size()));
    }
    case command::cancel:
        return read_cancel(record.frames, sink);
    case command::reply:
        return read_call_reply(record.frames, sink);
    case command::error:
        return read_call_error(record.frames, sink);
    default:
        return sink.on_bad_message("BATCH record " + std::string(to_string(record.cmd)));
    }
}

/// A refusal (about call 0) has 4 body frames; an ERROR about a call has 6 (as to a client).
constexpr std::size_t refusal_frames = 3 + 4;

} // namespace

void read_worker_message(std::span<zmq::message_t> frames, batch_reader& batch,
                         worker_message_sink& sink) {
    auto head = decode_header(frames);
    if (auto* error = std::get_if<decode_error>(&head)) return sink.on_bad_message(error->reason);
    auto [protocol_id, cmd] = std::get<header>(head);
    if (protocol_id != worker_protocol) return sink.on_bad_message("unknown protocol id");
    sink.on_heard();
    switch (cmd) {
    case command::request: {
        auto request = decode_job_request(frames);
        if (auto* error = std::get_if<decode_error>(&request))
            return sink.on_bad_message(error->reason);
        const auto& job = std::get<job_request>(request);
        auto payload = std::move(frames[job.payload_index]);
        return sink.on_job(job, std::move(payload));
    }
    case command::cancel:
        return read_cancel(std::span<const zmq::message_t>(frames), sink);
    case command::reply:
        return read_call_reply(std::span<const zmq::message_t>(frames), sink);
    case command::error: {
        if (frames.size() != refusal_frames)
            return read_call_error(std::span<const zmq::message_t>(frames), sink);
        auto refusal = decode_refusal(frames);
        if (auto* error = std::get_if<decode_error>(&refusal))
            return sink.on_bad_message(error->reason);
        const auto& message = std::get<worker_error>(refusal);
        if (message.job_id != 0) return sink.on_bad_message("ERROR about a job");
        return sink.on_refused(message.message);
    }
    case command::batch: {
        if (frames.size() != 4) return sink.on_bad_message("BATCH must be 1 frame");
        if (auto error = batch.parse(view(frames[3]))) return sink.on_bad_message(*error);
        for (std::size_t i = 0; i < batch.size(); ++i)
            read_record(batch.record(i), sink);
        return;
    }
    case command::heartbeat: {
        auto heartbeat = decode_broker_heartbeat(frames);
        if (auto* error = std::get_if<decode_error>(&heartbeat))
            return sink.on_bad_message(error->reason);
        return sink.on_heartbeat(std::get<broker_heartbeat>(heartbeat));
    }
    case command::disconnect: {
        auto empty = decode_empty(frames);
        if (auto* error = std::get_if<decode_error>(&empty))
            return sink.on_bad_message(error->reason);
        return sink.on_disconnect();
    }
    default:
        return sink.on_bad_message("unexpected command " + std::string(to_string(cmd)));
    }
}

} // namespace deferq::worker_detail
