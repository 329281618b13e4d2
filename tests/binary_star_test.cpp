// The standby broker's state machine (broker/src/binary_star.*), with injected time: the rules of
// docs/protocol.md §8.

#include "binary_star.hpp"

#include <catch2/catch.hpp>

using deferq::broker_detail::binary_star;
using deferq::broker_detail::ha_state;
using namespace std::chrono_literals;

namespace {

const auto t0 = binary_star::clock_type::now();
constexpr auto interval = 200ms; // the heartbeat interval; the partner is lost after 400 ms

} // namespace

TEST_CASE("a starting primary follows what its partner says", "[binary_star]") {
    SECTION("a starting backup: the primary serves") {
        binary_star primary(false, interval, t0);
        CHECK(primary.state() == ha_state::primary);
        CHECK_FALSE(primary.serving());
        auto changed = primary.on_partner_state(ha_state::backup, t0 + 10ms);
        REQUIRE(changed);
        CHECK(changed->from == ha_state::primary);
        CHECK(changed->to == ha_state::active);
        CHECK(primary.serving());
    }
    SECTION("a passive backup: the primary serves") {
        binary_star primary(false, interval, t0);
        CHECK(primary.on_partner_state(ha_state::passive, t0 + 10ms));
        CHECK(primary.state() == ha_state::active);
    }
    SECTION("an active backup: a returning primary stands by (no second switch)") {
        binary_star primary(false, interval, t0);
        auto changed = primary.on_partner_state(ha_state::active, t0 + 10ms);
        REQUIRE(changed);
        CHECK(changed->to == ha_state::passive);
        // Peers that come while the backup serves are not taken back.
        CHECK_FALSE(primary.on_peer_came("client", t0 + 20ms));
        CHECK_FALSE(primary.on_partner_state(ha_state::active, t0 + 200ms));
        CHECK_FALSE(primary.on_tick(t0 + 10s));
        CHECK(primary.state() == ha_state::passive);
    }
    SECTION("nothing heard within the expiry: the primary serves alone") {
        binary_star primary(false, interval, t0);
        CHECK_FALSE(primary.on_peer_came("client", t0 + 100ms));
        CHECK_FALSE(primary.on_tick(t0 + 399ms));
        CHECK_FALSE(primary.serving());
        auto changed = primary.on_tick(t0 + 400ms);
        REQUIRE(changed);
        CHECK(changed->to == ha_state::active);
        CHECK_THAT(changed->reason, Catch::Contains("serving alone"));
    }
    SECTION("two primaries: neither serves") {
        binary_star primary(false, interval, t0);
        CHECK_FALSE(primary.on_partner_state(ha_state::primary, t0 + 10ms));
        CHECK_FALSE(primary.on_tick(t0 + 10s));
        CHECK(primary.state() == ha_state::primary);
    }
}

TEST_CASE("a backup that never saw its primary never serves", "[binary_star]") {
    binary_star backup(true, interval, t0);
    CHECK(backup.state() == ha_state::backup);
    for (auto at = 0ms; at < 30s; at += 100ms) {
        CHECK_FALSE(backup.on_tick(t0 + at));
        CHECK_FALSE(backup.on_peer_came("client", t0 + at));
    }
    CHECK_FALSE(backup.serving());
    // A starting or passive primary does not make it serve either: the primary takes the cluster.
    CHECK_FALSE(backup.on_partner_state(ha_state::primary, t0 + 31s));
    CHECK_FALSE(backup.on_partner_state(ha_state::passive, t0 + 31s));
    CHECK(backup.state() == ha_state::backup);
}

