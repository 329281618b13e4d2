// The reference scenario as a C++20 coroutine: three calculate jobs start at once, the coroutine
// awaits each result, adds them up and co_returns the total.
//   coroutine_client [BROKER_CLIENT_ENDPOINT]
#include <deferq/client.hpp>

#include <iostream>

deferq::Task<double> total(deferq::Client& client) {
    std::vector<deferq::Deferred<double>> jobs;
    for (auto [a, b] : {std::pair{42, 47}, {52, 58}, {62, 69}})
        jobs.push_back(
            client.call_with<double>({.timeout = std::chrono::seconds{60}}, "calculate", a, b));
    double sum = 0;
    for (auto& job : jobs) {
        double result = co_await job; // a Failure arrives here as an exception
        std::cout << "got " << result << std::endl;
        sum += result;
    }
    co_return sum;
}

int main(int argc, char** argv) {
    deferq::Client client{{.broker = argc > 1 ? argv[1] : "tcp://127.0.0.1:5555"}};
    try {
        double sum = total(client).deferred().get();
        std::cout << "total: " << sum << std::endl;
        return 0;
    } catch (const deferq::Failure& failure) {
        std::cerr << "failed: " << failure.what() << std::endl;
        return 1;
    }
}
