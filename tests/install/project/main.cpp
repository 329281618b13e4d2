// Uses the installed deferq: runs a worker of its own in-process, calls it and the broker's other
// workers through a client. Prints "square=49 add=5" on success.
#include <deferq/client.hpp>
#include <deferq/worker.hpp>

#include <iostream>
#include <thread>

int main(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: outside CLIENT_ENDPOINT WORKER_ENDPOINT\n";
        return 2;
    }
    deferq::Worker worker(
        {.broker = argv[2], .concurrency = 1, .name = "outside", .handle_signals = false});
    worker.define("outside_square", [](std::int64_t x) { return x * x; });
    std::thread serving([&] { worker.run(); });
    int status = 0;
    try {
        deferq::Client client({.broker = argv[1]});
        auto square =
            client
                .call_with<std::int64_t>({.timeout = std::chrono::seconds{30}}, "outside_square", 7)
                .get();
        auto sum =
            client.call_with<double>({.timeout = std::chrono::seconds{30}}, "add", 2, 3).get();
        std::cout << "square=" << square << " add=" << sum << std::endl;
    } catch (const std::exception& e) {
        std::cerr << "outside: " << e.what() << "\n";
        status = 1;
    }
    worker.stop();
    serving.join();
    return status;
}
