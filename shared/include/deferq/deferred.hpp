#pragma once
/// deferq::Deferred<T>: the result of a call that has not arrived yet — Twisted's Deferred, typed.
///
/// A Deferred fires once, with a value or a Failure, and then runs its chain of callbacks and
/// errbacks in order; each link sees the result the previous one left (docs/deferred.md):
///   - add_callback(f): f(T) returning void observes, returning T replaces the value, returning
///     Deferred<T> is waited for and its result taken; a throw moves the chain to the errback side.
///   - add_errback(f): f(const Failure&) returning void observes (the failure passes on), returning
///   T
///     recovers, returning Deferred<T> is waited for; a throw replaces the failure.
///   - then(f): a new Deferred of f's result type (flattened when f returns a Deferred).
/// Callbacks of a Deferred made by a Client run on that client's I/O thread, one at a time; a
/// callback added after the result arrived runs there too, at once. Every method is safe from any
/// thread.

#include "deferq/failure.hpp"
#include "deferq/inline_function.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace deferq {

template <typename T> class Deferred;

namespace detail {

/// Where callbacks run. The client's I/O loop is one; a Deferred without one runs callbacks inline
/// on the thread that fires it or adds them.
class executor {
public:
    virtual ~executor() = default;
    /// Runs `task` on the executor's thread; after the executor closed, runs it inline.
    virtual void post(std::function<void()> task) = 0;
    virtual bool in_executor_thread() const = 0;
    /// Runs `task` on the executor's thread after `delay` (dropped if the executor closes first).
    virtual void schedule(std::chrono::steady_clock::duration delay,
                          std::function<void()> task) = 0;
};

/// Logs "Unhandled error in Deferred: <failure>" at error level.
void log_unhandled(const Failure& failure) noexcept;

template <typename T> struct deferred_traits : std::false_type {};
template <typename T> struct deferred_traits<Deferred<T>> : std::true_type {
    using value_type = T;
};

/// The value type of a then() result: U for both U and Deferred<U>.
template <typename R> struct unwrap_deferred { using type = R; };
template <typename U> struct unwrap_deferred<Deferred<U>> { using type = U; };

/// Marks "no handler on this side" in add_callbacks.
struct pass_through {};

/// A first-in first-out queue that keeps an item pushed while it is empty inline, and allocates
/// only for more (a std::deque allocates two blocks when it is made, and most Deferreds have one
/// or two links: one state per call would pay them).
template <typename T> class fifo {
public:
    bool empty() const { return !_inline_used && _head == _items.size(); }
    void push_back(T item) {
        if (empty())
            _inline = std::move(item), _inline_used = true;
        else
            _items.push_back(std::move(item));
    }
    /// The oldest item: the inline one when it is used (it came while the queue was empty).
    T& front() { return _inline_used ? _inline : _items[_head]; }
    void pop_front() {
        if (_inline_used) {
            _inline = T();
            _inline_used = false;
            return;
        }
        _items[_head] = T();
        if (++_head == _items.size()) {
            _items.clear();
            _head = 0;
        }
    }

private:
    T _inline {};
    bool _inline_used = false;
    std::vector<T> _items;
    std::size_t _head = 0;
};

template <typename T> class state : public std::enable_shared_from_this<state<T>> {
public:
    using result_type = std::variant<T, Failure>;
    /// A link of the chain: may change the result; returns a Deferred's state to wait for, or null.
    /// Up to 48 bytes of closure (two small callbacks) live in the link itself.
    using step = inline_function<std::shared_ptr<state>(state&, result_type&), 48>;
    using progress_handler = std::function<void(double, std::string_view)>;

    explicit state(std::shared_ptr<executor> runner = nullptr) : _executor(std::move(runner)) {}

    ~state() {
        if (_fired && _result && _result->index() == 1 && !observed)
            log_unhandled(std::get<1>(*_result));
    }

    /// Fires with a result; false when it had fired already.
    bool resolve(result_type result) {
        {
            std::lock_guard lock(_mutex);
            if (_fired) return false;
            _fired = true;
            _result.emplace(std::move(result));
            observed = false;
            _canceller = nullptr;
            _progress.clear();
        }
        run_steps();
        return true;
    }

    void add_step(step link) {
        {
            std::lock_guard lock(_mutex);
            _steps.push_back(std::move(link));
        }
        run_steps();
    }

    /// Cancels an unfired Deferred: runs its canceller (which tells the broker), then fails it with
    /// `code` (cancelled, or timeout for add_timeout). No effect once fired.
    void cancel(error_code code = error_code::cancelled,
                std::string message = "cancelled by the caller") {
        std::function<void()> canceller;
        {
            std::lock_guard lock(_mutex);
            if (_fired) return;
            canceller = std::move(_canceller);
        }
        if (canceller) canceller();
        resolve(Failure(code, std::move(message)));
    }

    void set_canceller(std::function<void()> canceller) {
        std::lock_guard lock(_mutex);
        if (!_fired) _canceller = std::move(canceller);
    }

    void add_progress_handler(progress_handler handler) {
        std::lock_guard lock(_mutex);
        if (!_fired) _progress.push_back(std::move(handler));
    }

    /// Called on the executor thread by the client when the worker reports progress.
    void notify_progress(double fraction, std::string_view note) {
        std::vector<progress_handler> handlers;
        {
            std::lock_guard lock(_mutex);
            handlers = _progress;
        }
        for (auto& handler : handlers) {
            try {
                handler(fraction, note);
            } catch (...) {
                // A progress handler's failure must not break the call.
            }
        }
    }

    bool fired() const {
        std::lock_guard lock(_mutex);
        return _fired;
    }

    /// Deferred handles that refer to this state (copies count, moves do not).
    void add_handle() { _handles.fetch_add(1, std::memory_order_relaxed); }
    void drop_handle() { _handles.fetch_sub(1, std::memory_order_acq_rel); }
    /// Someone holds the state itself (shared_state()) and may add steps without a handle.
    void mark_exported() { _exported.store(true, std::memory_order_release); }

    /// Called by a running step: true when no step can ever follow it, so that it may take the
    /// value. No step is queued after it, nobody holds the state outside a handle, and at most one
    /// handle exists (the one of the caller blocked in `get() &&`, which adds nothing meanwhile).
    bool last_step_of_last_handle() const {
        std::lock_guard lock(_mutex);
        // The count first: reading the drop of the last other handle makes visible whatever it
        // did before (mark_exported()).
        return _handles.load(std::memory_order_acquire) <= 1 &&
               !_exported.load(std::memory_order_acquire) && _steps.empty();
    }

    const std::shared_ptr<executor>& runner() const { return _executor; }

    /// True once a handler took responsibility for the current failure (read and written only by
    /// the thread running the chain).
    bool observed = false;

private:
    void run_steps() {
        // Declared before the lock: the last reference may go only after the mutex is released.
        std::shared_ptr<state> self;
        std::unique_lock lock(_mutex);
        if (!_fired || _running || _paused || _steps.empty()) return;
        if (_executor && !_executor->in_executor_thread()) {
            lock.unlock();
            _executor->post([self = this->shared_from_this()] { self->run_steps(); });
            return;
        }
        _running = true;
        // A link may release the last outside handle to this Deferred (a resumed coroutine that
        // finishes, a callback that drops it): the running chain keeps itself alive.
        self = this->shared_from_this();
        while (!_steps.empty() && !_paused) {
            step link = std::move(_steps.front());
            _steps.pop_front();
            lock.unlock();
            std::shared_ptr<state> inner;
            try {
                inner = link(*this, *_result);
            } catch (...) {
                _result.emplace(Failure::from_exception(std::current_exception()));
                observed = false;
            }
            link = nullptr; // release what the link captured outside the lock
            if (inner) {
                lock.lock();
                _paused = true;
                lock.unlock();
                inner->add_step(
                    [outer = this->shared_from_this()](state& from, result_type& result) {
                        if (result.index() == 1)
                            from.observed = true; // the outer chain now owns it
                        outer->resume(result);
                        return std::shared_ptr<state>();
                    });
            }
            lock.lock();
        }
        _running = false;
    }

    void resume(result_type result) {
        {
            std::lock_guard lock(_mutex);
            _result.emplace(std::move(result));
            observed = false;
            _paused = false;
        }
        run_steps();
    }

    mutable std::mutex _mutex;
    bool _fired = false;
    bool _running = false;
    bool _paused = false;
    std::optional<result_type> _result;
    fifo<step> _steps;
    std::shared_ptr<executor> _executor;
    std::function<void()> _canceller;
    std::vector<progress_handler> _progress;
    std::atomic<int> _handles{0};
    std::atomic<bool> _exported{false};
};

/// Applies a value handler to the value side of a result.
template <typename T, typename F>
std::shared_ptr<state<T>> apply_on_value(F& handler, typename state<T>::result_type& result) {
    using returned = std::invoke_result_t<F&, T&>;
    auto& value = std::get<0>(result);
    if constexpr (std::is_void_v<returned>) {
        handler(value);
        return nullptr;
    } else if constexpr (deferred_traits<returned>::value) {
        static_assert(
            std::is_same_v<typename deferred_traits<returned>::value_type, T>,
            "a callback on Deferred<T> may return Deferred<T>; use then() to change the type");
        return handler(value).shared_state();
    } else {
        static_assert(std::is_convertible_v<returned, T>,
                      "a callback on Deferred<T> returns void or T; use then() to change the type");
        T replaced = handler(value);
        result.template emplace<0>(std::move(replaced));
        return nullptr;
    }
}

/// Applies a failure handler to the failure side of a result.
template <typename T, typename E>
std::shared_ptr<state<T>> apply_on_failure(E& handler, typename state<T>::result_type& result) {
    using returned = std::invoke_result_t<E&, const Failure&>;
    const auto& failure = std::get<1>(result);
    if constexpr (std::is_void_v<returned>) {
        handler(failure);
        return nullptr;
    } else if constexpr (deferred_traits<returned>::value) {
        static_assert(std::is_same_v<typename deferred_traits<returned>::value_type, T>,
                      "an errback on Deferred<T> may return Deferred<T>");
        return handler(failure).shared_state();
    } else {
        static_assert(std::is_convertible_v<returned, T>,
                      "an errback on Deferred<T> returns void or T (recovers)");
        T recovered = handler(failure);
        result.template emplace<0>(std::move(recovered));
        return nullptr;
    }
}

} // namespace detail

