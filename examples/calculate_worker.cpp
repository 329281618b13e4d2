// The seed example's worker: offers calculate(a, b), which takes a while and returns a + b.
//   calculate_worker [BROKER_WORKER_ENDPOINT] [DELAY_MS]
#include <deferq/worker.hpp>

#include <chrono>
#include <string>
#include <thread>

int main(int argc, char** argv) {
    std::string broker = argc > 1 ? argv[1] : "tcp://127.0.0.1:5556";
    std::chrono::milliseconds delay{argc > 2 ? std::stoi(argv[2]) : 1000};
    deferq::Worker worker{{.broker = broker, .concurrency = 1}};
    worker.define("calculate", [delay](double a, double b, const deferq::JobContext& context) {
        auto until = std::chrono::steady_clock::now() + delay;
        while (std::chrono::steady_clock::now() < until && !context.cancelled())
            std::this_thread::sleep_for(std::chrono::milliseconds{10});
        return a + b;
    });
    worker.run(); // until SIGTERM/SIGINT, then drains
}
