#pragma once
/// A child process the benchmark starts (broker, worker, anchor server): fork/exec with its output
/// in a log file, asked to stop (SIGTERM, then SIGKILL after a grace period) when the object goes
/// away, and killed by the kernel if the benchmark dies first (PR_SET_PDEATHSIG). Also the small
/// helpers around processes: ready files, resident memory.

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace deferq::bench {

/// One child process. Non-copyable; create and destroy it on the main thread (the death signal is
/// tied to the thread that forked).
class child_process {
public:
    /// Starts argv[0] (a path) with its stdout and stderr appended to `log_path`. Throws on fork
    /// failure.
    child_process(std::vector<std::string> argv, std::string log_path);
    ~child_process();
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;

    pid_t pid() const { return _pid; }
    const std::string& log_path() const { return _log_path; }
    /// True once the process has exited (reaps it).
    bool exited();
    /// Sends SIGTERM (the deferq programs then shut down cleanly); no effect once exited.
    void terminate();
    /// Waits until the process exits or `deadline` passes; true when it exited.
    bool wait_until(std::chrono::steady_clock::time_point deadline);
    /// SIGKILL and reap; no effect once exited.
    void kill();
    /// terminate(), wait_until(now + grace), kill().
    void stop(std::chrono::milliseconds grace = default_grace);

    static constexpr std::chrono::milliseconds default_grace{5000};

private:
    pid_t _pid = -1;
    bool _reaped = false;
    std::string _log_path;
};

/// Stops many processes at once: SIGTERM to all, one shared grace period, then SIGKILL to the rest.
void stop_all(const std::vector<child_process*>& processes,
              std::chrono::milliseconds grace = child_process::default_grace);

/// Writes `key=value` lines to `path` atomically (a temporary file, then rename).
void write_ready_file(const std::string& path, const std::map<std::string, std::string>& values);

/// Waits until `path` exists (or `child` exits, or `timeout` passes) and returns its `key=value`
/// lines. Throws std::runtime_error with the child's log when it does not appear.
std::map<std::string, std::string> wait_for_ready_file(const std::string& path,
                                                       child_process& child,
                                                       std::chrono::milliseconds timeout);

/// Resident memory of a process (VmRSS in /proc/PID/status), bytes; empty when unreadable.
std::optional<std::size_t> resident_bytes(pid_t pid);

/// CPU time a process has used so far, all threads: getrusage for this process, the threads'
/// schedstat for another one (nanosecond resolution, unlike /proc/PID/stat's clock ticks); 0 when
/// unreadable.
std::chrono::microseconds cpu_time(pid_t pid);

/// The whole content of a file ("" when unreadable).
std::string read_file(const std::string& path);

/// The path of the running executable (/proc/self/exe).
std::string self_path();

} // namespace deferq::bench
