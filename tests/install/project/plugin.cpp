// A worker plugin built outside deferq, against the installed tree (deferq::plugin), loaded by the
// installed deferq-worker with --plugin.
#include <deferq/plugin.hpp>

#include <cstdint>

extern "C" std::uint32_t deferq_plugin_abi_version() {
    return deferq::plugin_abi_version;
}

extern "C" void deferq_register(deferq::Worker& worker) {
    worker.define("outside_triple", [](std::int64_t x) { return 3 * x; });
}
