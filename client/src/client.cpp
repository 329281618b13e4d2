#include "deferq/client.hpp"

#include "broker_message.hpp"

#include "deferq/broker_link.hpp"
#include "deferq/deadline_heap.hpp"
#include "deferq/endpoint.hpp"
#include "deferq/heartbeat.hpp"
#include "deferq/mailbox.hpp"
#include "deferq/random_id.hpp"

#include "deferq/log.hpp"

#include <spdlog/spdlog.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <future>
#include <mutex>
#include <queue>
#include <thread>
#include <unordered_map>
#include <utility>

namespace deferq {
namespace detail {
namespace {

using clock_type = std::chrono::steady_clock;
using namespace protocol;

/// The client's I/O thread as an executor: a mailbox of tasks, plus timers.
class loop_executor : public executor, public std::enable_shared_from_this<loop_executor> {
public:
    void post(std::function<void()> task) override {
        if (!post_internal(task)) task(); // closed: run inline, so callbacks still run exactly once
    }

    bool in_executor_thread() const override {
        return std::this_thread::get_id() == _thread.load();
    }

    void schedule(clock_type::duration delay, std::function<void()> task) override {
        auto when = clock_type::now() + delay;
        post_internal([self = shared_from_this(), when, task = std::move(task)]() mutable {
            self->_timers.push(timer{when, self->_timer_sequence++, std::move(task)});
        });
    }

    /// Queues a task for the I/O thread; false (task not queued) once closed.
    bool post_internal(std::function<void()> task) {
        posted item{nullptr, std::move(task)};
        return _tasks.push_unless_closed(item);
    }
    /// Queues a call for the I/O thread to start (no closure to allocate); false once closed.
    bool post_call(std::shared_ptr<pending_call> call) {
        posted item{std::move(call), nullptr};
        return _tasks.push_unless_closed(item);
    }
    /// Wakes the I/O thread with no task (it looks at its socket and its deadlines again).
    void wake() { _tasks.wake(); }

    // ---- I/O thread side
    // -------------------------------------------------------------------------

    void bind_thread() { _thread = std::this_thread::get_id(); }
    int fd() const { return _tasks.fd(); }

    /// Runs the tasks that wait, and `start(call)` for the calls, in the order they came.
    template <typename Start> void run_ready_tasks(Start&& start) {
        _tasks.take_all(_ready);
        run_all(_ready, start);
    }

    void run_due_timers(clock_type::time_point now) {
        while (!_timers.empty() && _timers.top().when <= now) {
            auto task = std::move(const_cast<timer&>(_timers.top()).task);
            _timers.pop();
            run_guarded(task);
        }
    }

    std::optional<clock_type::time_point> next_timer() const {
        if (_timers.empty()) return std::nullopt;
        return _timers.top().when;
    }

    /// No more queued tasks: runs those still waiting, drops timers; later posts run inline.
    template <typename Start> void close(Start&& start) {
        while (_tasks.take_all_or_close(_ready))
            run_all(_ready, start);
        while (!_timers.empty())
            _timers.pop();
        _thread = std::thread::id{};
    }

private:
    /// A task, or a call to start.
    struct posted {
        std::shared_ptr<pending_call> call;
        std::function<void()> task;
    };

    template <typename Start> static void run_all(std::deque<posted>& items, Start& start) {
        for (auto& item : items)
            if (item.call)
                run_guarded([&] { start(item.call); });
            else
                run_guarded(item.task);
        items.clear();
    }

    template <typename Task> static void run_guarded(Task&& task) {
        try {
            task();
        } catch (const std::exception& e) {
            log().error("deferq client: a task on the I/O thread threw: {}", e.what());
        } catch (...) {
            log().error("deferq client: a task on the I/O thread threw a non-standard exception");
        }
    }

    struct timer {
        clock_type::time_point when;
        std::uint64_t sequence;
        std::function<void()> task;
        bool operator>(const timer& other) const {
            return when != other.when ? when > other.when : sequence > other.sequence;
        }
    };

    mailbox<posted> _tasks;
    std::deque<posted> _ready; ///< I/O thread only: what run_ready_tasks() took
    std::atomic<std::thread::id> _thread{};
    std::priority_queue<timer, std::vector<timer>, std::greater<>> _timers; ///< I/O thread only
    std::uint64_t _timer_sequence = 0;
};

std::string hex(std::string_view bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

} // namespace

class client_core : public std::enable_shared_from_this<client_core>, private broker_message_sink {
public:
    client_core(zmq::context_t* shared_context, client_options options)
        : options(std::move(options)), routing_id(random_routing_id()),
          executor(std::make_shared<loop_executor>()) {
        if (!shared_context) _own_context = std::make_unique<zmq::context_t>();
        _context = shared_context ? shared_context : _own_context.get();
    }

