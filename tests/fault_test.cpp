// Fault injection on real processes: nothing lost, nothing doubled (docs/protocol.md §4).
// The broker runs with a 250 ms heartbeat here (expiry 750 ms) so that tests stay short; the rules
// are the same at the 1 s default.

#include "cluster.hpp"
#include "raw_peer.hpp"

#include "deferq/client.hpp"
#include "deferq/codec.hpp"

#include <catch2/catch.hpp>

#include <functional>

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <thread>

using namespace std::chrono_literals;
using deferq::protocol::command;
using deferq::test::cluster;
using deferq::test::eventually;

namespace {

/// Waits up to 50 ms for messages on a ROUTER standing in for the broker, reads every one waiting
/// and returns how many REQUESTs they held, alone or in a BATCH (frame 0 is the routing id).
/// Reads what `router` received (waiting up to 50 ms); returns the REQUESTs among it, and calls
/// `on_heartbeat(routing id)` for each HEARTBEAT.
int read_requests(zmq::socket_t& router,
                  const std::function<void(const zmq::message_t&)>& on_heartbeat = {}) {
    zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
    deferq::protocol::poll(&item, 1, std::chrono::milliseconds{50});
    int requests = 0;
    std::vector<zmq::message_t> frames;
    while (deferq::protocol::receive_frames(router, frames)) {
        if (frames.empty()) continue;
        auto routing_id = std::move(frames.front());
        frames.erase(frames.begin());
        for (const auto& message : deferq::test::expanded(frames)) {
            requests +=
                message.size() >= 3 && message[2] == deferq::test::command_frame(command::request);
            if (on_heartbeat && message.size() >= 3 &&
                message[2] == deferq::test::command_frame(command::heartbeat))
                on_heartbeat(routing_id);
        }
    }
    return requests;
}

const std::vector<std::string> fast_heartbeat{
    "--heartbeat-interval", std::to_string(deferq::test::test_heartbeat(250ms).count()),
    "--liveness", "3"};

/// A batch of calculate(i, 1000) calls that records how often each Deferred fired and with what.
class batch {
public:
    batch(deferq::Client& client, int count, std::chrono::milliseconds timeout = 120s)
        : _fired(count), _wrong(count), _failed(count) {
        for (int i = 0; i < count; ++i) {
            auto d = client.call_with<double>({.timeout = timeout}, "calculate", i, 1000);
            d.add_callbacks(
                [this, i](double value) {
                    _fired[i].fetch_add(1);
                    if (value != i + 1000) _wrong[i].fetch_add(1);
                },
                [this, i](const deferq::Failure& failure) {
                    _fired[i].fetch_add(1);
                    _failed[i].fetch_add(1);
                    std::lock_guard lock(_mutex);
                    _failures.push_back(failure.what());
                });
        }
    }

    bool all_fired() const {
        for (auto& count : _fired)
            if (count.load() == 0) return false;
        return true;
    }

    /// Waits for every call, then checks: each fired exactly once, with the right value.
    void check_exactly_once(std::chrono::milliseconds timeout) {
        REQUIRE(eventually([&] { return all_fired(); }, timeout));
        std::this_thread::sleep_for(300ms); // a second firing would show up here
        int lost = 0, duplicated = 0, wrong = 0, failed = 0;
        for (std::size_t i = 0; i < _fired.size(); ++i) {
            if (_fired[i] == 0) ++lost;
            if (_fired[i] > 1) ++duplicated;
            wrong += _wrong[i];
            failed += _failed[i];
        }
        std::lock_guard lock(_mutex);
        INFO("first failure: " << (_failures.empty() ? "none" : _failures.front()));
        CHECK(lost == 0);
        CHECK(duplicated == 0);
        CHECK(wrong == 0);
        CHECK(failed == 0);
    }

private:
    std::vector<std::atomic<int>> _fired, _wrong, _failed;
    std::mutex _mutex;
    std::vector<std::string> _failures;
};

std::string bytes(const zmq::message_t& message) {
    return std::string(deferq::protocol::view(message));
}

} // namespace

