#pragma once
/// A move-only callable wrapper that keeps a callable of up to `Size` bytes inside itself, and
/// only a bigger one on the heap: std::function keeps at most 16 bytes inline, so a closure with
/// two small callbacks (a Deferred's add_callbacks) cost an allocation per call.

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace deferq::detail {

template <typename Signature, std::size_t Size> class inline_function;

template <typename R, typename... Args, std::size_t Size> class inline_function<R(Args...), Size> {
public:
    inline_function() noexcept = default;
    inline_function(std::nullptr_t) noexcept {}
    template <typename F,
              typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, inline_function> &&
                                          std::is_invocable_r_v<R, std::decay_t<F>&, Args...>>>
    inline_function(F&& callable) {
        using stored = std::decay_t<F>;
        if constexpr (fits<stored>)
            ::new (static_cast<void*>(_storage)) stored(std::forward<F>(callable));
        else
            *reinterpret_cast<stored**>(_storage) = new stored(std::forward<F>(callable));
        _ops = &operations<stored>::table;
    }
    inline_function(inline_function&& other) noexcept { take(other); }
    inline_function& operator=(inline_function&& other) noexcept {
        if (this != &other) {
            reset();
            take(other);
        }
        return *this;
    }
    inline_function& operator=(std::nullptr_t) noexcept {
        reset();
        return *this;
    }
    inline_function(const inline_function&) = delete;
    inline_function& operator=(const inline_function&) = delete;
    ~inline_function() { reset(); }

    explicit operator bool() const noexcept { return _ops != nullptr; }
    R operator()(Args... args) { return _ops->invoke(_storage, std::forward<Args>(args)...); }

private:
    struct ops {
        R (*invoke)(void* storage, Args&&... args);
        void (*move)(void* from, void* to) noexcept; ///< constructs in `to`, ends `from`
        void (*destroy)(void* storage) noexcept;
    };

    template <typename F>
    static constexpr bool
        fits = sizeof(F) <= Size &&
               alignof(F) <= alignof(std::max_align_t) && std::is_nothrow_move_constructible_v<F>;

    template <typename F> struct operations {
        static R invoke(void* storage, Args&&... args) {
            if constexpr (fits<F>)
                return (*static_cast<F*>(storage))(std::forward<Args>(args)...);
            else
                return (**static_cast<F**>(storage))(std::forward<Args>(args)...);
        }
        static void move(void* from, void* to) noexcept {
            if constexpr (fits<F>) {
                ::new (to) F(std::move(*static_cast<F*>(from)));
                static_cast<F*>(from)->~F();
            } else {
                *static_cast<F**>(to) = *static_cast<F**>(from);
            }
        }
        static void destroy(void* storage) noexcept {
            if constexpr (fits<F>)
                static_cast<F*>(storage)->~F();
            else
                delete *static_cast<F**>(storage);
        }
        static constexpr ops table{&invoke, &move, &destroy};
    };

    void take(inline_function& other) noexcept {
        if (!other._ops) return;
        other._ops->move(other._storage, _storage);
        _ops = std::exchange(other._ops, nullptr);
    }
    void reset() noexcept {
        if (_ops) std::exchange(_ops, nullptr)->destroy(_storage);
    }

    alignas(std::max_align_t) unsigned char _storage[Size];
    const ops* _ops = nullptr;
};

} // namespace deferq::detail