    /// Starts the I/O thread and waits for its first connect, so that an endpoint libzmq refuses
    /// throws here (config_error), on the caller's thread, instead of ending the process there.
    void start() {
        std::promise<void> connected;
        auto first_connect = connected.get_future();
        _thread =
            std::thread([self = shared_from_this(), connected = std::move(connected)]() mutable {
                self->loop(connected);
            });
        try {
            first_connect.get();
        } catch (const zmq::error_t& e) {
            _thread.join();
            throw config_error("cannot connect to '" + options.broker + "': " + e.what());
        } catch (...) {
            _thread.join();
            throw;
        }
    }

    void stop() {
        _stopping = true;
        executor->post_internal([] {});
        if (_thread.joinable()) _thread.join();
    }

    std::uint64_t submit(std::shared_ptr<pending_call> call) {
        call->id = _next_id.fetch_add(1, std::memory_order_relaxed);
        auto id = call->id;
        bool idle = _pending_count.fetch_add(1, std::memory_order_relaxed) == 0;
        if (idle && send_now(call)) return id;
        if (!executor->post_call(call)) {
            _pending_count.fetch_sub(1, std::memory_order_relaxed);
            Failure failure(error_code::connection_lost, "the client is closed");
            call->resolve(nullptr, &failure);
        }
        return id;
    }

    /// A call made while the client has none in flight goes out from the caller's thread when the
    /// I/O thread is waiting (docs/architecture.md, "Threads"): no hand-over and no
    /// wake-up of the I/O thread for it. Calls made while others are in flight are handed over, so
    /// that the I/O thread sends them together (one BATCH per turn). False: hand it over.
    bool send_now(const std::shared_ptr<pending_call>& call) {
        if (executor->in_executor_thread()) return false; // a callback: the loop's turn
        std::unique_lock io(_io_mutex, std::try_to_lock);
        if (!io.owns_lock() || _stopping) return false; // the I/O thread is busy: it takes it
        start_call(call);
        _link->flush();
        // The socket's ZMQ_FD, which the I/O thread waits on, signals a change once: this thread's
        // calls on the socket may have taken that signal for an answer that came meanwhile. And
        // the I/O thread's wait was reckoned without this call's deadline.
        bool wake =
            _link->readable() || (call->deadline.linked() && call->deadline.when < _wakes_at);
        io.unlock();
        if (wake) executor->wake();
        return true;
    }

    void cancel(std::uint64_t id) {
        executor->post_internal([self = shared_from_this(), id] {
            if (self->take(id)) self->send_cancel(id);
        });
    }

    std::size_t pending() const { return _pending_count.load(std::memory_order_relaxed); }
    std::size_t armed_deadlines() const { return _armed_deadlines.load(std::memory_order_relaxed); }

    client_options options;
    const std::string routing_id;
    const std::shared_ptr<loop_executor> executor;

private:
    // ---- the loop
    // ---------------------------------------------------------------------------------

    void loop(std::promise<void>& connected) {
        executor->bind_thread();
        // Held for the whole turn; let go only while waiting, so that send_now() can send then.
        std::unique_lock io(_io_mutex);
        try {
            connect();
        } catch (...) {
            connected.set_exception(std::current_exception());
            return;
        }
        connected.set_value();
        while (!_stopping) {
            auto now = clock_type::now();
            auto wait = std::chrono::milliseconds{100};
            auto until = [&](clock_type::time_point when) {
                auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(when - now) +
                          std::chrono::milliseconds{1};
                wait = std::clamp(ms, std::chrono::milliseconds{0}, wait);
            };
            if (auto next = _deadlines.next()) until(*next);
            if (auto next = executor->next_timer()) until(*next);
            bool tasks = false;
            try {
                tasks = wait_for_work(io, now, wait);
                if (_link->readable()) // an empty receive costs libzmq a syscall
                    for (int i = 0; i < 256 && receive_frames(_link->socket(), _frames); ++i)
                        on_broker_message();
            } catch (const zmq::error_t& e) {
                log().error("deferq client: socket error: {}", e.what());
            }
            if (tasks) // the eventfd is set whenever tasks wait
                executor->run_ready_tasks([this](const auto& call) { start_call(call); });
            now = clock_type::now();
            _link->monitor().loop_tick(now);
            expire_calls(now);
            executor->run_due_timers(now);
            _link->flush(); // what this turn sent goes out as one BATCH (§3a)
            keep_alive(now);
        }
        shut_down();
    }