TEST_CASE("kill -9 of one of four workers mid-batch: 1,000 results correct, each fired once",
          "[fault]") {
    cluster c("kill-worker");
    c.start_broker(fast_heartbeat);
    for (auto name : {"w1", "w2", "w3", "w4"})
        c.add_worker(name, {"--concurrency", "2", "--calculate-delay", "20"});
    deferq::Client client({.broker = c.client_endpoint()});

    batch calls(client, 1000);
    std::this_thread::sleep_for(400ms);
    c.workers()[1]->signal(SIGKILL); // holds jobs: 2 slots busy all the time
    calls.check_exactly_once(60s);
    // The broker SHALL put the jobs an expired worker held back in their queues.
    CHECK(c.counter("workers_lost") >= 1);
    CHECK(c.counter("requeued") >= 1);
}

TEST_CASE(
    "SIGSTOP a worker past expiry, then SIGCONT: its jobs ran elsewhere, its late replies dropped",
    "[fault]") {
    cluster c("stop-worker");
    c.start_broker(fast_heartbeat);
    for (auto name : {"w1", "w2", "w3"})
        c.add_worker(name, {"--concurrency", "2", "--calculate-delay", "300"});
    deferq::Client client({.broker = c.client_endpoint()});

    batch calls(client, 60);
    std::this_thread::sleep_for(150ms);
    auto& frozen = *c.workers()[0];
    frozen.signal(SIGSTOP);
    REQUIRE(eventually([&] { return c.counter("workers_lost") >= 1; }, 10s));
    calls.check_exactly_once(60s);
    frozen.signal(SIGCONT);
    // A REPLY from an expired worker SHALL be dropped and counted (by the broker when it arrives,
    // or by the worker itself when the broker's DISCONNECT reached it first), and never delivered.
    CHECK(eventually(
        [&] {
            // Or, since the broker adopts jobs (§3c), the worker offered it again with its job
            // to the broker, which had it answered already: nobody claims it.
            return c.counter("late_replies") >= 1 ||
                   frozen.log().find("dropped late result") != std::string::npos ||
                   frozen.log().find("answer(s) it may not have read") != std::string::npos;
        },
        10s));
    // It comes back as a new worker and serves again.
    CHECK(eventually([&] { return c.counter("live_workers") == 3; }, 10s));
    CHECK(client.call<double>("add", 1, 2).get(10s) == 3);
}

TEST_CASE("a REPLY from a worker the broker expired is dropped and counted and the job's result "
          "comes from the next worker",
          "[fault]") {
    // The test above cannot insist on the broker's late_replies: after SIGCONT the frozen worker
    // may learn of its expiry (DISCONNECT) before its jobs finish, and then it drops their results
    // itself. Here the expired worker is a raw peer, so its REPLY surely reaches the broker.
    cluster c("expired-worker-reply");
    c.start_broker(fast_heartbeat);
    zmq::context_t context;
    const std::string worker_id = "DFQW01";
    auto ghost = deferq::test::raw_dealer(context, c.worker_endpoint(), "ghost");
    deferq::test::send(ghost, {"", worker_id, deferq::test::command_frame(deferq::protocol::ready),
                               "ghost", deferq::test::u32(1), deferq::test::u32(0), "calculate"});
    REQUIRE(deferq::test::wait_for(ghost, command::heartbeat, 10s));
    deferq::Client client({.broker = c.client_endpoint()});
    auto call = client.call_with<deferq::Reply<double>>({.timeout = 120s}, "calculate", 20, 22);
    auto job = deferq::test::wait_for(ghost, command::request, 10s);
    REQUIRE(job);
    auto job_id = deferq::test::read_u64((*job)[3]);
    // The ghost sends nothing past its expiry: the broker removes it and queues the job again.
    REQUIRE(eventually([&] { return c.counter("workers_lost") == 1; }, 20s));
    CHECK(c.counter("requeued") == 1);
    CHECK(c.counter("late_replies") == 0);

    deferq::test::send(ghost,
                       {"", worker_id, deferq::test::command_frame(command::reply),
                        deferq::test::u64(job_id), bytes(deferq::codec::encode_value(666.0))});
    // Dropped and counted; the broker tells the ghost to register again.
    CHECK(deferq::test::wait_for(ghost, command::disconnect, 10s).has_value());
    CHECK(eventually([&] { return c.counter("late_replies") == 1; }, 10s));
    CHECK(c.counter("replies") == 0);
    CHECK(c.counter("queued_jobs") == 1);

    c.add_worker("real", {"--concurrency", "1", "--calculate-delay", "50"});
    auto reply = call.get(60s);
    CHECK(reply.value == 42);
    CHECK(reply.worker == "real");
    CHECK(reply.attempt == 2);
    CHECK(c.counter("replies") == 1);
}

