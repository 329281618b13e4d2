// A plugin whose function records each execution: `counted(key, ms)` appends "key\n" to the file
// named by DEFERQ_EXEC_LOG (one O_APPEND write, so several workers may share the file), sleeps
// `ms` milliseconds and returns `key`. Tests count the lines per key: a job that ran twice shows
// twice (issue 17: across broker restarts and failover, a job runs again only when its worker
// died).
#include <deferq/plugin.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>

extern "C" std::uint32_t deferq_plugin_abi_version() {
    return deferq::plugin_abi_version;
}

extern "C" void deferq_register(deferq::Worker& worker) {
    const char* path = std::getenv("DEFERQ_EXEC_LOG");
    if (!path || !*path) throw std::runtime_error("counted_jobs: DEFERQ_EXEC_LOG is not set");
    std::string file = path;
    worker.define("counted", [file](std::string key, double ms) {
        int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0) throw std::runtime_error("counted: cannot open " + file);
        auto line = key + "\n";
        auto written = ::write(fd, line.data(), line.size());
        ::close(fd);
        if (written != static_cast<ssize_t>(line.size()))
            throw std::runtime_error("counted: cannot write " + file);
        std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(ms));
        return key;
    });
}
