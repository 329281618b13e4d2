// Built with nothing but `pkg-config --cflags --libs deferq`.
#include <deferq/client.hpp>
#include <iostream>
int main(int, char** argv) {
    deferq::Client client({.broker = argv[1]});
    std::cout
        << "pkgconfig add="
        << client.call_with<double>({.timeout = std::chrono::seconds{30}}, "add", 20, 22).get()
        << std::endl;
}
