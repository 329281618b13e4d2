#pragma once
/// A child process for integration tests: started with fork/exec, output to a log file, killed with
/// SIGKILL when the object goes away (and by the kernel if the test process dies first).

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace deferq::test {

/// True in the ASan+UBSan and TSan builds.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool sanitized = true;
#else
inline constexpr bool sanitized = false;
#endif

/// The heartbeat interval of a test that kills or restarts processes: `fast` in the normal build,
/// 1 s under the sanitizers. Sanitized processes on a loaded 2-core machine can stall for over a
/// second: at a few hundred ms a stalled peer is expired and its jobs run again (or a stalled
/// active broker is replaced, or an adoption window closes before a slow worker reports), which is
/// right, but breaks the exact counts ("every job ran once") these tests check.
constexpr std::chrono::milliseconds test_heartbeat(std::chrono::milliseconds fast) {
    return sanitized ? std::chrono::milliseconds{1000} : fast;
}

class process {
public:
    process(std::vector<std::string> argv, std::string log_path,
            std::vector<std::pair<std::string, std::string>> environment = {});
    ~process();
    process(const process&) = delete;
    process& operator=(const process&) = delete;

    pid_t pid() const { return _pid; }
    const std::string& log_path() const { return _log_path; }
    void signal(int number) const;
    /// True when the process has exited (reaps it).
    bool exited();
    /// Waits up to `timeout` for the process to exit; its exit code (128+signal when killed).
    std::optional<int> wait(std::chrono::milliseconds timeout);
    /// SIGKILL and reap.
    void kill();
    /// The log's content so far.
    std::string log() const;

private:
    pid_t _pid = -1;
    std::string _log_path;
    std::optional<int> _status;
};

/// Runs a command to completion (bounded by `timeout`, then SIGKILL); returns exit code and output.
struct run_result {
    int exit_code;
    std::string output;
};
run_result run(std::vector<std::string> argv, std::chrono::milliseconds timeout,
               std::vector<std::pair<std::string, std::string>> environment = {});

/// Polls `condition` every 20 ms until true or `timeout`; returns its last value.
template <typename F> bool eventually(F&& condition, std::chrono::milliseconds timeout) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (true) {
        if (condition()) return true;
        if (std::chrono::steady_clock::now() >= until) return false;
        struct timespec pause {
            0, 20'000'000
        };
        nanosleep(&pause, nullptr);
    }
}

std::string read_file(const std::string& path);

} // namespace deferq::test
