// A plugin whose registration throws: deferq-worker must exit at start with the exception's
// message.
#include <deferq/plugin.hpp>

#include <stdexcept>

extern "C" std::uint32_t deferq_plugin_abi_version() {
    return deferq::plugin_abi_version;
}

extern "C" void deferq_register(deferq::Worker& worker) {
    worker.define("half_defined", [](double a) { return a; });
    throw std::runtime_error("database unreachable");
}
