// A cluster many callers share (issue 15): callers take turns at each function's workers, on real
// processes. docs/protocol.md §5, Fair share.

#include "cluster.hpp"

#include "deferq/client.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <vector>

using namespace std::chrono_literals;
using deferq::test::cluster;

TEST_CASE("a caller with one call is served in about one job time while another's backlog waits",
          "[sharing]") {
    // "Within one function's queue and priority level, the broker serves tenants in turn; no slot
    // idles while work is queued."
    cluster c("fair-share");
    c.start_broker();
    c.add_worker("w1", {"--concurrency", "1"});
    c.add_worker("w2", {"--concurrency", "1"});
    deferq::Client a({.broker = c.client_endpoint()});
    deferq::Client b({.broker = c.client_endpoint()});
    std::vector<deferq::Deferred<std::int64_t>> backlog;
    for (int i = 0; i < 400; ++i) // 400 × 50 ms on 2 slots: 10 s of work
        backlog.push_back(a.call_with<std::int64_t>({.timeout = 120s}, "sleep_ms", 50));
    CHECK(deferq::test::eventually([&] { return c.counter("queued_jobs") > 300; }, 10s));

    auto started = std::chrono::steady_clock::now();
    CHECK(b.call_with<std::int64_t>({.timeout = 60s}, "sleep_ms", 50).get(60s) == 50);
    auto waited = std::chrono::steady_clock::now() - started;
    INFO("B's call took " << std::chrono::duration<double>(waited).count() << " s");
    CHECK(waited < 2s); // FIFO: about 9 s behind A's backlog

    // A still gets every free slot: its backlog drains at the pool's pace.
    auto drain_started = std::chrono::steady_clock::now();
    for (auto& call : backlog)
        CHECK(call.get(120s) == 50);
    CHECK(std::chrono::steady_clock::now() - drain_started < 30s);
}

TEST_CASE("two callers with backlogs share the workers evenly", "[sharing]") {
    cluster c("fair-halves");
    c.start_broker();
    c.add_worker("w1", {"--concurrency", "1"});
    deferq::Client a({.broker = c.client_endpoint()});
    deferq::Client b({.broker = c.client_endpoint()});
    std::vector<deferq::Deferred<std::int64_t>> from_a, from_b;
    for (int i = 0; i < 100; ++i)
        from_a.push_back(a.call_with<std::int64_t>({.timeout = 120s}, "sleep_ms", 10));
    for (int i = 0; i < 100; ++i)
        from_b.push_back(b.call_with<std::int64_t>({.timeout = 120s}, "sleep_ms", 10));
    // When B's last call is answered, A's must be about as far along: turns, not FIFO.
    from_b.back().get(120s);
    int a_done = 0;
    for (auto& call : from_a)
        a_done += call.called();
    INFO("A had " << a_done << " of 100 answered when B's last one was");
    CHECK(a_done >= 90);
    for (auto& call : from_a)
        call.get(120s);
}
