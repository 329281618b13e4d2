#include "deferq/broker_status.hpp"

#include "prometheus_text.hpp"

#include <msgpack.hpp>

#include <cmath>

namespace deferq {
namespace {

using packer = msgpack::packer<msgpack::sbuffer>;

void pack_key(packer& out, std::string_view key) {
    out.pack_str(static_cast<std::uint32_t>(key.size()));
    out.pack_str_body(key.data(), static_cast<std::uint32_t>(key.size()));
}

template <typename T> void pack_field(packer& out, std::string_view key, const T& value) {
    pack_key(out, key);
    out.pack(value);
}

double milliseconds(double seconds) {
    return std::round(seconds * 1e6) / 1e3; // µs resolution
}

void pack_worker(packer& out, const worker_status& worker) {
    out.pack_map(13);
    pack_field(out, "id", worker.id);
    pack_field(out, "name", worker.name);
    pack_field(out, "host", worker.host);
    pack_field(out, "slots", worker.slots);
    pack_field(out, "prefetch", worker.prefetch);
    pack_field(out, "held", worker.held);
    pack_field(out, "busy", worker.busy);
    pack_field(out, "jobs_done", worker.jobs_done);
    pack_field(out, "failures", worker.failures);
    pack_field(out, "draining", worker.draining);
    pack_field(out, "last_seen_ms", worker.last_seen_ms);
    pack_field(out, "connected_ms", worker.connected_ms);
    pack_field(out, "functions", worker.functions);
}

void pack_function(packer& out, const function_status& function) {
    out.pack_map(14);
    pack_field(out, "name", function.name);
    pack_field(out, "queued", function.queued);
    pack_field(out, "in_flight", function.in_flight);
    pack_field(out, "running", function.in_flight); // the name before in_flight; kept for scripts
    pack_field(out, "workers", function.workers);
    pack_field(out, "oldest_queued_ms", function.oldest_queued_ms);
    pack_field(out, "done", function.done);
    pack_field(out, "failed", function.failed);
    pack_key(out, "failed_by_code");
    std::size_t codes = 0;
    for (auto count : function.failed_by_code)
        codes += count != 0;
    out.pack_map(static_cast<std::uint32_t>(codes));
    for (std::size_t code = 0; code < function.failed_by_code.size(); ++code)
        if (function.failed_by_code[code] != 0)
            pack_field(out, to_string(static_cast<error_code>(code)),
                       function.failed_by_code[code]);
    pack_field(out, "wait_p50_ms", milliseconds(function.queue_wait.quantile(0.5)));
    pack_field(out, "wait_p99_ms", milliseconds(function.queue_wait.quantile(0.99)));
    pack_field(out, "service_p50_ms", milliseconds(function.service_time.quantile(0.5)));
    pack_field(out, "service_p99_ms", milliseconds(function.service_time.quantile(0.99)));
    pack_field(out, "service_count", function.service_time.count());
}

} // namespace

std::string pack_status(const broker_status& status) {
    msgpack::sbuffer buffer(4096);
    packer out(buffer);
    out.pack_map(11);
    pack_field(out, "instance", status.instance);
    pack_field(out, "instance_hex", prometheus_text::hex(status.instance)); // for JavaScript
    pack_field(out, "uptime_ms", status.uptime_ms);
    pack_key(out, "standby");
    out.pack_map(2);
    pack_field(out, "role", status.standby_role);
    pack_field(out, "state", status.standby_state);
    pack_key(out, "counters");
    out.pack_map(static_cast<std::uint32_t>(counter_count));
    for (std::size_t i = 0; i < counter_count; ++i)
        pack_field(out, counter_table[i].name, status.counters[i]);
    pack_key(out, "rates");
    out.pack_map(4);
    pack_field(out, "window_s", status.rates.window_seconds);
    pack_field(out, "requests_per_s", status.rates.requests_per_second);
    pack_field(out, "replies_per_s", status.rates.replies_per_second);
    pack_field(out, "errors_per_s", status.rates.errors_per_second);
    pack_key(out, "workers");
    out.pack_array(static_cast<std::uint32_t>(status.workers.size()));
    for (const auto& worker : status.workers)
        pack_worker(out, worker);
    pack_key(out, "functions");
    out.pack_array(static_cast<std::uint32_t>(status.functions.size()));
    for (const auto& function : status.functions)
        pack_function(out, function);
    pack_key(out, "clients");
    out.pack_array(static_cast<std::uint32_t>(status.clients.size()));
    for (const auto& client : status.clients) {
        out.pack_map(3);
        pack_field(out, "id", client.id);
        pack_field(out, "pending", client.pending);
        pack_field(out, "last_seen_ms", client.last_seen_ms);
    }
    pack_key(out, "tenants");
    out.pack_array(static_cast<std::uint32_t>(status.tenants.size()));
    for (const auto& tenant : status.tenants) {
        out.pack_map(6);
        pack_field(out, "id", tenant.id);
        pack_field(out, "queued", tenant.queued);
        pack_field(out, "queued_bytes", tenant.queued_bytes);
        pack_field(out, "running", tenant.running);
        pack_field(out, "reply_bytes", tenant.reply_bytes);
        pack_key(out, "paused");
        out.pack(tenant.paused);
    }
    pack_key(out, "budgets");
    out.pack_map(4);
    pack_field(out, "tenant_budget", status.budgets.tenant_budget);
    pack_field(out, "broker_budget", status.budgets.broker_budget);
    pack_field(out, "queued_bytes", status.budgets.queued_bytes);
    pack_field(out, "held_bytes", status.budgets.held_bytes);
    return std::string(buffer.data(), buffer.size());
}

namespace {

void write_histogram(prometheus_text& out, std::string_view metric, const std::string& function,
                     const latency_histogram& histogram) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < latency_histogram::bucket_count; ++i) {
        cumulative += histogram.buckets()[i];
        std::string le = i < latency_histogram::bounds_seconds.size()
                             ? prometheus_text::number(latency_histogram::bounds_seconds[i])
                             : "+Inf";
        out.sample(std::string(metric) + "_bucket", {{"function", function}, {"le", le}},
                   cumulative);
    }
    out.sample(std::string(metric) + "_sum", {{"function", function}}, histogram.sum_seconds());
    out.sample(std::string(metric) + "_count", {{"function", function}}, histogram.count());
}

} // namespace

