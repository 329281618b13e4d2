// The peer side of the heartbeat rules (shared/include/deferq/heartbeat.hpp, docs/protocol.md §4).

#include "deferq/heartbeat.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <vector>

using namespace std::chrono_literals;

namespace {

using clock_type = deferq::broker_monitor::clock_type;

/// A monitor whose broker announced the shortest expiry there is (10 ms × 1), so that the time a
/// new connection is given is the backoff once there is one.
deferq::broker_monitor short_expiry_monitor() {
    deferq::broker_monitor monitor;
    monitor.announced({.instance = 1, .interval_ms = 10, .liveness = 1});
    return monitor;
}

/// Opens a connection at `now` to a broker that stays silent: how long the monitor gives it before
/// it says reconnect, to the millisecond (the backoff is whole milliseconds). The monitor has then
/// made one more consecutive reconnect.
std::chrono::milliseconds time_given(deferq::broker_monitor& monitor, clock_type::time_point now) {
    monitor.connected(now);
    for (auto silence = 0ms; silence <= 60s; silence += 1ms)
        if (monitor.expired(now + silence)) return silence - 1ms;
    FAIL("the monitor never said reconnect within 60 s of silence");
    return 0ms;
}

/// The times given to `reconnects` consecutive connections, each opened when the one before was
/// declared dead.
std::vector<std::chrono::milliseconds> times_given(deferq::broker_monitor& monitor,
                                                   clock_type::time_point start, int reconnects) {
    std::vector<std::chrono::milliseconds> given;
    auto now = start;
    for (int i = 0; i < reconnects; ++i) {
        given.push_back(time_given(monitor, now));
        now += given.back() + 1ms;
    }
    return given;
}

} // namespace

TEST_CASE("a peer clamps the heartbeat interval and liveness a broker announces", "[heartbeat]") {
    // "A peer SHALL clamp them to 10 ms … 3,600,000 ms and 1 … 1000 (the broker's own option
    // ranges), so that no announcement can make its timers overflow."
    // Found by the client fuzz target: 2^32 - 1 ms × 2^32 - 1 overflowed in loop_tick (UBSan).
    deferq::broker_monitor monitor;
    auto start = std::chrono::steady_clock::now();
    monitor.connected(start);
    monitor.announced({.instance = 1, .interval_ms = 0xffffffff, .liveness = 0xffffffff});
    CHECK(monitor.interval() == 3'600'000ms);
    monitor.loop_tick(start);
    CHECK_FALSE(monitor.expired(start + 999h)); // 1 h × 1000
    CHECK(monitor.expired(start + 1001h));

    monitor.announced({.instance = 1, .interval_ms = 1, .liveness = 1});
    CHECK(monitor.interval() == 10ms);
}

TEST_CASE("a new broker instance id in a heartbeat means the broker restarted", "[heartbeat]") {
    deferq::broker_monitor monitor;
    CHECK_FALSE(monitor.announced({.instance = 1, .interval_ms = 1000, .liveness = 3}));
    CHECK_FALSE(monitor.announced({.instance = 1, .interval_ms = 1000, .liveness = 3}));
    CHECK(monitor.announced({.instance = 2, .interval_ms = 1000, .liveness = 3}));
}

TEST_CASE("a peer reconnects after interval times liveness of silence from the broker",
          "[heartbeat]") {
    // "A worker or client that has not heard from the broker for `interval × liveness` SHALL close
    // its socket, open a new one at once and start again"
    deferq::broker_monitor monitor;
    auto start = std::chrono::steady_clock::now();
    monitor.connected(start);
    CHECK_FALSE(monitor.expired(start + 3s)); // the defaults: 1000 ms × 3
    CHECK(monitor.expired(start + 3s + 1ms));

    monitor.announced({.instance = 1, .interval_ms = 100, .liveness = 5});
    auto later = start + 10s;
    monitor.heard(later);
    CHECK_FALSE(monitor.expired(later + 500ms));
    CHECK(monitor.expired(later + 501ms));
}

