#include "deferq/signals.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <stdexcept>

namespace deferq {
namespace {

// Process-wide by nature: a signal handler can reach nothing else.
int pipe_fds[2] = {-1, -1};
std::atomic<int> last_signal{0};
std::atomic<bool> installed{false};
struct sigaction previous_term {
}, previous_int{};

extern "C" void on_termination_signal(int number) {
    last_signal.store(number);
    char byte = static_cast<char>(number);
    [[maybe_unused]] auto written = ::write(pipe_fds[1], &byte, 1);
}

} // namespace

termination_signals::termination_signals() {
    if (installed.exchange(true))
        throw std::logic_error("termination_signals is already installed");
    if (::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        installed = false;
        throw std::runtime_error("pipe2 failed");
    }
    last_signal = 0;
    struct sigaction action {};
    action.sa_handler = on_termination_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    ::sigaction(SIGTERM, &action, &previous_term);
    ::sigaction(SIGINT, &action, &previous_int);
}

termination_signals::~termination_signals() {
    ::sigaction(SIGTERM, &previous_term, nullptr);
    ::sigaction(SIGINT, &previous_int, nullptr);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    pipe_fds[0] = pipe_fds[1] = -1;
    installed = false;
}

int termination_signals::fd() const {
    return pipe_fds[0];
}

std::optional<int> termination_signals::received() const {
    int number = last_signal.load();
    return number ? std::optional<int>(number) : std::nullopt;
}

std::optional<int> termination_signals::wait(std::chrono::milliseconds timeout) const {
    pollfd item{pipe_fds[0], POLLIN, 0};
    ::poll(&item, 1, static_cast<int>(timeout.count()));
    return received();
}

} // namespace deferq
