#include "cli_map.hpp"

#include "cli_json.hpp"
#include "msgpack_json.hpp"
#include "result_text.hpp"

#include "deferq/signals.hpp"

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>

namespace deferq::cli {
namespace {

using clock_type = std::chrono::steady_clock;

/// Where the inputs come from: a range or JSON lines. next() gives the arguments of the next call
/// (or a reason it cannot be made), empty at the end.
class input_source {
public:
    struct item {
        std::optional<json> arguments; ///< a JSON array
        std::string problem;           ///< why there are none (bad input line)
    };

    static input_source from_range(int_range range, json fixed, std::optional<std::size_t> slot) {
        input_source source;
        source._range = range;
        source._next_value = range.first;
        source._fixed = std::move(fixed);
        source._slot = slot;
        if (range.last_exclusive > range.first)
            source._total = static_cast<std::uint64_t>(
                (range.last_exclusive - range.first + range.step - 1) / range.step);
        else
            source._total = 0;
        return source;
    }

    static input_source from_lines(const std::string& path) {
        input_source source;
        if (path == "-") {
            source._stream = &std::cin;
        } else {
            auto file = std::make_shared<std::ifstream>(path);
            if (!*file) throw std::runtime_error("cannot read " + path);
            // A regular file is counted first, so that the progress has a total and an ETA.
            std::ifstream counter(path);
            std::string line;
            std::uint64_t records = 0;
            while (std::getline(counter, line))
                if (line.find_first_not_of(" \t\r") != std::string::npos) ++records;
            source._total = records;
            source._file = file;
            source._stream = file.get();
        }
        return source;
    }

    std::optional<item> next() {
        if (_range) {
            if (_next_value >= _range->last_exclusive) return std::nullopt;
            json arguments = _fixed;
            if (_slot)
                arguments[*_slot] = _next_value;
            else
                arguments.insert(arguments.begin(), _next_value);
            _next_value += _range->step;
            return item{std::move(arguments), {}};
        }
        std::string line;
        while (std::getline(*_stream, line)) {
            ++_line_number;
            if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
            try {
                auto value = parse_json(line);
                if (!value.is_array())
                    return item{std::nullopt, fmt::format("line {}: not a JSON array of arguments",
                                                          _line_number)};
                return item{std::move(value), {}};
            } catch (const json::parse_error& e) {
                return item{std::nullopt,
                            fmt::format("line {}: not JSON: {}", _line_number, e.what())};
            } catch (const msgpack_json::mapping_error& e) {
                return item{std::nullopt, fmt::format("line {}: {}", _line_number, e.what())};
            }
        }
        return std::nullopt;
    }

    std::optional<std::uint64_t> total() const { return _total; }

private:
    std::optional<int_range> _range;
    std::int64_t _next_value = 0;
    json _fixed;
    std::optional<std::size_t> _slot;
    std::shared_ptr<std::ifstream> _file;
    std::istream* _stream = nullptr;
    std::uint64_t _line_number = 0;
    std::optional<std::uint64_t> _total;
};

/// One finished call, waiting to be written in input order.
struct outcome {
    bool ok = false;
    std::string result; ///< msgpack bytes when ok
    std::string code, type, message, worker;
};

/// Shared with the calls' callbacks (which run on the client's I/O thread, and may run after
/// run_map returned, when the Client fails what is still pending): kept alive by them.
struct map_state {
    std::mutex mutex;
    std::condition_variable changed;
    std::map<std::uint64_t, outcome> finished; ///< not written yet
    std::size_t in_flight = 0;
};

/// The JSON line of one finished call. A result with no JSON form turns `done` into a bad_result
/// failure (counted as such), as `deferq call` reports it.
std::string outcome_line(std::uint64_t index, outcome& done) {
    json line = json::object();
    line["index"] = index;
    if (done.ok) {
        try {
            line["result"] = result_json(done.result);
            return dump(line) + "\n";
        } catch (const Failure& failure) {
            done = outcome{false, {}, std::string(to_string(failure.code())), {}, failure.message(),
                           {}};
        }
    }
    json error = {{"code", done.code}, {"message", done.message}};
    if (!done.type.empty()) error["type"] = done.type;
    if (!done.worker.empty()) error["worker"] = done.worker;
    line["error"] = std::move(error);
    return dump(line) + "\n";
}

/// Progress on stderr: a bar redrawn in place on a terminal, a plain line every 5 s otherwise.
class progress_display {
public:
    progress_display(bool enabled, std::optional<std::uint64_t> total)
        : _enabled(enabled), _terminal(::isatty(STDERR_FILENO) == 1), _total(total),
          _started(clock_type::now()), _last(_terminal ? clock_type::time_point{} : _started) {}