    /// Waits for input or tasks (true: tasks wait), the lock let go meanwhile: send_now() may send.
    bool wait_for_work(std::unique_lock<std::mutex>& io, clock_type::time_point now,
                       std::chrono::milliseconds wait) {
        int fds[] = {executor->fd()};
        _wakes_at = now + wait;
        return _link->wait(io, fds, wait) != 0;
    }

    void shut_down() {
        auto pending = std::move(_pending);
        _pending.clear();
        _pending_count = 0;
        for (auto& [id, call] : pending)
            _deadlines.cancel(*call);
        note_deadlines();
        // Always: the broker forgets this client now (and drops what it still holds for it)
        // instead of expiring it later, which would count a clean close as clients_expired.
        _link->send_command(command::disconnect);
        std::vector<std::shared_ptr<pending_call>> calls;
        for (auto& [id, call] : pending)
            calls.push_back(call);
        std::sort(calls.begin(), calls.end(),
                  [](const auto& a, const auto& b) { return a->id < b->id; });
        Failure failure(error_code::connection_lost,
                        "the client was closed before a result arrived");
        for (auto& call : calls)
            call->resolve(nullptr, &failure);
        executor->close([this](const auto& call) { start_call(call); });
        // Calls made by callbacks during close() were failed by start_call.
        _link->close(std::chrono::milliseconds{200});
    }

    /// A new socket to the broker (the link keeps the old one when this throws zmq::error_t).
    void connect() {
        if (!_link)
            _link.emplace(*_context, options.broker, client_protocol, options.curve_keys,
                          options.curve_server_key);
        _link->connect(routing_id); // the caller resends every pending call on the new socket
        _link->send_command(command::heartbeat);
    }

    void send_request(const pending_call& call) {
        if (call.arguments.size() <= max_batched_payload) {
            auto& batch = _link->record();
            batch.begin(command::request, 4);
            batch.u64(call.id);
            batch.bytes(call.function);
            batch.options(call.options);
            batch.bytes(view(call.arguments));
            return;
        }
        zmq::message_t arguments;
        arguments.copy(const_cast<zmq::message_t&>(call.arguments)); // shares the buffer
        request_message(_link->message(), call.id, call.function, call.options,
                        std::move(arguments));
        _link->send();
    }

    void send_cancel(std::uint64_t id) {
        auto& batch = _link->record();
        batch.begin(command::cancel, 1);
        batch.u64(id);
    }

    void start_call(const std::shared_ptr<pending_call>& call) {
        auto refuse = [&](const Failure& failure) {
            _pending_count.fetch_sub(1, std::memory_order_relaxed);
            call->resolve(nullptr, &failure);
        };
        if (_stopping) return refuse(Failure(error_code::connection_lost, "the client is closing"));
        if (_refused) return refuse(*_refused);
        if (auto failure = too_large(*call)) return refuse(*failure);
        if (call->options.timeout_ms) {
            _deadlines.schedule(*call, clock_type::now() +
                                           std::chrono::milliseconds{call->options.timeout_ms});
            note_deadlines();
        }
        _pending.emplace(call->id, call);
        send_request(*call);
    }

    void resend_pending(std::string_view why) {
        if (_pending.empty()) return;
        log().info("deferq client: {}; resending {} pending call(s)", why, _pending.size());
        std::vector<std::shared_ptr<pending_call>> calls;
        for (auto& [id, call] : _pending)
            calls.push_back(call);
        std::sort(calls.begin(), calls.end(),
                  [](const auto& a, const auto& b) { return a->id < b->id; });
        auto now = clock_type::now();
        // A broker that adopts jobs waits for its workers' reports before it runs a resent call
        // again (docs/protocol.md §3c).
        bool resent = (_link->monitor().features() & broker_features::adopts_jobs) != 0;
        for (auto& call : calls) {
            call->options.resent = resent;
            if (call->deadline.linked()) {
                // The broker restarts the deadline from the time it receives the request.
                auto left =
                    std::chrono::duration_cast<std::chrono::milliseconds>(call->deadline.when - now)
                        .count();
                call->options.timeout_ms =
                    static_cast<std::uint32_t>(std::max<std::int64_t>(1, left));
            }
            send_request(*call);
        }
    }

