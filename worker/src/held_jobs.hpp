#pragma once
/// What a worker tells a new broker instance about the jobs it holds (docs/protocol.md §3c): a
/// HELD message per job, and the answers it sent lately, which the broker that died may never
/// have read. Owned by the worker's I/O thread.

#include "job_run.hpp"

#include "deferq/error_code.hpp"
#include "deferq/protocol.hpp"

#include <zmq.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace deferq::worker_detail {

/// An answer as it was sent, to send again.
struct sent_answer {
    std::shared_ptr<job_record> job;
    bool failed = false;
    zmq::message_t payload; ///< REPLY: the result (sharing the sent buffer)
    error_code code = error_code::remote_error;
    std::string type, message; ///< ERROR
    clock_type::time_point sent{};
    std::uint64_t connection = 0; ///< the worker's connection it was sent on (its generation)
};

/// Answers sent lately. One is dropped once the broker it was sent to was heard from an interval
/// after it was sent (it read it: a broker reads in order), and the oldest go beyond `capacity`
/// answers or `max_bytes` of results (the newest is always kept).
class recent_answers {
public:
    recent_answers(std::size_t capacity, std::size_t max_bytes)
        : _capacity(capacity), _max_bytes(max_bytes) {}
    void keep(sent_answer answer);
    /// The broker of `connection` was heard at `now` (a message that only the instance the worker
    /// registered with sends: a HEARTBEAT, a job; not a DISCONNECT, which a new instance sends):
    /// drops what was sent on that connection before `now - interval`. Answers of earlier
    /// connections stay until they are offered to the next broker (and so sent on this one).
    void prune(std::uint64_t connection, clock_type::time_point now,
               std::chrono::milliseconds interval);
    /// The answer kept for that job of that call, if one is.
    sent_answer* find(const protocol::job_request& request);
    /// Calls `visit(sent_answer&)` with every answer kept, oldest first (it may send them again
    /// and update `sent`).
    template <typename Visit> void for_each(Visit&& visit) {
        for (std::size_t i = 0; i < _count; ++i)
            visit(at(i));
    }
    std::size_t size() const { return _count; }
    std::size_t bytes() const { return _bytes; }
    void clear() {
        while (_count > 0)
            pop_front();
    }

private:
    sent_answer& at(std::size_t i) { return _ring[(_head + i) % _ring.size()]; }
    void pop_front();

    std::size_t _capacity;
    std::size_t _max_bytes;
    std::size_t _bytes = 0;
    // A ring, grown (doubled) when full and never shrunk: keeping an answer per job allocates
    // nothing once it has grown (a deque took a block every two answers and freed one as often).
    std::vector<sent_answer> _ring;
    std::size_t _head = 0;
    std::size_t _count = 0;
};

/// Whether `request` gives the job `job` is (its id, for the same caller's call).
bool same_call(const job_record& job, const protocol::job_request& request);

/// Appends HELD's body for `job`: job id, function, caller, correlation id, attempt.
void held_frames(std::vector<zmq::message_t>& out, const job_record& job);

} // namespace deferq::worker_detail
