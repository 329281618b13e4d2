// A plugin built for another plugin ABI: deferq-worker must refuse it at start.
#include <deferq/plugin.hpp>

extern "C" std::uint32_t deferq_plugin_abi_version() {
    return deferq::plugin_abi_version + 1000;
}

extern "C" void deferq_register(deferq::Worker& worker) {
    worker.define("never_offered", [](double a) { return a; });
}
