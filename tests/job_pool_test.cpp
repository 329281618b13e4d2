// The worker's pool and its watcher (docs/architecture.md, "Threads": an idle pool thread watches
// the socket in the I/O thread's place). The "socket" here is an eventfd the test makes readable
// with jobs waiting behind it; the pool's threads are real.

#include "job_pool.hpp"

#include "support/process.hpp"

#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using deferq::test::eventually;
using deferq::worker_detail::job_pool;
using deferq::worker_detail::job_record;
using watched = job_pool::watched;

namespace {

job_pool::job_ptr make_job(std::uint64_t id) {
    auto job = std::make_shared<job_record>();
    job->id = id;
    return job;
}

/// A socket stand-in: deliver() makes it readable with jobs behind it; watch() is the pool's
/// watch_fn over it, recording who watched and how many watched at once.
class fake_socket {
public:
    fake_socket() : _fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
    ~fake_socket() { ::close(_fd); }

    void deliver(std::vector<job_pool::job_ptr> jobs) {
        {
            std::lock_guard lock(_mutex);
            for (auto& job : jobs)
                _waiting.push_back(std::move(job));
        }
        std::uint64_t one = 1;
        [[maybe_unused]] auto written = ::write(_fd, &one, sizeof one);
    }

    watched watch(int wake_fd) {
        ++calls;
        if (refuse) return {watched::end::refused, {}};
        auto now = ++watching;
        for (auto most_seen = most.load();
             now > most_seen && !most.compare_exchange_weak(most_seen, now);) {
        }
        while (true) {
            pollfd items[] = {{_fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
            ::poll(items, 2, 1000);
            if (items[1].revents & POLLIN) {
                --watching;
                return {watched::end::woken, {}};
            }
            if (items[0].revents & POLLIN) {
                std::uint64_t count;
                [[maybe_unused]] auto got = ::read(_fd, &count, sizeof count);
                std::lock_guard lock(_mutex);
                if (_waiting.empty()) continue;
                --watching;
                readers.push_back(std::this_thread::get_id());
                return {watched::end::jobs, std::exchange(_waiting, {})};
            }
        }
    }

    std::atomic<int> calls{0}, watching{0}, most{0};
    std::atomic<bool> refuse{false};
    std::vector<std::thread::id> readers; ///< the thread of each watch that read jobs

private:
    int _fd;
    std::mutex _mutex;
    std::vector<job_pool::job_ptr> _waiting;
};

/// Records where each job ran; a job with id 1 blocks until release().
class runs {
public:
    void run(const job_pool::job_ptr& job, bool more) {
        if (job->id == 1) {
            std::unique_lock lock(_mutex);
            _released.wait(lock, [this] { return _open; });
        }
        std::lock_guard lock(_mutex);
        ran.emplace_back(job->id, std::this_thread::get_id());
        told_more.emplace_back(job->id, more);
    }
    void release() {
        {
            std::lock_guard lock(_mutex);
            _open = true;
        }
        _released.notify_all();
    }
    std::size_t count() {
        std::lock_guard lock(_mutex);
        return ran.size();
    }
    std::vector<std::pair<std::uint64_t, std::thread::id>> ran; ///< under _mutex
    std::vector<std::pair<std::uint64_t, bool>> told_more;      ///< under _mutex: id, `more`

private:
    std::mutex _mutex;
    std::condition_variable _released;
    bool _open = false;
};

/// A pool of `threads` over a fake socket (refusing to be watched at first when `refuse`).
struct watched_pool {
    watched_pool(unsigned threads, bool refuse = false) {
        socket.refuse = refuse;
        pool.start(
            threads, [this](const job_pool::job_ptr& job, bool more) { done.run(job, more); },
            [this](int wake_fd) { return socket.watch(wake_fd); });
    }
    fake_socket socket;
    runs done;
    job_pool pool; ///< last: its threads stop before the rest goes
};

} // namespace

TEST_CASE("a job the watcher reads runs on the watching thread, and one thread watches at a time",
          "[job_pool]") {
    watched_pool p(3);
    auto& [socket, done, pool] = p;
    REQUIRE(eventually([&] { return socket.watching == 1; }, 5s));
    for (std::uint64_t id = 2; id < 12; ++id) {
        socket.deliver({make_job(id)});
        REQUIRE(eventually([&] { return done.count() == id - 1; }, 5s));
    }
    done.release();
    pool.stop();
    CHECK(socket.most == 1);
    // Each job ran on the thread that had read it: the n-th watch read the n-th job.
    REQUIRE(done.ran.size() == 10);
    for (std::size_t i = 0; i < done.ran.size(); ++i)
        CHECK(done.ran[i].second == socket.readers[i]);
}

TEST_CASE("jobs queued while the only idle thread watches wake it: none waits for the socket",
          "[job_pool]") {
    // Two threads: one runs a job that blocks, the other watches. Jobs the I/O thread read and
    // queued must reach the watcher, which otherwise waits for a socket that stays quiet.
    watched_pool p(2);
    auto& [socket, done, pool] = p;
    REQUIRE(eventually([&] { return socket.watching == 1; }, 5s));
    std::vector<job_pool::job_ptr> jobs{make_job(1), make_job(2), make_job(3)};
    pool.add(jobs); // job 1 blocks one thread; 2 and 3 must run on the other
    CHECK(eventually([&] { return done.count() == 2; }, 5s));
    done.release();
    CHECK(eventually([&] { return done.count() == 3; }, 5s));
    pool.stop();
}

TEST_CASE("a refused watch is not tried again until the pool is nudged or given work",
          "[job_pool]") {
    watched_pool p(2, true);
    auto& [socket, done, pool] = p;
    REQUIRE(eventually([&] { return socket.calls >= 1; }, 5s));
    std::this_thread::sleep_for(200ms);
    auto refused = socket.calls.load();
    CHECK(refused <= 2); // each thread at most once: no spinning
    socket.refuse = false;
    pool.nudge();
    CHECK(eventually([&] { return socket.watching == 1; }, 5s));
    pool.stop(); // wakes the watcher: stop() returns
    CHECK(socket.watching == 0);
    CHECK(done.count() == 0);
}

TEST_CASE("a job is told whether others were queued behind it when it was taken", "[job_pool]") {
    // What lets the worker hold a quick job's answer back for the next ones (answer_hold): a
    // thread that takes the last queued job is told that nothing waits behind it.
    using told = std::vector<std::pair<std::uint64_t, bool>>;
    SECTION("jobs the pool was given") {
        runs done;
        job_pool pool;
        pool.start(1, [&](const job_pool::job_ptr& job, bool more) { done.run(job, more); });
        std::vector<job_pool::job_ptr> jobs{make_job(1), make_job(2), make_job(3)};
        pool.add(jobs); // the thread takes 1 (it blocks) with 2 and 3 behind it
        done.release();
        REQUIRE(eventually([&] { return done.count() == 3; }, 5s));
        pool.stop();
        CHECK(done.told_more == told{{1, true}, {2, true}, {3, false}});
    }
    SECTION("jobs the watcher read") {
        watched_pool p(1);
        auto& [socket, done, pool] = p;
        REQUIRE(eventually([&] { return socket.watching == 1; }, 5s));
        socket.deliver({make_job(4), make_job(5)});
        REQUIRE(eventually([&] { return done.count() == 2; }, 5s));
        socket.deliver({make_job(6)});
        REQUIRE(eventually([&] { return done.count() == 3; }, 5s));
        pool.stop();
        CHECK(done.told_more == told{{4, true}, {5, false}, {6, false}});
    }
}

TEST_CASE("an answer is held back only behind quick jobs, and not for longer than its bound",
          "[job_pool]") {
    using deferq::worker_detail::answer_hold;
    using deferq::worker_detail::clock_type;
    using deferq::worker_detail::offered_function;
    offered_function add, slow;
    auto job_of = [](const offered_function& function) {
        auto job = make_job(7);
        job->handler = &function;
        return job;
    };
    auto quick_job = job_of(add), slow_job = job_of(slow);
    answer_hold hold;
    auto t0 = clock_type::now();
    // A function that never ran is not known to be quick.
    CHECK_FALSE(answer_hold::quick(*quick_job));
    CHECK_FALSE(hold.may_hold(*quick_job, true, t0));
    answer_hold::learn(*quick_job, 2us);
    answer_hold::learn(*slow_job, 30ms);
    CHECK(answer_hold::quick(*quick_job));
    CHECK_FALSE(answer_hold::quick(*slow_job));
    // Held only when jobs wait behind it, and its function is quick.
    CHECK(hold.may_hold(*quick_job, true, t0));
    CHECK_FALSE(hold.may_hold(*quick_job, false, t0));
    CHECK_FALSE(hold.may_hold(*slow_job, true, t0));
    // The first held answer starts the bound; later ones do not move it.
    CHECK_FALSE(hold.holding());
    hold.held(t0);
    hold.held(t0 + answer_hold::longest_hold / 2);
    CHECK(hold.holding());
    CHECK(hold.may_hold(*quick_job, true, t0 + answer_hold::longest_hold / 2));
    CHECK_FALSE(hold.may_hold(*quick_job, true, t0 + answer_hold::longest_hold));
    // Released once: the caller sends what was held; a second release finds nothing.
    CHECK(hold.release());
    CHECK_FALSE(hold.holding());
    CHECK_FALSE(hold.release());
    CHECK(hold.may_hold(*quick_job, true, t0 + answer_hold::longest_hold));
    // A function that turns slow stops being quick after a few slow jobs.
    for (int i = 0; i < 8; ++i)
        answer_hold::learn(*quick_job, 5ms);
    CHECK_FALSE(answer_hold::quick(*quick_job));
}
