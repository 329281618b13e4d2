// A plugin without deferq_register: deferq-worker must refuse it at start.
#include <deferq/plugin.hpp>

extern "C" std::uint32_t deferq_plugin_abi_version() {
    return deferq::plugin_abi_version;
}
