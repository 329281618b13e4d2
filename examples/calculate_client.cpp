// The seed example's client: sends three calculate jobs at once, adds the results as they arrive.
//   calculate_client [BROKER_CLIENT_ENDPOINT]
#include <deferq/client.hpp>

#include <iostream>

int main(int argc, char** argv) try {
    deferq::Client client{{.broker = argc > 1 ? argv[1] : "tcp://127.0.0.1:5555"}};

    std::vector<deferq::Deferred<double>> jobs;
    for (auto [a, b] : {std::pair{42, 47}, {52, 58}, {62, 69}}) {
        auto d = client.call_with<double>({.timeout = std::chrono::seconds{60}}, "calculate", a, b);
        d.add_callback(
            [a, b](double r) { std::cout << a << " + " << b << " = " << r << std::endl; });
        d.add_errback(
            [](const deferq::Failure& f) { std::cerr << "failed: " << f.what() << std::endl; });
        jobs.push_back(d.then([](double r) { return r; }));
    }
    try {
        auto all = deferq::gather_results(std::move(jobs)).get();
        std::cout << "total: " << all[0] + all[1] + all[2] << std::endl;
        return 0;
    } catch (const deferq::Failure& f) {
        std::cerr << "total: unavailable (" << f.what() << ")" << std::endl;
        return 1;
    }
} catch (const deferq::config_error& e) { // a malformed endpoint
    std::cerr << "calculate_client: " << e.what() << std::endl;
    return 2;
}
