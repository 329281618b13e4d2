#include "cli_status.hpp"

#include "cli_json.hpp"
#include "msgpack_json.hpp"

#include "deferq/signals.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

namespace deferq::cli {
namespace {

std::uint64_t number(const json& object, const char* key) {
    auto it = object.find(key);
    return it != object.end() && it->is_number() ? it->get<std::uint64_t>() : 0;
}

double real(const json& object, const char* key) {
    auto it = object.find(key);
    return it != object.end() && it->is_number() ? it->get<double>() : 0.0;
}

std::string text(const json& object, const char* key) {
    auto it = object.find(key);
    return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

/// 850 ms, 12.5 s, 3 min: short and readable.
std::string duration(double ms) {
    if (ms <= 0) return "0";
    if (ms < 10) return fmt::format("{:.1f} ms", ms);
    if (ms < 1000) return fmt::format("{:.0f} ms", ms);
    if (ms < 60'000) return fmt::format("{:.1f} s", ms / 1000);
    if (ms < 3'600'000) return fmt::format("{:.1f} min", ms / 60'000);
    return fmt::format("{:.1f} h", ms / 3'600'000);
}

std::string joined(const json& names, std::size_t limit = 60) {
    std::string out;
    for (const auto& name : names) {
        if (!name.is_string()) continue;
        out += (out.empty() ? "" : ",") + name.get<std::string>();
    }
    if (out.size() > limit) out = out.substr(0, limit - 3) + "...";
    return out;
}

std::string render_tables(const json& status) {
    const auto& counters = status["counters"];
    const json rates = status.value("rates", json::object());
    std::string out;
    out += fmt::format(
        "broker {:016x}  up {}  workers {}  clients {}  queued {}  in flight {}  calls/s {:.1f} "
        "(last {:.0f} s)\n",
        number(status, "instance"), duration(real(status, "uptime_ms")),
        number(counters, "live_workers"), number(counters, "live_clients"),
        number(counters, "queued_jobs"), number(counters, "running_jobs"),
        real(rates, "replies_per_s") + real(rates, "errors_per_s"), real(rates, "window_s"));
    // A broker of a standby pair (docs/protocol.md §8); one alone says nothing more.
    if (const json standby = status.value("standby", json::object());
        !text(standby, "role").empty() && text(standby, "role") != "alone")
        out += fmt::format("standby pair: the {}, {}\n", text(standby, "role"),
                           text(standby, "state"));
    out += fmt::format(
        "requests {}  replies {}  errors {}  timeouts {}  overloaded {}  requeued {}  "
        "workers lost {}  late replies {}  malformed {}  peers disconnected {}  unauthorized "
        "{}\n\n",
        number(counters, "requests"), number(counters, "replies"), number(counters, "errors"),
        number(counters, "timeouts"), number(counters, "overloaded"), number(counters, "requeued"),
        number(counters, "workers_lost"), number(counters, "late_replies"),
        number(counters, "malformed_messages"), number(counters, "peers_disconnected"),
        number(counters, "unauthorized"));

    out += fmt::format("{:<20} {:<16} {:<15} {:>9} {:>5} {:>8} {:>6} {:>8}  {}\n", "WORKER", "ID",
                       "HOST", "BUSY", "HELD", "DONE", "FAILED", "SEEN", "FUNCTIONS");
    for (const auto& worker : status["workers"]) {
        auto busy = fmt::format("{}/{}", number(worker, "busy"), number(worker, "slots"));
        out += fmt::format(
            "{:<20} {:<16} {:<15} {:>9} {:>5} {:>8} {:>6} {:>8}  {}{}\n", text(worker, "name"),
            text(worker, "id"), text(worker, "host").empty() ? "-" : text(worker, "host"), busy,
            number(worker, "held"), number(worker, "jobs_done"), number(worker, "failures"),
            duration(real(worker, "last_seen_ms")), joined(worker["functions"]),
            worker.value("draining", false) ? "  (draining)" : "");
    }
    if (status["workers"].empty()) out += "(no worker)\n";

    out += fmt::format("\n{:<20} {:>7} {:>8} {:>9} {:>7} {:>8} {:>7}  {:>19}  {:>19}\n", "FUNCTION",
                       "QUEUED", "OLDEST", "IN FLIGHT", "WORKERS", "DONE", "FAILED",
                       "SERVICE p50/p99", "WAIT p50/p99");
    std::string breakdowns;
    for (const auto& function : status["functions"]) {
        auto queued = number(function, "queued");
        out += fmt::format("{:<20} {:>7} {:>8} {:>9} {:>7} {:>8} {:>7}  {:>19}  {:>19}\n",
                           text(function, "name"), queued,
                           queued ? duration(real(function, "oldest_queued_ms")) : "-",
                           number(function, "in_flight"), number(function, "workers"),
                           number(function, "done"), number(function, "failed"),
                           duration(real(function, "service_p50_ms")) + " / " +
                               duration(real(function, "service_p99_ms")),
                           duration(real(function, "wait_p50_ms")) + " / " +
                               duration(real(function, "wait_p99_ms")));
        auto codes = function.value("failed_by_code", json::object());
        if (!codes.empty()) {
            std::string list;
            for (const auto& [code, count] : codes.items())
                list += (list.empty() ? "" : ", ") + code + " " + dump(count);
            breakdowns += fmt::format("  {} failed: {}\n", text(function, "name"), list);
        }
    }
    if (status["functions"].empty()) out += "(no function)\n";
    if (!breakdowns.empty()) out += "\n" + breakdowns;

    const json budgets = status.value("budgets", json::object());
    out +=
        fmt::format("\n{:<50} {:>7} {:>12} {:>8} {:>12}   budget {} MiB each, {} MiB in all ({} "
                    "MiB queued, {} MiB unread)\n",
                    "TENANT", "QUEUED", "BYTES", "RUNNING", "UNREAD",
                    number(budgets, "tenant_budget") >> 20, number(budgets, "broker_budget") >> 20,
                    number(budgets, "queued_bytes") >> 20, number(budgets, "held_bytes") >> 20);
    for (const auto& tenant : status.value("tenants", json::array()))
        out += fmt::format("{:<50} {:>7} {:>12} {:>8} {:>12}{}\n", text(tenant, "id"),
                           number(tenant, "queued"), number(tenant, "queued_bytes"),
                           number(tenant, "running"), number(tenant, "reply_bytes"),
                           tenant.value("paused", false) ? "  (paused: reads too slowly)" : "");
    return out;
}

std::optional<json> fetch(Client& client, std::chrono::milliseconds timeout) {
    try {
        auto reply =
            client
                .call_with<msgpack_value>(
                    {.timeout = timeout.count() ? timeout : std::chrono::seconds{10}}, "mmi.status")
                .get();
        // Names come from the network: invalid UTF-8 in them is replaced (as /status.json does).
        return msgpack_json::to_json(reply.bytes, msgpack_json::bad_utf8::replace);
    } catch (const Failure& failure) {
        std::cerr << "deferq: " << failure.what() << "\n";
        return std::nullopt;
    }
}

} // namespace

int run_status(Client& client, const status_options& options) {
    if (options.watch_seconds <= 0) {
        auto status = fetch(client, options.timeout);
        if (!status) return 1;
        std::cout << (options.as_json ? dump(*status, 2) + "\n" : render_tables(*status));
        return 0;
    }
    // --watch: until SIGINT/SIGTERM. On a terminal each frame replaces the last; otherwise frames
    // follow each other (JSON: one document per line).
    termination_signals signals;
    bool terminal = ::isatty(STDOUT_FILENO) == 1;
    auto interval =
        std::chrono::milliseconds{static_cast<std::int64_t>(options.watch_seconds * 1000)};
    while (!signals.received()) {
        auto status = fetch(client, options.timeout.count() ? options.timeout
                                                            : interval + std::chrono::seconds{5});
        std::string frame;
        if (!status)
            frame = "broker not answering; trying again\n";
        else if (options.as_json)
            frame = dump(*status) + "\n";
        else
            frame = render_tables(*status);
        if (terminal && !options.as_json)
            std::cout << "\033[H\033[2J" << frame << std::flush;
        else
            std::cout << frame << (options.as_json ? "" : "\n") << std::flush;
        if (signals.wait(interval)) break;
    }
    return 0;
}

} // namespace deferq::cli