template <typename T> class Deferred {
    static_assert(!std::is_void_v<T> && !std::is_reference_v<T>, "Deferred<T> holds a value type");

public:
    using value_type = T;
    using result_type = typename detail::state<T>::result_type;

    /// A new Deferred that nobody has fired; fire it with callback() or errback().
    Deferred() : Deferred(std::make_shared<detail::state<T>>()) {}
    explicit Deferred(std::shared_ptr<detail::state<T>> shared) : _state(std::move(shared)) {
        if (_state) _state->add_handle();
    }
    /// Copies are handles of the same Deferred (as in Twisted: one chain, one result).
    Deferred(const Deferred& other) : Deferred(other._state) {}
    Deferred(Deferred&& other) noexcept = default;
    Deferred& operator=(const Deferred& other) {
        Deferred copy(other);
        std::swap(_state, copy._state);
        return *this;
    }
    Deferred& operator=(Deferred&& other) noexcept {
        Deferred taken(std::move(other));
        std::swap(_state, taken._state);
        return *this;
    }
    ~Deferred() {
        if (_state) _state->drop_handle();
    }

    /// An already-fired Deferred.
    static Deferred succeed(T value) {
        Deferred d;
        d.callback(std::move(value));
        return d;
    }
    static Deferred fail(Failure failure) {
        Deferred d;
        d.errback(std::move(failure));
        return d;
    }

    /// Fires with a value. Throws std::logic_error when it had fired already (Twisted's
    /// AlreadyCalledError).
    void callback(T value) {
        if (!_state->resolve(result_type(std::in_place_index<0>, std::move(value))))
            throw std::logic_error("Deferred already fired");
    }
    /// Fires with a failure. Throws std::logic_error when it had fired already.
    void errback(Failure failure) {
        if (!_state->resolve(result_type(std::in_place_index<1>, std::move(failure))))
            throw std::logic_error("Deferred already fired");
    }

    /// Adds a callback and an errback as one link: exactly one of them runs.
    template <typename F, typename E> Deferred& add_callbacks(F on_value, E on_failure) {
        _state->add_step([on_value = std::move(on_value), on_failure = std::move(on_failure)](
                             detail::state<T>& self,
                             result_type& result) mutable -> std::shared_ptr<detail::state<T>> {
            if (result.index() == 0) {
                if constexpr (std::is_same_v<F, detail::pass_through>)
                    return nullptr;
                else
                    return detail::apply_on_value<T>(on_value, result);
            }
            if constexpr (std::is_same_v<E, detail::pass_through>)
                return nullptr;
            else {
                self.observed = true;
                return detail::apply_on_failure<T>(on_failure, result);
            }
        });
        return *this;
    }

    template <typename F> Deferred& add_callback(F on_value) {
        return add_callbacks(std::move(on_value), detail::pass_through{});
    }
    template <typename E> Deferred& add_errback(E on_failure) {
        return add_callbacks(detail::pass_through{}, std::move(on_failure));
    }

    /// Runs `handler` whatever the outcome: either a no-argument callable (a "finally"; the result
    /// passes on) or one callable with both T& and const Failure& (a generic lambda).
    template <typename F> Deferred& add_both(F handler) {
        if constexpr (std::is_invocable_v<F&>) {
            return add_callbacks([handler](T&) mutable { handler(); },
                                 [handler](const Failure&) mutable { handler(); });
        } else {
            return add_callbacks(handler, handler);
        }
    }

    /// A new Deferred of f's result type: f(T) → U gives Deferred<U>, f(T) → Deferred<U> too
    /// (flattened). A failure here, or a throw from f, fails the new Deferred. This Deferred's
    /// chain goes on with its result unchanged. Cancelling the new Deferred cancels this one.
    template <typename F> auto then(F f) {
        using returned = std::invoke_result_t<F&, T&>;
        static_assert(!std::is_void_v<returned>,
                      "then(f) needs f to return a value; use add_callback to observe");
        using U = typename detail::unwrap_deferred<returned>::type;
        auto child = std::make_shared<detail::state<U>>(_state->runner());
        child->set_canceller([weak = std::weak_ptr<detail::state<T>>(_state)] {
            if (auto parent = weak.lock()) parent->cancel();
        });
        _state->add_step([f = std::move(f), child](detail::state<T>& self,
                                                   result_type& result) mutable {
            using child_result = typename detail::state<U>::result_type;
            if (result.index() == 1) {
                self.observed = true; // the child Deferred now carries it
                child->resolve(child_result(std::in_place_index<1>, std::get<1>(result)));
                return std::shared_ptr<detail::state<T>>();
            }
            try {
                if constexpr (detail::deferred_traits<returned>::value) {
                    returned inner = f(std::get<0>(result));
                    inner.shared_state()->add_step(
                        [child](detail::state<U>& from, child_result& inner_result) {
                            if (inner_result.index() == 1) from.observed = true;
                            child->resolve(inner_result);
                            return std::shared_ptr<detail::state<U>>();
                        });
                } else {
                    child->resolve(child_result(std::in_place_index<0>, f(std::get<0>(result))));
                }
            } catch (...) {
                child->resolve(child_result(std::in_place_index<1>,
                                            Failure::from_exception(std::current_exception())));
            }
            return std::shared_ptr<detail::state<T>>();
        });
        return Deferred<U>(child);
    }

    /// Calls `handler(fraction, note)` when the worker reports progress (best effort, on the
    /// client's I/O thread). No effect once fired.
    template <typename F> Deferred& on_progress(F handler) {
        _state->add_progress_handler(std::move(handler));
        return *this;
    }

    /// Cancels the call: the broker drops it if queued, the worker sees JobContext::cancelled() if
    /// it runs; this Deferred fails with `cancelled` at once. No effect once fired.
    void cancel() { _state->cancel(); }

    /// Fails this Deferred with `timeout` (and cancels the call) unless it fires within `timeout`.
    /// Needs a Deferred made by a Client (the timer runs on its I/O thread).
    Deferred& add_timeout(std::chrono::steady_clock::duration timeout) {
        const auto& runner = _state->runner();
        if (!runner) throw std::logic_error("add_timeout needs a Deferred made by a Client");
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count();
        runner->schedule(timeout, [weak = std::weak_ptr<detail::state<T>>(_state), ms] {
            if (auto shared = weak.lock())
                shared->cancel(error_code::timeout,
                               "no result within " + std::to_string(ms) + " ms");
        });
        return *this;
    }

    /// Blocks until fired; returns the value or throws the Failure. Refused (std::logic_error) on
    /// the client's I/O thread, where it could never return. On a handle the caller keeps
    /// (`d.get()`) the value is copied: the chain goes on with it, and the Deferred may be read
    /// again.
    T get() & { return wait(std::nullopt, false); }
    /// On a handle given up (`client.call<T>(…).get()`, `std::move(d).get()`) the value is moved
    /// out, not copied, when no callback can come after: no other handle of this Deferred exists,
    /// none of it was handed to a combinator, a Task or a chain (shared_state()), and no callback
    /// was added after get(). Otherwise it is copied, as by `get() &`. The handle is moved-from
    /// afterwards.
    T get() && { return wait(std::nullopt, true); }
    /// As get(), but throws Failure(timeout) when nothing arrived within `timeout` (the call goes
    /// on).
    T get(std::chrono::steady_clock::duration timeout) & { return wait(timeout, false); }
    T get(std::chrono::steady_clock::duration timeout) && { return wait(timeout, true); }

    bool called() const { return _state->fired(); }

    /// The state itself, for the library's chains, combinators and Tasks: whoever holds it may add
    /// steps without a handle, so `get() &&` copies from then on.
    const std::shared_ptr<detail::state<T>>& shared_state() const {
        _state->mark_exported();
        return _state;
    }

private:
    T wait(std::optional<std::chrono::steady_clock::duration> timeout, bool may_take) {
        const auto& runner = _state->runner();
        if (runner && runner->in_executor_thread())
            throw std::logic_error("Deferred::get() on the client's I/O thread would deadlock; add "
                                   "a callback instead");
        struct waiter {
            std::mutex mutex;
            std::condition_variable ready;
            std::optional<result_type> result;
        };
        auto shared = std::make_shared<waiter>();
        _state->add_step([shared, may_take](detail::state<T>& self, result_type& result) {
            if (result.index() == 1) self.observed = true; // get() throws it to the caller
            bool take = may_take && result.index() == 0 && self.last_step_of_last_handle();
            {
                std::lock_guard lock(shared->mutex);
                if (take)
                    shared->result.emplace(std::move(result));
                else
                    shared->result.emplace(result);
            }
            shared->ready.notify_all();
            return std::shared_ptr<detail::state<T>>();
        });
        std::unique_lock lock(shared->mutex);
        if (timeout) {
            if (!shared->ready.wait_for(lock, *timeout, [&] { return shared->result.has_value(); }))
                throw Failure(
                    error_code::timeout,
                    "get() gave up after " +
                        std::to_string(
                            std::chrono::duration_cast<std::chrono::milliseconds>(*timeout)
                                .count()) +
                        " ms");
        } else {
            shared->ready.wait(lock, [&] { return shared->result.has_value(); });
        }
        if (shared->result->index() == 1) throw std::get<1>(*shared->result);
        return std::get<0>(std::move(*shared->result));
    }

    std::shared_ptr<detail::state<T>> _state;
};

} // namespace deferq
