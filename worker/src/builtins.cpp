#include "builtins.hpp"

#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace deferq {
namespace {

/// The largest bytes(n): far beyond any message size limit a broker would be given.
constexpr std::int64_t max_bytes_result = std::int64_t{1} << 30;

/// Sleeps in small steps so that a cancelled job stops early. Returns false when cancelled.
bool interruptible_sleep(std::chrono::milliseconds total, const JobContext& context,
                         bool report_progress) {
    using namespace std::chrono;
    auto start = steady_clock::now();
    auto end = start + total;
    while (true) {
        auto now = steady_clock::now();
        if (now >= end) return true;
        if (context.cancelled()) return false;
        if (report_progress && total.count() > 0)
            context.progress(duration<double>(now - start) / duration<double>(total));
        std::this_thread::sleep_for(std::min<steady_clock::duration>(end - now, milliseconds{10}));
    }
}

} // namespace

void define_builtins(Worker& worker, const builtin_options& options) {
    define_call_builtins(worker);
    auto delay = options.calculate_delay;
    worker.define("calculate", [delay](double a, double b, const JobContext& context) {
        if (!interruptible_sleep(delay, context, true))
            throw std::runtime_error("calculate cancelled");
        return a + b;
    });
    worker.define("add", [](double a, double b) { return a + b; });
    worker.define("echo", [](msgpack::object value) { return value; });
    // n bytes of binary (msgpack bin), 0, 1, …, 255, 0, …: for size and bandwidth tests. A
    // result over the broker's message size limit is answered with too_large, like any other.
    worker.define("bytes", [](std::int64_t n) {
        if (n < 0 || n > max_bytes_result)
            throw bad_arguments_error("bytes(int64 n): n must be 0 to " +
                                      std::to_string(max_bytes_result) + ", got " +
                                      std::to_string(n));
        std::vector<char> out(static_cast<std::size_t>(n));
        for (std::size_t i = 0; i < out.size(); ++i)
            out[i] = static_cast<char>(i & 0xff);
        return out;
    });
    worker.define("sleep_ms", [](std::int64_t milliseconds, const JobContext& context) {
        if (milliseconds < 0) throw std::invalid_argument("sleep_ms: milliseconds must be >= 0");
        if (!interruptible_sleep(std::chrono::milliseconds{milliseconds}, context, true))
            throw std::runtime_error("sleep_ms cancelled");
        return milliseconds;
    });
    worker.define("time_left_ms", [](const JobContext& context) -> std::int64_t {
        if (!context.deadline()) return -1;
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   *context.deadline() - std::chrono::steady_clock::now())
            .count();
    });
    worker.define("fib", [](std::int64_t n, const JobContext& context) {
        if (n < 0 || n > 92) throw std::invalid_argument("fib: n must be 0 to 92 (int64 range)");
        std::uint64_t a = 0, b = 1;
        for (std::int64_t i = 0; i < n; ++i) {
            if ((i & 0xffff) == 0 && context.cancelled()) throw std::runtime_error("fib cancelled");
            auto next = a + b;
            a = b;
            b = next;
        }
        return static_cast<std::int64_t>(a);
    });
    worker.define("count_primes", [](std::int64_t lo, std::int64_t hi, const JobContext& context) {
        if (lo < 0 || hi < lo) throw std::invalid_argument("count_primes: need 0 <= lo <= hi");
        if (hi - lo > 2'000'000'000) throw std::invalid_argument("count_primes: range too large");
        std::int64_t count = 0;
        for (std::int64_t n = std::max<std::int64_t>(lo, 2); n < hi; ++n) {
            if ((n & 0x3fff) == 0) {
                if (context.cancelled()) throw std::runtime_error("count_primes cancelled");
                context.progress(static_cast<double>(n - lo) / static_cast<double>(hi - lo));
            }
            bool prime = true;
            for (std::int64_t d = 2; d * d <= n; ++d)
                if (n % d == 0) {
                    prime = false;
                    break;
                }
            count += prime;
        }
        return count;
    });
    worker.define("monte_carlo_pi",
                  [](std::int64_t samples, std::uint64_t seed, const JobContext& context) {
                      if (samples <= 0)
                          throw std::invalid_argument("monte_carlo_pi: samples must be > 0");
                      std::mt19937_64 generator(seed);
                      std::uniform_real_distribution<double> unit(0.0, 1.0);
                      std::int64_t inside = 0;
                      for (std::int64_t i = 0; i < samples; ++i) {
                          if ((i & 0xfffff) == 0 && context.cancelled())
                              throw std::runtime_error("monte_carlo_pi cancelled");
                          double x = unit(generator), y = unit(generator);
                          inside += x * x + y * y <= 1.0;
                      }
                      return 4.0 * static_cast<double>(inside) / static_cast<double>(samples);
                  });
}

} // namespace deferq
