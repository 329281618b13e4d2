// A real deferq-worker against a stand-in broker (a ROUTER this test drives frame by frame): what
// the worker does when the broker gives it again a job it holds or answered, after it registered
// again (docs/protocol.md §3c, "A job given again is the one that runs").

#include "support/cluster.hpp"
#include "support/process.hpp"
#include "support/raw_peer.hpp"

#include "deferq/codec.hpp"
#include "deferq/protocol.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using deferq::protocol::command;
using deferq::test::command_frame;
using deferq::test::u32;
using deferq::test::u64;

namespace {

/// The stand-in broker: one ROUTER on a free port of 127.0.0.1.
class stand_in {
public:
    stand_in() : _socket(_context, zmq::socket_type::router) {
        _socket.set(zmq::sockopt::linger, 0);
        _socket.set(zmq::sockopt::router_handover, 1);
        _socket.bind("tcp://127.0.0.1:*");
    }

    std::string endpoint() const { return _socket.get(zmq::sockopt::last_endpoint); }

    /// The next message whose command is `cmd` within `timeout` (frame 0 the routing id, then
    /// "", "DFQW01", the command, the body; BATCH records as single messages); others dropped.
    std::optional<deferq::test::frame_list> wait_for(command cmd,
                                                     std::chrono::milliseconds timeout) {
        auto until = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < until)
            for (auto& message : read(50ms))
                if (message[3] == command_frame(cmd)) return message;
        return std::nullopt;
    }

    /// The commands of every message that comes within `period`, in order.
    std::vector<std::string> commands_for(std::chrono::milliseconds period) {
        std::vector<std::string> commands;
        auto until = std::chrono::steady_clock::now() + period;
        while (std::chrono::steady_clock::now() < until)
            for (auto& message : read(50ms))
                commands.push_back(message[3]);
        return commands;
    }

    void send(const std::string& worker, command cmd, std::vector<std::string> body = {}) {
        deferq::test::frame_list frames{worker, "", "DFQW01", command_frame(cmd)};
        frames.insert(frames.end(), body.begin(), body.end());
        for (std::size_t i = 0; i < frames.size(); ++i)
            _socket.send(zmq::buffer(frames[i]),
                         i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }

    /// A HEARTBEAT of an instance that adopts jobs, 1 s interval, liveness 3.
    void heartbeat(const std::string& worker) {
        send(worker, command::heartbeat, {u64(77), u32(1000), u32(3), u64(64 << 20), u32(1)});
    }

    /// The job `add(2, 3)`, id 7, of caller "caller-1"'s call 41.
    void job(const std::string& worker, std::uint32_t attempt) {
        auto arguments = deferq::codec::encode_args(2, 3);
        send(worker, command::request,
             {u64(7), "add", u32(0), u32(attempt),
              std::string(reinterpret_cast<const char*>(arguments.data()), arguments.size()),
              "caller-1", u64(41)});
    }

private:
    /// What comes within `timeout`, as in wait_for.
    std::vector<deferq::test::frame_list> read(std::chrono::milliseconds timeout) {
        std::vector<deferq::test::frame_list> messages;
        zmq::pollitem_t item{_socket.handle(), 0, ZMQ_POLLIN, 0};
        deferq::protocol::poll(&item, 1, timeout);
        std::vector<zmq::message_t> frames;
        while (deferq::protocol::receive_frames(_socket, frames)) {
            std::string routing(deferq::protocol::view(frames[0]));
            std::vector<zmq::message_t> rest;
            for (std::size_t i = 1; i < frames.size(); ++i)
                rest.emplace_back(frames[i].data(), frames[i].size());
            for (auto& message : deferq::test::expanded(rest)) {
                if (message.size() < 3) continue;
                message.insert(message.begin(), routing);
                messages.push_back(std::move(message));
            }
        }
        return messages;
    }

    zmq::context_t _context;
    zmq::socket_t _socket;
};

} // namespace

TEST_CASE("a worker given again a job it answered on its old connection answers it again and does "
          "not run it",
          "[fault][rejoin]") {
    deferq::test::cluster c("rejoin"); // for its log folder: the broker is the stand-in
    stand_in broker;
    deferq::test::process worker({DEFERQ_WORKER_BIN, "--broker", broker.endpoint(), "--name", "w",
                                  "--concurrency", "1", "--log-level", "debug"},
                                 c.log_dir() + "/worker.log");
    auto ready = broker.wait_for(deferq::protocol::ready, 20s);
    REQUIRE(ready);
    auto first = (*ready)[0];
    broker.heartbeat(first);
    broker.job(first, 1);
    auto reply = broker.wait_for(command::reply, 10s);
    REQUIRE(reply);
    CHECK(deferq::test::read_u64((*reply)[4]) == 7);

    // As a broker that expired the worker before it read that REPLY: DISCONNECT, and the job
    // again, to the new registration, before any HEARTBEAT on it.
    broker.send(first, command::disconnect);
    auto again = broker.wait_for(deferq::protocol::ready, 10s);
    REQUIRE(again);
    auto second = (*again)[0];
    CHECK(second != first);
    broker.job(second, 2);
    auto resent = broker.wait_for(command::reply, 10s);
    REQUIRE(resent);
    CHECK((*resent)[0] == second);
    CHECK(deferq::test::read_u64((*resent)[4]) == 7);
    CHECK((*resent)[5] == (*reply)[5]); // the same result, not computed again
    // The first HEARTBEAT on the new connection: the answer went there already, nothing to
    // report (HELD); and no second REPLY (a run of the job given again) comes.
    broker.heartbeat(second);
    auto after = broker.commands_for(1500ms);
    INFO("worker's log:\n" << worker.log());
    CHECK(std::count(after.begin(), after.end(), command_frame(command::held)) == 0);
    CHECK(std::count(after.begin(), after.end(), command_frame(command::reply)) == 0);
}
