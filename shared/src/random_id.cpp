#include "deferq/random_id.hpp"

#include <random>

namespace deferq {

std::uint64_t random_u64() {
    thread_local std::mt19937_64 generator{[] {
        std::random_device device;
        return (std::uint64_t{device()} << 32) ^ device();
    }()};
    return generator();
}

std::string random_routing_id(std::size_t size) {
    std::string id(size, '\0');
    for (std::size_t i = 0; i < size; i += 8) {
        auto value = random_u64();
        for (std::size_t j = i; j < size && j < i + 8; ++j, value >>= 8)
            id[j] = static_cast<char>(value & 0xff);
    }
    if (id[0] == '\0') id[0] = 1;
    return id;
}

} // namespace deferq