TEST_CASE("the first reconnect gives the new connection 1 s with at most 25 % jitter",
          "[heartbeat][backoff]") {
    // "the backoff starts at 1 s [...] (±25 % jitter)"
    auto start = std::chrono::steady_clock::now();
    std::vector<std::chrono::milliseconds> given;
    for (int i = 0; i < 200; ++i) {
        auto monitor = short_expiry_monitor();
        CHECK(time_given(monitor, start) == 10ms); // no backoff before the first reconnect
        given.push_back(time_given(monitor, start + 1s));
    }
    auto [least, most] = std::minmax_element(given.begin(), given.end());
    CHECK(*least >= 750ms);
    CHECK(*most <= 1250ms);
    // Jittered: peers that lost the broker together do not all come back together.
    CHECK(*least < 900ms);
    CHECK(*most > 1100ms);
}

TEST_CASE("the reconnect backoff is capped at 32 s with at most 25 % jitter",
          "[heartbeat][backoff]") {
    // "the backoff starts at 1 s and doubles with each consecutive reconnect up to 32 s (±25 %
    // jitter)"
    auto start = std::chrono::steady_clock::now();
    std::vector<std::chrono::milliseconds> capped;
    for (int i = 0; i < 20; ++i) {
        auto monitor = short_expiry_monitor();
        auto given = times_given(monitor, start, 40);
        INFO("monitor " << i);
        CHECK(*std::max_element(given.begin(), given.end()) <= 40s);
        capped.insert(capped.end(), given.end() - 10, given.end());
    }
    auto [least, most] = std::minmax_element(capped.begin(), capped.end());
    CHECK(*least >= 24s);
    CHECK(*most <= 40s);
    CHECK(*least < 30s);
    CHECK(*most > 34s);
}

TEST_CASE("any message from the broker resets the reconnect backoff", "[heartbeat][backoff]") {
    // "any message from the broker resets it"
    auto monitor = short_expiry_monitor();
    auto now = std::chrono::steady_clock::now();
    for (int i = 0; i < 40 && time_given(monitor, now) < 24s; ++i)
        now += 1min;
    now += 1min;
    monitor.connected(now);
    CHECK_FALSE(monitor.expired(now + 20s)); // the backoff is at its cap: 24 s at least
    monitor.heard(now + 20s);
    // Dead again after interval × liveness of silence, not after the backoff.
    CHECK_FALSE(monitor.expired(now + 20s + 10ms));
    CHECK(monitor.expired(now + 20s + 11ms));
    // And the next connection is given 1 s again, as after a first reconnect.
    auto given = time_given(monitor, now + 30s);
    CHECK(given >= 750ms);
    CHECK(given <= 1250ms);
}

TEST_CASE("each consecutive reconnect doubles the time a new connection is given, up to 32 s",
          "[heartbeat][backoff]") {
    // "the backoff starts at 1 s and doubles with each consecutive reconnect up to 32 s (±25 %
    // jitter), and any message from the broker resets it. So a broker that is down is tried every
    // 3 s at first, then every 4, 8, 16 and 32 s"
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 100; ++i) {
        auto monitor = short_expiry_monitor();
        auto given = times_given(monitor, start, 11);
        CHECK(given[0] == 10ms); // interval × liveness: no backoff before the first reconnect
        auto nominal = 1000ms;
        for (std::size_t n = 1; n < given.size(); ++n) {
            INFO("monitor " << i << ", reconnect " << n << ": given " << given[n].count()
                            << " ms, nominal " << nominal.count() << " ms");
            CHECK(given[n] >= nominal * 3 / 4);
            CHECK(given[n] <= nominal * 5 / 4);
            nominal = std::min<std::chrono::milliseconds>(nominal * 2, 32s);
        }
    }
}