    /// Ends the call with this id (if still pending) and returns it.
    std::shared_ptr<pending_call> take(std::uint64_t id) {
        auto it = _pending.find(id);
        if (it == _pending.end()) return nullptr;
        auto call = std::move(it->second);
        _pending.erase(it);
        _pending_count.fetch_sub(1, std::memory_order_relaxed);
        _deadlines.cancel(*call); // the call ended: its deadline goes with it
        note_deadlines();
        // Its arguments go now, not with the Deferred (the same object, which the caller may keep
        // long after): resolve() lets them go too, but a cancelled call is not resolved here.
        call->arguments = zmq::message_t();
        return call;
    }

    void expire_calls(clock_type::time_point now) {
        while (auto* due = _deadlines.pop_due(now)) {
            auto id = due->id;
            auto call = take(id);
            if (!call) continue;
            send_cancel(id);
            Failure failure(error_code::timeout, "no result from '" + call->function + "' within " +
                                                     std::to_string(call->timeout_ms) + " ms");
            call->resolve(nullptr, &failure);
        }
    }

    void keep_alive(clock_type::time_point now) {
        if (_link->keep_alive(now)) {
            log().warn("deferq client: broker {} silent for {} ms, reconnecting", options.broker,
                       _link->monitor().silence(now).count());
            try {
                connect();
            } catch (const zmq::error_t& e) {
                // Out of descriptors, say: keep the old socket and try again after a backoff.
                log().error("deferq client: cannot reconnect to {}: {}", options.broker, e.what());
                _link->monitor().connected(now);
                return;
            }
            // Resent when a broker answers on the new connection: then it is known whether it
            // adopts jobs (the calls are marked resent for it), and a broker that does not serve
            // (a passive standby) is not sent calls it would drop.
            _resend_when_heard = true;
        }
    }

    // ---- from the broker
    // --------------------------------------------------------------------------

    void on_broker_message() { read_broker_message(_frames, _batch_in, *this); }

    void on_heard() override { _link->monitor().heard(clock_type::now()); }

    void on_reply(std::uint64_t correlation_id, const raw_reply& reply) override {
        auto call = take(correlation_id);
        if (!call) return; // cancelled, timed out or answered already: fire once
        call->resolve(&reply, nullptr);
    }

    void on_error(std::uint64_t correlation_id, const Failure& failure) override {
        if (correlation_id == 0) return on_refused(failure);
        auto call = take(correlation_id);
        if (!call) return;
        call->resolve(nullptr, &failure);
    }

    void on_progress(std::uint64_t correlation_id, double fraction,
                     std::string_view note) override {
        if (auto it = _pending.find(correlation_id); it != _pending.end())
            it->second->progress(fraction, note);
    }

    void on_heartbeat(const broker_heartbeat& heartbeat) override {
        bool restarted = _link->monitor().announced(heartbeat);
        fail_too_large_pending(); // sent before the broker announced a lower limit
        if (std::exchange(_resend_when_heard, false))
            resend_pending("broker answered after its DISCONNECT");
        else if (restarted)
            resend_pending("broker restarted");
    }

    void on_disconnect() override {
        // The broker is shutting down, or it expired this client. Resending at once could hand the
        // calls to a broker that is exiting: the new connection may reach it before it closes its
        // socket, and what it reads then is lost. A broker that has shut down sends nothing more,
        // so the first HEARTBEAT on the new connection comes from one that serves (a new
        // instance, or this one when it only forgot us): the calls go then (docs/protocol.md §2).
        log().info("deferq client: broker is going away; reconnecting");
        _link->monitor().forget_instance();
        connect();
        _resend_when_heard = true; // calls made meanwhile too: the broker drops duplicates
    }

    /// An ERROR about call 0: the broker refuses this connection (this is not its client endpoint,
    /// docs/protocol.md §4). Every pending call fails with it, and every later call at once.
    void on_refused(const Failure& failure) {
        if (!_refused)
            log().error("deferq client: broker {} refused the connection: {}", options.broker,
                        failure.message());
        _refused = failure;
        std::vector<std::uint64_t> ids;
        for (auto& [id, call] : _pending)
            ids.push_back(id);
        for (auto id : ids)
            if (auto call = take(id)) call->resolve(nullptr, &failure);
    }

