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
    int pipe_ends[2];
    REQUIRE(::pipe(pipe_ends) == 0);
    auto child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::close(pipe_ends[0]);
        auto taken = ports(count);
        auto size = static_cast<ssize_t>(taken.size() * sizeof(int));
        bool written = ::write(pipe_ends[1], taken.data(), taken.size() * sizeof(int)) == size;
        ::_exit(written ? 0 : 1);
    }
    ::close(pipe_ends[1]);
    auto mine = ports(count);
    std::vector<int> theirs(count);
    auto want = static_cast<ssize_t>(theirs.size() * sizeof(int));
    ssize_t got = 0;
    while (got < want) {
        auto n = ::read(pipe_ends[0], reinterpret_cast<char*>(theirs.data()) + got, want - got);
        if (n <= 0) break;
        got += n;
    }
    ::close(pipe_ends[0]);
    int status = 0;
    ::waitpid(child, &status, 0);
    REQUIRE(got == want);
    REQUIRE((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    std::set<int> all(mine.begin(), mine.end());
    all.insert(theirs.begin(), theirs.end());
    CHECK(all.size() == mine.size() + theirs.size());
}
