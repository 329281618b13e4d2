// deferq::keep_big_buffers() (shared/include/deferq/memory.hpp): big buffers reuse warm pages.

#include "memory_return.hpp"

#include "deferq/memory.hpp"

#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <cstdlib>
#include <cstring>
#include <memory>

namespace {

[[maybe_unused]] long minor_faults() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_minflt;
}

/// Minor page faults taken while a fresh `size`-byte buffer is allocated, filled and freed.
[[maybe_unused]] long faults_to_fill(std::size_t size) {
    auto before = minor_faults();
    auto* buffer = static_cast<char*>(std::malloc(size));
    REQUIRE(buffer != nullptr);
    std::memset(buffer, 0x5a, size);
    // Keeps the compiler from dropping a store it sees freed unread.
    asm volatile("" : : "r"(buffer) : "memory");
    std::free(buffer);
    return minor_faults() - before;
}

} // namespace

TEST_CASE("after keep_big_buffers, a 48 MiB buffer freed and taken again is not faulted in again",
          "[memory]") {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || !defined(__GLIBC__)
    WARN(
        "skipped: the sanitizers replace malloc (or this is not glibc), its settings do not apply");
#else
    auto changed = deferq::keep_big_buffers();
    if (!changed.mmap_threshold || !changed.trim_threshold) {
        WARN("skipped: MALLOC_MMAP_THRESHOLD_ or MALLOC_TRIM_THRESHOLD_ is set in the environment");
        return;
    }
    constexpr std::size_t size = std::size_t{48} << 20;
    auto first = faults_to_fill(size);
    auto again = faults_to_fill(size);
    INFO("minor faults: first fill " << first << ", second " << again);
    // Premise: filling 48 MiB fresh takes faults (12,288 with 4 KiB pages, far fewer with huge
    // pages). Without keep_big_buffers, glibc maps 48 MiB freshly each time: as many again.
    REQUIRE(first >= 8);
    CHECK(again * 4 <= first);
#endif
}

TEST_CASE("keep_big_buffers leaves a setting the environment chose", "[memory]") {
#if !defined(__GLIBC__)
    WARN("skipped: not glibc");
#else
    ::setenv("MALLOC_TOP_PAD_", "131072", 1);
    auto changed = deferq::keep_big_buffers();
    ::unsetenv("MALLOC_TOP_PAD_");
    CHECK_FALSE(changed.top_pad);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    if (std::getenv("MALLOC_MMAP_THRESHOLD_") == nullptr &&
        std::getenv("GLIBC_TUNABLES") == nullptr)
        CHECK(changed.mmap_threshold);
#endif
#endif
}

TEST_CASE("the broker gives memory back after a burst or when clients leave, at most once a "
          "second, and a reason within that second is not lost",
          "[memory]") {
    using deferq::broker_detail::memory_return;
    using namespace std::chrono_literals;
    memory_return memory;
    auto t = std::chrono::steady_clock::time_point{} + 100s;
    CHECK_FALSE(memory.tick(0, 3, t)); // three clients, nothing to give back
    CHECK_FALSE(memory.tick(5000, 3, t += 250ms));
    CHECK(memory.tick(1000, 3, t += 250ms)); // the burst is over: a quarter of its peak is left
    // A client leaves 250 ms after that trim: too soon, but kept for the second's end.
    CHECK_FALSE(memory.tick(1000, 2, t += 250ms));
    CHECK_FALSE(memory.tick(1000, 2, t += 250ms));
    CHECK_FALSE(memory.tick(1000, 2, t += 250ms));
    CHECK(memory.tick(1000, 2, t += 250ms));
    CHECK_FALSE(memory.tick(1000, 2, t += 5s)); // nothing new
    CHECK(memory.trims() == 2);
}
