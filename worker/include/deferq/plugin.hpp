#pragma once
/// Writing a deferq worker plugin: a shared library whose functions `deferq-worker --plugin
/// path/to/libfoo.so` offers, without rebuilding deferq (docs/plugins.md).
///
///     #include <deferq/plugin.hpp>
///
///     extern "C" std::uint32_t deferq_plugin_abi_version() { return deferq::plugin_abi_version; }
///
///     extern "C" void deferq_register(deferq::Worker& worker) {
///         worker.define("multiply", [](double a, double b) { return a * b; });
///     }
///
/// Build it with CMake against an installed deferq: `find_package(deferq REQUIRED)`,
/// `add_library(foo MODULE foo.cpp)`, `target_link_libraries(foo PRIVATE deferq::plugin)`.
/// `deferq::plugin` gives the headers only: the plugin's calls into deferq (Worker::define_bound,
/// the codec, the log) bind to deferq-worker's own copy when it loads the plugin.

#include "deferq/worker.hpp"

#include <cstdint>

namespace deferq {

/// The plugin ABI this header describes. deferq-worker loads only a plugin whose
/// deferq_plugin_abi_version() returns the same value. Raised whenever something a plugin compiles
/// against (Worker::define, bound_handler, JobContext, the codec) changes incompatibly.
/// 2: bound_handler returns a bound_result (handlers may return a Deferred or be a Task), and
/// JobContext can call the cluster.
inline constexpr std::uint32_t plugin_abi_version = 2;

} // namespace deferq

// The two entry points every plugin defines. Declared here with default visibility, so that they
// are exported even from a plugin built with -fvisibility=hidden (recommended: nothing else of the
// plugin need be visible).
extern "C" {

/// Returns deferq::plugin_abi_version as the plugin was compiled with it.
[[gnu::visibility("default")]] std::uint32_t deferq_plugin_abi_version();

/// Defines the plugin's functions on `worker` with Worker::define. Called once, on deferq-worker's
/// main thread, after the built-in functions are defined (a plugin may replace one) and before the
/// worker connects. May throw: deferq-worker then exits with the exception's message. The handlers
/// run later on the worker's pool threads, several at once when --concurrency > 1.
[[gnu::visibility("default")]] void deferq_register(deferq::Worker& worker);
}
