#include "child_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace deferq::bench {

child_process::child_process(std::vector<std::string> argv, std::string log_path)
    : _log_path(std::move(log_path)) {
    // Everything the child needs is prepared before fork: between fork and exec a multithreaded
    // program may only make async-signal-safe calls.
    std::vector<char*> args;
    for (auto& arg : argv)
        args.push_back(arg.data());
    args.push_back(nullptr);
    const char* log = _log_path.c_str();
    auto parent = ::getpid();
    _pid = ::fork();
    if (_pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
    if (_pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(127); // the parent died before prctl
        int fd = ::open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            ::dup2(fd, 1);
            ::dup2(fd, 2);
        }
        int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null >= 0) ::dup2(null, 0);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
}

child_process::~child_process() {
    stop();
}

bool child_process::exited() {
    if (_reaped || _pid <= 0) return true;
    int status = 0;
    if (::waitpid(_pid, &status, WNOHANG) == _pid) _reaped = true;
    return _reaped;
}

void child_process::terminate() {
    if (_pid > 0 && !exited()) ::kill(_pid, SIGTERM);
}

bool child_process::wait_until(std::chrono::steady_clock::time_point deadline) {
    while (!exited()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds{5});
    }
    return true;
}

void child_process::stop(std::chrono::milliseconds grace) {
    stop_all({this}, grace);
}

void stop_all(const std::vector<child_process*>& processes, std::chrono::milliseconds grace) {
    for (auto* process : processes)
        process->terminate();
    auto deadline = std::chrono::steady_clock::now() + grace;
    for (auto* process : processes)
        if (!process->wait_until(deadline)) process->kill();
}

void child_process::kill() {
    if (_pid <= 0 || _reaped) return;
    ::kill(_pid, SIGKILL);
    int status = 0;
    while (::waitpid(_pid, &status, 0) < 0 && errno == EINTR) {
    }
    _reaped = true;
}

void write_ready_file(const std::string& path, const std::map<std::string, std::string>& values) {
    auto temporary = path + ".tmp";
    {
        std::ofstream out(temporary);
        for (const auto& [key, value] : values)
            out << key << "=" << value << "\n";
        if (!out) throw std::runtime_error("cannot write " + temporary);
    }
    if (std::rename(temporary.c_str(), path.c_str()) != 0)
        throw std::system_error(errno, std::generic_category(), "rename " + temporary);
}

std::map<std::string, std::string> wait_for_ready_file(const std::string& path,
                                                       child_process& child,
                                                       std::chrono::milliseconds timeout) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (::access(path.c_str(), R_OK) != 0) {
        if (child.exited() || std::chrono::steady_clock::now() >= until)
            throw std::runtime_error("process " + std::to_string(child.pid()) +
                                     " did not become ready (" + path + "); its log:\n" +
                                     read_file(child.log_path()));
        std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
    std::map<std::string, std::string> values;
    std::istringstream lines(read_file(path));
    std::string line;
    while (std::getline(lines, line))
        if (auto at = line.find('='); at != std::string::npos)
            values[line.substr(0, at)] = line.substr(at + 1);
    return values;
}

std::optional<std::size_t> resident_bytes(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0)
            return std::stoull(line.substr(6)) * 1024; // "VmRSS: 1234 kB"
    return std::nullopt;
}

std::chrono::microseconds cpu_time(pid_t pid) {
    using std::chrono::microseconds;
    if (pid == ::getpid()) {
        // Includes threads that have exited (a Client's I/O thread), to the nanosecond.
        rusage usage{};
        ::getrusage(RUSAGE_SELF, &usage);
        auto us = [](const timeval& t) { return microseconds{t.tv_sec * 1'000'000LL + t.tv_usec}; };
        return us(usage.ru_utime) + us(usage.ru_stime);
    }
    // Another process: the sum of its live threads' time on CPU, in nanoseconds (schedstat's first
    // field). Its threads live as long as it does, so no time is lost to exited threads.
    std::error_code error;
    std::chrono::nanoseconds total{0};
    for (const auto& task :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", error)) {
        std::istringstream fields(read_file(task.path().string() + "/schedstat"));
        long long on_cpu = 0;
        if (fields >> on_cpu) total += std::chrono::nanoseconds{on_cpu};
    }
    return std::chrono::duration_cast<microseconds>(total);
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream out;
    out << in.rdbuf();
    return out.str();
}

std::string self_path() {
    char buffer[4096];
    auto length = ::readlink("/proc/self/exe", buffer, sizeof buffer - 1);
    if (length <= 0)
        throw std::system_error(errno, std::generic_category(), "readlink /proc/self/exe");
    return std::string(buffer, static_cast<std::size_t>(length));
}

} // namespace deferq::bench
