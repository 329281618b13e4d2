#pragma once
/// Combinators over many Deferreds: gather_results, deferred_list, race (docs/deferred.md).
/// Each returns a new Deferred that runs its callbacks where its inputs' do (the client's I/O
/// thread).

#include "deferq/deferred.hpp"

#include <cstddef>
#include <mutex>
#include <optional>
#include <variant>
#include <vector>

namespace deferq {

namespace detail {

template <typename T>
std::shared_ptr<executor> runner_of(const std::vector<Deferred<T>>& deferreds) {
    return deferreds.empty() ? nullptr : deferreds.front().shared_state()->runner();
}

/// Cancels every input that is still alive (weakly held, so combinators never keep calls alive).
template <typename T> class input_set {
public:
    explicit input_set(const std::vector<Deferred<T>>& deferreds) {
        for (const auto& d : deferreds)
            _inputs.push_back(d.shared_state());
    }
    void cancel_all(std::optional<std::size_t> except = std::nullopt) const {
        for (std::size_t i = 0; i < _inputs.size(); ++i)
            if (i != except)
                if (auto input = _inputs[i].lock()) input->cancel();
    }

private:
    std::vector<std::weak_ptr<state<T>>> _inputs;
};

} // namespace detail

/// Fires with every value, in input order, once all succeed; fails with the first failure (the
/// others are then cancelled). With `consume_errors`, failures of the inputs count as handled here
/// (they are not also logged as unhandled). Cancelling the result cancels every input.
template <typename T>
Deferred<std::vector<T>> gather_results(std::vector<Deferred<T>> deferreds,
                                        bool consume_errors = true) {
    using out_state = detail::state<std::vector<T>>;
    auto out = std::make_shared<out_state>(detail::runner_of(deferreds));
    if (deferreds.empty()) {
        out->resolve(typename out_state::result_type(std::in_place_index<0>));
        return Deferred<std::vector<T>>(out);
    }
    struct gathering {
        std::mutex mutex;
        std::vector<std::optional<T>> values;
        std::size_t remaining;
        bool done = false;
    };
    auto shared = std::make_shared<gathering>();
    shared->values.resize(deferreds.size());
    shared->remaining = deferreds.size();
    auto inputs = std::make_shared<detail::input_set<T>>(deferreds);
    out->set_canceller([inputs] { inputs->cancel_all(); });
    for (std::size_t i = 0; i < deferreds.size(); ++i) {
        deferreds[i].shared_state()->add_step([shared, out, i, consume_errors, inputs](
                                                  detail::state<T>& self,
                                                  typename detail::state<T>::result_type& result) {
            if (result.index() == 0) {
                std::vector<T> values;
                {
                    std::lock_guard lock(shared->mutex);
                    if (shared->done) return std::shared_ptr<detail::state<T>>();
                    shared->values[i] = std::get<0>(result);
                    if (--shared->remaining > 0) return std::shared_ptr<detail::state<T>>();
                    shared->done = true;
                    values.reserve(shared->values.size());
                    for (auto& value : shared->values)
                        values.push_back(std::move(*value));
                }
                out->resolve(
                    typename out_state::result_type(std::in_place_index<0>, std::move(values)));
            } else {
                bool first;
                {
                    std::lock_guard lock(shared->mutex);
                    first = !shared->done;
                    shared->done = true;
                }
                // Inputs we cancelled after the first failure are ours to swallow.
                if (consume_errors || (!first && std::get<1>(result).check(error_code::cancelled)))
                    self.observed = true;
                if (first) {
                    out->resolve(typename out_state::result_type(std::in_place_index<1>,
                                                                 std::get<1>(result)));
                    inputs->cancel_all();
                }
            }
            return std::shared_ptr<detail::state<T>>();
        });
    }
    return Deferred<std::vector<T>>(out);
}

/// One input's outcome in a deferred_list.
template <typename T> struct Outcome {
    std::size_t index;
    std::variant<T, Failure> result;
    bool ok() const { return result.index() == 0; }
    const T& value() const { return std::get<0>(result); }
    const Failure& failure() const { return std::get<1>(result); }
};

struct deferred_list_options {
    /// Fire as soon as one input succeeds, with just that outcome (the others go on).
    bool fire_on_one_callback = false;
    /// Fail as soon as one input fails, with that failure (the others go on).
    bool fire_on_one_errback = false;
    /// Failures of the inputs count as handled here (not logged as unhandled).
    bool consume_errors = false;
};

/// Twisted's DeferredList: waits for every input and fires with each outcome, in input order
/// (successes and failures alike), unless an option makes it fire early.
template <typename T>
Deferred<std::vector<Outcome<T>>> deferred_list(std::vector<Deferred<T>> deferreds,
                                                deferred_list_options options = {}) {
    using list = std::vector<Outcome<T>>;
    using out_state = detail::state<list>;
    auto out = std::make_shared<out_state>(detail::runner_of(deferreds));
    if (deferreds.empty()) {
        out->resolve(typename out_state::result_type(std::in_place_index<0>));
        return Deferred<list>(out);
    }
    struct collecting {
        std::mutex mutex;
        std::vector<std::optional<Outcome<T>>> outcomes;
        std::size_t remaining;
        bool done = false;
    };
    auto shared = std::make_shared<collecting>();
    shared->outcomes.resize(deferreds.size());
    shared->remaining = deferreds.size();
    auto inputs = std::make_shared<detail::input_set<T>>(deferreds);
    out->set_canceller([inputs] { inputs->cancel_all(); });
    for (std::size_t i = 0; i < deferreds.size(); ++i) {
        deferreds[i].shared_state()->add_step(
            [shared, out, i, options](detail::state<T>& self,
                                      typename detail::state<T>::result_type& result) {
                bool ok = result.index() == 0;
                if (!ok && options.consume_errors) self.observed = true;
                std::optional<typename out_state::result_type> fire;
                {
                    std::lock_guard lock(shared->mutex);
                    if (shared->done) return std::shared_ptr<detail::state<T>>();
                    shared->outcomes[i] = Outcome<T>{i, result};
                    --shared->remaining;
                    if (ok && options.fire_on_one_callback) {
                        fire.emplace(std::in_place_index<0>, list{*shared->outcomes[i]});
                    } else if (!ok && options.fire_on_one_errback) {
                        self.observed = true; // reported through the list's own failure
                        fire.emplace(std::in_place_index<1>, std::get<1>(result));
                    } else if (shared->remaining == 0) {
                        list all;
                        for (auto& outcome : shared->outcomes)
                            all.push_back(std::move(*outcome));
                        fire.emplace(std::in_place_index<0>, std::move(all));
                    }
                    if (fire) shared->done = true;
                }
                if (fire) out->resolve(std::move(*fire));
                return std::shared_ptr<detail::state<T>>();
            });
    }
    return Deferred<list>(out);
}

/// The first input to succeed wins: fires with its value and cancels the others (on the broker and
/// their workers). Fails only when every input failed, with the last failure.
template <typename T> Deferred<T> race(std::vector<Deferred<T>> deferreds) {
    using out_state = detail::state<T>;
    auto out = std::make_shared<out_state>(detail::runner_of(deferreds));
    if (deferreds.empty()) {
        out->resolve(typename out_state::result_type(
            std::in_place_index<1>, Failure(error_code::cancelled, "race of no Deferreds")));
        return Deferred<T>(out);
    }
    struct racing {
        std::mutex mutex;
        std::size_t remaining;
        bool done = false;
    };
    auto shared = std::make_shared<racing>();
    shared->remaining = deferreds.size();
    auto inputs = std::make_shared<detail::input_set<T>>(deferreds);
    out->set_canceller([inputs] { inputs->cancel_all(); });
    for (std::size_t i = 0; i < deferreds.size(); ++i) {
        deferreds[i].shared_state()->add_step(
            [shared, out, inputs, i](detail::state<T>& self,
                                     typename out_state::result_type& result) {
                bool ok = result.index() == 0;
                if (!ok)
                    self.observed =
                        true; // a loser's failure (often our own cancel) is the race's business
                bool won = false, all_failed = false;
                {
                    std::lock_guard lock(shared->mutex);
                    --shared->remaining;
                    if (shared->done) return std::shared_ptr<out_state>();
                    if (ok)
                        won = shared->done = true;
                    else if (shared->remaining == 0)
                        all_failed = shared->done = true;
                }
                if (won) {
                    out->resolve(result);
                    inputs->cancel_all(i);
                } else if (all_failed) {
                    out->resolve(result);
                }
                return std::shared_ptr<out_state>();
            });
    }
    return Deferred<T>(out);
}

} // namespace deferq
