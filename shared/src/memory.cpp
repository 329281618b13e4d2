#include "deferq/memory.hpp"

#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace deferq {
namespace {

/// True when the environment chose this setting: its MALLOC_…_ variable, or its tunable.
bool set_by_environment(const char* variable, const char* tunable) {
    if (std::getenv(variable) != nullptr) return true;
    const char* tunables = std::getenv("GLIBC_TUNABLES");
    return tunables != nullptr && std::strstr(tunables, tunable) != nullptr;
}

} // namespace

big_buffer_settings keep_big_buffers() noexcept {
    big_buffer_settings changed;
#if defined(__GLIBC__)
    constexpr int mib = 1024 * 1024;
    if (!set_by_environment("MALLOC_MMAP_THRESHOLD_", "glibc.malloc.mmap_threshold"))
        changed.mmap_threshold =
            mallopt(M_MMAP_THRESHOLD, keep_big_buffers_threshold_mib * mib) == 1;
    if (!set_by_environment("MALLOC_TRIM_THRESHOLD_", "glibc.malloc.trim_threshold"))
        changed.trim_threshold =
            mallopt(M_TRIM_THRESHOLD, keep_big_buffers_threshold_mib * mib) == 1;
    if (!set_by_environment("MALLOC_TOP_PAD_", "glibc.malloc.top_pad"))
        changed.top_pad = mallopt(M_TOP_PAD, keep_big_buffers_top_pad_mib * mib) == 1;
#endif
    return changed;
}

} // namespace deferq
