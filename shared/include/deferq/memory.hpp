#pragma once
/// How the programs ask the allocator to keep big buffers. A big argument or result (megabytes of
/// `bin`) is copied into fresh buffers on its way; with glibc's defaults each buffer over 32 MiB
/// (and, until the dynamic threshold has grown, over 128 KiB) is a new mmap whose pages are faulted
/// in one by one and unmapped again when freed: on a 16 MiB echo that was a quarter of the client's
/// and the worker's time (docs/performance.md, "Where the time goes").

namespace deferq {

/// Which of the allocator's settings keep_big_buffers() changed (false: left as it was, because
/// the environment sets it, or the allocator is not glibc's).
struct big_buffer_settings {
    bool mmap_threshold = false;
    bool trim_threshold = false;
    bool top_pad = false;
};

/// Megabytes below which glibc serves allocations from its heap (not a fresh mmap), and keeps free
/// memory at the top of the heap instead of returning it.
inline constexpr int keep_big_buffers_threshold_mib = 128;
/// What glibc asks the kernel for beyond each request when its heap grows.
inline constexpr int keep_big_buffers_top_pad_mib = 64;

/// Sets glibc's M_MMAP_THRESHOLD and M_TRIM_THRESHOLD to 128 MiB and M_TOP_PAD to 64 MiB, so that a
/// big buffer freed and taken again reuses pages already faulted in. Each is left alone when the
/// environment sets it (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_, MALLOC_TOP_PAD_, or its
/// glibc.malloc tunable in GLIBC_TUNABLES): operators keep the last word. Free memory is still
/// given back on request (malloc_trim(0), as the broker does after a burst); up to 128 MiB of it
/// stays with the process otherwise. Call at the start of main(), before threads start: it changes
/// the process's allocator (a program's setting, not a library's). No effect without glibc.
big_buffer_settings keep_big_buffers() noexcept;

} // namespace deferq