    /// The failure of a call whose arguments exceed the broker's message size limit, which would
    /// drop the connection instead of answering (docs/protocol.md §4, Limits).
    std::optional<Failure> too_large(const pending_call& call) const {
        auto limit = _link->monitor().max_message_size();
        if (call.arguments.size() <= limit) return std::nullopt;
        return Failure(error_code::too_large, "the arguments of '" + call.function + "' are " +
                                                  std::to_string(call.arguments.size()) +
                                                  " bytes; the broker takes messages of at most " +
                                                  std::to_string(limit) +
                                                  " bytes (its --max-message-size)");
    }

    void fail_too_large_pending() {
        std::vector<std::uint64_t> oversized;
        for (auto& [id, call] : _pending)
            if (too_large(*call)) oversized.push_back(id);
        for (auto id : oversized)
            if (auto call = take(id)) {
                auto failure = *too_large(*call);
                call->resolve(nullptr, &failure);
            }
    }

    void on_bad_message(std::string_view reason) override {
        log().warn("deferq client: dropped a bad message from the broker: {}", reason);
    }

    /// Held by the I/O thread but while it waits, and by send_now(): the socket, the pending calls
    /// and their deadlines. Other threads only try it: nobody blocks on the I/O thread's turn.
    std::mutex _io_mutex;
    /// When the I/O thread's current wait ends: read by send_now(), which holds the lock only while
    /// the I/O thread waits (min() before its first wait).
    clock_type::time_point _wakes_at = clock_type::time_point::min();
    std::optional<Failure> _refused; ///< the broker refused this connection (wrong endpoint)
    std::unique_ptr<zmq::context_t> _own_context;
    zmq::context_t* _context;
    std::thread _thread;
    std::atomic<bool> _stopping{false};
    bool _resend_when_heard = false; ///< a DISCONNECT came: resend at the next HEARTBEAT
    std::atomic<std::uint64_t> _next_id{1};
    std::atomic<std::size_t> _pending_count{0};
    std::optional<broker_link> _link; ///< made at the first connect()
    std::vector<zmq::message_t> _frames;
    protocol::batch_reader _batch_in; ///< the BATCH being handled
    std::unordered_map<std::uint64_t, std::shared_ptr<pending_call>> _pending;
    deadline_heap<pending_call, &pending_call::deadline> _deadlines; ///< I/O thread only
    std::atomic<std::size_t> _armed_deadlines{0};                    ///< its size, for any thread
    void note_deadlines() {
        _armed_deadlines.store(_deadlines.size(), std::memory_order_relaxed);
        if (_deadlines.empty()) _deadlines.shrink();
    }
};

} // namespace detail

namespace {

client_options checked(client_options options) {
    check_endpoint(options.broker, endpoint_use::connect);
    if (options.curve_keys) curve::check_client_keys(*options.curve_keys, options.curve_server_key);
    return options;
}

} // namespace

Client::Client(client_options options)
    : _core(std::make_shared<detail::client_core>(nullptr, checked(std::move(options)))) {
    _core->start();
}

Client::Client(zmq::context_t& context, client_options options)
    : _core(std::make_shared<detail::client_core>(&context, checked(std::move(options)))) {
    _core->start();
}

Client::~Client() {
    if (_core->executor->in_executor_thread()) {
        log().critical(
            "deferq::Client destroyed on its own I/O thread (from a callback): aborting");
        std::abort();
    }
    _core->stop();
}

std::size_t Client::pending() const {
    return _core->pending();
}
std::size_t Client::armed_deadlines() const {
    return _core->armed_deadlines();
}
std::string Client::id() const {
    return detail::hex(_core->routing_id);
}
std::chrono::milliseconds Client::default_timeout() const {
    return _core->options.default_timeout;
}
std::shared_ptr<detail::executor> Client::runner() const {
    return _core->executor;
}
std::weak_ptr<detail::client_core> Client::core() const {
    return _core;
}

std::uint64_t Client::submit(std::shared_ptr<detail::pending_call> call) {
    return _core->submit(std::move(call));
}

void Client::cancel_call(const std::weak_ptr<detail::client_core>& core,
                         std::uint64_t correlation_id) {
    if (auto alive = core.lock()) alive->cancel(correlation_id);
}

} // namespace deferq
