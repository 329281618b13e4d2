#pragma once
/// Loads worker plugins (docs/plugins.md, deferq/plugin.hpp) into deferq-worker.

#include "deferq/worker.hpp"

#include <stdexcept>
#include <string>
#include <vector>

namespace deferq {

/// A plugin that cannot be loaded. what() names the file and the reason.
class plugin_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Loads the shared library at `path` (a path without '/' means the current directory, never the
/// library search path), checks its ABI version and lets it define its functions on `worker`. The
/// library stays loaded for the rest of the process: its code runs the functions. Returns the names
/// the plugin added (a name it redefined is not among them). Throws plugin_error when the file is
/// missing or cannot be loaded (e.g. an undefined symbol), lacks an entry point, was built for
/// another plugin ABI, or its registration throws. Call on the thread that will call worker.run(),
/// before it.
std::vector<std::string> load_plugin(Worker& worker, const std::string& path);

} // namespace deferq