std::string to_prometheus(const broker_status& status) {
    prometheus_text out;
    out.family("deferq_broker_info", "gauge", "The broker instance (its id is in the label).");
    out.sample("deferq_broker_info", {{"instance", prometheus_text::hex(status.instance)}}, 1);
    out.family("deferq_uptime_seconds", "gauge", "Seconds since the broker started.");
    out.sample("deferq_uptime_seconds", {}, static_cast<double>(status.uptime_ms) / 1000.0);
    out.family("deferq_standby_info", "gauge",
               "This broker's role in a standby pair (primary, backup; alone: none) and its state "
               "(primary or backup while starting, active, passive).");
    out.sample("deferq_standby_info",
               {{"role", status.standby_role}, {"state", status.standby_state}}, 1);
    out.family("deferq_standby_active", "gauge",
               "1 while this broker serves (a broker alone always does), 0 while it stands by.");
    out.sample("deferq_standby_active", {}, status.standby_state == "active" ? 1 : 0);
    for (std::size_t i = 0; i < counter_count; ++i) {
        const auto& info = counter_table[i];
        bool gauge = info.kind == metric_kind::gauge;
        std::string metric = "deferq_" + std::string(info.name) + (gauge ? "" : "_total");
        out.family(metric, gauge ? "gauge" : "counter", info.help);
        out.sample(metric, {}, status.counters[i]);
    }

    out.family("deferq_function_queued", "gauge", "Jobs waiting in the function's queue.");
    for (const auto& f : status.functions)
        out.sample("deferq_function_queued", {{"function", f.name}}, f.queued);
    out.family("deferq_function_in_flight", "gauge",
               "Jobs of the function dispatched to workers and not answered yet.");
    for (const auto& f : status.functions)
        out.sample("deferq_function_in_flight", {{"function", f.name}}, f.in_flight);
    out.family("deferq_function_workers", "gauge", "Workers offering the function.");
    for (const auto& f : status.functions)
        out.sample("deferq_function_workers", {{"function", f.name}}, f.workers);
    out.family("deferq_function_oldest_queued_seconds", "gauge",
               "Age of the function's oldest queued job (0 when none is queued).");
    for (const auto& f : status.functions)
        out.sample("deferq_function_oldest_queued_seconds", {{"function", f.name}},
                   static_cast<double>(f.oldest_queued_ms) / 1000.0);
    out.family("deferq_function_calls_done_total", "counter",
               "Calls of the function answered with a result.");
    for (const auto& f : status.functions)
        out.sample("deferq_function_calls_done_total", {{"function", f.name}}, f.done);
    out.family("deferq_function_calls_failed_total", "counter",
               "Calls of the function that failed, by error code (codes seen so far).");
    for (const auto& f : status.functions)
        for (std::size_t code = 0; code < f.failed_by_code.size(); ++code)
            if (f.failed_by_code[code] != 0)
                out.sample("deferq_function_calls_failed_total",
                           {{"function", f.name},
                            {"code", std::string(to_string(static_cast<error_code>(code)))}},
                           f.failed_by_code[code]);
    out.family("deferq_queue_wait_seconds", "histogram",
               "Time jobs waited in the function's queue before dispatch.");
    for (const auto& f : status.functions)
        write_histogram(out, "deferq_queue_wait_seconds", f.name, f.queue_wait);
    out.family("deferq_service_time_seconds", "histogram",
               "Time from dispatch to the worker's answer (run time plus two hops).");
    for (const auto& f : status.functions)
        write_histogram(out, "deferq_service_time_seconds", f.name, f.service_time);

    out.family("deferq_queued_bytes", "gauge", "Argument bytes of all queued jobs.");
    out.sample("deferq_queued_bytes", {}, status.budgets.queued_bytes);
    out.family("deferq_tenant_budget_bytes", "gauge",
               "Argument bytes one tenant may have queued (--tenant-budget).");
    out.sample("deferq_tenant_budget_bytes", {}, status.budgets.tenant_budget);
    out.family("deferq_broker_budget_bytes", "gauge",
               "Argument bytes all tenants may have queued (--broker-budget).");
    out.sample("deferq_broker_budget_bytes", {}, status.budgets.broker_budget);
    out.family("deferq_tenant_queued", "gauge", "Jobs of the tenant waiting in queues.");
    for (const auto& t : status.tenants)
        out.sample("deferq_tenant_queued", {{"tenant", t.id}}, t.queued);
    out.family("deferq_tenant_queued_bytes", "gauge",
               "Argument bytes of the tenant's queued jobs (its budget's use).");
    for (const auto& t : status.tenants)
        out.sample("deferq_tenant_queued_bytes", {{"tenant", t.id}}, t.queued_bytes);
    out.family("deferq_tenant_running", "gauge", "Jobs of the tenant on workers.");
    for (const auto& t : status.tenants)
        out.sample("deferq_tenant_running", {{"tenant", t.id}}, t.running);
    out.family("deferq_held_bytes", "gauge",
               "Answers the broker holds for clients that read slowly, bytes (counted against the "
               "budgets).");
    out.sample("deferq_held_bytes", {}, status.budgets.held_bytes);
    out.family("deferq_tenant_reply_bytes", "gauge",
               "Answers the tenant's clients have not read yet, held by the broker (its budget's "
               "use).");
    for (const auto& t : status.tenants)
        out.sample("deferq_tenant_reply_bytes", {{"tenant", t.id}}, t.reply_bytes);
    out.family("deferq_tenant_paused", "gauge",
               "1 while the tenant's queued jobs wait for its clients to read their answers.");
    for (const auto& t : status.tenants)
        out.sample("deferq_tenant_paused", {{"tenant", t.id}}, t.paused ? 1 : 0);

    out.family("deferq_worker_slots", "gauge", "Jobs the worker runs at once.");
    for (const auto& w : status.workers)
        out.sample("deferq_worker_slots", {{"worker", w.name}, {"id", w.id}}, w.slots);
    out.family("deferq_worker_busy", "gauge", "Slots of the worker in use.");
    for (const auto& w : status.workers)
        out.sample("deferq_worker_busy", {{"worker", w.name}, {"id", w.id}}, w.busy);
    out.family("deferq_worker_held", "gauge",
               "Jobs dispatched to the worker and not answered (running and prefetched).");
    for (const auto& w : status.workers)
        out.sample("deferq_worker_held", {{"worker", w.name}, {"id", w.id}}, w.held);
    out.family("deferq_worker_jobs_done_total", "counter", "Jobs the worker answered.");
    for (const auto& w : status.workers)
        out.sample("deferq_worker_jobs_done_total", {{"worker", w.name}, {"id", w.id}},
                   w.jobs_done);
    out.family("deferq_worker_failures_total", "counter", "Jobs the worker answered with ERROR.");
    for (const auto& w : status.workers)
        out.sample("deferq_worker_failures_total", {{"worker", w.name}, {"id", w.id}}, w.failures);
    out.family("deferq_worker_last_seen_seconds", "gauge",
               "Seconds since the broker last heard from the worker.");
    for (const auto& w : status.workers)
        out.sample("deferq_worker_last_seen_seconds", {{"worker", w.name}, {"id", w.id}},
                   static_cast<double>(w.last_seen_ms) / 1000.0);
    return out.take();
}

} // namespace deferq
