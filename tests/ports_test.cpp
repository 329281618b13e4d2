// The test ports (tests/support/ports.hpp): outside the kernel's ephemeral range, never the same
// twice, and never the same in two processes asking at once.

#include "ports.hpp"

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <vector>

namespace {

constexpr int count = 40;

std::vector<int> ports(int how_many) {
    std::vector<int> taken;
    for (int i = 0; i < how_many; ++i)
        taken.push_back(deferq::test::free_port());
    return taken;
}

} // namespace

TEST_CASE("test ports lie outside the ephemeral range and are never handed out twice", "[ports]") {
    int first = 0, last = 0;
    std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> first >> last;
    REQUIRE(first > 0);
    auto taken = ports(count);
    for (int port : taken) {
        INFO("port " << port << ", ephemeral range " << first << "-" << last);
        CHECK((port < first || port > last));
        CHECK(port > 1024);
    }
    CHECK(std::set<int>(taken.begin(), taken.end()).size() == taken.size());
}

TEST_CASE("two processes asking at once are given different test ports", "[ports]") {
    // Each takes `many` ports, enough that without the lock files two random picks would almost
    // surely meet (400 x 400 among some 12,000 ports: about 13 alike expected). The child keeps
    // its ports until the parent has compared: a port is only kept from others while held.
    constexpr int many = 400;
    int answer[2], done[2];
    REQUIRE(::pipe(answer) == 0);
    REQUIRE(::pipe(done) == 0);
    auto child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::close(answer[0]);
        ::close(done[1]);
        auto taken = ports(many);
        auto size = static_cast<ssize_t>(taken.size() * sizeof(int));
        bool written = ::write(answer[1], taken.data(), taken.size() * sizeof(int)) == size;
        char byte;
        while (::read(done[0], &byte, 1) > 0) {
        } // until the parent closes its end
        ::_exit(written ? 0 : 1);
    }
    ::close(answer[1]);
    ::close(done[0]);
    auto mine = ports(many);
    std::vector<int> theirs(many);
    auto want = static_cast<ssize_t>(theirs.size() * sizeof(int));
    ssize_t got = 0;
    while (got < want) {
        auto n = ::read(answer[0], reinterpret_cast<char*>(theirs.data()) + got, want - got);
        if (n <= 0) break;
        got += n;
    }
    ::close(answer[0]);
    ::close(done[1]); // the child may go now
    int status = 0;
    ::waitpid(child, &status, 0);
    REQUIRE(got == want);
    REQUIRE((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    std::set<int> all(mine.begin(), mine.end());
    all.insert(theirs.begin(), theirs.end());
    CHECK(all.size() == mine.size() + theirs.size());
}
