// A plugin whose functions take their bytes as views of the job's arguments (no copy) and return
// views: the worker answers a view of a whole argument with the argument's own bytes, and packs
// any other view (issue 18). tests/plugin_test.cpp calls them with megabytes.
#include <deferq/plugin.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

extern "C" std::uint32_t deferq_plugin_abi_version() {
    return deferq::plugin_abi_version;
}

extern "C" void deferq_register(deferq::Worker& worker) {
    worker.define("bytes_sum", [](std::span<const std::byte> bytes) {
        std::uint64_t sum = 0;
        for (auto b : bytes)
            sum += std::to_integer<std::uint64_t>(b);
        return sum;
    });
    worker.define("bytes_back", [](std::span<const std::byte> bytes) { return bytes; });
    worker.define("bytes_tail", [](std::span<const std::byte> bytes, std::uint64_t count) {
        return bytes.last(std::min<std::size_t>(count, bytes.size()));
    });
    worker.define("text_back", [](std::string_view text) { return text; });
}
