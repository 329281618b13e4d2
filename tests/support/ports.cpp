#include "ports.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>

namespace deferq::test {

namespace {

constexpr int lowest_port = 20000; ///< below it lie many services' well-known ports
constexpr int enough_ports = 2000; ///< a range smaller than this is not used

/// The ports to choose from: below the kernel's ephemeral range if there is room, else above it.
std::pair<int, int> port_range() {
    int first = 32768, last = 60999;
    std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> first >> last;
    if (first - lowest_port >= enough_ports) return {lowest_port, first - 1};
    if (65535 - last >= enough_ports) return {last + 1, 65535};
    throw std::runtime_error("no room outside the ephemeral port range " + std::to_string(first) +
                             "-" + std::to_string(last) + " for test ports");
}

/// Whether a listening socket (with SO_REUSEADDR, as ZeroMQ binds) may take `port` now.
bool bindable(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    int on = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    ::close(fd);
    return ok;
}

/// Takes the lock file of `port`; its descriptor stays open (and the lock held) until this process
/// ends, when the kernel lets it go. -1 if another process holds it.
int claim(const std::string& folder, int port) {
    auto path = folder + "/" + std::to_string(port);
    // Read-only: flock needs no write access, so a file another user made serves too.
    int fd = ::open(path.c_str(), O_CREAT | O_RDONLY | O_CLOEXEC, 0666);
    if (fd < 0) return -1;
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

} // namespace

int free_port() {
    static std::mutex guard;
    static std::mt19937 random(static_cast<unsigned>(
        ::getpid() ^ std::chrono::steady_clock::now().time_since_epoch().count()));
    std::lock_guard lock(guard);
    auto [first, last] = port_range();
    std::string folder = "/tmp/deferq-test-ports";
    ::mkdir(folder.c_str(), 01777);
    ::chmod(folder.c_str(), 01777);
    std::uniform_int_distribution<int> pick(first, last);
    for (int attempt = 0; attempt < 1000; ++attempt) {
        int port = pick(random);
        int fd = claim(folder, port);
        if (fd < 0) continue;
        if (bindable(port)) return port; // fd stays open: the port is this process's
        ::close(fd);
    }
    throw std::runtime_error("no free port on 127.0.0.1 in " + std::to_string(first) + "-" +
                             std::to_string(last));
}

} // namespace deferq::test