    /// Redraws (at most every 100 ms on a terminal, every 5 s otherwise); `force`: the final
    /// state, drawn on a terminal only (elsewhere the summary says it).
    void update(std::uint64_t done, std::uint64_t failed, bool force = false) {
        if (!_enabled || (force && !_terminal)) return;
        auto now = clock_type::now();
        auto period = _terminal ? std::chrono::milliseconds{100} : std::chrono::milliseconds{5000};
        if (!force && now - _last < period) return;
        _last = now;
        double seconds = std::chrono::duration<double>(now - _started).count();
        double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;
        std::string eta;
        if (_total && rate > 0 && *_total >= done)
            eta = fmt::format("  ETA {}", clock_text(static_cast<double>(*_total - done) / rate));
        std::string failures = failed ? fmt::format("  {} failed", failed) : "";
        if (!_terminal) {
            std::string of = _total ? fmt::format("/{} ({:.0f}%)", *_total, percent(done)) : "";
            std::cerr << fmt::format("map: {}{} done, {:.1f}/s{}{}\n", done, of, rate, eta,
                                     failures);
            return;
        }
        std::string counts = _total ? fmt::format("{}/{}", done, *_total) : fmt::format("{}", done);
        std::string tail = fmt::format(" {}  {:.1f}/s{}{} ", counts, rate, eta, failures);
        std::string bar;
        if (_total) {
            int width = std::clamp(terminal_width() - static_cast<int>(tail.size()) - 8, 10, 50);
            int filled = static_cast<int>(percent(done) / 100.0 * width);
            bar = "[" + std::string(static_cast<std::size_t>(filled), '#') +
                  std::string(static_cast<std::size_t>(width - filled), '.') + "] " +
                  fmt::format("{:3.0f}%", percent(done));
        }
        std::cerr << "\r" << bar << tail << "\033[K" << std::flush;
        _drawn = true;
    }

    /// Ends the bar's line (before the summary).
    void finish() {
        if (_drawn) std::cerr << "\n";
        _drawn = false;
    }

    double elapsed_seconds() const {
        return std::chrono::duration<double>(clock_type::now() - _started).count();
    }

private:
    double percent(std::uint64_t done) const {
        return _total && *_total ? 100.0 * static_cast<double>(done) / static_cast<double>(*_total)
                                 : 100.0;
    }
    static std::string clock_text(double seconds) {
        auto s = static_cast<std::int64_t>(seconds + 0.5);
        if (s < 60) return fmt::format("{} s", s);
        if (s < 3600) return fmt::format("{}:{:02}", s / 60, s % 60);
        return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
    }
    static int terminal_width() {
        winsize size{};
        if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
        return 80;
    }

