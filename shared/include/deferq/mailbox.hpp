#pragma once
/// A many-producer, one-consumer queue whose consumer is an event loop: producers push from any
/// thread; the loop polls fd() (with ZMQ_POLLIN, next to its sockets) and takes everything at once.
/// This is how user threads and job threads talk to the thread that owns a ZeroMQ socket.

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <utility>

namespace deferq {

template <typename T> class mailbox {
public:
    mailbox() : _fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
        if (_fd < 0) throw std::runtime_error("eventfd failed");
    }
    ~mailbox() { ::close(_fd); }
    mailbox(const mailbox&) = delete;
    mailbox& operator=(const mailbox&) = delete;

    /// Any thread. Wakes the consumer unless a wake-up is pending already (items pushed quietly
    /// do not count: one pushed after them still wakes it).
    void push(T item) { push_unless_closed(item); }

    /// Any thread: as push, unless the consumer closed the mailbox: then false, and `item` is left
    /// as it was (the caller may run it itself).
    bool push_unless_closed(T& item) {
        bool signal;
        {
            std::lock_guard lock(_mutex);
            if (_closed) return false;
            signal = !std::exchange(_wake_pending, true);
            _items.push_back(std::move(item));
        }
        if (signal) {
            std::uint64_t one = 1;
            [[maybe_unused]] auto written = ::write(_fd, &one, sizeof one);
        }
        return true;
    }

    /// Any thread: queues `item` without waking the consumer (who takes it with the next
    /// take_all or take_queued, or when woken).
    void push_quiet(T item) {
        std::lock_guard lock(_mutex);
        _items.push_back(std::move(item));
    }

    /// Any thread: nothing is queued (a moment's truth: others may push).
    bool empty() {
        std::lock_guard lock(_mutex);
        return _items.empty();
    }

    /// Any thread: wakes the consumer with nothing queued.
    void wake() {
        {
            std::lock_guard lock(_mutex);
            _wake_pending = true;
        }
        std::uint64_t one = 1;
        [[maybe_unused]] auto written = ::write(_fd, &one, sizeof one);
    }

    /// Consumer only: as take_all; when nothing waits, closes the mailbox instead (later pushes
    /// fail) and returns false.
    bool take_all_or_close(std::deque<T>& out) {
        std::lock_guard lock(_mutex);
        if (_items.empty()) {
            _closed = true;
            return false;
        }
        move_items(out);
        return true;
    }

    /// Consumer only: moves every queued item into `out` (appending) and clears the wake-up.
    void take_all(std::deque<T>& out) {
        std::uint64_t count;
        [[maybe_unused]] auto got = ::read(_fd, &count, sizeof count);
        std::lock_guard lock(_mutex);
        _wake_pending = false; // read: the next push writes again
        move_items(out);
    }

    /// Consumer only: moves every queued item into `out` (appending), leaving a wake-up as it is.
    void take_queued(std::deque<T>& out) {
        std::lock_guard lock(_mutex);
        move_items(out);
    }

    /// Readable while items may be waiting.
    int fd() const { return _fd; }

private:
    /// Moves every queued item into `out` (appending; a swap when `out` is empty). Holding _mutex.
    void move_items(std::deque<T>& out) {
        if (out.empty())
            out.swap(_items);
        else {
            for (auto& item : _items)
                out.push_back(std::move(item));
            _items.clear();
        }
    }

    int _fd;
    std::mutex _mutex;
    std::deque<T> _items;
    bool _closed = false;
    bool _wake_pending = false; ///< written to the eventfd and not yet read by take_all
};

} // namespace deferq
