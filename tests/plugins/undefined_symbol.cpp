// A plugin that uses a function defined nowhere: loading must fail at start (RTLD_NOW), not when a
// job first calls it.
#include <deferq/plugin.hpp>

int deferq_test_function_defined_nowhere(int value);

extern "C" std::uint32_t deferq_plugin_abi_version() {
    return deferq::plugin_abi_version;
}

extern "C" void deferq_register(deferq::Worker& worker) {
    worker.define("broken", [](int a) { return deferq_test_function_defined_nowhere(a); });
}
