#include "report.hpp"

#include "load_result.hpp"

#include <cmath>
#include <cstdio>
#include <ostream>
#include <sstream>

namespace deferq::bench {
namespace {

/// printf into a std::string.
template <typename... Args> std::string format(const char* pattern, Args... args) {
    char buffer[128];
    std::snprintf(buffer, sizeof buffer, pattern, args...);
    return buffer;
}

/// 123456.7 → "123,457".
std::string grouped(double value) {
    if (std::isnan(value)) return "—";
    auto digits = std::to_string(static_cast<long long>(std::llround(value)));
    std::string out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

std::string microseconds(double value) {
    if (std::isnan(value)) return "—";
    return value < 100 ? format("%.1f", value) : grouped(value);
}

std::string ratio_text(const row& r, const figures& m) {
    switch (r.kind) {
    case row_kind::latency:
    case row_kind::throughput: {
        if (r.is_anchor) return "anchor";
        if (std::isnan(m.ratio_proxy)) return "—";
        auto basis = r.kind == row_kind::latency ? "p50" : "calls/s";
        if (std::isnan(m.ratio_plain))
            return format("%.2f× proxy, %.2f× raw (%s)", m.ratio_proxy, m.ratio_raw, basis);
        return format("%.2f× plain proxy, %.2f× proxy, %.2f× raw (%s)", m.ratio_plain,
                      m.ratio_proxy, m.ratio_raw, basis);
    }
    case row_kind::big_args:
        if (r.is_anchor) return "anchor";
        return std::isnan(m.ratio_proxy) ? "—" : format("%.2f× echo anchor (MB/s)", m.ratio_proxy);
    case row_kind::spread:
        return std::isnan(m.efficiency) ? "—" : format("efficiency %.3f", m.efficiency);
    case row_kind::memory:
        return "—";
    case row_kind::scaling:
        return std::isnan(m.ratio_base) ? "—" : format("%.2f× 1 worker, 1 client", m.ratio_base);
    case row_kind::scaling_work:
        return std::isnan(m.ratio_base) ? "—" : format("%.2f× 1 worker", m.ratio_base);
    case row_kind::sharing:
        return std::isnan(m.ratio_base) ? "—" : format("%.2f× its job time (p50)", m.ratio_base);
    case row_kind::slow_reader:
        return "—";
    }
    return "—";
}

std::string notes_text(const row& r, const figures& m) {
    std::string notes;
    auto add = [&](const std::string& text) { notes += (notes.empty() ? "" : "; ") + text; };
    if (r.kind == row_kind::spread && !std::isnan(m.makespan_s))
        add(format("makespan %.3f s (ideal %.3f s)", m.makespan_s, m.ideal_s));
    if (r.kind == row_kind::memory && !std::isnan(m.bytes_per_job))
        add(format("RSS +%.1f MiB: %.0f B/job = %.0f B payload + %.0f B",
                   m.rss_growth_bytes / (1024.0 * 1024.0), m.bytes_per_job, m.payload_bytes,
                   m.bytes_beyond_payload));
    if (r.kind == row_kind::slow_reader && !std::isnan(m.rss_growth_bytes))
        add(format("broker RSS +%.1f MiB at most, +%.1f MiB after the reader left",
                   m.rss_growth_bytes / (1024.0 * 1024.0), m.rss_left_bytes / (1024.0 * 1024.0)));
    if (r.kind == row_kind::big_args && !std::isnan(m.megabytes_per_second))
        add(format("%.0f MB/s (payload ÷ p50 round trip)", m.megabytes_per_second));
    if (r.kind == row_kind::memory && !std::isnan(m.client_bytes_per_call))
        add(format("client +%.0f B per pending call", m.client_bytes_per_call));
    if (!std::isnan(m.cpu_client_us)) {
        auto text = format("CPU µs/call: client %.1f", m.cpu_client_us);
        if (!r.hop_label.empty() && !std::isnan(m.cpu_hop_us))
            text += format(", %s %.1f", r.hop_label.c_str(), m.cpu_hop_us);
        if (!std::isnan(m.cpu_servers_us))
            text += format(", %s %.1f", r.servers_label.c_str(), m.cpu_servers_us);
        add(text);
    }
    if (r.target) {
        auto met = r.goal_met();
        add("goal " + r.target->text + ": " + (!met ? "n/a" : *met ? "met" : "missed"));
    }
    if (m.failures > 0) add(grouped(static_cast<double>(m.failures)) + " failed calls");
    if (!m.error.empty()) add("error: " + m.error);
    return notes;
}

std::string json_number(double value) {
    if (std::isnan(value) || std::isinf(value)) return "null";
    return format("%.6g", value);
}

std::string json_string(const std::string& text) {
    std::string out = "\"";
    for (unsigned char c : text) {
        if (c == '"' || c == '\\')
            out += {'\\', static_cast<char>(c)};
        else if (c < 0x20)
            out += format("\\u%04x", c);
        else
            out += static_cast<char>(c);
    }
    return out + "\"";
}

std::string json_figures(const figures& f) {
    std::ostringstream out;
    out << "{\"calls_per_second\": " << json_number(f.calls_per_second)
        << ", \"p50_us\": " << json_number(f.p50_us) << ", \"p99_us\": " << json_number(f.p99_us)
        << ", \"ratio_proxy\": " << json_number(f.ratio_proxy)
        << ", \"ratio_raw\": " << json_number(f.ratio_raw)
        << ", \"ratio_plain\": " << json_number(f.ratio_plain)
        << ", \"megabytes_per_second\": " << json_number(f.megabytes_per_second)
        << ", \"ratio_base\": " << json_number(f.ratio_base)
        << ", \"makespan_s\": " << json_number(f.makespan_s)
        << ", \"ideal_s\": " << json_number(f.ideal_s)
        << ", \"efficiency\": " << json_number(f.efficiency)
        << ", \"rss_growth_bytes\": " << json_number(f.rss_growth_bytes)
        << ", \"bytes_per_job\": " << json_number(f.bytes_per_job)
        << ", \"bytes_beyond_payload\": " << json_number(f.bytes_beyond_payload)
        << ", \"payload_bytes\": " << json_number(f.payload_bytes)
        << ", \"rss_left_bytes\": " << json_number(f.rss_left_bytes)
        << ", \"client_bytes_per_call\": " << json_number(f.client_bytes_per_call)
        << ", \"cpu_client_us\": " << json_number(f.cpu_client_us)
        << ", \"cpu_hop_us\": " << json_number(f.cpu_hop_us)
        << ", \"cpu_servers_us\": " << json_number(f.cpu_servers_us) << ", \"calls\": " << f.calls
        << ", \"failures\": " << f.failures
        << ", \"error\": " << (f.error.empty() ? "null" : json_string(f.error)) << "}";
    return out.str();
}

} // namespace

figures row::medians() const {
    figures out;
    auto take = [&](double figures::*field) {
        std::vector<double> values;
        for (const auto& run : runs)
            values.push_back(run.*field);
        out.*field = median(std::move(values));
    };
    for (auto field : {&figures::calls_per_second,
                       &figures::p50_us,
                       &figures::p99_us,
                       &figures::ratio_proxy,
                       &figures::ratio_raw,
                       &figures::ratio_plain,
                       &figures::megabytes_per_second,
                       &figures::ratio_base,
                       &figures::makespan_s,
                       &figures::ideal_s,
                       &figures::efficiency,
                       &figures::rss_growth_bytes,
                       &figures::bytes_per_job,
                       &figures::bytes_beyond_payload,
                       &figures::payload_bytes,
                       &figures::rss_left_bytes,
                       &figures::client_bytes_per_call,
                       &figures::cpu_client_us,
                       &figures::cpu_hop_us,
                       &figures::cpu_servers_us})
        take(field);
    std::vector<double> calls;
    for (const auto& run : runs) {
        calls.push_back(static_cast<double>(run.calls));
        out.failures += run.failures;
        if (out.error.empty()) out.error = run.error;
    }
    auto middle = median(std::move(calls));
    out.calls = std::isnan(middle) ? 0 : static_cast<std::uint64_t>(middle);
    return out;
}

std::optional<bool> row::goal_met() const {
    if (!target) return std::nullopt;
    auto value = medians().*(target->metric);
    if (std::isnan(value)) return std::nullopt;
    return target->at_most ? value <= target->limit : value >= target->limit;
}

void print_table(std::ostream& out, const std::vector<row>& rows, const run_context& context) {
    std::vector<std::vector<std::string>> cells{
        {"workload", "system", "calls/s", "p50 µs", "p99 µs", "ratio to anchor", "notes"}};
    for (const auto& r : rows) {
        auto m = r.medians();
        cells.push_back({r.workload, r.system, grouped(m.calls_per_second), microseconds(m.p50_us),
                         microseconds(m.p99_us), ratio_text(r, m), notes_text(r, m)});
    }
    // Column widths in characters as displayed (UTF-8 continuation bytes take no column).
    auto width = [](const std::string& text) {
        std::size_t n = 0;
        for (unsigned char c : text)
            n += (c & 0xC0) != 0x80;
        return n;
    };
    std::vector<std::size_t> widths(cells.front().size(), 0);
    for (const auto& line : cells)
        for (std::size_t i = 0; i < line.size(); ++i)
            widths[i] = std::max(widths[i], width(line[i]));
    out << "deferq-bench" << (context.quick ? " --quick" : "") << ": "
        << (context.repeats > 1 ? "medians of " + std::to_string(context.repeats) + " runs"
                                : "1 run")
        << ", " << context.cpus << " CPUs, load average " << context.load_average
        << " at the start\n\n";
    auto print_line = [&](const std::vector<std::string>& line) {
        out << "|";
        for (std::size_t i = 0; i < line.size(); ++i) {
            bool numeric = i >= 2 && i <= 4;
            auto pad = std::string(widths[i] - width(line[i]), ' ');
            out << " " << (numeric ? pad + line[i] : line[i] + pad) << " |";
        }
        out << "\n";
    };
    print_line(cells.front());
    out << "|";
    for (std::size_t i = 0; i < widths.size(); ++i)
        out << (i >= 2 && i <= 4 ? std::string(widths[i] + 1, '-') + ":|"
                                 : std::string(widths[i] + 2, '-') + "|");
    out << "\n";
    for (std::size_t i = 1; i < cells.size(); ++i)
        print_line(cells[i]);
}

void print_json(std::ostream& out, const std::vector<row>& rows, const run_context& context) {
    out << "{\"quick\": " << (context.quick ? "true" : "false")
        << ", \"repeats\": " << context.repeats << ", \"cpus\": " << context.cpus
        << ", \"load_average\": " << json_string(context.load_average) << ", \"rows\": [";
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const auto& r = rows[i];
        auto met = r.goal_met();
        out << (i ? ",\n  " : "\n  ") << "{\"workload\": " << json_string(r.workload)
            << ", \"system\": " << json_string(r.system)
            << ", \"anchor\": " << (r.is_anchor ? "true" : "false")
            << ", \"goal\": " << (r.target ? json_string(r.target->text) : "null")
            << ", \"goal_met\": " << (met ? (*met ? "true" : "false") : "null")
            << ", \"median\": " << json_figures(r.medians()) << ", \"runs\": [";
        for (std::size_t j = 0; j < r.runs.size(); ++j)
            out << (j ? ", " : "") << json_figures(r.runs[j]);
        out << "]}";
    }
    out << "\n]}\n";
}

} // namespace deferq::bench