TEST_CASE("a passive backup takes over only when its partner is lost AND a peer comes",
          "[binary_star]") {
    binary_star backup(true, interval, t0);
    REQUIRE(backup.on_partner_state(ha_state::active, t0 + 10ms));
    CHECK(backup.state() == ha_state::passive);
    SECTION("the partner is alive: a peer that comes is dropped (split-brain guard)") {
        CHECK_FALSE(backup.on_partner_state(ha_state::active, t0 + 200ms));
        CHECK_FALSE(backup.on_peer_came("client", t0 + 300ms));
        CHECK_FALSE(backup.on_peer_came("worker", t0 + 599ms));
        CHECK(backup.state() == ha_state::passive);
    }
    SECTION("the partner is silent but no peer comes: still passive") {
        for (auto at = 10ms; at < 10s; at += 100ms)
            CHECK_FALSE(backup.on_tick(t0 + at));
        CHECK(backup.state() == ha_state::passive);
    }
    SECTION("the partner silent for the expiry, then a client comes: active") {
        CHECK_FALSE(backup.on_peer_came("client", t0 + 409ms)); // 399 ms of silence
        auto changed = backup.on_peer_came("client", t0 + 2110ms);
        REQUIRE(changed);
        CHECK(changed->from == ha_state::passive);
        CHECK(changed->to == ha_state::active);
        CHECK(changed->reason == "partner silent for 2.1 s and a client came");
        CHECK(backup.serving());
        SECTION("the primary comes back: it hears active and stands by; the backup stays") {
            CHECK_FALSE(backup.on_partner_state(ha_state::primary, t0 + 5s));
            CHECK_FALSE(backup.on_partner_state(ha_state::passive, t0 + 5200ms));
            CHECK(backup.serving());
            CHECK_FALSE(backup.must_step_down());
        }
        SECTION("both active (the link between them was cut): the backup steps down") {
            auto down = backup.on_partner_state(ha_state::active, t0 + 5s);
            REQUIRE(down);
            CHECK(down->to == ha_state::passive);
            CHECK(backup.must_step_down());
        }
    }
}

TEST_CASE("a passive broker whose active partner restarts", "[binary_star]") {
    SECTION("a passive backup hears the primary starting: it stays passive, the primary serves") {
        binary_star backup(true, interval, t0);
        REQUIRE(backup.on_partner_state(ha_state::active, t0));
        CHECK_FALSE(backup.on_partner_state(ha_state::primary, t0 + 300ms));
        CHECK(backup.state() == ha_state::passive);
        // ... and the primary, hearing "passive", goes active.
        binary_star primary(false, interval, t0 + 300ms);
        CHECK(primary.on_partner_state(ha_state::passive, t0 + 310ms));
        CHECK(primary.serving());
    }
    SECTION("a passive primary hears the backup starting: the primary serves") {
        binary_star primary(false, interval, t0);
        REQUIRE(primary.on_partner_state(ha_state::active, t0));
        auto changed = primary.on_partner_state(ha_state::backup, t0 + 300ms);
        REQUIRE(changed);
        CHECK(changed->to == ha_state::active);
        // ... and the backup, hearing "active", goes passive.
        binary_star backup(true, interval, t0 + 300ms);
        CHECK(backup.on_partner_state(ha_state::active, t0 + 310ms));
        CHECK(backup.state() == ha_state::passive);
    }
    SECTION("both passive: the primary serves") {
        binary_star primary(false, interval, t0);
        REQUIRE(primary.on_partner_state(ha_state::active, t0));
        CHECK(primary.on_partner_state(ha_state::passive, t0 + 300ms));
        CHECK(primary.serving());
        binary_star backup(true, interval, t0);
        REQUIRE(backup.on_partner_state(ha_state::active, t0));
        CHECK_FALSE(backup.on_partner_state(ha_state::passive, t0 + 300ms));
    }
}

TEST_CASE("an active primary stays active whatever its partner says", "[binary_star]") {
    binary_star primary(false, interval, t0);
    REQUIRE(primary.on_partner_state(ha_state::backup, t0));
    for (auto partner : {ha_state::primary, ha_state::backup, ha_state::passive, ha_state::active})
        CHECK_FALSE(primary.on_partner_state(partner, t0 + 100ms));
    CHECK(primary.serving());
    CHECK_FALSE(primary.must_step_down());
}

TEST_CASE("the states on the peer link", "[binary_star]") {
    using deferq::broker_detail::ha_state_from;
    CHECK(ha_state_from(1) == ha_state::primary);
    CHECK(ha_state_from(4) == ha_state::passive);
    CHECK_FALSE(ha_state_from(0));
    CHECK_FALSE(ha_state_from(5));
    CHECK(to_string(ha_state::active) == "active");
}