TEST_CASE("kill -9 of the broker mid-batch and a restart on the same ports: every call completes",
          "[fault]") {
    cluster c("kill-broker");
    c.start_broker(fast_heartbeat);
    for (auto name : {"w1", "w2", "w3"})
        c.add_worker(name, {"--concurrency", "2", "--calculate-delay", "100"});
    deferq::Client client({.broker = c.client_endpoint()});

    batch calls(client, 200);
    std::this_thread::sleep_for(800ms);
    c.kill_broker();
    std::this_thread::sleep_for(500ms);
    c.restart_broker();
    // Workers re-register, clients resend their pending calls with the same correlation ids.
    calls.check_exactly_once(90s);
    CHECK(c.counter("live_workers") == 3);
}

TEST_CASE("SIGTERM to a worker mid-batch drains it: nothing lost, nothing run twice", "[fault]") {
    cluster c("drain-worker");
    c.start_broker(fast_heartbeat);
    c.add_worker("keeps", {"--concurrency", "2", "--calculate-delay", "100"});
    auto& leaving = c.add_worker(
        "leaves", {"--concurrency", "2", "--calculate-delay", "100", "--prefetch", "4"});
    deferq::Client client({.broker = c.client_endpoint()});

    batch calls(client, 100);
    std::this_thread::sleep_for(500ms);
    leaving.signal(SIGTERM);
    auto code = leaving.wait(20s);
    REQUIRE(code.has_value());
    CHECK(*code == 0);
    calls.check_exactly_once(60s);
    // Drained, not lost: no job was taken back from a dead worker, no late reply.
    CHECK(c.counter("requeued") == 0);
    CHECK(c.counter("late_replies") == 0);
    CHECK(c.counter("replies") == 100);
    CHECK_THAT(leaving.log(), Catch::Contains("draining"));
}

namespace {

/// CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat.
double cpu_seconds(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    // After "pid (comm) ": the state is field 3; utime and stime are fields 14 and 15.
    std::istringstream fields(text.substr(text.rfind(')') + 2));
    std::string field;
    double ticks = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i)
        if (i >= 14) ticks += std::stod(field);
    return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

} // namespace

TEST_CASE("a draining worker waits for its job without spinning", "[fault][drain]") {
    // The SIGTERM descriptor stays readable once the signal came; a loop that kept polling it
    // spun at a whole CPU for as long as the drain lasted (a job of minutes, the CPU it needs).
    cluster c("drain-idle");
    c.start_broker(fast_heartbeat);
    auto& worker = c.add_worker("w", {"--concurrency", "1", "--calculate-delay", "4000"});
    deferq::Client client({.broker = c.client_endpoint()});
    auto call = client.call_with<double>({.timeout = 60s}, "calculate", 20, 22);
    REQUIRE(eventually([&] { return c.counter("running_jobs") == 1; }, 20s));
    worker.signal(SIGTERM);
    REQUIRE(eventually([&] { return worker.log().find("draining") != std::string::npos; }, 10s));
    auto before = cpu_seconds(worker.pid());
    std::this_thread::sleep_for(1500ms); // the job sleeps on: the worker has nothing to do
    auto used = cpu_seconds(worker.pid()) - before;
    INFO("CPU used by the draining worker in 1.5 s: " << used << " s");
    CHECK(used < 0.5); // spinning: about 1.5 s; waiting: a few ms
    CHECK(call.get(60s) == 42);
    auto code = worker.wait(20s);
    REQUIRE(code.has_value());
    CHECK(*code == 0);
}

