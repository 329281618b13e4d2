#include "deferq/worker.hpp"

#include "held_jobs.hpp"
#include "job_calls.hpp"
#include "job_pool.hpp"
#include "job_run.hpp"
#include "worker_message.hpp"

#include "deferq/broker_link.hpp"
#include "deferq/endpoint.hpp"
#include "deferq/heartbeat.hpp"
#include "deferq/mailbox.hpp"
#include "deferq/protocol.hpp"
#include "deferq/random_id.hpp"
#include "deferq/signals.hpp"

#include "deferq/log.hpp"

#include <spdlog/spdlog.h>

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace deferq {
namespace {

using clock_type = std::chrono::steady_clock;
using namespace protocol;

using worker_detail::job_record;
using worker_detail::outcome;
using job_ptr = std::shared_ptr<job_record>;

using worker_detail::held_frames;
using worker_detail::max_adaptive_prefetch;
using worker_detail::progress_interval;

std::string default_worker_name() {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    return std::string(host) + ":" + std::to_string(::getpid());
}

} // namespace

class worker_impl final : private worker_detail::worker_message_sink {
public:
    worker_impl(zmq::context_t* shared_context, worker_options options)
        : _options(std::move(options)) {
        check_endpoint(_options.broker, endpoint_use::connect);
        if (_options.curve_keys)
            curve::check_client_keys(*_options.curve_keys, _options.curve_server_key);
        if (!shared_context) _own_context = std::make_unique<zmq::context_t>();
        _context = shared_context ? shared_context : _own_context.get();
        if (_options.name.empty()) _options.name = default_worker_name();
        if (_options.concurrency == 0)
            _options.concurrency = std::max(1u, std::thread::hardware_concurrency());
    }

    ~worker_impl() { _pool.stop(); }

    void define(std::string name, bound_handler handler) {
        if (name.empty() || name.size() > default_max_function_name)
            throw std::invalid_argument("function name must be 1 to " +
                                        std::to_string(default_max_function_name) + " bytes");
        _handlers[std::move(name)].handler = std::move(handler);
    }

    std::vector<std::string> functions() const {
        std::vector<std::string> names;
        for (const auto& [name, handler] : _handlers)
            names.push_back(name);
        return names;
    }

    void stop() {
        _stop_requested = true;
        _outcomes.push(outcome(outcome::kind::wake));
    }

    void run() {
        if (_handlers.empty()) throw std::logic_error("Worker::run: no functions defined");
        std::optional<termination_signals> signals;
        if (_options.handle_signals) signals.emplace();
        _pool.start(
            _options.concurrency, [this](const job_ptr& job, bool more) { run_job(job, more); },
            [this](int wake_fd) { return watch(wake_fd); });
        // Held for the whole turn; let go only while waiting, so that answer() can send then.
        std::unique_lock io(_io_mutex);
        try {
            connect();
        } catch (const zmq::error_t& e) { // what check_endpoint() could not know
            throw config_error("cannot connect to '" + _options.broker + "': " + e.what());
        }
        log().info("worker {} serving {} function(s) with {} slot(s) from {}", _options.name,
                   _handlers.size(), _options.concurrency, _options.broker);
        std::deque<outcome> outcomes;
        while (true) {
            _link->monitor().loop_tick(clock_type::now());
            // The signals' descriptor stays readable once a signal came: not polled while draining.
            int fds[] = {_outcomes.fd(), signals && !_draining ? signals->fd() : -1};
            auto longest = _hold.holding() ? worker_detail::answer_hold::sweep
                                           : std::chrono::milliseconds{_draining ? 20 : 100};
            auto ready = _link->wait(io, fds, longest, !_watching);
            if (_link->readable()) // an empty receive costs libzmq a syscall
                for (int i = 0; i < 256 && receive_frames(_link->socket(), _frames); ++i)
                    on_broker_message();
            _pool.add(_incoming);
            if (ready & 1) // set whenever outcomes wait, but those held back (run_job)
                _outcomes.take_all(outcomes);
            else if (_hold.release())
                _outcomes.take_queued(outcomes);
            while (!outcomes.empty()) {
                on_outcome(outcomes.front());
                outcomes.pop_front();
            }
            _link->flush(); // what this turn answered goes out as one BATCH (§3a)
            if (!_draining && (_stop_requested || (signals && signals->received()))) begin_drain();
            auto now = clock_type::now();
            _link->monitor().loop_tick(now);
            // A drained worker leaves once the broker has read its last answers (a broker that
            // died meanwhile may not have: they go to the next one, §3c), or at the deadline. With
            // no job and no answer left there is nothing to tell a next broker: a reconnect (the
            // broker stopping too) does not keep it.
            if (_draining && ((_jobs.empty() && _recent.size() == 0) || now >= _drain_deadline))
                break;
            keep_alive(now);
        }
        finish(io);
        if (_refusal) throw std::runtime_error(*_refusal);
    }

    worker_counters counters;
    worker_options _options;

private:
    // ---- connection
    // --------------------------------------------------------------------------------

    void connect() {
        if (_link) {
            // The jobs of the old connection keep running: the broker this one reaches hears of
            // them once it says that it adopts jobs, or they are dropped then (§3c).
            _report_due = true;
            bump_reconnects();
        } else {
            _link.emplace(*_context, _options.broker, worker_protocol, _options.curve_keys,
                          _options.curve_server_key);
        }
        _link->connect(random_routing_id()); // a fresh routing id: a new registration
        // This connection's first HEARTBEAT is no restart, whichever broker answers.
        _link->monitor().forget_instance();
        ++_generation;
        _job_calls.fail_all();
        _current_prefetch = _options.prefetch.value_or(adaptive_prefetch());
        auto& ready_message = _link->begin(ready);
        ready_message.push_back(string_frame(_options.name));
        ready_message.push_back(u32_frame(_options.concurrency));
        ready_message.push_back(u32_frame(_current_prefetch));
        for (const auto& [name, handler] : _handlers)
            ready_message.push_back(string_frame(name));
        _link->send();
        _last_credit = clock_type::now();
        if (_draining) _link->send_command(command::drain);
        _pool.nudge(); // an idle pool thread may watch the new socket
    }

    void bump_reconnects() { counters.reconnects.fetch_add(1, std::memory_order_relaxed); }

    /// Heartbeats and broker liveness (docs/protocol.md §4).
    void keep_alive(clock_type::time_point now) {
        if (_link->keep_alive(now)) {
            log().warn("worker {}: broker silent for {} ms, reconnecting", _options.name,
                       _link->monitor().silence(now).count());
            connect();
        }
        if (!_options.prefetch && !_draining && now - _last_credit >= progress_interval) {
            // A job running longer than the mean says more than the mean: a worker that learnt
            // a big prefetch from fast jobs must not strand slow ones behind a slow one.
            auto wanted = adaptive_prefetch(longest_running(now));
            if (wanted != _current_prefetch) {
                bool fell = wanted < _current_prefetch;
                _current_prefetch = wanted;
                _link->begin(command::credit).push_back(u32_frame(wanted));
                _link->send();
                if (fell) hand_back_beyond(wanted);
            }
            _last_credit = now;
        }
    }

    /// The prefetch from the mean service time, or from how long the longest running job has
    /// run when that is longer.
    std::uint32_t adaptive_prefetch(double running_ns = 0) const {
        return worker_detail::adaptive_prefetch(_options.concurrency,
                                                std::max(_mean_service_ns, running_ns));
    }

    /// How long the longest running job of this connection has run, ns (0: none runs).
    double longest_running(clock_type::time_point now) const {
        std::int64_t earliest = 0;
        for (const auto& [id, job] : _jobs) {
            auto started = job->started.load(std::memory_order_relaxed);
            if (started != 0 && (earliest == 0 || started < earliest)) earliest = started;
        }
        if (earliest == 0) return 0;
        return static_cast<double>(now.time_since_epoch().count() - earliest);
    }

    /// The prefetch fell: jobs waiting for a slot beyond the new prefetch go back to the broker
    /// (DECLINE, after the CREDIT), which gives them to workers with free slots.
    void hand_back_beyond(std::uint32_t prefetch) {
        auto surplus = _pool.take_beyond(prefetch);
        if (surplus.empty()) return;
        // Newest first: the broker puts each at the front of its queue, so they keep their order.
        for (auto& job : surplus)
            decline(job);
        counters.jobs_handed_back.fetch_add(surplus.size(), std::memory_order_relaxed);
        log().debug("worker {}: a job has run {:.0f} ms: prefetch {}, handed back {} job(s)",
                    _options.name, longest_running(clock_type::now()) / 1e6, prefetch,
                    surplus.size());
    }

    // ---- from the broker
    // ---------------------------------------------------------------------------

    void on_broker_message() { read_worker_message(_frames, _batch_in, *this); }

    // ---- what the broker says (worker_message_sink)

    void on_heard() override { _link->monitor().heard(clock_type::now()); }

    void on_heartbeat(const broker_heartbeat& beat) override {
        if (_link->monitor().announced(beat)) {
            log().info("worker {}: broker restarted, registering again", _options.name);
            return connect();
        }
        if (std::exchange(_report_due, false)) report_held();
        broker_read();
    }

    /// A message only the broker this connection registered with sends came (a HEARTBEAT, a
    /// job): the answers it surely read are forgotten (§3c).
    void broker_read() {
        if (_report_due) return; // maybe from a broker that does not know this worker yet
        _recent.prune(_generation, clock_type::now(), _link->monitor().interval());
    }

    /// Tells a new broker of the jobs of earlier connections and of the answers it may not have
    /// read (HELD, then the answer again); with a broker that does not adopt jobs, they are
    /// dropped, as the broker runs them again (docs/protocol.md §3c).
    void report_held() {
        bool adopts = (_link->monitor().features() & broker_features::adopts_jobs) != 0;
        std::vector<std::uint64_t> dropped;
        std::size_t reported = 0, answers = 0;
        for (auto& [id, job] : _jobs) {
            if (job->generation == _generation) continue;
            if (!adopts || job->caller.empty()) {
                job->cancelled = true;
                dropped.push_back(id);
                continue;
            }
            job->generation = _generation;
            send_held(*job);
            ++reported;
        }
        for (auto id : dropped)
            _jobs.erase(id);
        _recent.for_each([&](worker_detail::sent_answer& answer) {
            // One sent on this connection (its job's answer came first) this broker has.
            if (!adopts || answer.job->caller.empty() || answer.connection == _generation) return;
            send_held(*answer.job);
            resend(answer);
            ++answers;
        });
        if (!adopts) _recent.clear();
        if (reported + answers + dropped.size() > 0)
            log().info("worker {}: told the broker of {} job(s) it holds and {} answer(s) it may "
                       "not have read; dropped {}",
                       _options.name, reported, answers, dropped.size());
    }

    void send_held(const job_record& job) {
        held_frames(_link->begin(command::held), job);
        _link->send();
    }

    void on_disconnect() override {
        log().info("worker {}: broker asked to reconnect", _options.name);
        _link->monitor().forget_instance();
        connect();
    }

    /// The broker refuses this worker (this is not its worker endpoint): stop, and let run() say
    /// why.
    void on_refused(std::string_view why) override {
        if (_refusal) return;
        log().error("worker {}: broker {} refused this worker: {}", _options.name, _options.broker,
                    why);
        _refusal = "the broker at " + _options.broker + " refused this worker: " + std::string(why);
        _stop_requested = true;
    }

    void on_bad_message(std::string_view reason) override {
        log().warn("worker {}: dropped a bad message from the broker: {}", _options.name, reason);
    }

    void on_call_reply(std::uint64_t call_id, const detail::raw_reply& reply) override {
        _job_calls.on_answer(call_id, &reply, nullptr);
    }

    void on_call_error(std::uint64_t call_id, const Failure& failure) override {
        _job_calls.on_answer(call_id, nullptr, &failure);
    }

    void on_cancel(std::uint64_t job_id) override {
        if (auto it = _jobs.find(job_id); it != _jobs.end()) it->second->cancelled = true;
    }

    void on_job(const job_request& request, zmq::message_t payload) override {
        broker_read();
        if (request.attempt > 1 && answered_already(request)) return;
        if (auto known = _jobs.find(request.job_id); known != _jobs.end()) {
            auto& job = *known->second;
            if (worker_detail::same_call(job, request)) {
                // The broker lost this worker, took the job back and gives it again: it still
                // runs here, and is answered on this connection (§3c), while draining too.
                job.generation = _generation;
                return;
            }
            // Another call under that id (a new broker instance's): the old job is dropped, the
            // broker that gave it runs it again.
            job.cancelled = true;
            _jobs.erase(known);
        }
        auto handler = _handlers.find(request.function);
        if (handler == _handlers.end()) {
            send_error(request.job_id, error_code::no_such_function, "",
                       "worker " + _options.name + " does not offer '" +
                           std::string(request.function) + "'");
            return;
        }
        auto job = std::make_shared<job_record>();
        job->id = request.job_id;
        job->function = std::string(request.function);
        job->attempt = request.attempt;
        job->caller.assign(request.caller);
        job->correlation_id = request.correlation_id;
        if (request.deadline_ms)
            job->deadline = clock_type::now() + std::chrono::milliseconds{request.deadline_ms};
        job->payload = std::move(payload);
        job->handler = &handler->second;
        job->generation = _generation;
        _jobs[job->id] = job;
        if (_draining) {
            decline(job);
            return;
        }
        _incoming.push_back(std::move(job));
    }

    /// A job given again (the broker lost this worker and took it back) that this worker answered
    /// lately: the answer goes on this connection (unless it went already), the job does not run.
    bool answered_already(const job_request& request) {
        auto* kept = _recent.find(request);
        if (kept && kept->connection != _generation) resend(*kept);
        return kept != nullptr;
    }

    /// A kept answer, sent again on this connection.
    void resend(worker_detail::sent_answer& kept) {
        zmq::message_t payload;
        payload.copy(kept.payload);
        send_answer(*kept.job, kept.failed, std::move(payload), kept.code, kept.type, kept.message);
        kept.sent = clock_type::now();
        kept.connection = _generation;
    }

    void send_error(std::uint64_t job_id, error_code code, std::string_view type,
                    std::string_view message) {
        std::string cut_type, cut_message; // an over-long text would make the ERROR malformed
        auto& batch = _link->record();
        batch.begin(command::error, 4);
        batch.u64(job_id);
        batch.u8(static_cast<std::uint8_t>(code));
        batch.bytes(cut_text(type, cut_type));
        batch.bytes(cut_text(message, cut_message));
    }

    /// A result the broker would refuse (its message size limit) becomes a too_large ERROR: the
    /// caller learns why, and the slot is free again (docs/protocol.md §4, Limits).
    bool refuse_too_large(const job_record& job, const zmq::message_t& result) {
        auto limit = _link->monitor().max_message_size();
        if (result.size() <= limit) return false;
        auto refused = counters.results_too_large.fetch_add(1, std::memory_order_relaxed) + 1;
        auto why = "the result of '" + job.function + "' is " + std::to_string(result.size()) +
                   " bytes; the broker takes messages of at most " + std::to_string(limit) +
                   " bytes (its --max-message-size)";
        log().warn("worker {}: job {}: {} ({} so far)", _options.name, job.id, why, refused);
        counters.jobs_failed.fetch_add(1, std::memory_order_relaxed);
        send_error(job.id, error_code::too_large, "", why);
        return true;
    }

    void decline(const std::shared_ptr<job_record>& job) {
        _link->begin(command::decline);
        _link->message().push_back(u64_frame(job->id));
        _link->send();
        _jobs.erase(job->id);
    }

    // ---- the pool's watcher
    // ----------------------------------------------------------------------------

    /// An idle pool thread watches the socket in the I/O thread's place (leader/follower): a job
    /// it reads runs on it at once, with no hand-off (docs/architecture.md, "Threads"). The watch
    /// ends when jobs came (the first runs on this thread, the pool queues the others), when the
    /// pool wakes it (`wake_fd`: work, or a change), or at once while the worker drains or stops.
    worker_detail::job_pool::watched watch(int wake_fd) {
        using watched = worker_detail::job_pool::watched;
        std::unique_lock io(_io_mutex);
        while (true) {
            _watching = false;
            if (!_link || !_link->has_socket() || _draining || _stop_requested || _finished)
                return {watched::end::refused, {}};
            if (_link->readable()) {
                for (int i = 0; i < 256 && receive_frames(_link->socket(), _frames); ++i)
                    on_broker_message();
                _link->flush();                        // what handling them sent
                if (_stop_requested) _outcomes.wake(); // refused: the I/O thread ends the run
                if (!_incoming.empty()) return {watched::end::jobs, std::exchange(_incoming, {})};
                continue;
            }
            pollfd items[] = {{_link->socket().get(zmq::sockopt::fd), POLLIN, 0},
                              {wake_fd, POLLIN, 0}};
            _watching = true; // the I/O thread waits without the socket meanwhile
            io.unlock();
            ::poll(items, 2, 1000);
            io.lock();
            if (items[1].revents & POLLIN) {
                _watching = false;
                return {watched::end::woken, {}};
            }
        }
    }

    // ---- from the pool
    // ----------------------------------------------------------------------------

    /// Runs a job on a pool thread. Its answer waits in the mailbox, the I/O thread not woken,
    /// while quick jobs are queued behind it (for at most answer_hold::longest_hold); what waits
    /// goes before a job that may be slow.
    void run_job(const job_ptr& job, bool more) {
        if (_hold.holding() && !worker_detail::answer_hold::quick(*job) && _hold.release())
            answer(std::nullopt);
        auto result = worker_detail::execute(job, _hooks);
        if (!result) return; // a Deferred: it answers when it fires
        if (result->service_time.count() > 0)
            worker_detail::answer_hold::learn(*job, result->service_time);
        auto now = clock_type::now();
        if (_hold.may_hold(*job, more, now)) {
            _outcomes.push_quiet(std::move(*result));
            return _hold.held(now);
        }
        _hold.release();
        answer(std::move(result));
    }

    /// A pool thread's answer (none: only what waits), with the answers held back before it:
    /// sent from that thread when the I/O thread is waiting, so that they need no wake-up of the
    /// I/O thread and leave as one BATCH (docs/architecture.md, "Threads"); else handed over.
    void answer(std::optional<outcome> result) {
        std::unique_lock io(_io_mutex, std::try_to_lock);
        if (!io.owns_lock() || _finished) {
            if (io.owns_lock()) io.unlock();
            if (result) _outcomes.push_quiet(std::move(*result));
            _outcomes.wake(); // the I/O thread takes everything queued
            return;
        }
        _outcomes.take_queued(_taken);
        for (auto& earlier : _taken)
            on_outcome(earlier);
        _taken.clear();
        if (result) on_outcome(*result);
        _link->flush();
        // ZMQ_FD, which the I/O thread waits on, signals once: this thread may have taken it. A
        // draining worker's loop looks whether it may leave now.
        bool wake = _link->readable() || _draining;
        io.unlock();
        if (wake) _outcomes.wake();
    }

    /// Whether `job` is this worker's, on this connection.
    bool holds(const job_record& job) const {
        auto held = _jobs.find(job.id);
        return held != _jobs.end() && held->second.get() == &job && job.generation == _generation;
    }

    void on_outcome(outcome& result) {
        switch (result.what) {
        case outcome::kind::wake:
            return;
        case outcome::kind::call:
            return _job_calls.send(result, *_link, result.job && holds(*result.job));
        case outcome::kind::cancel_call:
            return _job_calls.cancel(result.call_id, *_link);
        default:
            break;
        }
        auto& job = *result.job;
        bool ends = result.what == outcome::kind::reply || result.what == outcome::kind::error;
        auto held = _jobs.find(job.id);
        if (held == _jobs.end() || held->second.get() != &job) {
            // Not this worker's any more: a broker that does not adopt jobs has given it to
            // another worker, or another call came under its id.
            if (ends) {
                auto dropped =
                    counters.late_results_dropped.fetch_add(1, std::memory_order_relaxed) + 1;
                log().info("worker {}: dropped late result of job {} from a previous connection "
                           "({} so far)",
                           _options.name, job.id, dropped);
            }
            return;
        }
        if (job.generation != _generation) {
            // Of an earlier connection, and the new broker may adopt it: kept to be told then.
            if (!ends) return;
            _recent.keep({result.job, result.what == outcome::kind::error,
                          std::move(result.payload), result.code, std::move(result.type),
                          std::move(result.message), clock_type::now(), job.generation});
            _jobs.erase(held);
            return;
        }
        if (result.what == outcome::kind::wait) { // its slot may take another job (§3b)
            _link->begin(command::wait);
            _link->message().push_back(u64_frame(job.id));
            return _link->send();
        }
        if (result.what == outcome::kind::progress) {
            _link->begin(command::progress);
            _link->message().push_back(u64_frame(job.id));
            _link->message().push_back(f64_frame(result.fraction));
            std::string cut;
            _link->message().push_back(string_frame(cut_text(result.message, cut)));
            return _link->send();
        }
        if (result.service_time.count() > 0) {
            auto sample = static_cast<double>(result.service_time.count());
            _mean_service_ns =
                _mean_service_ns <= 0 ? sample : 0.8 * _mean_service_ns + 0.2 * sample;
        }
        if (result.what == outcome::kind::reply && refuse_too_large(job, result.payload)) {
            // answered with too_large
        } else {
            bool failed = result.what != outcome::kind::reply;
            if (!failed)
                counters.jobs_done.fetch_add(1, std::memory_order_relaxed);
            else if (result.code == error_code::cancelled)
                counters.jobs_cancelled.fetch_add(1, std::memory_order_relaxed);
            else
                counters.jobs_failed.fetch_add(1, std::memory_order_relaxed);
            // Kept a while: a broker that dies now may not have read it (§3c).
            zmq::message_t sent;
            sent.copy(result.payload); // shares a large buffer
            send_answer(job, failed, std::move(sent), result.code, result.type, result.message);
            job.payload = zmq::message_t(); // its arguments are not needed any more
            _recent.keep({result.job, failed, std::move(result.payload), result.code,
                          std::move(result.type), std::move(result.message), clock_type::now(),
                          _generation});
        }
        _jobs.erase(held);
    }

    void send_answer(const job_record& job, bool failed, zmq::message_t payload, error_code code,
                     std::string_view type, std::string_view message) {
        if (failed) return send_error(job.id, code, type, message);
        if (payload.size() <= max_batched_payload) {
            auto& batch = _link->record();
            batch.begin(command::reply, 2);
            batch.u64(job.id);
            batch.bytes(view(payload));
            return;
        }
        _link->begin(command::reply);
        _link->message().push_back(u64_frame(job.id));
        _link->message().push_back(std::move(payload));
        _link->send();
    }

    // ---- drain
    // ------------------------------------------------------------------------------------

    void begin_drain() {
        _draining = true;
        _pool.nudge(); // a watching pool thread stops watching
        _drain_deadline = clock_type::now() + _options.drain_timeout;
        _link->send_command(command::drain);
        auto not_started = _pool.take_beyond(0);
        std::reverse(not_started.begin(), not_started.end()); // oldest first, as they came
        for (auto& job : not_started)
            decline(job);
        log().info("worker {} draining: handed back {} job(s), finishing {}", _options.name,
                   not_started.size(), _jobs.size());
    }

    void finish(std::unique_lock<std::mutex>& io) {
        if (!_jobs.empty()) {
            log().warn(
                "worker {}: drain timeout with {} job(s) still running; leaving them to the broker",
                _options.name, _jobs.size());
            for (auto& [id, job] : _jobs)
                job->cancelled = true;
        }
        _link->send_command(command::disconnect);
        _finished = true; // nothing more is sent but the DISCONNECT
        io.unlock();      // a watching pool thread may be waiting for the lock
        _pool.stop();
        io.lock();
        _link->close(std::chrono::seconds{1}); // let DISCONNECT reach the broker
        log().info("worker {} stopped", _options.name);
    }

    std::unique_ptr<zmq::context_t> _own_context;
    zmq::context_t* _context;
    std::map<std::string, worker_detail::offered_function, std::less<>> _handlers;
    std::optional<broker_link> _link; ///< made at the first connect()
    std::vector<zmq::message_t> _frames;
    protocol::batch_reader _batch_in;                   ///< the BATCH being handled
    std::vector<std::shared_ptr<job_record>> _incoming; ///< jobs of this turn, for the pool
    std::unordered_map<std::uint64_t, std::shared_ptr<job_record>>
        _jobs; ///< received, not answered: what the worker holds
    std::uint64_t _generation = 0;
    clock_type::time_point _last_credit{};
    std::uint32_t _current_prefetch = 0;
    double _mean_service_ns = 0;
    std::atomic<bool> _stop_requested{false};
    std::optional<std::string> _refusal; ///< why the broker refused this worker, if it did
    bool _draining = false;
    bool _watching = false; ///< a pool thread watches the socket (watch())
    bool _finished = false; ///< finish() sent DISCONNECT: nothing more goes out
    clock_type::time_point _drain_deadline{};
    mailbox<outcome> _outcomes;
    /// Answers in _outcomes that the I/O thread was not woken for (run_job).
    worker_detail::answer_hold _hold;
    std::deque<outcome> _taken; ///< what answer() took from _outcomes (kept: a deque allocates)
    /// Held by the I/O thread but while it waits, and by answer(): everything above and below.
    std::mutex _io_mutex;
    bool _report_due = false; ///< a new connection: tell its broker of the jobs held (§3c)
    /// Answers sent lately, for a new broker instance (§3c).
    worker_detail::recent_answers _recent{2 * (std::size_t{max_adaptive_prefetch} + 64),
                                          std::size_t{128} << 20};

    worker_detail::job_calls _job_calls{_outcomes, _pool};
    worker_detail::run_hooks _hooks{[this](outcome result) { _outcomes.push(std::move(result)); },
                                    [this](const job_ptr& job) { return _job_calls.sink(job); }};
    worker_detail::job_pool _pool; ///< last: its threads stop before the rest goes
};

Worker::Worker(worker_options options)
    : _impl(std::make_unique<worker_impl>(nullptr, std::move(options))) {}
Worker::Worker(zmq::context_t& context, worker_options options)
    : _impl(std::make_unique<worker_impl>(&context, std::move(options))) {}
Worker::~Worker() = default;
void Worker::define_bound(std::string name, bound_handler handler) {
    _impl->define(std::move(name), std::move(handler));
}
std::vector<std::string> Worker::functions() const {
    return _impl->functions();
}
void Worker::run() {
    _impl->run();
}
void Worker::stop() {
    _impl->stop();
}
const worker_counters& Worker::counters() const {
    return _impl->counters;
}
const std::string& Worker::name() const {
    return _impl->_options.name;
}

} // namespace deferq
