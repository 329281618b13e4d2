#include "plugin_loader.hpp"

#include "deferq/plugin.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <filesystem>

namespace deferq {
namespace {

using abi_version_function = std::uint32_t (*)();
using register_function = void (*)(Worker&);

std::string last_dl_error() {
    const char* text = ::dlerror();
    return text ? text : "unknown error";
}

} // namespace

std::vector<std::string> load_plugin(Worker& worker, const std::string& path) {
    auto fail = [&](const std::string& reason) {
        return plugin_error("plugin " + path + ": " + reason);
    };
    // dlopen searches the library path for a bare name; a plugin is a file the user named.
    std::string file = path.find('/') == std::string::npos ? "./" + path : path;
    std::error_code error;
    if (!std::filesystem::exists(file, error)) throw fail("no such file");
    if (std::filesystem::is_directory(file, error)) throw fail("is a directory");

    // RTLD_NOW: an unresolved symbol fails here, at start, not in the middle of a job. RTLD_LOCAL:
    // plugins do not see each other's symbols. Never closed: the worker runs the plugin's code.
    void* library = ::dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!library) throw fail("cannot load: " + last_dl_error());

    auto* abi_symbol = ::dlsym(library, "deferq_plugin_abi_version");
    if (!abi_symbol)
        throw fail("not a deferq plugin: no extern \"C\" deferq_plugin_abi_version() (see "
                   "deferq/plugin.hpp)");
    auto abi = reinterpret_cast<abi_version_function>(abi_symbol)();
    if (abi != plugin_abi_version)
        throw fail("built for plugin ABI " + std::to_string(abi) +
                   ", this deferq-worker loads ABI " + std::to_string(plugin_abi_version) +
                   ": rebuild it against this deferq");

    auto* register_symbol = ::dlsym(library, "deferq_register");
    if (!register_symbol)
        throw fail("no extern \"C\" deferq_register(deferq::Worker&) (see deferq/plugin.hpp)");

    auto before = worker.functions();
    try {
        reinterpret_cast<register_function>(register_symbol)(worker);
    } catch (const std::exception& e) {
        throw fail(std::string("registration failed: ") + e.what());
    } catch (...) {
        throw fail("registration failed: it threw something that is not a std::exception");
    }
    auto after = worker.functions();
    std::vector<std::string> added;
    for (auto& name : after)
        if (std::find(before.begin(), before.end(), name) == before.end()) added.push_back(name);
    return added;
}

} // namespace deferq