    bool _enabled, _terminal;
    std::optional<std::uint64_t> _total;
    clock_type::time_point _started, _last{};
    bool _drawn = false;
};

} // namespace

std::optional<int_range> parse_range(std::string_view text) {
    std::int64_t values[3] = {0, 0, 1};
    int count = 0;
    std::size_t at = 0;
    while (count < 3) {
        auto colon = text.find(':', at);
        auto part = text.substr(at, colon == std::string_view::npos ? colon : colon - at);
        auto [end, error] = std::from_chars(part.data(), part.data() + part.size(), values[count]);
        if (part.empty() || error != std::errc() || end != part.data() + part.size())
            return std::nullopt;
        ++count;
        if (colon == std::string_view::npos) break;
        at = colon + 1;
    }
    if (count < 2 || values[2] <= 0 || (count == 3 && text.find(':', at) != std::string_view::npos))
        return std::nullopt;
    return int_range{values[0], values[1], values[2]};
}

int run_map(Client& client, const map_options& options) {
    if (options.input.empty() == options.range.empty()) {
        std::cerr << "deferq map: give either --input FILE or --range A:B\n";
        return 2;
    }
    if (!options.input.empty() && !options.words.empty()) {
        std::cerr << "deferq map: fixed arguments go with --range only (with --input, each line "
                     "holds all the arguments)\n";
        return 2;
    }
    std::optional<input_source> source;
    try {
        if (!options.range.empty()) {
            auto range = parse_range(options.range);
            if (!range) {
                std::cerr << "deferq map: --range takes A:B or A:B:STEP (integers, STEP > 0), not '"
                          << options.range << "'\n";
                return 2;
            }
            json fixed = json::array();
            std::optional<std::size_t> slot;
            for (const auto& word : options.words) {
                if (word == "{}" && !slot) {
                    slot = fixed.size();
                    fixed.push_back(nullptr);
                    continue;
                }
                fixed.push_back(options.words_as_json ? parse_json(word) : parse_word(word));
            }
            source = input_source::from_range(*range, std::move(fixed), slot);
        } else {
            source = input_source::from_lines(options.input);
        }
    } catch (const std::exception& e) {
        std::cerr << "deferq map: " << e.what() << "\n";
        return 2;
    }

    std::FILE* out = stdout;
    if (options.output != "-") {
        out = std::fopen(options.output.c_str(), "w");
        if (!out) {
            std::cerr << "deferq map: cannot write " << options.output << "\n";
            return 2;
        }
    }

    auto state = std::make_shared<map_state>();
    auto limit = std::max<std::size_t>(1, options.in_flight);
    progress_display progress(!options.quiet, source->total());
    std::map<std::string, std::uint64_t> failures_by_code;
    std::uint64_t issued = 0, written = 0, failed = 0;
    termination_signals signals;
    bool interrupted = false, inputs_left = true;

    // Writes the finished outcomes that are next in input order.
    auto write_ready = [&] {
        std::vector<std::pair<std::uint64_t, outcome>> ready;
        {
            std::lock_guard lock(state->mutex);
            for (auto it = state->finished.begin();
                 it != state->finished.end() && it->first == written + ready.size();)
                ready.emplace_back(it->first, std::move(it->second)),
                    it = state->finished.erase(it);
        }
        for (auto& [index, done] : ready) {
            auto line = outcome_line(index, done);
            if (!done.ok) {
                ++failed;
                ++failures_by_code[done.code];
            }
            std::fwrite(line.data(), 1, line.size(), out);
        }
        written += ready.size();
        if (!ready.empty()) std::fflush(out);
    };

    while (!interrupted) {
        {
            std::unique_lock lock(state->mutex);
            state->changed.wait_for(lock, std::chrono::milliseconds{100}, [&] {
                return (inputs_left && state->in_flight < limit) ||
                       (!state->finished.empty() && state->finished.begin()->first == written);
            });
        }
        write_ready();
        progress.update(written, failed);
        if (signals.received()) {
            interrupted = true;
            break;
        }
        if (!inputs_left) {
            std::lock_guard lock(state->mutex);
            if (state->in_flight == 0 && state->finished.empty()) break;
            continue;
        }
        // Issue calls while there is room.
        while (inputs_left) {
            {
                std::lock_guard lock(state->mutex);
                if (state->in_flight >= limit) break;
            }
            auto item = source->next();
            if (!item) {
                inputs_left = false;
                break;
            }
            auto index = issued++;
            if (!item->arguments) {
                std::lock_guard lock(state->mutex);
                state->finished[index] = outcome{false, {}, "bad_input", "", item->problem, ""};
                continue;
            }
            zmq::message_t arguments;
            try {
                arguments = to_arguments(*item->arguments);
            } catch (const msgpack_json::mapping_error& e) {
                std::lock_guard lock(state->mutex);
                state->finished[index] = outcome{false, {}, "bad_input", "", e.what(), ""};
                continue;
            }
            {
                std::lock_guard lock(state->mutex);
                ++state->in_flight;
            }
            client
                .call_encoded<msgpack_value>({.timeout = options.timeout}, options.function,
                                             std::move(arguments))
                .add_callbacks(
                    [state, index](msgpack_value& value) {
                        std::lock_guard lock(state->mutex);
                        state->finished[index] =
                            outcome{true, std::move(value.bytes), {}, {}, {}, {}};
                        --state->in_flight;
                        state->changed.notify_all();
                    },
                    [state, index](const Failure& failure) {
                        std::lock_guard lock(state->mutex);
                        state->finished[index] = outcome{false,
                                                         {},
                                                         std::string(to_string(failure.code())),
                                                         failure.type(),
                                                         failure.message(),
                                                         failure.worker()};
                        --state->in_flight;
                        state->changed.notify_all();
                    });
        }
    }
    write_ready();
    progress.update(written, failed, true);
    progress.finish();
    if (out != stdout) std::fclose(out);

    double seconds = progress.elapsed_seconds();
    std::string summary =
        fmt::format("map: {} call(s) in {:.1f} s ({:.1f}/s): {} ok, {} failed", written, seconds,
                    seconds > 0 ? written / seconds : 0.0, written - failed, failed);
    if (!failures_by_code.empty()) {
        std::string list;
        for (const auto& [code, count] : failures_by_code)
            list += (list.empty() ? "" : ", ") + fmt::format("{} {}", code, count);
        summary += " (" + list + ")";
    }
    if (interrupted) summary += fmt::format("; interrupted with {} not written", issued - written);
    std::cerr << summary << "\n";
    if (interrupted) return 130;
    return failed ? 1 : 0;
}

} // namespace deferq::cli