TEST_CASE("a draining worker frozen past its expiry keeps its job: the broker's new JOB for it is "
          "the one it runs, answered once",
          "[fault][drain]") {
    // The broker expires the frozen worker and queues its job again; the worker comes back, is
    // told to register again (DISCONNECT), and between its READY and its DRAIN the broker gives it
    // that job, the one it still runs. Declining it (draining) used to lose the running one too:
    // the call waited in the queue of a cluster with no other worker until its timeout.
    cluster c("drain-frozen");
    c.start_broker(fast_heartbeat);
    // Four expiries long: the job still runs when the worker, continued, registers again (a job
    // that ended meanwhile is answered on the old connection, counted as a late reply, and again
    // on the new one).
    auto delay = deferq::test::test_heartbeat(250ms) * 3 * 4;
    auto& worker = c.add_worker(
        "w", {"--concurrency", "1", "--calculate-delay", std::to_string(delay.count())});
    deferq::Client client({.broker = c.client_endpoint()});
    auto call = client.call_with<deferq::Reply<double>>({.timeout = 60s}, "calculate", 20, 22);
    REQUIRE(eventually([&] { return c.counter("running_jobs") == 1; }, 20s));
    worker.signal(SIGTERM);
    REQUIRE(eventually([&] { return worker.log().find("draining") != std::string::npos; }, 10s));
    worker.signal(SIGSTOP);
    REQUIRE(eventually([&] { return c.counter("workers_lost") == 1; }, 20s));
    CHECK(c.counter("requeued") == 1);
    worker.signal(SIGCONT);
    auto reply = call.get(30s);
    CHECK(reply.value == 42);
    CHECK(reply.attempt == 2);
    auto code = worker.wait(20s);
    REQUIRE(code.has_value());
    CHECK(*code == 0);
    CHECK(c.counter("replies") == 1);
    CHECK(c.counter("late_replies") == 0);
}

TEST_CASE("SIGTERM to a worker whose job outlasts --drain-timeout: it leaves after the timeout and "
          "the job runs once more on another worker",
          "[fault][drain]") {
    // docs/operations.md: --drain-timeout is how long running jobs may finish on SIGTERM. A job
    // still running then is left to the broker, which runs it again elsewhere (DISCONNECT, §3).
    cluster c("drain-timeout");
    c.start_broker(fast_heartbeat);
    const auto drain_timeout = 1000ms;
    // calculate takes a minute on this worker: far beyond its drain timeout.
    auto& slow = c.add_worker("slow", {"--concurrency", "1", "--calculate-delay", "60000",
                                       "--drain-timeout", std::to_string(drain_timeout.count())});
    std::atomic<int> fired{0}; // before the client: its callbacks may run until the client goes
    deferq::Client client({.broker = c.client_endpoint()});
    auto call = client.call_with<deferq::Reply<double>>({.timeout = 120s}, "calculate", 20, 22);
    call.add_callbacks([&](deferq::Reply<double>&) { fired.fetch_add(1); },
                       [&](const deferq::Failure&) { fired.fetch_add(1); });
    REQUIRE(eventually([&] { return c.counter("running_jobs") == 1; }, 20s));
    c.add_worker("fast", {"--concurrency", "1", "--calculate-delay", "50"});

    auto signalled = std::chrono::steady_clock::now();
    slow.signal(SIGTERM);
    auto code = slow.wait(30s); // the job alone would take 60 s
    auto took = std::chrono::steady_clock::now() - signalled;
    INFO("worker log:\n" << slow.log());
    REQUIRE(code.has_value());
    CHECK(*code == 0);
    // It waited for its job until the drain timeout (that deadline starts after the signal, so
    // this holds however slow the machine), then left without it.
    CHECK(took >= drain_timeout);
    CHECK_THAT(slow.log(), Catch::Contains("drain timeout with 1 job(s) still running"));

    auto reply = call.get(60s);
    CHECK(reply.value == 42);
    CHECK(reply.worker == "fast");
    CHECK(reply.attempt == 2);
    std::this_thread::sleep_for(300ms); // a second firing would show up here
    CHECK(fired == 1);
    CHECK(c.counter("requeued") == 1);
    CHECK(c.counter("replies") == 1);
    CHECK(c.counter("errors") == 0);
    CHECK(c.counter("late_replies") == 0);
    CHECK(c.counter("live_workers") == 1);
    CHECK_THAT(c.broker().log(), Catch::Contains("worker slow disconnected holding 1 job(s)"));
}

