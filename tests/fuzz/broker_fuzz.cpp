// libFuzzer target over the broker's message handling (docs/security.md, Fuzzing).
//
// Each input is a sequence of multipart messages (fuzz_input.hpp) sent by four raw DEALER peers --
// two on the client endpoint, two on the worker endpoint -- to a real broker in this process
// (inproc), which is stepped by hand with Broker::run_once. Op byte of each message:
//   bits 0-1  the peer: 0, 1 clients; 2, 3 workers
//   bit 2     prepend the header: the empty delimiter and the endpoint's protocol id
//   bit 3     replace frame 3 (the first after the command) with the last job id this peer was
//   given,
//             so that the fuzzer can answer real jobs without guessing the broker's random ids
//   bit 4     step the broker after this message (else it is handled with the next ones)
//   bits 5-6  both set: then let time pass, at most twice per input (to keep inputs fast): a step
//             that may wait up to 2 ms, so that 1 ms deadlines expire
// The broker must not crash, leak, trip a sanitizer, throw out of a handler (trap_log.hpp), let its
// job and peer gauges go wrong, or answer a client more often than it asked (a doubled result;
// asks and answers counted in single messages and in BATCH records alike).

#include "fuzz_input.hpp"
#include "inproc_broker.hpp"
#include "trap_log.hpp"

#include "deferq/broker.hpp"
#include "deferq/protocol.hpp"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <map>

namespace {

using namespace deferq::test;

deferq::broker_options fuzz_options() {
    deferq::broker_options options;
    // Small limits, so that the fuzzer reaches every limit with short inputs.
    options.max_queue_length = 4;
    options.max_pending_per_client = 6;
    options.max_attempts = 2;
    options.limits.max_function_name = 16;
    options.limits.max_worker_functions = 4;
    options.limits.max_worker_slots = 8;
    options.max_malformed = 10;
    options.max_tracked_peers = 1; // the second peer on an endpoint is untracked
    return options;
}

void check(bool condition, const char* what) {
    if (condition) return;
    std::fprintf(stderr, "broker invariant broken: %s\n", what);
    std::abort();
}

/// Counts what a client's message could ask, by correlation id: a message with an 8-byte frame 3,
/// or each record of a BATCH whose first frame is 8 bytes (a REQUEST in a BATCH is answered like a
/// single one, and not always in a BATCH: an invalid one gets its ERROR at once). Counting more
/// than the broker accepts only loosens the check, never trips it.
void count_asks(const frame_list& frames, std::map<std::uint64_t, int>& asked) {
    if (frames.size() <= 3) return;
    if (frames[3].size() == 8) ++asked[read_u64(frames[3])];
    if (frames[2] != command_frame(deferq::protocol::command::batch)) return;
    deferq::protocol::batch_reader batch;
    if (batch.parse(frames[3])) return; // broken framing: none of it is applied
    for (std::size_t i = 0; i < batch.size(); ++i) {
        auto record = batch.record(i);
        if (!record.frames.empty() && record.frames[0].size() == 8)
            ++asked[read_u64(record.frames[0])];
    }
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    deferq::fuzz::trap_errors_in_log();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // A context per input: destroying it waits until ZeroMQ has closed every socket, so that all
    // the input allocated is freed when it returns (libFuzzer's leak check compares the counts).
    zmq::context_t context;
    inproc_broker b(context, fuzz_options());
    std::array<zmq::socket_t, 4> peers{b.client("client-0"), b.client("client-1"),
                                       b.worker("worker-0"), b.worker("worker-1")};
    std::array<std::uint64_t, 4> last_job{};
    // Per client peer and correlation id: messages that could ask (any with an 8-byte frame 3)
    // and final answers (REPLY, ERROR). The broker SHALL NOT answer one request twice.
    std::array<std::map<std::uint64_t, int>, 2> asked, answered;
    auto read_answers = [&] {
        for (std::size_t i = 0; i < peers.size(); ++i)
            for (auto& message : drain(peers[i])) {
                if (message.size() < 4 || message[3].size() != 8) continue;
                auto id = read_u64(message[3]);
                if (i >= 2 && message[2] == u8(1)) last_job[i] = id;
                if (i < 2 && (message[2] == u8(2) || message[2] == u8(3)) &&
                    ++answered[i][id] > asked[i][id])
                    check(false, "a client got more answers than it sent requests");
            }
    };
    auto step = [&](std::chrono::milliseconds wait) {
        b.broker().run_once(wait);
        read_answers();
    };

    int waits_left = 2;
    deferq::fuzz::input_reader in(data, size);
    for (int count = 0; !in.done() && count < 512; ++count) {
        auto message = in.next();
        auto peer = message.op & 3u;
        frame_list frames;
        if (message.op & 4u) {
            frames.push_back("");
            frames.push_back(peer < 2 ? "DFQC01" : "DFQW01");
        }
        frames.insert(frames.end(), message.frames.begin(), message.frames.end());
        if ((message.op & 8u) && frames.size() > 3) frames[3] = u64(last_job[peer]);
        if (frames.empty()) continue;
        if (peer < 2) count_asks(frames, asked[peer]);
        send(peers[peer], frames);
        if (message.op & 16u) step(std::chrono::milliseconds{0});
        if ((message.op & 96u) == 96u && waits_left > 0) {
            step(std::chrono::milliseconds{2});
            --waits_left;
        }
    }
    step(std::chrono::milliseconds{0});
    step(std::chrono::milliseconds{0});

    const auto& counters = b.counters();
    if (std::getenv("DEFERQ_FUZZ_LOG"))
        std::fprintf(stderr,
                     "input done: requests %llu, replies %llu, errors %llu, late replies %llu, "
                     "malformed %llu, peers disconnected %llu, ignored %llu, queued %llu, "
                     "running %llu\n",
                     static_cast<unsigned long long>(counters.requests.load()),
                     static_cast<unsigned long long>(counters.replies.load()),
                     static_cast<unsigned long long>(counters.errors.load()),
                     static_cast<unsigned long long>(counters.late_replies.load()),
                     static_cast<unsigned long long>(counters.malformed_messages.load()),
                     static_cast<unsigned long long>(counters.peers_disconnected.load()),
                     static_cast<unsigned long long>(counters.ignored_messages.load()),
                     static_cast<unsigned long long>(counters.queued_jobs.load()),
                     static_cast<unsigned long long>(counters.running_jobs.load()));
    constexpr std::uint64_t sane = 1ull << 32; // a gauge that went below zero wraps far beyond this
    check(counters.queued_jobs.load() < sane, "queued_jobs below zero");
    check(counters.running_jobs.load() < sane, "running_jobs below zero");
    check(counters.live_workers.load() <= 2, "more live workers than worker peers");
    check(counters.live_clients.load() <= 2, "more live clients than client peers");
    return 0;
}
