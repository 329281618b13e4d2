#pragma once
/// C++20 coroutines over Deferreds: `co_await deferred` inside a deferq::Task<T>.
///
///     deferq::Task<double> total(deferq::Client& client) {
///         auto a = client.call<double>("calculate", 42, 47);   // all three start at once
///         auto b = client.call<double>("calculate", 52, 58);
///         double sum = co_await a;
///         sum += co_await b;
///         co_return sum;
///     }
///     double t = total(client).deferred().get();
///
/// A Task starts at once and runs until its first co_await; it resumes where the awaited Deferred
/// fires (for a Client's calls: on the client's I/O thread, so do not call get() inside it).
/// A Failure arrives in the coroutine as an exception; one that escapes fails the Task's Deferred.

#include "deferq/deferred.hpp"

#include <coroutine>
#include <optional>
#include <type_traits>
#include <variant>

namespace deferq {

namespace detail {

template <typename T> class deferred_awaiter {
public:
    explicit deferred_awaiter(std::shared_ptr<state<T>> shared) : _state(std::move(shared)) {}

    bool await_ready() const noexcept { return false; }

    void await_suspend(std::coroutine_handle<> handle) {
        _state->add_step([this, handle](state<T>& self, typename state<T>::result_type& result) {
            if (result.index() == 1)
                self.observed = true; // the coroutine receives it as an exception
            _result.emplace(result);
            handle.resume(); // may finish the coroutine: touch nothing of this awaiter afterwards
            return std::shared_ptr<state<T>>();
        });
    }

    T await_resume() {
        if (_result->index() == 1) throw std::get<1>(*_result);
        return std::get<0>(std::move(*_result));
    }

private:
    std::shared_ptr<state<T>> _state;
    std::optional<typename state<T>::result_type> _result;
};

template <typename T> struct task_promise_result {
    Deferred<T> deferred;
    void return_value(T value) { deferred.callback(std::move(value)); }
};
struct task_promise_void {
    Deferred<std::monostate> deferred;
    void return_void() { deferred.callback(std::monostate{}); }
};

} // namespace detail

/// Awaits a Deferred: gives its value, or throws its Failure.
template <typename T> detail::deferred_awaiter<T> operator co_await(Deferred<T> deferred) {
    return detail::deferred_awaiter<T>(deferred.shared_state());
}

/// A coroutine whose result is a Deferred. Task<void> gives Deferred<std::monostate>.
template <typename T = void> class Task {
public:
    using value_type = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

    struct promise_type : std::conditional_t<std::is_void_v<T>, detail::task_promise_void,
                                             detail::task_promise_result<value_type>> {
        Task get_return_object() { return Task(this->deferred); }
        std::suspend_never initial_suspend() noexcept { return {}; }
        std::suspend_never final_suspend() noexcept { return {}; }
        void unhandled_exception() {
            this->deferred.errback(Failure::from_exception(std::current_exception()));
        }
    };

    /// The Deferred that fires with the coroutine's co_return value (or its escaped failure).
    Deferred<value_type> deferred() const { return _deferred; }

    /// Lets a Task co_await another Task.
    friend detail::deferred_awaiter<value_type> operator co_await(Task task) {
        return detail::deferred_awaiter<value_type>(task._deferred.shared_state());
    }

private:
    explicit Task(Deferred<value_type> deferred) : _deferred(std::move(deferred)) {}
    Deferred<value_type> _deferred;
};

} // namespace deferq