TEST_CASE("a full queue fails calls at once with overloaded and the broker's memory stays flat",
          "[fault][limits]") {
    cluster c("overload");
    // The calls wait for a worker that never comes: longer than the test (not the 5 s grace).
    c.start_broker({"--max-queue-length", "100", "--unknown-function-grace", "600000"});
    deferq::Client client({.broker = c.client_endpoint()});

    std::vector<deferq::Deferred<double>> queued;
    for (int i = 0; i < 100; ++i)
        queued.push_back(client.call_with<double>({.timeout = 60s}, "nobody_serves", i));
    auto started = std::chrono::steady_clock::now();
    try {
        client.call_with<double>({.timeout = 60s}, "nobody_serves", 101).get(10s);
        FAIL("expected overloaded");
    } catch (const deferq::Failure& failure) {
        CHECK(failure.code() == deferq::error_code::overloaded);
    }
    CHECK(std::chrono::steady_clock::now() - started < 5s); // at once, not at the 60 s timeout

    auto flood = [&](int count) {
        std::vector<deferq::Deferred<double>> rejected;
        for (int i = 0; i < count; ++i)
            rejected.push_back(client.call_with<double>({.timeout = 60s}, "nobody_serves", i));
        int overloaded = 0;
        for (auto& d : rejected) {
            try {
                d.get(30s);
            } catch (const deferq::Failure& failure) {
                overloaded += failure.check(deferq::error_code::overloaded);
            }
        }
        return overloaded;
    };
    // The same flood twice: the first one grows the broker's buffers to what such a flood needs,
    // the second must not grow them further.
    CHECK(flood(50'000) == 50'000);
    auto before = c.broker_rss();
    CHECK(flood(50'000) == 50'000);
    auto after = c.broker_rss();
    INFO("broker RSS before " << before << " after " << after);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    CHECK(after < before + 4 * 1024 * 1024); // sanitizers' quarantines grow RSS by design
#endif
    CHECK(c.status()["counters"]["queued_jobs"] == 100);
    int cancelled = 0;
    for (auto& d : queued) {
        d.cancel();
        try {
            d.get(10s);
        } catch (const deferq::Failure& failure) {
            cancelled += failure.check(deferq::error_code::cancelled);
        }
    }
    CHECK(cancelled == 100);
}

TEST_CASE("the pending-call limit per client gives overloaded", "[fault][limits]") {
    cluster c("pending-limit");
    c.start_broker({"--max-pending-per-client", "10", "--unknown-function-grace", "600000"});
    deferq::Client client({.broker = c.client_endpoint()});
    std::vector<deferq::Deferred<double>> calls;
    for (int i = 0; i < 11; ++i)
        calls.push_back(client.call_with<double>({.timeout = 60s}, "nobody_serves", i));
    try {
        calls.back().get(10s);
        FAIL("expected overloaded");
    } catch (const deferq::Failure& failure) {
        CHECK(failure.code() == deferq::error_code::overloaded);
    }
    for (auto& d : calls)
        d.cancel();
}

TEST_CASE("a queued job whose deadline passes fails with timeout and never runs",
          "[fault][deadline]") {
    cluster c("deadline");
    c.start_broker();
    c.add_worker("only", {"--concurrency", "1"});
    deferq::Client client({.broker = c.client_endpoint()});
    auto busy = client.call_with<std::int64_t>({.timeout = 30s}, "sleep_ms", 800);
    std::this_thread::sleep_for(100ms);
    auto late = client.call_with<std::int64_t>({.timeout = 300ms}, "sleep_ms", 1);
    try {
        late.get(10s);
        FAIL("expected timeout");
    } catch (const deferq::Failure& failure) {
        CHECK(failure.code() == deferq::error_code::timeout);
    }
    CHECK(busy.get(10s) == 800);
    // The broker SHALL NOT dispatch a job whose deadline passed: only the first job ran.
    CHECK(c.status()["workers"][0]["jobs_done"] == 1);
}

TEST_CASE("a call times out on the client even when there is no broker", "[fault][deadline]") {
    deferq::Client client({.broker = "tcp://127.0.0.1:9"}); // nothing listens there
    auto started = std::chrono::steady_clock::now();
    try {
        client.call_with<double>({.timeout = 400ms}, "add", 1, 2).get(10s);
        FAIL("expected timeout");
    } catch (const deferq::Failure& failure) {
        CHECK(failure.code() == deferq::error_code::timeout);
    }
    CHECK(std::chrono::steady_clock::now() - started < 3s);
}

TEST_CASE("a client that goes away: its queued jobs are dropped", "[fault]") {
    cluster c("client-leaves");
    c.start_broker(fast_heartbeat);
    c.add_worker("only", {"--concurrency", "1"});
    {
        deferq::Client client({.broker = c.client_endpoint()});
        for (int i = 0; i < 50; ++i)
            client.call<std::int64_t>("sleep_ms", 200);
        REQUIRE(eventually([&] { return c.counter("queued_jobs") >= 40; }, 10s));
    } // destroyed with 50 calls pending: they fail locally with connection_lost, the broker drops
      // them
    CHECK(eventually([&] { return c.counter("queued_jobs") == 0; }, 5s));
    CHECK(eventually([&] { return c.counter("running_jobs") == 0; }, 5s));
}

TEST_CASE("SIGTERM to the broker tells workers and clients, which come back as soon as it does",
          "[fault]") {
    cluster c("broker-sigterm");
    // A 10 s heartbeat: reconnecting by expiry would take 30 s or more, so coming back within
    // 15 s (a loaded machine restarting a sanitized broker) can only be the DISCONNECT's doing.
    const std::vector<std::string> slow_heartbeat{"--heartbeat-interval", "10000"};
    c.start_broker(slow_heartbeat);
    c.add_worker("w1");
    deferq::Client client({.broker = c.client_endpoint()});
    CHECK(client.call<double>("add", 1, 1).get(10s) == 2);
    c.broker().signal(SIGTERM);
    REQUIRE(c.broker().wait(10s).has_value());
    CHECK_THAT(c.broker().log(), Catch::Contains("telling 1 worker(s)"));
    c.restart_broker(); // with the same options
    auto restarted = std::chrono::steady_clock::now();
    CHECK(client.call_with<double>({.timeout = 20s}, "add", 2, 2).get(30s) == 4);
    auto took = std::chrono::steady_clock::now() - restarted;
    INFO("first call after restart took "
         << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
    CHECK(took < 15s);
    CHECK_THAT(c.workers()[0]->log(), Catch::Contains("broker asked to reconnect"));
    CHECK_THAT(c.workers()[0]->log(), !Catch::Contains("broker silent"));
}

TEST_CASE("SIGTERM to the broker sends DISCONNECT to every client it knows", "[fault]") {
    // docs/protocol.md §2, DISCONNECT (broker → client): "the broker is shutting down".
    cluster c("broker-sigterm-clients");
    // A 10 s heartbeat (clients expire after 30 s): a DISCONNECT here can only be the shutdown's.
    c.start_broker({"--heartbeat-interval", "10000", "--unknown-function-grace", "600000"});
    zmq::context_t context;
    const std::string client_id = "DFQC01";
    auto asker = deferq::test::raw_dealer(context, c.client_endpoint(), "asker");
    auto beater = deferq::test::raw_dealer(context, c.client_endpoint(), "beater");
    deferq::test::send(asker, {"", client_id, deferq::test::command_frame(command::request),
                               deferq::test::u64(1), "nobody_serves",
                               bytes(deferq::protocol::options_frame({})),
                               bytes(deferq::codec::encode_args(1, 2))});
    deferq::test::send(beater, {"", client_id, deferq::test::command_frame(command::heartbeat)});
    // The broker greets a client it did not know with a HEARTBEAT: then it knows both.
    REQUIRE(deferq::test::wait_for(asker, command::heartbeat, 10s));
    REQUIRE(deferq::test::wait_for(beater, command::heartbeat, 10s));

    c.broker().signal(SIGTERM);
    for (auto* socket : {&asker, &beater}) {
        auto told = deferq::test::wait_for(*socket, command::disconnect, 10s);
        REQUIRE(told);
        CHECK(told->size() == 3); // "", DFQC01, DISCONNECT: no further frames
        CHECK((*told)[1] == client_id);
    }
    auto code = c.broker().wait(20s);
    REQUIRE(code.has_value());
    CHECK(*code == 0);
    CHECK_THAT(c.broker().log(), Catch::Contains("telling 0 worker(s) and 2 client(s)"));
}

TEST_CASE("a client whose I/O thread stalls past its expiry still gets every result", "[fault]") {
    // The broker forgets a client it has not heard from for interval × liveness; a client that was
    // merely stalled (a slow callback, a starved machine) SHALL learn it was forgotten and resend.
    cluster c("client-stalls");
    c.start_broker({"--heartbeat-interval", "250", "--liveness", "3"});
    c.add_worker("only", {"--concurrency", "2", "--calculate-delay", "1500"});
    deferq::Client client({.broker = c.client_endpoint()});
    auto slow = client.call<double>("calculate", 1, 2); // no timeout: only a lost call never ends
    REQUIRE(eventually([&] { return c.counter("running_jobs") == 1; }, 10s));
    auto stall = client.call<double>("add", 1, 1).add_callback([](double) {
        std::this_thread::sleep_for(2500ms); // the I/O thread sends nothing for over 750 ms
    });
    CHECK(stall.get(20s) == 2);
    REQUIRE(eventually([&] { return c.counter("clients_expired") >= 1; }, 5s));
    CHECK(slow.get(20s) == 3);
}

TEST_CASE("after a DISCONNECT the client resends to the broker that answers, not to one exiting",
          "[fault]") {
    // A broker told to stop sends DISCONNECT, then closes its socket; a client that reconnects and
    // resends at once can reach it in between, and what it reads then is lost. Here a stand-in for
    // that broker says DISCONNECT and keeps reading: the client must send it no REQUEST, and its
    // call must complete on the broker that starts next on the same port.
    cluster c("resend-after-disconnect");
    c.start_broker();
    c.add_worker("w1");
    deferq::Client client({.broker = c.client_endpoint()});
    CHECK(client.call<double>("add", 1, 1).get(10s) == 2);
    c.kill_broker();

    zmq::context_t context;
    int requests_after_disconnect = 0;
    std::optional<deferq::Deferred<double>> call;
    {
        zmq::socket_t exiting(context, zmq::socket_type::router);
        exiting.set(zmq::sockopt::linger, 0);
        exiting.set(zmq::sockopt::router_handover, 1);
        REQUIRE(eventually(
            [&] {
                try {
                    exiting.bind(c.client_endpoint());
                    return true;
                } catch (const zmq::error_t&) {
                    return false;
                }
            },
            10s));
        call = client.call<double>("add", 2, 2); // reaches the stand-in
        std::optional<std::string> routing_id;
        std::vector<zmq::message_t> frames;
        auto until = std::chrono::steady_clock::now() + 20s;
        while (!routing_id && std::chrono::steady_clock::now() < until) {
            zmq::pollitem_t item{exiting.handle(), 0, ZMQ_POLLIN, 0};
            deferq::protocol::poll(&item, 1, 100ms);
            if (deferq::protocol::receive_frames(exiting, frames) && !frames.empty())
                routing_id = std::string(deferq::protocol::view(frames[0]));
        }
        REQUIRE(routing_id);
        deferq::test::send(
            exiting, {*routing_id, "", "DFQC01", deferq::test::command_frame(command::disconnect)});
        // It reads on for a second, as an exiting broker could before it closes.
        until = std::chrono::steady_clock::now() + 1s;
        while (std::chrono::steady_clock::now() < until)
            requests_after_disconnect += read_requests(exiting);
    } // the stand-in closes: its port is free
    c.restart_broker();
    CHECK(requests_after_disconnect == 0);
    CHECK(call->get(30s) == 4);
}

TEST_CASE("a client that closes tells the broker, which forgets it at once instead of expiring it",
          "[fault]") {
    cluster c("client-closes");
    // Expiry after 30 s: a client gone within 10 s was forgotten for its DISCONNECT.
    c.start_broker({"--heartbeat-interval", "10000", "--liveness", "3"});
    c.add_worker("only");
    {
        deferq::Client client({.broker = c.client_endpoint()});
        CHECK(client.call<double>("add", 1, 1).get(10s) == 2);
        CHECK(c.counter("live_clients") == 2); // this one and the one asking
    }
    CHECK(eventually([&] { return c.counter("live_clients") == 1; }, 10s)); // the asking one
    CHECK(c.counter("clients_expired") == 0);
}

TEST_CASE("a call that times out after its client reconnected reports the timeout the caller gave",
          "[fault][timeout]") {
    // A "broker" that accepts the connection and does not answer: after interval × liveness (3 s)
    // the client reconnects, and resends with the time left once the broker answers on the new
    // connection (a HEARTBEAT, a second after the reconnect); the call's Failure still names the
    // caller's 6,000 ms, not what was left at the resend.
    zmq::context_t context;
    zmq::socket_t silent(context, zmq::socket_type::router);
    silent.set(zmq::sockopt::linger, 0);
    silent.set(zmq::sockopt::router_handover, 1); // as the broker: the reconnected client is heard
    silent.bind("tcp://127.0.0.1:*");
    auto endpoint = silent.get(zmq::sockopt::last_endpoint);
    // It reads everything as it comes (from here on only this thread uses the socket): at the
    // handover, messages left unread on the old connection would be dropped. It counts REQUESTs,
    // alone or in a BATCH (which may also hold the CANCEL sent when the call timed out); frame 0
    // is the routing id.
    std::atomic<bool> reading{true};
    std::atomic<int> requests{0};
    auto started = std::chrono::steady_clock::now();
    bool answered = false;
    std::thread reader([&] {
        while (reading)
            requests += read_requests(silent, [&](const zmq::message_t& client) {
                if (answered || std::chrono::steady_clock::now() - started < 3500ms) return;
                answered = true; // once, on the new connection
                std::vector<zmq::message_t> beat;
                deferq::protocol::begin_message(beat, deferq::protocol::view(client), "DFQC01",
                                                command::heartbeat);
                beat.push_back(deferq::protocol::u64_frame(1));
                beat.push_back(deferq::protocol::u32_frame(1000));
                beat.push_back(deferq::protocol::u32_frame(3));
                [[maybe_unused]] bool sent = deferq::protocol::send_frames(silent, beat);
            });
    });
    deferq::Client client({.broker = endpoint});
    auto d = client.call_with<double>({.timeout = 6000ms}, "add", 1, 2);
    try {
        d.get(30s);
        FAIL("expected a timeout");
    } catch (const deferq::Failure& failure) {
        CHECK(failure.code() == deferq::error_code::timeout);
        CHECK_THAT(failure.what(), Catch::Contains("within 6000 ms"));
    }
    eventually([&] { return requests >= 2; }, 5s); // the resend may still be on its way
    reading = false;
    reader.join();
    // The client did reconnect and resend: the request came twice.
    CHECK(requests == 2);
}
