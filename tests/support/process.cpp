#include "process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace deferq::test {

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream out;
    out << in.rdbuf();
    return out.str();
}

process::process(std::vector<std::string> argv, std::string log_path,
                 std::vector<std::pair<std::string, std::string>> environment)
    : _log_path(std::move(log_path)) {
    auto parent = ::getpid();
    _pid = ::fork();
    if (_pid < 0) throw std::runtime_error("fork failed");
    if (_pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(127);
        int fd = ::open(_log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            ::dup2(fd, 1);
            ::dup2(fd, 2);
        }
        int null = ::open("/dev/null", O_RDONLY);
        if (null >= 0) ::dup2(null, 0);
        for (auto& [name, value] : environment)
            ::setenv(name.c_str(), value.c_str(), 1);
        std::vector<char*> args;
        for (auto& arg : argv)
            args.push_back(arg.data());
        args.push_back(nullptr);
        ::execvp(args[0], args.data()); // a bare name is looked up in PATH
        ::_exit(127);
    }
}

process::~process() {
    kill();
}

void process::signal(int number) const {
    if (_pid > 0 && !_status) ::kill(_pid, number);
}

bool process::exited() {
    if (_status) return true;
    int status = 0;
    if (::waitpid(_pid, &status, WNOHANG) == _pid) {
        _status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return true;
    }
    return false;
}

std::optional<int> process::wait(std::chrono::milliseconds timeout) {
    eventually([&] { return exited(); }, timeout);
    return _status;
}

void process::kill() {
    if (_pid <= 0 || _status) return;
    ::kill(_pid, SIGCONT); // a stopped process must wake to die
    ::kill(_pid, SIGKILL);
    int status = 0;
    ::waitpid(_pid, &status, 0);
    _status = 128 + SIGKILL;
}

std::string process::log() const {
    return read_file(_log_path);
}

run_result run(std::vector<std::string> argv, std::chrono::milliseconds timeout,
               std::vector<std::pair<std::string, std::string>> environment) {
    char path[] = "/tmp/deferq-run-XXXXXX";
    int fd = ::mkstemp(path);
    if (fd >= 0) ::close(fd);
    int code;
    {
        process child(std::move(argv), path, std::move(environment));
        auto status = child.wait(timeout);
        code = status ? *status : -1;
    }
    auto output = read_file(path);
    ::unlink(path);
    return {code, output};
}

} // namespace deferq::test
