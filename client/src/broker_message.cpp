#include "broker_message.hpp"

#include <string>
#include <type_traits>

namespace deferq::detail {

using namespace protocol;

namespace {

// REPLY and ERROR, from a whole message or from a BATCH record.
template <typename Frames> void read_reply(Frames frames, broker_message_sink& sink) {
    auto reply = decode_broker_reply(frames);
    if (auto* error = std::get_if<decode_error>(&reply)) return sink.on_bad_message(error->reason);
    const auto& message = std::get<broker_reply>(reply);
    raw_reply raw{message.payload, message.worker, message.attempt};
    if constexpr (std::is_same_v<Frames, std::span<const zmq::message_t>>)
        raw.frame = &frames[message.payload_index];
    sink.on_reply(message.correlation_id, raw);
}

template <typename Frames> void read_error(Frames frames, broker_message_sink& sink) {
    auto error_message = decode_broker_error(frames);
    if (auto* error = std::get_if<decode_error>(&error_message))
        return sink.on_bad_message(error->reason);
    const auto& message = std::get<broker_error>(error_message);
    Failure failure(message.code, std::string(message.message), std::string(message.type),
                    std::string(message.worker), message.attempts);
    sink.on_error(message.correlation_id, failure);
}

} // namespace

void read_broker_message(std::span<const zmq::message_t> frames, batch_reader& batch,
                         broker_message_sink& sink) {
    auto head = decode_header(frames);
    if (auto* error = std::get_if<decode_error>(&head)) return sink.on_bad_message(error->reason);
    auto [protocol_id, cmd] = std::get<header>(head);
    if (protocol_id != client_protocol) return sink.on_bad_message("unknown protocol id");
    sink.on_heard();
    switch (cmd) {
    case command::reply:
        return read_reply(frames, sink);
    case command::error:
        return read_error(frames, sink);
    case command::batch: {
        if (frames.size() != 4) return sink.on_bad_message("BATCH must be 1 frame");
        if (auto error = batch.parse(view(frames[3]))) return sink.on_bad_message(*error);
        for (std::size_t i = 0; i < batch.size(); ++i) {
            auto record = batch.record(i);
            if (record.cmd == command::reply)
                read_reply(record.frames, sink);
            else if (record.cmd == command::error)
                read_error(record.frames, sink);
            else
                sink.on_bad_message("BATCH record " + std::string(to_string(record.cmd)));
        }
        return;
    }
    case command::progress: {
        auto progress = decode_progress(frames);
        if (auto* error = std::get_if<decode_error>(&progress))
            return sink.on_bad_message(error->reason);
        const auto& update = std::get<progress_update>(progress);
        return sink.on_progress(update.id, update.fraction, update.note);
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

} // namespace deferq::detail
